//! What should exist: the endpoints each Pod contributes, grouped by resolved port set
//! (upstream `podToEndpoint`, `getEndpointPorts`, `FindPort`, `getAddressTypesForService`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointHints, EndpointPort, ForNode, ForZone,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::identity::{EndpointKey, PortKey, sort_ports};
use super::pod_view::{PodView, parse_ip_sloppy};
use super::slice_meta::is_service_ip_set;

/// An EndpointSlice `addressType` we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressFamily {
    IPv4,
    IPv6,
}

impl AddressFamily {
    /// The `addressType` value.
    pub fn address_type(self) -> &'static str {
        match self {
            AddressFamily::IPv4 => "IPv4",
            AddressFamily::IPv6 => "IPv6",
        }
    }

    fn from_ip_family(family: &str) -> Option<Self> {
        match family {
            "IPv4" => Some(AddressFamily::IPv4),
            "IPv6" => Some(AddressFamily::IPv6),
            _ => None,
        }
    }

    fn matches(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (AddressFamily::IPv4, IpAddr::V4(_)) | (AddressFamily::IPv6, IpAddr::V6(_))
        )
    }
}

/// Which topology hints endpoints get (`spec.trafficDistribution`, KEP-4444 / KEP-3015).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HintMode {
    None,
    /// `PreferClose` / `PreferSameZone`: `forZones: [<endpoint's zone>]`.
    Zone,
    /// `PreferSameNode`: `forZones` as above plus `forNodes: [<endpoint's node>]`.
    ZoneAndNode,
}

/// The facts about a Service that endpoint building needs, computed once per plan.
#[derive(Debug)]
pub(crate) struct ServiceFacts<'a> {
    name: &'a str,
    namespace: &'a str,
    ports: &'a [ServicePort],
    publish_not_ready: bool,
    hints: HintMode,
}

impl<'a> ServiceFacts<'a> {
    pub(crate) fn new(service: &'a Service) -> Self {
        let spec = service.spec.as_ref();
        let hints = match spec.and_then(|s| s.traffic_distribution.as_deref()) {
            Some("PreferClose" | "PreferSameZone") => HintMode::Zone,
            Some("PreferSameNode") => HintMode::ZoneAndNode,
            _ => HintMode::None,
        };
        Self {
            name: service.metadata.name.as_deref().unwrap_or_default(),
            namespace: service.metadata.namespace.as_deref().unwrap_or_default(),
            ports: spec.and_then(|s| s.ports.as_deref()).unwrap_or_default(),
            publish_not_ready: spec
                .and_then(|s| s.publish_not_ready_addresses)
                .unwrap_or(false),
            hints,
        }
    }
}

/// The address families to keep slices for: `spec.ipFamilies`; if empty, the family of
/// `spec.clusterIP`; if that is empty or `None` (headless), both (upstream
/// `getAddressTypesForService`, kept for Services from old apiservers).
pub(crate) fn service_families(service: &Service) -> Vec<AddressFamily> {
    let spec = service.spec.as_ref();
    let mut families: Vec<AddressFamily> = Vec::new();
    for family in spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
    {
        if let Some(f) = AddressFamily::from_ip_family(family)
            && !families.contains(&f)
        {
            families.push(f);
        }
    }
    if !families.is_empty() {
        return families;
    }
    if is_service_ip_set(service) {
        let cluster_ip = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .unwrap_or_default();
        let v6 = matches!(parse_ip_sloppy(cluster_ip), Some(IpAddr::V6(_)));
        return vec![if v6 {
            AddressFamily::IPv6
        } else {
            AddressFamily::IPv4
        }];
    }
    vec![AddressFamily::IPv4, AddressFamily::IPv6]
}

