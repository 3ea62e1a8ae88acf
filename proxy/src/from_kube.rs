//! Services and EndpointSlices to the compiler's model: a pure translation, one [`State`] per family.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{
    EndpointState, Family, LoadBalancing, Protocol, ProxyConfig, ServiceKey, ServiceState, State,
    TrafficPolicy,
};

/// Annotation choosing a Service's load-balancing: `random` (default), `round-robin`, `source-hash`.
pub const LOAD_BALANCING_ANNOTATION: &str = "svcnet.dev/load-balancing";
/// The label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Upstream's default ClientIP affinity timeout (3 hours).
const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

fn protocol(p: Option<&str>) -> Option<Protocol> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

fn policy(p: Option<&str>) -> TrafficPolicy {
    match p {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    }
}

fn ips(values: impl IntoIterator<Item = String>, family: Family) -> Vec<IpAddr> {
    values
        .into_iter()
        .filter_map(|v| v.parse::<IpAddr>().ok())
        .filter(|ip| family.holds(ip))
        .collect()
}

/// The Service's ports as the compiler sees them, for one family. ExternalName and headless Services
/// have none. `default_balancing` applies unless the Service's annotation asks for a mode.
pub fn service_ports(
    svc: &Service,
    family: Family,
    default_balancing: LoadBalancing,
) -> Vec<(ServiceKey, ServiceState)> {
    let (Some(spec), Some(ns), Some(name)) = (
        svc.spec.as_ref(),
        svc.metadata.namespace.as_deref(),
        svc.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let mut cluster_ips = spec.cluster_ips.clone().unwrap_or_default();
    if cluster_ips.is_empty() {
        cluster_ips.extend(spec.cluster_ip.clone());
    }
    let cluster_ips = ips(cluster_ips, family);
    if cluster_ips.is_empty() {
        return Vec::new();
    }
    let lb_ips = ips(
        svc.status
            .iter()
            .flat_map(|s| s.load_balancer.iter())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.ip.clone()),
        family,
    );
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let load_balancing = match svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOAD_BALANCING_ANNOTATION))
        .map(String::as_str)
    {
        Some("random") => LoadBalancing::Random,
        Some("round-robin") => LoadBalancing::RoundRobin,
        Some("source-hash") => LoadBalancing::SourceHash,
        _ => default_balancing,
    };
    let source_ranges: Vec<ipnet::IpNet> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|r| r.trim().parse().ok())
        .filter(|net| family.holds_net(net))
        .collect();
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let key = ServiceKey::new(
                ns,
                name,
                p.name.as_deref().unwrap_or(""),
                protocol(p.protocol.as_deref())?,
            );
            let state = ServiceState {
                cluster_ips: cluster_ips.clone(),
                port: u16::try_from(p.port).ok()?,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
                external_ips: ips(spec.external_ips.clone().unwrap_or_default(), family),
                load_balancer_ips: lb_ips.clone(),
                load_balancer_source_ranges: source_ranges.clone(),
                client_ip_affinity_timeout: affinity,
                external_traffic_policy: policy(spec.external_traffic_policy.as_deref()),
                internal_traffic_policy: policy(spec.internal_traffic_policy.as_deref()),
                health_check_node_port: spec
                    .health_check_node_port
                    .and_then(|n| u16::try_from(n).ok()),
                load_balancing,
            };
            Some((key, state))
        })
        .collect()
}

