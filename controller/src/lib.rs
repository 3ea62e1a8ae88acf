//! svcnet-controller: the control-plane half of svcnet.
//!
//! For now this crate holds only the pure EndpointSlice planner ([`endpointslice`]): plain data in
//! (a Service, the Pods its selector matches, Node zones, the Service's existing slices), plain data
//! out (a [`endpointslice::SlicePlan`] of creates, updates and deletes). The watchers and the writer
//! that apply plans live elsewhere and are added later.

mod error;

pub mod endpointslice;

pub use error::Error;