/// The Pod's resolved ports for this Service (upstream `getEndpointPorts`): a Service port whose
/// named targetPort the Pod doesn't define is left out of that Pod's port set. A Service without
/// ports (allowed for headless Services) gives an empty port set.
pub(crate) fn endpoint_ports(facts: &ServiceFacts<'_>, pod: &PodView) -> Vec<EndpointPort> {
    let mut ports = Vec::with_capacity(facts.ports.len());
    for sp in facts.ports {
        let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
        let number = match &sp.target_port {
            // The apiserver defaults an unset targetPort to the port.
            None => Some(sp.port),
            Some(IntOrString::Int(n)) => Some(*n),
            Some(IntOrString::String(name)) => pod.find_port(name, &protocol),
        };
        if let Some(number) = number {
            ports.push(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(protocol),
                app_protocol: sp.app_protocol.clone(),
            });
        }
    }
    sort_ports(&mut ports);
    ports
}

/// The desired endpoints of one port set.
#[derive(Debug)]
pub(crate) struct DesiredGroup {
    pub(crate) ports: Vec<EndpointPort>,
    pub(crate) endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// Desired endpoints of `family`, grouped by port set. Pods on Nodes missing from `node_zones`
/// are skipped (their `namespace/name` goes to `skipped`) unless `publishNotReadyAddresses`.
pub(crate) fn desired_groups(
    facts: &ServiceFacts<'_>,
    family: AddressFamily,
    pods: &[PodView],
    node_zones: &BTreeMap<String, Option<String>>,
    skipped: &mut BTreeSet<String>,
) -> BTreeMap<PortKey, DesiredGroup> {
    let mut groups: BTreeMap<PortKey, DesiredGroup> = BTreeMap::new();
    for pod in pods {
        // Upstream ShouldPodBeInEndpoints(pod, includeTerminating=true).
        if pod.phase_finished || pod.ips.is_empty() {
            continue;
        }
        let ports = endpoint_ports(facts, pod);
        let group = groups
            .entry(PortKey::of(&ports))
            .or_insert_with(|| DesiredGroup {
                ports,
                endpoints: BTreeMap::new(),
            });
        let zone = match pod.node_name.as_ref().and_then(|n| node_zones.get(n)) {
            Some(zone) => zone.as_ref().filter(|z| !z.is_empty()),
            None if facts.publish_not_ready => None,
            None => {
                skipped.insert(format!("{}/{}", pod.namespace, pod.name));
                continue;
            }
        };
        let endpoint = pod_endpoint(facts, pod, zone, family);
        if !endpoint.addresses.is_empty() {
            group.endpoints.insert(EndpointKey::of(&endpoint), endpoint);
        }
    }
    groups
}

/// Upstream `podToEndpoint`, plus the hints its trafficdist pass would add.
fn pod_endpoint(
    facts: &ServiceFacts<'_>,
    pod: &PodView,
    zone: Option<&String>,
    family: AddressFamily,
) -> Endpoint {
    let serving = pod.ready;
    let terminating = pod.terminating;
    let ready = facts.publish_not_ready || (serving && !terminating);
    let mut addresses: Vec<String> = pod
        .ips
        .iter()
        .filter(|ip| family.matches(ip))
        .map(ToString::to_string)
        .collect();
    addresses.sort();
    let hostname = pod.hostname.clone().filter(|_| {
        pod.subdomain.as_deref() == Some(facts.name) && pod.namespace == facts.namespace
    });
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hints: hints(facts.hints, ready, zone, pod.node_name.as_ref()),
        hostname,
        node_name: pod.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: non_empty(&pod.namespace),
            name: non_empty(&pod.name),
            uid: non_empty(&pod.uid),
            ..ObjectReference::default()
        }),
        zone: zone.cloned(),
        ..Endpoint::default()
    }
}

/// Upstream `preferCloseHeuristic.update`: only ready endpoints get hints.
fn hints(
    mode: HintMode,
    ready: bool,
    zone: Option<&String>,
    node: Option<&String>,
) -> Option<EndpointHints> {
    if mode == HintMode::None || !ready {
        return None;
    }
    let for_zones = zone.map(|z| vec![ForZone { name: z.clone() }]);
    let for_nodes = node
        .filter(|_| mode == HintMode::ZoneAndNode)
        .map(|n| vec![ForNode { name: n.clone() }]);
    (for_zones.is_some() || for_nodes.is_some()).then_some(EndpointHints {
        for_nodes,
        for_zones,
    })
}
