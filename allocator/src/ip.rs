//! ClusterIP allocation from a service CIDR.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rand::rngs::SmallRng;

use crate::band;
use crate::error::Error;
use crate::pool::Pool;
use crate::rng::{self, RandomSource};
use crate::snapshot::Snapshot;

/// The most host bits a range may have: `2^20` addresses, a 128 KiB bitmap.
pub const MAX_HOST_BITS: u8 = 20;

/// Hands out addresses of one CIDR (IPv4 or IPv6), one bit per address.
///
/// The network address is never handed out, nor is the broadcast address of
/// an IPv4 range; every other address is (for IPv6 the all-ones address is
/// allocatable, like upstream). The lowest [`static_band_size`] addresses
/// form the static band, which [`allocate_next`] only uses once the rest of
/// the range is full; [`allocate`] accepts an address in either band.
///
/// [`static_band_size`]: IpAllocator::static_band_size
/// [`allocate_next`]: IpAllocator::allocate_next
/// [`allocate`]: IpAllocator::allocate
///
/// # Example
///
/// ```
/// use std::net::IpAddr;
/// use svcnet_allocator::{Error, IpAllocator};
///
/// let mut ips = IpAllocator::parse("10.96.0.0/16")?;
/// assert_eq!(ips.size(), 65534);
/// assert_eq!(ips.static_band_size(), 256); // 10.96.0.1 ..= 10.96.1.0
///
/// let dns: IpAddr = "10.96.0.10".parse()?;
/// ips.allocate(dns)?;
/// assert_eq!(
///     ips.allocate(dns).unwrap_err().to_string(),
///     "10.96.0.10 is already allocated"
/// );
///
/// let next = ips.allocate_next()?; // from the dynamic band, 10.96.1.1 and up
/// assert!(ips.has(next));
/// assert_eq!(ips.used(), 2);
/// assert!(ips.release(next));
/// assert!(!ips.release(next)); // releasing twice is harmless
///
/// let outside: IpAddr = "10.97.0.1".parse()?;
/// assert_eq!(
///     ips.allocate(outside),
///     Err(Error::NotInRange { ip: outside, range: ips.cidr() })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct IpAllocator<R = SmallRng> {
    cidr: IpNet,
    /// The first allocatable address (network + 1) as an integer.
    first: u128,
    pool: Pool<R>,
}

impl IpAllocator<SmallRng> {
    /// An allocator over `cidr` whose scans start at random positions drawn
    /// from a generator seeded by the operating system.
    ///
    /// Host bits in `cidr` are ignored (`10.96.0.5/16` is `10.96.0.0/16`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRange`] if `cidr` has more than [`MAX_HOST_BITS`] host
    /// bits (IPv4 shorter than `/12`, IPv6 shorter than `/108`) or no
    /// allocatable address (IPv4 `/31` and `/32`, IPv6 `/128`).
    pub fn new(cidr: IpNet) -> Result<Self, Error> {
        Self::with_rng(cidr, rng::default_rng())
    }

    /// Like [`new`](Self::new), from text such as `"10.96.0.0/16"` or
    /// `"fd00:10:96::/108"`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRange`] if the text is not a CIDR or [`new`](Self::new)
    /// refuses it.
    pub fn parse(cidr: &str) -> Result<Self, Error> {
        let net = cidr
            .trim()
            .parse::<IpNet>()
            .map_err(|e| Error::InvalidRange {
                range: format!("{cidr:?}"),
                reason: format!("not a CIDR ({e})"),
            })?;
        Self::new(net)
    }

    /// Like [`new`](Self::new) with a generator seeded with `seed`, so the
    /// sequence of [`allocate_next`](Self::allocate_next) results is
    /// reproducible (on the same platform and `rand` version).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_seed(cidr: IpNet, seed: u64) -> Result<Self, Error> {
        Self::with_rng(cidr, rng::seeded_rng(seed))
    }
}

impl<R: RandomSource> IpAllocator<R> {
    /// An allocator over `cidr` that draws scan starts from `rng`.
    ///
    /// # Errors
    ///
    /// As [`IpAllocator::new`].
    pub fn with_rng(cidr: IpNet, rng: R) -> Result<Self, Error> {
        let cidr = cidr.trunc();
        let size = usable_size(cidr)?;
        let basis = 1u64 << host_bits(cidr);
        let static_size = band::ip_static_band(basis, size);
        Ok(Self {
            cidr,
            first: to_int(cidr.network()) + 1,
            pool: Pool::new(size, static_size, rng),
        })
    }

    /// The range, host bits cleared.
    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    /// How many addresses the range can hand out (IPv4: `2^h - 2`, IPv6:
    /// `2^h - 1` for `h` host bits).
    pub fn size(&self) -> usize {
        self.pool.size()
    }

    /// How many of the lowest allocatable addresses form the static band.
    pub fn static_band_size(&self) -> usize {
        self.pool.static_size()
    }

    /// How many addresses are allocated.
    pub fn used(&self) -> usize {
        self.pool.used()
    }

    /// How many addresses are free.
    pub fn free(&self) -> usize {
        self.pool.free()
    }