/// The endpoints of every Service port, from all slices of the family (any manager). An address in
/// two slices (during a move between slices) counts once.
pub fn endpoints(
    slices: &[&EndpointSlice],
    family: Family,
) -> BTreeMap<ServiceKey, Vec<EndpointState>> {
    let address_type = match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    };
    let mut out: BTreeMap<ServiceKey, Vec<EndpointState>> = BTreeMap::new();
    for slice in slices.iter().filter(|s| s.address_type == address_type) {
        let Some((ns, service)) = slice_owner(slice) else {
            continue;
        };
        for port in slice.ports.iter().flatten() {
            let (Some(proto), Some(number)) = (
                protocol(port.protocol.as_deref()),
                port.port.and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            let key = ServiceKey::new(ns, service, port.name.as_deref().unwrap_or(""), proto);
            let list = out.entry(key).or_default();
            for ep in slice.endpoints.iter().flatten() {
                let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                if list.iter().any(|e| e.ip == ip && e.port == number) {
                    continue;
                }
                let c = ep.conditions.clone().unwrap_or_default();
                // The API says: an unset `ready` or `serving` means true; unset `terminating` false.
                let ready = c.ready.unwrap_or(true);
                let hints = ep.hints.as_ref();
                list.push(EndpointState {
                    ip,
                    port: number,
                    ready,
                    serving: c.serving.unwrap_or(ready),
                    terminating: c.terminating.unwrap_or(false),
                    node_name: ep.node_name.clone(),
                    for_zones: hints
                        .and_then(|h| h.for_zones.as_ref())
                        .map(|z| z.iter().map(|z| z.name.clone()).collect())
                        .unwrap_or_default(),
                    for_nodes: hints
                        .and_then(|h| h.for_nodes.as_ref())
                        .map(|n| n.iter().map(|n| n.name.clone()).collect())
                        .unwrap_or_default(),
                });
            }
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|e| (e.ip, e.port));
    }
    out
}

/// The namespace and name of the Service a slice belongs to (its label).
pub fn slice_owner(slice: &EndpointSlice) -> Option<(&str, &str)> {
    let meta = &slice.metadata;
    meta.namespace.as_deref().zip(
        meta.labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(String::as_str),
    )
}

/// One Service port's entries in a [`State`].
pub type Entry = (ServiceKey, ServiceState, Vec<EndpointState>);

/// Translates Service `namespace/name` into `state` again: `svc` is the Service (`None` once it
/// is gone) and `slices` are the slices that name it. Returns the entries it replaced and the
/// keys it wrote, so that a sync can follow the Services that changed instead of translating
/// every Service and slice.
pub fn update_service(
    state: &mut State,
    namespace: &str,
    name: &str,
    svc: Option<&Service>,
    slices: &[&EndpointSlice],
) -> (Vec<Entry>, Vec<ServiceKey>) {
    // Keys sort by namespace, then name: the Service's ports are one range.
    let first = ServiceKey::new(namespace, name, "", Protocol::Tcp);
    let old_keys: Vec<ServiceKey> = state
        .services
        .range(first..)
        .map(|(k, _)| k)
        .take_while(|k| k.namespace == namespace && k.name == name)
        .cloned()
        .collect();
    let old = old_keys
        .into_iter()
        .filter_map(|k| {
            let svc = state.services.remove(&k)?;
            let eps = state.endpoints.remove(&k).unwrap_or_default();
            Some((k, svc, eps))
        })
        .collect();
    let ports = svc.map_or_else(Vec::new, |s| {
        service_ports(s, state.family, state.config.default_load_balancing)
    });
    let mut eps = endpoints(slices, state.family);
    let mut written = Vec::with_capacity(ports.len());
    for (key, port) in ports {
        state
            .endpoints
            .insert(key.clone(), eps.remove(&key).unwrap_or_default());
        state.services.insert(key.clone(), port);
        written.push(key);
    }
    (old, written)
}

