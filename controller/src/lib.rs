//! svcnet-controller: the control-plane half of svcnet.
//!
//! - [`endpointslice`]: the pure planner. Plain data in (a Service, the Pods its selector matches,
//!   Node zones, the Service's existing slices), plain data out (a [`endpointslice::SlicePlan`]).
//! - [`reconciler`]: the thin edge that watches, plans and writes, with the stale-cache guard.
//! - [`allocation`]: ClusterIPs and NodePorts through a mutating webhook, persisted with
//!   compare-and-swap, with a repair loop.
//! - [`metrics`], [`http`]: `/metrics`, `/healthz`, `/readyz`.

mod error;

pub mod allocation;
pub mod endpointslice;
pub mod http;
pub mod metrics;
pub mod reconciler;

pub use error::Error;
