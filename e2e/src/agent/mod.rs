//! The node agent: for one node, what the kubelet does for the network. It registers the Node, runs
//! every pod bound to it in its own network namespace (a veth to the node, an address from the node's
//! pod CIDR, the test server on its container ports), probes readiness, reports status and honours
//! graceful deletion. It also relays the apiserver into the node namespace.

pub mod binaries;
pub mod ipam;
pub mod node;
pub mod pods;
pub mod probe;
pub mod relay;
pub mod sandbox;
pub mod status;
pub mod status_writer;

use crate::addresses as plan;
use crate::error::Result;
use crate::inventory::StateDir;

/// The agent's settings; see `svcnet-node-agent --help`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_name: String,
    /// 1-based; fixes the node's addresses and pod CIDR.
    pub node_index: u8,
    pub zone: String,
    /// The node's network namespace.
    pub netns: String,
    pub cluster_id: String,
    pub state: StateDir,
    pub dual_stack: bool,
    /// Pods get an address and a status but no namespace and no server (for scale tests).
    pub simulated: bool,
    /// The apiserver's port on 127.0.0.1, relayed to the same address in the node namespace.
    pub api_port: u16,
    pub started_at: String,
}

impl AgentConfig {
    pub fn node_ipv4(&self) -> String {
        plan::node_v4(self.node_index).to_string()
    }
    pub fn node_ipv6(&self) -> Option<String> {
        self.dual_stack
            .then(|| plan::node_v6(self.node_index).to_string())
    }
    /// The node's IPv4 pod CIDR (a /16 when simulated, for thousands of pods; else a /24).
    pub fn pod_cidr_v4(&self) -> ipnet::Ipv4Net {
        plan::node_pod_cidr_v4(self.node_index, self.simulated)
    }
    pub fn host_ips(&self) -> Vec<String> {
        let mut ips = vec![self.node_ipv4()];
        ips.extend(self.node_ipv6());
        ips
    }
}

/// Runs the agent until a part of it fails; the caller exits then, so the failure is seen.
pub async fn run(client: kube::Client, cfg: AgentConfig) -> Result<()> {
    node::register(&client, &cfg).await?;
    tracing::info!(node = %cfg.node_name, "node registered");
    let relay = if cfg.simulated {
        None
    } else {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], cfg.api_port));
        Some(relay::start(&cfg.netns, loopback, loopback).await?)
    };
    let heartbeat = tokio::spawn(node::heartbeat(client.clone(), cfg.clone()));
    let result = pods::run(client, cfg).await;
    heartbeat.abort();
    drop(relay);
    result
}
