//! The e2e test kit: a client for the cluster, a namespace per test, waiting on conditions, and a
//! traffic prober.

pub mod addons;
pub mod client;
pub mod crds;
pub mod install;
pub mod namespace;
pub mod pods;
pub mod prober;
pub mod slices;
pub mod topology;
pub mod traffic;
pub mod vantage;
pub mod workload;
