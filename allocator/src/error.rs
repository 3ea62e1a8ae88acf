//! The crate's error type.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::port::PortRange;

/// Everything that can go wrong when building an allocator, allocating from
/// it or restoring it from a [`Snapshot`](crate::Snapshot).
///
/// The `Display` text is meant to be shown to users as is, for example in a
/// rejected Service's status or an admission error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Every address of the range is allocated.
    #[error("range {range} is full ({used} of {size} addresses allocated)")]
    RangeFull {
        /// The range that is full.
        range: IpNet,
        /// How many addresses are allocated.
        used: usize,
        /// How many addresses the range can hand out.
        size: usize,
    },
    /// Every port of the range is allocated.
    #[error("range {range} is full ({used} of {size} ports allocated)")]
    PortRangeFull {
        /// The range that is full.
        range: PortRange,
        /// How many ports are allocated.
        used: usize,
        /// How many ports the range can hand out.
        size: usize,
    },
    /// The address is outside the range (or of the other IP family).
    #[error("{ip} is not in range {range}")]
    NotInRange {
        /// The requested address.
        ip: IpAddr,
        /// The allocator's range.
        range: IpNet,
    },
    /// The address is the network address (or the IPv4 broadcast address) of
    /// the range, which is never handed out.
    #[error("{ip} is the {kind} address of range {range} and is never allocated")]
    Reserved {
        /// The requested address.
        ip: IpAddr,
        /// `"network"` or `"broadcast"`.
        kind: &'static str,
        /// The allocator's range.
        range: IpNet,
    },
    /// The address is already allocated.
    #[error("{ip} is already allocated")]
    AlreadyAllocated {
        /// The requested address.
        ip: IpAddr,
    },
    /// The port is outside the range.
    #[error("port {port} is not in range {range}")]
    PortNotInRange {
        /// The requested port.
        port: u16,
        /// The allocator's range.
        range: PortRange,
    },
    /// The port is already allocated.
    #[error("port {port} is already allocated")]
    PortAlreadyAllocated {
        /// The requested port.
        port: u16,
    },
    /// The range cannot be used: unparsable, too large or too small.
    #[error("invalid range {range}: {reason}")]
    InvalidRange {
        /// The range as given.
        range: String,
        /// Why it was refused.
        reason: String,
    },
    /// A snapshot belongs to a different range (different base address or
    /// base port, or a different IP family) and was not restored.
    #[error("snapshot of range {snapshot} cannot be restored into range {current}: {reason}")]
    RangeMismatch {
        /// The range recorded in the snapshot.
        snapshot: String,
        /// The allocator's range.
        current: String,
        /// What differs.
        reason: &'static str,
    },
    /// A snapshot's range or data cannot be read.
    #[error("invalid snapshot of range {range}: {reason}")]
    InvalidSnapshot {
        /// The range recorded in the snapshot.
        range: String,
        /// What is wrong with it.
        reason: String,
    },
}
