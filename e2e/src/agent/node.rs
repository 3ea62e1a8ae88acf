//! The Node object: registered with server-side apply, kept Ready by a status heartbeat and a Lease in
//! kube-node-lease, as the kubelet does.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::AgentConfig;
use super::status::{now_micro, now_rfc3339};
use crate::addresses as plan;
use crate::error::Result;

const MANAGER: &str = "svcnet-node-agent";
const LEASE_SECONDS: i32 = 40;
const LEASE_RENEW: Duration = Duration::from_secs(10);
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// Pods capacity of a simulated node (its pod CIDR is a /16).
pub const SIMULATED_MAX_PODS: u32 = 10_000;

fn apply() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

fn node_object(cfg: &AgentConfig) -> Value {
    let mut cidrs = vec![cfg.pod_cidr_v4().to_string()];
    if cfg.dual_stack {
        cidrs.push(plan::pod_cidr_v6(cfg.node_index).to_string());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.node_name,
            "labels": {
                "kubernetes.io/hostname": cfg.node_name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": cfg.zone,
            },
        },
        "spec": { "podCIDR": cidrs[0], "podCIDRs": cidrs },
    })
}

fn node_status(cfg: &AgentConfig) -> Value {
    let now = now_rfc3339();
    let cond = |type_: &str, status: &str, reason: &str| {
        json!({
            "type": type_, "status": status, "reason": reason,
            "lastHeartbeatTime": now, "lastTransitionTime": cfg.started_at,
        })
    };
    let mut addresses = vec![json!({ "type": "InternalIP", "address": cfg.node_ipv4() })];
    if let Some(v6) = cfg.node_ipv6() {
        addresses.push(json!({ "type": "InternalIP", "address": v6 }));
    }
    addresses.push(json!({ "type": "Hostname", "address": cfg.node_name }));
    let resources = node_resources(cfg.simulated);
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": cfg.node_name },
        "status": {
            "addresses": addresses,
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                cond("Ready", "True", "KubeletReady"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
            "nodeInfo": {
                "machineID": cfg.cluster_id, "systemUUID": cfg.node_name, "bootID": cfg.started_at,
                "kernelVersion": "", "osImage": "svcnet local cluster", "operatingSystem": "linux",
                "architecture": "amd64", "containerRuntimeVersion": "svcnet-node-agent://0.1.0",
                "kubeletVersion": "v1.36.3", "kubeProxyVersion": "",
            },
        },
    })
}

/// What the node offers the scheduler: a kubelet's default 110 pods, or, simulated, room for tens of
/// thousands of pods over a few nodes.
fn node_resources(simulated: bool) -> Value {
    if simulated {
        json!({ "cpu": "1000", "memory": "4Ti", "pods": SIMULATED_MAX_PODS.to_string(), "ephemeral-storage": "100Ti" })
    } else {
        json!({ "cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi" })
    }
}

/// A merge patch, not server-side apply: the schema keys `status.addresses` by type alone, so apply
/// refuses a dual-stack node's two InternalIPs (the kubelet patches status the same way).
fn status_patch(cfg: &AgentConfig) -> Patch<Value> {
    Patch::Merge(node_status(cfg))
}

/// Creates or updates the Node and reports it Ready.
pub async fn register(client: &kube::Client, cfg: &AgentConfig) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(&cfg.node_name, &apply(), &Patch::Apply(node_object(cfg)))
        .await?;
    nodes
        .patch_status(&cfg.node_name, &PatchParams::default(), &status_patch(cfg))
        .await?;
    Ok(())
}

/// Renews the node's Lease every 10 s and its status every 30 s, for good. API errors are logged and
/// retried on the next tick: a blip must not kill the node.
pub async fn heartbeat(client: kube::Client, cfg: AgentConfig) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let nodes: Api<Node> = Api::all(client);
    let mut lease_tick = tokio::time::interval(LEASE_RENEW);
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            _ = lease_tick.tick() => {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": { "name": cfg.node_name, "namespace": "kube-node-lease" },
                    "spec": {
                        "holderIdentity": cfg.node_name,
                        "leaseDurationSeconds": LEASE_SECONDS,
                        "renewTime": now_micro(),
                    },
                });
                if let Err(e) = leases.patch(&cfg.node_name, &apply(), &Patch::Apply(lease)).await {
                    tracing::warn!(node = %cfg.node_name, error = %e, "lease renewal failed");
                }
            }
            _ = status_tick.tick() => {
                let patch = status_patch(&cfg);
                if let Err(e) = nodes.patch_status(&cfg.node_name, &PatchParams::default(), &patch).await {
                    tracing::warn!(node = %cfg.node_name, error = %e, "node status update failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::StateDir;

    fn config(simulated: bool) -> AgentConfig {
        AgentConfig {
            node_name: "node-2".into(),
            node_index: 2,
            zone: "zone-b".into(),
            netns: "ns".into(),
            cluster_id: "abc".into(),
            state: StateDir::new("/nonexistent"),
            dual_stack: false,
            simulated,
            api_port: 16443,
            started_at: "2026-11-22T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_real_node_has_a_slash_24_and_110_pods() {
        let cfg = config(false);
        assert_eq!(node_object(&cfg)["spec"]["podCIDR"], "10.244.2.0/24");
        assert_eq!(node_status(&cfg)["status"]["capacity"]["pods"], "110");
    }

    #[test]
    fn a_simulated_node_has_a_slash_16_and_room_for_10000_pods() {
        let cfg = config(true);
        assert_eq!(node_object(&cfg)["spec"]["podCIDR"], "10.130.0.0/16");
        let status = node_status(&cfg);
        assert_eq!(status["status"]["capacity"]["pods"], "10000");
        assert_eq!(status["status"]["allocatable"]["pods"], "10000");
    }
}
