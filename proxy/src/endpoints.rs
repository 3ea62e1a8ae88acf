//! Which endpoints a service port uses on this node (kube-proxy's `CategorizeEndpoints`,
//! pkg/proxy/topology.go).
//!
//! - Ready endpoints are used; when none is ready anywhere, serving+terminating ones are
//!   (KEP-1669), so connections drain instead of failing during a rollout.
//! - Topology (policy Cluster only): if every ready endpoint carries node hints and one names
//!   this node, only those are used; else if every ready endpoint carries zone hints and one
//!   names this node's zone, only those; else all.
//! - Policy Local uses this node's endpoints only: ready ones, else serving+terminating ones.

use crate::model::{EndpointState, ProxyConfig, ServiceState, TrafficPolicy};

/// The endpoints a service port load-balances over, by traffic policy.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    /// Used by policy Cluster (internal and/or external traffic), topology applied.
    pub cluster: Vec<&'a EndpointState>,
    /// This node's endpoints, used by policy Local.
    pub local: Vec<&'a EndpointState>,
    /// The union of the two: every endpoint this node may send traffic to.
    pub reachable: Vec<&'a EndpointState>,
    /// Whether the service has a usable endpoint anywhere in the cluster.
    pub has_any: bool,
}

/// Whether the service port needs the Cluster-policy endpoints: for internal traffic with
/// policy Cluster, and whenever it takes external traffic (even with policy Local, local pods
/// and the node itself are short-circuited to all endpoints).
pub fn uses_cluster_endpoints(svc: &ServiceState) -> bool {
    svc.internal_traffic_policy == TrafficPolicy::Cluster || svc.externally_accessible()
}

/// Whether the service port needs this node's endpoints (some policy is Local).
pub fn uses_local_endpoints(svc: &ServiceState) -> bool {
    svc.internal_traffic_policy == TrafficPolicy::Local
        || (svc.externally_accessible() && svc.external_traffic_policy == TrafficPolicy::Local)
}

/// Split `endpoints` (already of the right family, deduplicated and sorted) by policy.
pub fn select<'a>(
    endpoints: &'a [EndpointState],
    svc: &ServiceState,
    config: &ProxyConfig,
) -> Selection<'a> {
    let mut selection = Selection::default();
    let is_local = |ep: &EndpointState| ep.node_name.as_deref() == Some(config.node_name.as_str());
    let serving_terminating = |ep: &EndpointState| ep.serving && ep.terminating;

    if uses_cluster_endpoints(svc) {
        let topology = topology_filter(endpoints, config);
        selection.cluster = endpoints
            .iter()
            .filter(|ep| ep.ready && topology.admits(ep, config))
            .collect();
        if selection.cluster.is_empty() {
            selection.cluster = endpoints
                .iter()
                .filter(|ep| serving_terminating(ep))
                .collect();
        }
        selection.has_any = !selection.cluster.is_empty();
    }

    if !uses_local_endpoints(svc) {
        selection.reachable = selection.cluster.clone();
        return selection;
    }

    let usable = |ep: &&EndpointState| ep.ready || serving_terminating(ep);
    selection.has_any |= endpoints.iter().any(|ep| usable(&ep));
    let local_ready: Vec<_> = endpoints
        .iter()
        .filter(|ep| is_local(ep) && ep.ready)
        .collect();
    selection.local = if local_ready.is_empty() {
        endpoints
            .iter()
            .filter(|ep| is_local(ep) && serving_terminating(ep))
            .collect()
    } else {
        local_ready
    };

    let mut reachable = selection.cluster.clone();
    for ep in &selection.local {
        if !reachable.iter().any(|known| std::ptr::eq(*known, *ep)) {
            reachable.push(ep);
        }
    }
    reachable.sort_by_key(|ep| (ep.ip, ep.port));
    selection.reachable = reachable;
    selection
}

/// The topology rule in force for a service port.
#[derive(Debug, PartialEq, Eq)]
enum Topology {
    All,
    SameNode,
    SameZone,
}

impl Topology {
    fn admits(&self, ep: &EndpointState, config: &ProxyConfig) -> bool {
        match self {
            Topology::All => true,
            Topology::SameNode => ep.for_nodes.contains(&config.node_name),
            Topology::SameZone => config
                .node_zone
                .as_ref()
                .is_some_and(|zone| ep.for_zones.iter().any(|z| z == zone)),
        }
    }
}

