//! `AllocationState`: the persisted book of ClusterIPs and NodePorts svcnet has handed out, one
//! cluster-scoped object named `default`.
//!
//! Like kube-apiserver's `RangeAllocation`, every change is a compare-and-swap on the object's
//! `resourceVersion`, so replicas that serve the webhook at once never hand out a value twice, and a
//! restart loses nothing. Users never write it; it is in the API so it can be inspected and backed up.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What is allocated in each range, and what was handed out but not yet seen on a Service.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "svcnet.dev",
    version = "v1alpha1",
    kind = "AllocationState",
    plural = "allocationstates",
    printcolumn = r#"{"name":"Pending","type":"integer","jsonPath":".spec.pendingCount"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AllocationStateSpec {
    /// One bitmap per range: `clusterIP-IPv4`, `clusterIP-IPv6`, `nodePort`.
    #[serde(default)]
    pub ranges: Vec<RangeBitmap>,
    /// Values the webhook handed out whose Service has not been observed yet. They count as in use,
    /// so a retried request gets the same answer and repair does not reclaim them too early.
    #[serde(default)]
    pub pending: Vec<Reservation>,
    /// `len(pending)`, for `kubectl get`.
    #[serde(default)]
    pub pending_count: u32,
}

/// One range's bitmap, in kube-apiserver's RangeAllocation encoding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RangeBitmap {
    /// `clusterIP-IPv4`, `clusterIP-IPv6` or `nodePort`.
    pub name: String,
    /// The range, e.g. `10.96.0.0/16` or `30000-32767`.
    pub range: String,
    /// One bit per value (bit i = the range's i-th value), big-endian, base64.
    #[serde(default)]
    pub data: String,
}

/// Values handed out to one Service (`namespace/name`) by the webhook.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub service: String,
    #[serde(default, rename = "clusterIPs", skip_serializing_if = "Vec::is_empty")]
    pub cluster_ips: Vec<String>,
    /// NodePorts, including a healthCheckNodePort.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_ports: Vec<u16>,
}
