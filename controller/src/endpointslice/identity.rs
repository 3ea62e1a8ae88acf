//! How endpoints and port sets are identified and compared.
//!
//! Upstream hashes an endpoint by (addresses, hostname, targetRef namespace/name), so a change to
//! conditions, node, zone or hints updates the endpoint in place instead of moving it
//! (`k8s.io/endpointslice/util/endpointset.go`). Port sets are compared as sets (upstream sorts
//! them before hashing: `NewPortMapKey`).

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointPort};

/// Identity of an endpoint within a Service's slices of one address family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

impl EndpointKey {
    pub(crate) fn of(endpoint: &Endpoint) -> Self {
        let mut addresses = endpoint.addresses.clone();
        addresses.sort();
        let target = endpoint.target_ref.as_ref();
        Self {
            addresses,
            hostname: endpoint.hostname.clone().unwrap_or_default(),
            namespace: target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
            name: target.and_then(|t| t.name.clone()).unwrap_or_default(),
        }
    }
}

/// A port set, normalised the way the API defaults an `EndpointPort` (name `""`, protocol `TCP`)
/// and sorted, so that equal sets compare equal whatever their order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PortKey(Vec<(String, String, i32, Option<String>)>);

impl PortKey {
    pub(crate) fn of(ports: &[EndpointPort]) -> Self {
        let mut key: Vec<_> = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    p.port.unwrap_or_default(),
                    p.app_protocol.clone(),
                )
            })
            .collect();
        key.sort();
        Self(key)
    }
}

/// Sort ports into the planner's canonical order (name, protocol, port, appProtocol).
pub(crate) fn sort_ports(ports: &mut [EndpointPort]) {
    ports.sort_by(|a, b| {
        (&a.name, &a.protocol, a.port, &a.app_protocol).cmp(&(
            &b.name,
            &b.protocol,
            b.port,
            &b.app_protocol,
        ))
    });
}

/// Whether two endpoints with the same [`EndpointKey`] carry the same data: conditions, node,
/// zone, targetRef (ignoring its resourceVersion) and hints. Upstream compares the same fields
/// (`EndpointsEqualBeyondHash`), with hints compared by its trafficdist pass.
pub(crate) fn same_endpoint(a: &Endpoint, b: &Endpoint) -> bool {
    let cond = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.as_ref().map(|t| {
            (
                t.kind.clone(),
                t.namespace.clone(),
                t.name.clone(),
                t.uid.clone(),
                t.api_version.clone(),
                t.field_path.clone(),
            )
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && cond(a) == cond(b)
        && target(a) == target(b)
        && hint_names(a.hints.as_ref()) == hint_names(b.hints.as_ref())
}

/// `new` differs from `old` (the same endpoint) at most by becoming ready or serving, or by no
/// longer terminating. (An unset `ready` or `serving` reads as true, an unset `terminating` as false,
/// as the API documents.)
pub(crate) fn only_gains(old: &Endpoint, new: &Endpoint) -> bool {
    let cond = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (
            c.ready.unwrap_or(true),
            c.serving.unwrap_or(true),
            c.terminating.unwrap_or(false),
        )
    };
    let (old_ready, old_serving, old_terminating) = cond(old);
    let (new_ready, new_serving, new_terminating) = cond(new);
    let mut rest = old.clone();
    rest.conditions.clone_from(&new.conditions);
    new_ready >= old_ready
        && new_serving >= old_serving
        && new_terminating <= old_terminating
        && same_endpoint(&rest, new)
}

fn hint_names(hints: Option<&EndpointHints>) -> (Vec<&str>, Vec<&str>) {
    let zones = hints
        .and_then(|h| h.for_zones.as_ref())
        .map(|z| z.iter().map(|z| z.name.as_str()).collect())
        .unwrap_or_default();
    let nodes = hints
        .and_then(|h| h.for_nodes.as_ref())
        .map(|n| n.iter().map(|n| n.name.as_str()).collect())
        .unwrap_or_default();
    (zones, nodes)
}

/// Sort a slice's endpoints by identity, so equal inputs give byte-identical slices.
pub(crate) fn sort_endpoints(endpoints: &mut [Endpoint]) {
    endpoints.sort_by_cached_key(EndpointKey::of);
}
