//! The crate's one error type.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `max_endpoints_per_slice` outside `1..=1000` (upstream's `--max-endpoints-per-slice` range).
    #[error("max endpoints per slice must be between 1 and 1000, got {0}")]
    InvalidMaxEndpointsPerSlice(usize),
    /// The manager name (the `endpointslice.kubernetes.io/managed-by` label value) is empty.
    #[error("the EndpointSlice manager name must not be empty")]
    EmptyManager,
    /// Someone else changed a slice between our read and our write; the next pass sees it.
    #[error("EndpointSlice {0} changed under us")]
    Conflict(String),
    /// The persisted allocation state cannot be read.
    #[error("invalid allocation state: {0}")]
    InvalidAllocationState(String),
    /// Other replicas kept writing the allocation state between our reads and writes.
    #[error("the allocation state kept changing under us ({0} attempts)")]
    Contended(usize),
    /// svcnet's configuration cannot be used.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A range cannot be allocated from.
    #[error("allocator: {0}")]
    Allocator(#[from] svcnet_allocator::Error),
    /// The webhook's certificates.
    #[error("webhook TLS: {0}")]
    Tls(String),
    /// An apiserver answer in protobuf that cannot be read.
    #[error("protobuf answer: {0}")]
    Protobuf(String),
    /// Any other API failure.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// A small, stable label for error counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidMaxEndpointsPerSlice(_) => "invalid_max_endpoints_per_slice",
            Error::EmptyManager => "empty_manager",
            Error::Conflict(_) => "conflict",
            Error::InvalidAllocationState(_) => "invalid_allocation_state",
            Error::InvalidConfig(_) => "invalid_config",
            Error::Contended(_) => "contended",
            Error::Allocator(_) => "allocator",
            Error::Tls(_) => "tls",
            Error::Protobuf(_) => "protobuf",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "transport",
        }
    }
}
