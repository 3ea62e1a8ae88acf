//! [`PodView`]: the few Pod fields the planner reads, small enough to cache for every Pod.

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Container, Pod};

/// A named container port (the only kind a named `targetPort` can resolve to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    pub name: String,
    pub port: i32,
    /// `TCP` when the Pod leaves it unset (the API default).
    pub protocol: String,
}

/// What the planner needs from a Pod. Build it with [`PodView::from_pod`] when the Pod enters the
/// cache; everything else in the Pod (specs, env, volumes, managedFields) is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// `status.podIPs` (falling back to `status.podIP`), parsed; unparseable entries are dropped.
    pub ips: Vec<IpAddr>,
    pub node_name: Option<String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `status.phase` is `Succeeded` or `Failed`.
    pub phase_finished: bool,
    /// `spec.hostname`, when non-empty.
    pub hostname: Option<String>,
    /// `spec.subdomain`, when non-empty.
    pub subdomain: Option<String>,
    /// Named ports of the containers, then of restartable init containers (sidecars), in Pod order.
    /// Unnamed ports are not kept: only a name can be looked up.
    pub named_ports: Vec<NamedPort>,
}

impl PodView {
    /// Keep what the planner reads from `pod`.
    pub fn from_pod(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();

        let mut ips: Vec<IpAddr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| parse_ip_sloppy(&ip.ip))
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) = status
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(parse_ip_sloppy)
        {
            ips.push(ip);
        }

        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|conds| conds.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        let phase_finished = matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );

        let mut named_ports = Vec::new();
        if let Some(spec) = spec {
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for container in spec.containers.iter().chain(sidecars) {
                push_named_ports(container, &mut named_ports);
            }
        }

        // Exactly as long as needed: one per cached pod.
        named_ports.shrink_to_fit();
        Self {
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            ips,
            node_name: non_empty(spec.and_then(|s| s.node_name.as_ref())),
            ready,
            terminating: meta.deletion_timestamp.is_some(),
            phase_finished,
            hostname: non_empty(spec.and_then(|s| s.hostname.as_ref())),
            subdomain: non_empty(spec.and_then(|s| s.subdomain.as_ref())),
            named_ports,
        }
    }

    /// The container port named `name` with `protocol` (upstream `FindPort` for a named targetPort:
    /// first match in containers, then in sidecar init containers).
    pub fn find_port(&self, name: &str, protocol: &str) -> Option<i32> {
        self.named_ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port)
    }
}

fn push_named_ports(container: &Container, out: &mut Vec<NamedPort>) {
    for port in container.ports.iter().flatten() {
        if let Some(name) = port.name.as_ref().filter(|n| !n.is_empty()) {
            out.push(NamedPort {
                name: name.clone(),
                port: port.container_port,
                protocol: port.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
            });
        }
    }
}

fn non_empty(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.is_empty()).cloned()
}

/// Parse an IP like Go's `netutils.ParseIPSloppy`: IPv4 octets may carry leading zeros
/// (`010.001.002.003` is `10.1.2.3`); IPv4-mapped IPv6 addresses count as IPv4.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_from_json(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("valid Pod JSON")
    }

    #[test]
    fn from_pod_keeps_what_the_planner_reads() {
        let pod = pod_from_json(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1",
                         "deletionTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app": "web"}, "annotations": {"big": "x".repeat(4096)}},
            "spec": {
                "nodeName": "node-1", "hostname": "web-1", "subdomain": "web",
                "containers": [{"name": "app", "ports": [
                    {"containerPort": 8080, "name": "http"},
                    {"containerPort": 9090},
                    {"containerPort": 53, "name": "dns", "protocol": "UDP"}]}],
                "initContainers": [
                    {"name": "init", "ports": [{"containerPort": 1, "name": "init-port"}]},
                    {"name": "proxy", "restartPolicy": "Always",
                     "ports": [{"containerPort": 15001, "name": "mesh"}]}]
            },
            "status": {"phase": "Running", "podIP": "10.244.1.5",
                       "podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00:10:244:1::0005"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }));
        let view = PodView::from_pod(&pod);
        assert_eq!(view.name, "web-1");
        assert_eq!(view.namespace, "shop");
        assert_eq!(view.uid, "u1");
        let ips: Vec<String> = view.ips.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.244.1.5", "fd00:10:244:1::5"]);
        assert_eq!(view.node_name.as_deref(), Some("node-1"));
        assert!(view.ready && view.terminating && !view.phase_finished);
        assert_eq!(view.hostname.as_deref(), Some("web-1"));
        assert_eq!(view.subdomain.as_deref(), Some("web"));
        assert_eq!(view.find_port("http", "TCP"), Some(8080));
        assert_eq!(view.find_port("dns", "UDP"), Some(53));
        assert_eq!(
            view.find_port("dns", "TCP"),
            None,
            "protocol must match too"
        );
        assert_eq!(
            view.find_port("mesh", "TCP"),
            Some(15001),
            "sidecar ports count"
        );
        assert_eq!(
            view.find_port("init-port", "TCP"),
            None,
            "plain init containers don't"
        );
        assert_eq!(view.named_ports.len(), 3, "unnamed ports are not kept");
    }

    #[test]
    fn pod_without_status_has_no_ips_and_is_not_ready() {
        let view = PodView::from_pod(&pod_from_json(serde_json::json!({
            "metadata": {"name": "p"}, "spec": {"containers": []},
            "status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}]}
        })));
        assert!(view.ips.is_empty() && !view.ready && view.phase_finished);
    }

    #[test]
    fn pod_view_of_a_typical_pod_is_well_under_2_kib() {
        let view = PodView::from_pod(&pod_from_json(serde_json::json!({
            "metadata": {"name": "web-7d9f8b6c5d-x2x9q", "namespace": "production",
                         "uid": "0b7e6f4a-2c1d-4e5f-9a8b-7c6d5e4f3a2b"},
            "spec": {"nodeName": "ip-172-18-0-12.eu-west-1.compute.internal", "containers": [
                {"name": "app", "ports": [{"containerPort": 8080, "name": "http"},
                                          {"containerPort": 9090, "name": "metrics"}]}]},
            "status": {"podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00:10:244:1::5"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })));
        let heap: usize = view.name.capacity()
            + view.namespace.capacity()
            + view.uid.capacity()
            + view.ips.capacity() * size_of::<IpAddr>()
            + view.node_name.as_ref().map_or(0, String::capacity)
            + view.named_ports.capacity() * size_of::<NamedPort>()
            + view
                .named_ports
                .iter()
                .map(|p| p.name.capacity() + p.protocol.capacity())
                .sum::<usize>();
        let total = size_of::<PodView>() + heap;
        assert!(total < 1024, "PodView takes {total} bytes");
    }

    #[test]
    fn sloppy_ip_parsing_matches_go() {
        let cases = [
            ("10.1.2.3", Some("10.1.2.3")),
            ("010.001.002.003", Some("10.1.2.3")),
            ("::ffff:10.1.2.3", Some("10.1.2.3")),
            ("fd00::0001", Some("fd00::1")),
            ("10.1.2", None),
            ("10.1.2.256", None),
            ("garbage", None),
        ];
        for (input, want) in cases {
            let got = parse_ip_sloppy(input).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), want, "{input}");
        }
    }
}
