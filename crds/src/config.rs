//! `SvcnetConfig`: svcnet's configuration, one cluster-scoped object named `default`.
//!
//! Bad configuration is refused when it is applied, with a message naming the field: the schema carries
//! types, ranges and CEL rules (CIDR syntax, range sizes, one range per family, no overlap between the
//! Service ranges and the cluster CIDRs, a large enough NodePort range).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one configuration object's name (the CRD's validation refuses any other).
pub const CONFIG_NAME: &str = "default";

/// svcnet's configuration. Changes apply without a restart.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "svcnet.dev",
    version = "v1alpha1",
    kind = "SvcnetConfig",
    plural = "svcnetconfigs",
    shortname = "svcnetconfig",
    status = "SvcnetConfigStatus",
    printcolumn = r#"{"name":"Ranges","type":"string","jsonPath":".spec.serviceIPRanges"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    validation = Rule::new("self.metadata.name == 'default'").message("there is one svcnet configuration and it is named 'default'"),
)]
#[x_kube(
    validation = Rule::new("self.serviceIPRanges.all(s, self.proxy.clusterCIDRs.all(c, cidr(s).ip().family() != cidr(c).ip().family() || (!cidr(s).containsCIDR(c) && !cidr(c).containsCIDR(s))))")
        .message("serviceIPRanges must not overlap proxy.clusterCIDRs")
)]
#[serde(rename_all = "camelCase")]
pub struct SvcnetConfigSpec {
    /// ClusterIP ranges, at most one per family, e.g. ["10.96.0.0/16", "fd00:10:96::/108"]. Empty:
    /// the apiserver's own ranges (read from its ServiceCIDR objects).
    #[serde(default, rename = "serviceIPRanges")]
    #[schemars(length(max = 2))]
    #[x_kube(validation = Rule::new("self.all(r, isCIDR(r))").message("every serviceIPRanges entry must be a CIDR such as 10.96.0.0/16"))]
    #[x_kube(validation = Rule::new("self.all(r, !isCIDR(r) || cidr(r).prefixLength() >= (cidr(r).ip().family() == 4 ? 12 : 108))").message("a Service range may have at most 20 host bits (IPv4 /12, IPv6 /108)"))]
    #[x_kube(validation = Rule::new("size(self) < 2 || !isCIDR(self[0]) || !isCIDR(self[1]) || cidr(self[0]).ip().family() != cidr(self[1]).ip().family()").message("serviceIPRanges holds at most one range per family"))]
    pub service_ip_ranges: Vec<String>,

    /// NodePorts are handed out from this range.
    #[serde(default)]
    pub node_port_range: NodePortRange,

    #[serde(default)]
    pub endpoint_slices: EndpointSliceSettings,

    #[serde(default)]
    pub proxy: ProxySettings,

    #[serde(default)]
    pub webhook: WebhookSettings,
}

/// An inclusive port range.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.last >= self.first + 15").message("nodePortRange must hold at least 16 ports (last >= first + 15)"))]
pub struct NodePortRange {
    #[schemars(range(min = 1, max = 65535))]
    pub first: u16,
    #[schemars(range(min = 1, max = 65535))]
    pub last: u16,
}

impl Default for NodePortRange {
    fn default() -> Self {
        NodePortRange {
            first: 30000,
            last: 32767,
        }
    }
}

/// How EndpointSlices are written.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSliceSettings {
    /// At most this many endpoints per slice (upstream's --max-endpoints-per-slice).
    #[serde(default = "default_max_endpoints")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_endpoints_per_slice: u32,
    /// Pod changes for one Service are coalesced over this period, e.g. "0s", "500ms", "1s".
    #[serde(default = "default_batch_period")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m)$"))]
    pub endpoint_updates_batch_period: String,
    /// A write that only adds endpoints (or marks them ready) waits until this long after the
    /// Service's last write, so pods coming up together go out in one write; "0s" writes at once.
    /// Removals never wait.
    #[serde(default = "default_additions_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m)$"))]
    pub endpoint_additions_interval: String,
}

fn default_max_endpoints() -> u32 {
    100
}

fn default_batch_period() -> String {
    "0s".to_owned()
}

fn default_additions_interval() -> String {
    "500ms".to_owned()
}

impl Default for EndpointSliceSettings {
    fn default() -> Self {
        EndpointSliceSettings {
            max_endpoints_per_slice: default_max_endpoints(),
            endpoint_updates_batch_period: default_batch_period(),
            endpoint_additions_interval: default_additions_interval(),
        }
    }
}

/// How the proxy load-balances by default (a Service may choose otherwise by annotation).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalancing {
    /// Uniformly at random (`numgen random`).
    #[default]
    Random,
    /// In turn (`numgen inc`).
    RoundRobin,
    /// By a hash of the client address (`jhash ip saddr`).
    SourceHash,
}

/// svcnet-proxy's settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettings {
    /// Addresses NodePorts answer on, as CIDRs; empty: every address of the node (never 127.0.0.0/8).
    #[serde(default)]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(r, isCIDR(r))").message("every nodePortAddresses entry must be a CIDR"))]
    pub node_port_addresses: Vec<String>,
    /// The pod network; traffic from outside it to a ClusterIP is masqueraded.
    #[serde(default, rename = "clusterCIDRs")]
    #[schemars(length(max = 2))]
    #[x_kube(validation = Rule::new("self.all(r, isCIDR(r))").message("every clusterCIDRs entry must be a CIDR"))]
    pub cluster_cidrs: Vec<String>,
    /// Masquerade all traffic to Services.
    #[serde(default)]
    pub masquerade_all: bool,
    #[serde(default)]
    pub load_balancing: LoadBalancing,
}

/// What the apiserver does when the allocation webhook cannot be reached.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Services are still created; the apiserver allocates, and svcnet's repair adopts what it chose.
    #[default]
    Ignore,
    /// Service creation fails while the webhook is down.
    Fail,
}

impl FailurePolicy {
    /// The value in a webhook configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSettings {
    #[serde(default)]
    pub failure_policy: FailurePolicy,
}

/// Usage of one range.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeUsage {
    pub range: String,
    pub allocated: u64,
    pub free: u64,
}

/// What svcnet reports about its configuration.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SvcnetConfigStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, and `RangesInsideServiceCIDRs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<RangeUsage>,
}
