//! Where test traffic can come from on the local cluster: each node, the outside client, a pod.

use crate::error::{Error, Result};
use crate::inventory::{Inventory, NodeRecord, StateDir};

#[derive(Debug, Clone)]
pub struct Topology {
    pub inventory: Inventory,
    pub state: StateDir,
}

impl Topology {
    /// The running local cluster's topology.
    pub fn local() -> Result<Self> {
        let state = StateDir::from_env();
        let inventory = state
            .load()?
            .ok_or_else(|| Error::invalid("local cluster", "not up: run `make cluster-up`"))?;
        Ok(Topology { inventory, state })
    }

    pub fn nodes(&self) -> &[NodeRecord] {
        &self.inventory.nodes
    }

    /// The first node.
    pub fn first_node(&self) -> Result<&NodeRecord> {
        self.nodes()
            .first()
            .ok_or_else(|| Error::invalid("local cluster", "has no node"))
    }

    /// The node named `name` (e.g. the node a pod runs on).
    pub fn node(&self, name: &str) -> Result<&NodeRecord> {
        self.nodes()
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::invalid("local cluster", format!("has no node {name}")))
    }

    pub fn outside_netns(&self) -> Result<&str> {
        self.inventory
            .outside_netns
            .as_deref()
            .ok_or_else(|| Error::invalid("local cluster", "has no outside namespace"))
    }

    /// The network namespace of a pod running on this cluster.
    pub fn pod_netns(&self, pod_uid: &str) -> String {
        crate::agent::sandbox::names(&self.inventory.cluster_id, pod_uid).netns
    }
}