    /// Allocates `ip`, in either band.
    ///
    /// # Errors
    ///
    /// [`Error::NotInRange`] if `ip` is outside the range (or of the other
    /// family), [`Error::Reserved`] for the network or IPv4 broadcast
    /// address, [`Error::AlreadyAllocated`] if it is taken.
    pub fn allocate(&mut self, ip: IpAddr) -> Result<(), Error> {
        let offset = self.offset_of(ip)?;
        if self.pool.allocate(offset) {
            Ok(())
        } else {
            Err(Error::AlreadyAllocated { ip })
        }
    }

    /// Allocates a free address: from a random start in the dynamic band,
    /// wrapping within it; only when that band is full, from a random start
    /// in the static band.
    ///
    /// # Errors
    ///
    /// [`Error::RangeFull`] if every address is allocated.
    pub fn allocate_next(&mut self) -> Result<IpAddr, Error> {
        match self.pool.allocate_next() {
            Some(offset) => Ok(self.ip_at(offset)),
            None => Err(Error::RangeFull {
                range: self.cidr,
                used: self.used(),
                size: self.size(),
            }),
        }
    }

    /// Releases `ip`. Returns whether it was allocated; releasing a free or
    /// out-of-range address does nothing.
    pub fn release(&mut self, ip: IpAddr) -> bool {
        match self.offset_of(ip) {
            Ok(offset) => self.pool.release(offset),
            Err(_) => false,
        }
    }

    /// Whether `ip` is allocated (`false` for out-of-range addresses).
    pub fn has(&self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_ok_and(|offset| self.pool.has(offset))
    }

    /// The allocated addresses in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.pool.iter().map(|offset| self.ip_at(offset))
    }

    /// The current state, to persist and later [`restore`](Self::restore).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            range: self.cidr.to_string(),
            data: self.pool.snapshot_data(),
        }
    }

    /// Replaces the state with `snapshot`'s.
    ///
    /// The snapshot's range must have the same network address as this
    /// allocator's; its prefix length may differ (the range was grown or
    /// shrunk). Every allocated address that is allocatable here is kept;
    /// the others (outside a shrunk range, or its new broadcast address) are
    /// returned in ascending order. A grown range keeps everything.
    ///
    /// # Errors
    ///
    /// [`Error::RangeMismatch`] if the network address or family differs,
    /// [`Error::InvalidSnapshot`] if the range text or the data cannot be
    /// read. The state is unchanged on error.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<Vec<IpAddr>, Error> {
        let theirs = snapshot
            .range
            .trim()
            .parse::<IpNet>()
            .map_err(|e| Error::InvalidSnapshot {
                range: snapshot.range.clone(),
                reason: format!("not a CIDR ({e})"),
            })?
            .trunc();
        if theirs.network() != self.cidr.network() {
            let same_family = theirs.network().is_ipv4() == self.cidr.network().is_ipv4();
            return Err(Error::RangeMismatch {
                snapshot: snapshot.range.clone(),
                current: self.cidr.to_string(),
                reason: if same_family {
                    "the network addresses differ"
                } else {
                    "the IP families differ"
                },
            });
        }
        let their_size = usable_count(theirs);
        let dropped = self
            .pool
            .restore(&snapshot.data, their_size)
            .map_err(|reason| Error::InvalidSnapshot {
                range: snapshot.range.clone(),
                reason,
            })?;
        Ok(dropped.into_iter().map(|o| self.ip_at(o)).collect())
    }

    fn offset_of(&self, ip: IpAddr) -> Result<usize, Error> {
        if !self.cidr.contains(&ip) {
            return Err(Error::NotInRange {
                ip,
                range: self.cidr,
            });
        }
        let value = to_int(ip);
        if value < self.first {
            return Err(Error::Reserved {
                ip,
                kind: "network",
                range: self.cidr,
            });
        }
        let offset = (value - self.first) as usize;
        if offset >= self.size() {
            return Err(Error::Reserved {
                ip,
                kind: "broadcast",
                range: self.cidr,
            });
        }
        Ok(offset)
    }

    fn ip_at(&self, offset: usize) -> IpAddr {
        let value = self.first + offset as u128;
        match self.cidr {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
        }
    }
}

fn host_bits(cidr: IpNet) -> u8 {
    cidr.max_prefix_len() - cidr.prefix_len()
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Allocatable addresses of any CIDR, saturating at `usize::MAX`.
fn usable_count(cidr: IpNet) -> usize {
    let total = 1u128
        .checked_shl(u32::from(host_bits(cidr)))
        .unwrap_or(u128::MAX);
    let reserved = if cidr.network().is_ipv4() { 2 } else { 1 };
    usize::try_from(total.saturating_sub(reserved)).unwrap_or(usize::MAX)
}

/// Allocatable addresses of a CIDR this crate accepts.
fn usable_size(cidr: IpNet) -> Result<usize, Error> {
    let bits = host_bits(cidr);
    if bits > MAX_HOST_BITS {
        let smallest = if cidr.network().is_ipv4() {
            "/12"
        } else {
            "/108"
        };
        return Err(Error::InvalidRange {
            range: cidr.to_string(),
            reason: format!(
                "{bits} host bits is too large; at most {MAX_HOST_BITS} are supported \
                 (prefix {smallest} or longer, 2^{MAX_HOST_BITS} addresses)"
            ),
        });
    }
    match usable_count(cidr) {
        0 => Err(Error::InvalidRange {
            range: cidr.to_string(),
            reason: "no allocatable address (the network address and, for IPv4, the \
                     broadcast address are never handed out)"
                .to_owned(),
        }),
        size => Ok(size),
    }
}
