//! UDP conntrack entries that outlive their endpoint.
//!
//! UDP has no connection to end: a client that keeps sending from one port (DNS, statsd) matches the
//! same conntrack entry for as long as it sends, so its packets keep being DNATed to the endpoint chosen
//! first, even after that endpoint is gone: a black hole (kubernetes#48370). After a sync removes an
//! endpoint from a UDP Service, the entries DNATed to it are deleted, so the next packet is balanced
//! again over the endpoints that remain. Pure: the flows to delete, from the state before and after.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::model::{Protocol, ServiceKey, State};

/// Conntrack entries to delete: UDP, DNATed to `endpoint` (the reply comes from it), whose original
/// destination was `destination` (or, for a NodePort, any address on `port`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaleFlows {
    /// A ClusterIP, external IP or load-balancer IP; `None` for a NodePort (any node address).
    pub destination: Option<IpAddr>,
    pub port: u16,
    pub endpoint: IpAddr,
}

/// The endpoints traffic can be sent to: serving ones (ready, or terminating and still serving).
fn serving(state: &State, key: &ServiceKey) -> BTreeSet<IpAddr> {
    present(state, key)
        .into_iter()
        .filter(|ip| {
            state
                .endpoints
                .get(key)
                .into_iter()
                .flatten()
                .any(|e| e.ip == *ip && (e.serving || e.ready))
        })
        .collect()
}

/// Every endpoint listed, whatever its conditions.
fn present(state: &State, key: &ServiceKey) -> BTreeSet<IpAddr> {
    state
        .endpoints
        .get(key)
        .into_iter()
        .flatten()
        .map(|e| e.ip)
        .collect()
}

/// The flows to delete once `new` is programmed in place of `old` (one family).
pub fn stale_udp_flows(old: &State, new: &State) -> Vec<StaleFlows> {
    let mut stale = BTreeSet::new();
    for (key, svc) in old
        .services
        .iter()
        .filter(|(k, _)| k.protocol == Protocol::Udp)
    {
        // Every endpoint listed before, not only the serving ones: syncs coalesce changes, so an
        // endpoint may have been programmed (and taken flows) in a state between the two we compare,
        // e.g. ready for a moment between "not ready yet" and "gone". Deleting flows that do not
        // exist costs nothing.
        let before = present(old, key);
        let after = if new.services.contains_key(key) {
            serving(new, key)
        } else {
            BTreeSet::new()
        };
        for endpoint in before.difference(&after) {
            let addresses = svc
                .cluster_ips
                .iter()
                .chain(&svc.external_ips)
                .chain(&svc.load_balancer_ips)
                .filter(|ip| old.family.holds(ip));
            for ip in addresses {
                stale.insert(StaleFlows {
                    destination: Some(*ip),
                    port: svc.port,
                    endpoint: *endpoint,
                });
            }
            if let Some(node_port) = svc.node_port {
                stale.insert(StaleFlows {
                    destination: None,
                    port: node_port,
                    endpoint: *endpoint,
                });
            }
        }
    }
    stale.into_iter().collect()
}

/// The `conntrack` arguments that delete `flows`.
pub fn delete_args(flows: &StaleFlows) -> Vec<String> {
    let mut args = vec!["-D".to_owned()];
    if flows.endpoint.is_ipv6() {
        args.extend(["-f".to_owned(), "ipv6".to_owned()]);
    }
    args.extend(["-p".to_owned(), "udp".to_owned()]);
    if let Some(destination) = flows.destination {
        args.extend(["--orig-dst".to_owned(), destination.to_string()]);
    }
    args.extend([
        "--orig-port-dst".to_owned(),
        flows.port.to_string(),
        "--reply-src".to_owned(),
        flows.endpoint.to_string(),
    ]);
    args
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{EndpointState, Family, ProxyConfig, ServiceState};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn state(eps: &[&str], protocol: Protocol) -> State {
        let mut state = State::new(
            Family::V4,
            ProxyConfig::new("node-1", vec![ip("172.18.0.11")]),
        );
        let key = ServiceKey::new("default", "dns", "dns", protocol);
        let mut svc = ServiceState::cluster_ip(ip("10.96.0.10"), 53);
        svc.node_port = Some(30053);
        state.services.insert(key.clone(), svc);
        state.endpoints.insert(
            key,
            eps.iter()
                .map(|e| EndpointState::ready(ip(e), 5353, "node-1"))
                .collect(),
        );
        state
    }

    #[test]
    fn a_removed_udp_endpoint_leaves_stale_flows_to_every_address_of_the_service() {
        let old = state(&["10.244.1.2", "10.244.2.2"], Protocol::Udp);
        let new = state(&["10.244.2.2"], Protocol::Udp);
        let flows = stale_udp_flows(&old, &new);
        assert_eq!(
            flows,
            vec![
                StaleFlows {
                    destination: None,
                    port: 30053,
                    endpoint: ip("10.244.1.2")
                },
                StaleFlows {
                    destination: Some(ip("10.96.0.10")),
                    port: 53,
                    endpoint: ip("10.244.1.2")
                },
            ]
        );
        assert_eq!(
            delete_args(&flows[1]).join(" "),
            "-D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --reply-src 10.244.1.2"
        );
    }

    #[test]
    fn tcp_added_endpoints_and_terminating_but_serving_ones_leave_nothing() {
        let tcp_old = state(&["10.244.1.2"], Protocol::Tcp);
        assert!(stale_udp_flows(&tcp_old, &state(&[], Protocol::Tcp)).is_empty());
        let old = state(&["10.244.1.2"], Protocol::Udp);
        assert!(
            stale_udp_flows(&old, &state(&["10.244.1.2", "10.244.3.3"], Protocol::Udp)).is_empty()
        );
        let mut terminating = old.clone();
        for eps in terminating.endpoints.values_mut() {
            for e in eps.iter_mut() {
                *e = e.clone().terminating();
            }
        }
        assert!(stale_udp_flows(&old, &terminating).is_empty());
    }

    #[test]
    fn an_endpoint_gone_while_not_ready_still_has_its_flows_deleted() {
        // Two changes coalesced into one sync: ready for a moment in between, flows taken then.
        let mut old = state(&["10.244.1.2", "10.244.2.2"], Protocol::Udp);
        for eps in old.endpoints.values_mut() {
            eps[1].ready = false;
            eps[1].serving = false;
        }
        let new = state(&["10.244.1.2"], Protocol::Udp);
        let flows = stale_udp_flows(&old, &new);
        assert!(flows.iter().all(|f| f.endpoint == ip("10.244.2.2")) && flows.len() == 2);
    }

    #[test]
    fn a_removed_service_leaves_stale_flows_for_all_its_endpoints() {
        let old = state(&["10.244.1.2"], Protocol::Udp);
        let mut gone = old.clone();
        gone.services.clear();
        gone.endpoints.clear();
        assert_eq!(stale_udp_flows(&old, &gone).len(), 2);
    }
}
