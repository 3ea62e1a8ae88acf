//! The local cluster svcnet is tested on, and the kit its end-to-end tests use.
//!
//! - [`cluster`]: `svcnet-cluster up|down|status`: the upstream control plane and the node network.
//! - [`agent`]: `svcnet-node-agent`: what the kubelet does for the network, for one node.
//! - [`kit`]: what the tests use: a client, a namespace per test, waiting, and a traffic prober.

pub mod addresses;
pub mod agent;
pub mod cluster;
pub mod error;
pub mod inventory;
pub mod kit;
pub mod netns;
pub mod probe;
pub mod testserver;
pub mod wait;

pub use error::{Error, Result};
