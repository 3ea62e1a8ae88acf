//! Bitmap allocators for Service ClusterIPs and NodePorts.
//!
//! [`IpAllocator`] hands out addresses of the service CIDR (IPv4 or IPv6),
//! [`PortAllocator`] ports of the NodePort range (default `30000-32767`).
//! Both keep one bit per allocatable value and find free values a 64-bit word
//! at a time. They behave like kube-apiserver's `ipallocator` and
//! `portallocator`; the crate has no async code and no Kubernetes client, and
//! is not synchronised: wrap an allocator in a lock to share it.
//!
//! # Bands
//!
//! Each range is split in two bands. The *static* band is the lowest
//! allocatable values, the *dynamic* band the rest:
//!
//! | range | static band size | default |
//! |-------|------------------|---------|
//! | CIDR with `2^h` addresses (KEP-3070) | `min(max(16, 2^h / 16), 256)`; none if `2^h <= 16` | `10.96.0.0/16`: 256, `10.96.0.1`-`10.96.1.0` |
//! | port range of `n` ports (KEP-3668) | `min(max(16, n / 32), 128)`; none if `n <= 16` | `30000-32767`: 86, `30000`-`30085` |
//!
//! `allocate_next` picks a random start in the dynamic band and takes the
//! first free value from there, wrapping within the band. Only when the
//! dynamic band is full does it do the same in the static band. Allocating a
//! specific value works in either band. So values users pick by hand (low
//! ones, like `10.96.0.10` for cluster DNS) rarely collide with automatic
//! ones. The random source is injectable ([`RandomSource`], or a seed via
//! `with_seed`) so tests are deterministic.
//!
//! # Snapshots and restarts
//!
//! [`Snapshot`] is the state to persist (for example in a custom resource):
//! the range as text and one bit per allocatable value. After a restart,
//! build the allocator for the configured range and
//! [`restore`](IpAllocator::restore) the last snapshot into it. The
//! allocator then holds exactly the values that were allocated when the
//! snapshot was taken, no more and no less; allocations made after the
//! snapshot was taken are not in it, so the caller must snapshot after every
//! change it wants to survive a restart (or repair from the live Services, as
//! upstream's repair loop does).
//!
//! A snapshot restores only into the same range or the same range grown or
//! shrunk: for IPs, the same network address with any prefix length; for
//! ports, the same first port with any last port. Anything else is refused
//! with [`Error::RangeMismatch`]. A restore into a grown range keeps every
//! value; into a shrunk range, it keeps what still fits and returns the
//! values it dropped so the caller can report them.
//!
//! # Sizes
//!
//! IPv4 ranges from `/12` (`2^20 - 2` addresses) to `/30`; IPv6 ranges from
//! `/108` (`2^20 - 1` addresses) to `/127`. Larger ranges are refused rather
//! than allocating a huge bitmap; a `/12` or `/108` bitmap takes 128 KiB.
//! The network address is never handed out, nor the IPv4 broadcast address;
//! the IPv6 all-ones address is (upstream does the same).
//!
//! # Example
//!
//! ```
//! use svcnet_allocator::{IpAllocator, PortAllocator, PortRange};
//!
//! let mut ips = IpAllocator::parse("10.96.0.0/16")?;
//! let mut ports = PortAllocator::new(PortRange::NODE_PORTS);
//! let ip = ips.allocate_next()?;
//! let port = ports.allocate_next()?;
//!
//! // Persist, restart, restore.
//! let saved = (ips.snapshot(), ports.snapshot());
//! let mut ips = IpAllocator::parse("10.96.0.0/16")?;
//! let mut ports = PortAllocator::new(PortRange::NODE_PORTS);
//! assert!(ips.restore(&saved.0)?.is_empty());
//! assert!(ports.restore(&saved.1)?.is_empty());
//! assert!(ips.has(ip) && ports.has(port));
//! # Ok::<(), svcnet_allocator::Error>(())
//! ```

mod band;
mod bitmap;
mod error;
mod ip;
mod pool;
mod port;
mod rng;
mod snapshot;

pub use error::Error;
pub use ip::{IpAllocator, MAX_HOST_BITS};
pub use port::{PortAllocator, PortRange};
pub use rng::RandomSource;
pub use snapshot::Snapshot;