/// The desired state of one family.
pub fn desired_state(
    config: &ProxyConfig,
    family: Family,
    services: &[&Service],
    slices: &[&EndpointSlice],
) -> State {
    let mut state = State::new(family, config.clone());
    state.services = services
        .iter()
        .flat_map(|s| service_ports(s, family, config.default_load_balancing))
        .collect();
    let mut eps = endpoints(slices, family);
    state.endpoints = state
        .services
        .keys()
        .map(|k| (k.clone(), eps.remove(k).unwrap_or_default()))
        .collect();
    state
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "web", "namespace": "ns", "annotations": { LOAD_BALANCING_ANNOTATION: "round-robin" } },
            "spec": {
                "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00:10:96::10"],
                "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080 },
                          { "name": "dns", "port": 53, "protocol": "UDP" }],
                "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
            },
        }))
        .unwrap()
    }

    fn slice(address_type: &str, ip: &str, ready: Option<bool>) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": { "name": format!("web-{address_type}"), "namespace": "ns",
                          "labels": { "kubernetes.io/service-name": "web" } },
            "addressType": address_type,
            "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
            "endpoints": [{ "addresses": [ip], "conditions": { "ready": ready }, "nodeName": "node-1",
                            "hints": { "forZones": [{ "name": "zone-a" }] } }],
        }))
        .unwrap()
    }

    #[test]
    fn a_dual_stack_service_gives_one_state_per_family() {
        let svc = service();
        let v4 = slice("IPv4", "10.244.1.5", Some(true));
        let v6 = slice("IPv6", "fd00:10:244:1::5", None);
        let config = ProxyConfig::new("node-1", vec![]);
        let state = desired_state(&config, Family::V4, &[&svc], &[&v4, &v6]);
        let http = ServiceKey::new("ns", "web", "http", Protocol::Tcp);
        let s = &state.services[&http];
        assert_eq!(s.cluster_ips, vec!["10.96.0.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.node_port, Some(30080));
        assert_eq!(s.client_ip_affinity_timeout, Some(10800));
        assert_eq!(s.external_traffic_policy, TrafficPolicy::Local);
        assert_eq!(s.load_balancing, LoadBalancing::RoundRobin);
        let eps = &state.endpoints[&http];
        assert_eq!(eps.len(), 1);
        assert_eq!(
            (eps[0].port, eps[0].for_zones.clone()),
            (8080, vec!["zone-a".to_owned()])
        );
        // The UDP port has no slice port yet: it is there, without endpoints.
        assert!(state.endpoints[&ServiceKey::new("ns", "web", "dns", Protocol::Udp)].is_empty());

        let state6 = desired_state(&config, Family::V6, &[&svc], &[&v4, &v6]);
        let eps6 = &state6.endpoints[&http];
        assert_eq!(eps6[0].ip.to_string(), "fd00:10:244:1::5");
        assert!(eps6[0].ready, "an unset ready condition counts as ready");
    }

    #[test]
    fn translating_one_service_again_matches_translating_everything() {
        let svc = service();
        let config = ProxyConfig::new("node-1", vec![]);
        let old = slice("IPv4", "10.244.1.5", Some(true));
        let new = slice("IPv4", "10.244.1.6", Some(false));
        let mut state = desired_state(&config, Family::V4, &[&svc], &[&old]);
        let (replaced, written) = update_service(&mut state, "ns", "web", Some(&svc), &[&new]);
        assert_eq!(state, desired_state(&config, Family::V4, &[&svc], &[&new]));
        assert_eq!((replaced.len(), written.len()), (2, 2));
        let http = replaced
            .iter()
            .find(|(k, _, _)| k.port_name == "http")
            .unwrap();
        assert_eq!(http.2[0].ip.to_string(), "10.244.1.5");
        // Gone: its ports leave the state.
        let (replaced, written) = update_service(&mut state, "ns", "web", None, &[]);
        assert_eq!((replaced.len(), written.len()), (2, 0));
        assert!(state.services.is_empty() && state.endpoints.is_empty());
    }

    #[test]
    fn headless_and_external_name_services_are_left_out() {
        let headless: Service = serde_json::from_value(json!({
            "metadata": { "name": "h", "namespace": "ns" },
            "spec": { "clusterIP": "None", "ports": [{ "port": 80 }] },
        }))
        .unwrap();
        let external: Service = serde_json::from_value(json!({
            "metadata": { "name": "e", "namespace": "ns" },
            "spec": { "type": "ExternalName", "externalName": "example.com" },
        }))
        .unwrap();
        assert!(service_ports(&headless, Family::V4, LoadBalancing::Random).is_empty());
        assert!(service_ports(&external, Family::V4, LoadBalancing::Random).is_empty());
    }
}
