//! Planner options.

use crate::Error;

/// Upstream's default for `--max-endpoints-per-slice`.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Upstream's upper bound for `--max-endpoints-per-slice` (the API also caps a slice at 1000).
pub const MAX_ENDPOINTS_PER_SLICE_LIMIT: usize = 1000;
/// Our `endpointslice.kubernetes.io/managed-by` value (upstream: `endpointslice-controller.k8s.io`).
pub const DEFAULT_MANAGER: &str = "svcnet-controller";

/// How the planner lays out slices. Construct with [`Options::new`] (validated) or `default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    max_endpoints_per_slice: usize,
    manager: String,
}

impl Options {
    /// Validated options: `max_endpoints_per_slice` in `1..=1000`, a non-empty manager name.
    pub fn new(max_endpoints_per_slice: usize, manager: impl Into<String>) -> Result<Self, Error> {
        if !(1..=MAX_ENDPOINTS_PER_SLICE_LIMIT).contains(&max_endpoints_per_slice) {
            return Err(Error::InvalidMaxEndpointsPerSlice(max_endpoints_per_slice));
        }
        let manager = manager.into();
        if manager.is_empty() {
            return Err(Error::EmptyManager);
        }
        Ok(Self {
            max_endpoints_per_slice,
            manager,
        })
    }

    /// Options with the default manager and the given maximum.
    pub fn with_max_endpoints_per_slice(max_endpoints_per_slice: usize) -> Result<Self, Error> {
        Self::new(max_endpoints_per_slice, DEFAULT_MANAGER)
    }

    /// The most endpoints the planner puts in one slice.
    pub fn max_endpoints_per_slice(&self) -> usize {
        self.max_endpoints_per_slice
    }

    /// The `managed-by` label value: only slices carrying it are ever planned.
    pub fn manager(&self) -> &str {
        &self.manager
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            manager: DEFAULT_MANAGER.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_endpoints_per_slice_accepts_1_to_1000_only() {
        for (max, ok) in [
            (0, false),
            (1, true),
            (100, true),
            (1000, true),
            (1001, false),
        ] {
            assert_eq!(
                Options::with_max_endpoints_per_slice(max).is_ok(),
                ok,
                "{max}"
            );
        }
    }

    #[test]
    fn empty_manager_is_rejected() {
        assert!(matches!(Options::new(100, ""), Err(Error::EmptyManager)));
    }
}
