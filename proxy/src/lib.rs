//! svcnet-proxy's ruleset compiler: plain data in, one nftables transaction out.
//!
//! The compiler does no I/O and knows no Kubernetes types: [`from_kube`] translates Services and
//! EndpointSlices into its model, and [`runner`] (watchers + `nft -f -`, the thin edge) [`compile`] with the desired [`State`] of one address family and the [`Committed`]
//! state of the last successful transaction, pipes the rendered [`Transaction`] to nft, and on
//! success keeps the returned [`Committed`].
//!
//! See docs/proxy-ruleset.md for the table layout and why it looks the way it does.

mod compile;
pub mod conntrack;
pub mod endpoints;
mod error;
pub mod from_kube;
pub mod ir;
pub mod latency;
pub mod model;
pub mod names;
pub mod netlink;
pub mod render;
pub mod runner;
pub mod settings;
mod transaction;

#[cfg(feature = "testing")]
pub mod testing;

pub use compile::{
    CLUSTER_IPS, Committed, FIREWALL_IPS, HAIRPIN_ENDPOINTS, LOCAL_INDEX_OFFSET,
    MARK_FOR_MASQUERADE, MASQUERADING, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, NODEPORT_IPS,
    REJECT_CHAIN, SERVICE_IPS, SERVICE_NODEPORTS, SERVICES, SHARED_SPREAD_MAX, Spread, compile,
    compile_changed, compile_from, endpoint_map, nodeport_ranges,
};
pub use error::Error;
pub use model::{
    EndpointState, Family, LoadBalancing, Protocol, ProxyConfig, ServiceKey, ServiceState, State,
    TrafficPolicy,
};
pub use transaction::{Op, Transaction};