fn topology_filter(endpoints: &[EndpointState], config: &ProxyConfig) -> Topology {
    let ready: Vec<_> = endpoints.iter().filter(|ep| ep.ready).collect();
    if ready.is_empty() {
        return Topology::All;
    }
    let all_node_hints = ready.iter().all(|ep| !ep.for_nodes.is_empty());
    if all_node_hints && ready.iter().any(|ep| Topology::SameNode.admits(ep, config)) {
        return Topology::SameNode;
    }
    let all_zone_hints = ready.iter().all(|ep| !ep.for_zones.is_empty());
    if all_zone_hints && ready.iter().any(|ep| Topology::SameZone.admits(ep, config)) {
        return Topology::SameZone;
    }
    Topology::All
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 244, 1, last])
    }

    fn config() -> ProxyConfig {
        let mut config = ProxyConfig::new("node-a", vec![IpAddr::from([172, 18, 0, 2])]);
        config.node_zone = Some("zone-a".to_owned());
        config
    }

    fn ips(eps: &[&EndpointState]) -> Vec<IpAddr> {
        eps.iter().map(|ep| ep.ip).collect()
    }

    fn svc() -> ServiceState {
        ServiceState::cluster_ip(IpAddr::from([10, 96, 0, 10]), 80)
    }

    #[test]
    fn ready_endpoints_are_used_and_terminating_ones_ignored() {
        let eps = vec![
            EndpointState::ready(ip(1), 80, "node-b"),
            EndpointState::ready(ip(2), 80, "node-b").terminating(),
        ];
        let s = select(&eps, &svc(), &config());
        assert_eq!(ips(&s.cluster), vec![ip(1)]);
        assert!(s.has_any);
    }

    #[test]
    fn serving_terminating_endpoints_are_used_when_none_is_ready() {
        let mut gone = EndpointState::ready(ip(3), 80, "node-b").terminating();
        gone.serving = false;
        let eps = vec![
            EndpointState::ready(ip(2), 80, "node-b").terminating(),
            gone,
        ];
        let s = select(&eps, &svc(), &config());
        assert_eq!(ips(&s.cluster), vec![ip(2)]);
    }

    #[test]
    fn not_serving_endpoints_mean_no_endpoints() {
        let mut ep = EndpointState::ready(ip(1), 80, "node-b");
        ep.ready = false;
        ep.serving = false;
        let eps = vec![ep];
        let s = select(&eps, &svc(), &config());
        assert!(s.cluster.is_empty());
        assert!(!s.has_any);
    }

    #[test]
    fn zone_hints_apply_only_when_every_ready_endpoint_has_one() {
        let eps = vec![
            EndpointState::ready(ip(1), 80, "node-a").for_zone("zone-a"),
            EndpointState::ready(ip(2), 80, "node-b").for_zone("zone-b"),
        ];
        assert_eq!(ips(&select(&eps, &svc(), &config()).cluster), vec![ip(1)]);
        let mut partial = eps.clone();
        partial.push(EndpointState::ready(ip(3), 80, "node-c"));
        assert_eq!(
            ips(&select(&partial, &svc(), &config()).cluster),
            vec![ip(1), ip(2), ip(3)]
        );
    }

    #[test]
    fn zone_hints_for_other_zones_only_are_ignored() {
        let eps = vec![EndpointState::ready(ip(2), 80, "node-b").for_zone("zone-b")];
        assert_eq!(ips(&select(&eps, &svc(), &config()).cluster), vec![ip(2)]);
    }

    #[test]
    fn node_hints_win_over_zone_hints() {
        let eps = vec![
            EndpointState::ready(ip(1), 80, "node-a")
                .for_zone("zone-a")
                .for_node("node-a"),
            EndpointState::ready(ip(2), 80, "node-b")
                .for_zone("zone-a")
                .for_node("node-b"),
        ];
        assert_eq!(ips(&select(&eps, &svc(), &config()).cluster), vec![ip(1)]);
    }

    #[test]
    fn local_policy_uses_this_nodes_endpoints_and_falls_back_to_terminating_ones() {
        let mut svc = svc();
        svc.node_port = Some(30080);
        svc.external_traffic_policy = TrafficPolicy::Local;
        let eps = vec![
            EndpointState::ready(ip(1), 80, "node-a").terminating(),
            EndpointState::ready(ip(2), 80, "node-b"),
        ];
        let s = select(&eps, &svc, &config());
        assert_eq!(ips(&s.local), vec![ip(1)]);
        assert_eq!(ips(&s.cluster), vec![ip(2)]);
        assert_eq!(ips(&s.reachable), vec![ip(1), ip(2)]);
    }

    #[test]
    fn internal_local_policy_without_local_endpoints_has_endpoints_elsewhere() {
        let mut svc = svc();
        svc.internal_traffic_policy = TrafficPolicy::Local;
        let eps = vec![EndpointState::ready(ip(2), 80, "node-b")];
        let s = select(&eps, &svc, &config());
        assert!(s.local.is_empty() && s.cluster.is_empty());
        assert!(s.has_any);
    }
}
