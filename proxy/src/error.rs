//! The crate's one error type.

use ipnet::IpNet;

/// What can go wrong: a configuration the compiler refuses, or (test tools) a transaction the
/// fake nft refuses the way the kernel would.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("masquerade bit {0} is out of range 0..=31")]
    MasqueradeBit(u8),
    #[error("nodePortAddresses entry {0} is inside loopback; NodePorts never answer on loopback")]
    LoopbackNodePortAddress(IpNet),
    #[error("SvcnetConfig proxy.{field}: {value:?} is not a CIDR")]
    NotACidr { field: &'static str, value: String },
    #[error("nft refused `{op}`: {reason}")]
    Refused { op: String, reason: String },
    /// Running the real `nft` failed.
    #[error("nft: {0}")]
    Nft(String),
}

impl Error {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::MasqueradeBit(_) => "masquerade_bit",
            Error::LoopbackNodePortAddress(_) => "loopback_nodeport_address",
            Error::NotACidr { .. } => "not_a_cidr",
            Error::Refused { .. } => "refused",
            Error::Nft(_) => "nft",
        }
    }
}
