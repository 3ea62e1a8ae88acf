//! Where traffic tests send from, on whichever cluster the suite runs: each node, a pod, and a client
//! outside the cluster. On the local cluster these are its network namespaces. On kind
//! (`SVCNET_PROBE=exec`, e2e/kind/run.sh) probes run through the API: `kubectl exec` into a
//! host-network client pod on each node (e2e/kind/probers.yaml) or into the pod itself, and the
//! outside client is the test process on the host. The tests are the same code either way.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

use crate::addresses::{OUTSIDE_V4, OUTSIDE_V6};
use crate::error::{Error, Result};
use crate::kit::install::tools_dir;
use crate::kit::pods::{ReadyPod, ready_pod};
use crate::kit::prober::Prober;
use crate::kit::topology::Topology;
use crate::probe::any_address;

/// Namespace and label of the client pods e2e/kind/probers.yaml runs on every node.
pub const PROBER_NAMESPACE: &str = "svcnet-e2e";
pub const PROBER_SELECTOR: &str = "app=svcnet-e2e-prober";

/// A node and the addresses NodePorts answer on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub name: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
}

impl ClusterNode {
    /// The node's IPv4 address (every cluster the suite runs on has one).
    pub fn v4(&self) -> Result<IpAddr> {
        self.ipv4
            .ok_or_else(|| Error::invalid(&self.name, "has no IPv4 address"))
    }
}

#[derive(Debug, Clone)]
enum Probes {
    Netns(Topology),
    Exec {
        kubectl: PathBuf,
        /// Node name → the client pod on it.
        clients: BTreeMap<String, String>,
    },
}

/// The cluster's nodes and the places a test can send traffic from.
#[derive(Debug, Clone)]
pub struct Vantages {
    nodes: Vec<ClusterNode>,
    probes: Probes,
}

/// Whether probes go through the API (`SVCNET_PROBE=exec`) rather than network namespaces.
pub fn through_api() -> bool {
    std::env::var("SVCNET_PROBE").is_ok_and(|v| v == "exec")
}

impl Vantages {
    /// The vantage points of the cluster `client` talks to.
    pub async fn discover(client: &kube::Client) -> Result<Self> {
        if !through_api() {
            return Ok(Vantages::local(Topology::local()?));
        }
        let kubectl = tools_dir()?.join("kubectl");
        let nodes = Api::<Node>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(cluster_node)
            .collect();
        let clients = Api::<Pod>::namespaced(client.clone(), PROBER_NAMESPACE)
            .list(&ListParams::default().labels(PROBER_SELECTOR))
            .await?
            .items
            .iter()
            .filter_map(ready_pod)
            .map(|p| (p.node, p.name))
            .collect();
        Ok(Vantages {
            nodes,
            probes: Probes::Exec { kubectl, clients },
        })
    }

    /// The local cluster's vantage points, from its inventory.
    pub fn local(topology: Topology) -> Self {
        let nodes = topology
            .nodes()
            .iter()
            .map(|n| ClusterNode {
                name: n.name.clone(),
                ipv4: n.ipv4.parse().ok(),
                ipv6: n.ipv6.as_deref().and_then(|ip| ip.parse().ok()),
            })
            .collect();
        Vantages {
            nodes,
            probes: Probes::Netns(topology),
        }
    }

    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Result<&ClusterNode> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::invalid("cluster", format!("has no node {name}")))
    }

    /// A node other than `name`.
    pub fn other_node(&self, name: &str) -> Result<&ClusterNode> {
        self.nodes
            .iter()
            .find(|n| n.name != name)
            .ok_or_else(|| Error::invalid("cluster", "has one node only"))
    }

    /// Traffic from node `name`'s own network (a host-network client).
    pub fn from_node(&self, name: &str) -> Result<Prober> {
        match &self.probes {
            Probes::Netns(topology) => Ok(Prober::from_netns(topology.node(name)?.netns.as_str())),
            Probes::Exec { kubectl, clients } => {
                let pod = clients.get(name).ok_or_else(|| {
                    Error::invalid(
                        "probers",
                        format!("no ready client pod on {name}: apply e2e/kind/probers.yaml"),
                    )
                })?;
                Ok(Prober::exec(kubectl.clone(), PROBER_NAMESPACE, pod))
            }
        }
    }

    /// Traffic from the first node.
    pub fn from_any_node(&self) -> Result<Prober> {
        let node = self
            .nodes
            .first()
            .ok_or_else(|| Error::invalid("cluster", "has no node"))?;
        self.from_node(&node.name)
    }

    /// Traffic from inside `pod` (of `namespace`), whose image serves the test server.
    pub fn from_pod(&self, namespace: &str, pod: &ReadyPod) -> Prober {
        match &self.probes {
            Probes::Netns(topology) => Prober::from_netns(topology.pod_netns(&pod.uid)),
            Probes::Exec { kubectl, .. } => Prober::exec(kubectl.clone(), namespace, &pod.name),
        }
    }

    /// Traffic from a client outside the cluster, on the nodes' network.
    pub fn from_outside(&self) -> Result<Prober> {
        match &self.probes {
            Probes::Netns(topology) => Ok(Prober::from_netns(topology.outside_netns()?)),
            Probes::Exec { .. } => Ok(Prober::here()),
        }
    }

    /// The source address the outside client's packets to `toward` carry.
    pub fn outside_address(&self, toward: IpAddr) -> Result<IpAddr> {
        match &self.probes {
            Probes::Netns(_) => Ok(match toward {
                IpAddr::V4(_) => IpAddr::V4(OUTSIDE_V4),
                IpAddr::V6(_) => IpAddr::V6(OUTSIDE_V6),
            }),
            Probes::Exec { .. } => {
                // Connecting a UDP socket sends nothing; it only picks the route and the source.
                let socket = UdpSocket::bind(any_address(toward, 0))?;
                socket.connect(SocketAddr::new(toward, 9))?;
                Ok(socket.local_addr()?.ip())
            }
        }
    }
}

/// A Node's name and its first InternalIP of each family.
fn cluster_node(node: &Node) -> ClusterNode {
    let addresses: Vec<IpAddr> = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect();
    ClusterNode {
        name: node.metadata.name.clone().unwrap_or_default(),
        ipv4: addresses.iter().copied().find(IpAddr::is_ipv4),
        ipv6: addresses.iter().copied().find(IpAddr::is_ipv6),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_node_has_its_first_internal_ip_of_each_family() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "kind-worker" },
            "status": { "addresses": [
                { "type": "Hostname", "address": "kind-worker" },
                { "type": "InternalIP", "address": "172.19.0.3" },
                { "type": "InternalIP", "address": "fc00:f853:ccd:e793::3" },
                { "type": "InternalIP", "address": "172.19.0.9" },
            ]}
        }))
        .unwrap();
        assert_eq!(
            cluster_node(&node),
            ClusterNode {
                name: "kind-worker".into(),
                ipv4: Some("172.19.0.3".parse().unwrap()),
                ipv6: Some("fc00:f853:ccd:e793::3".parse().unwrap()),
            }
        );
    }
}
