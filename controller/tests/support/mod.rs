//! Test fixtures for the planner: readable builders and a fake slice store that applies plans.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use svcnet_controller::endpointslice::{NamedPort, Options, PodView, SlicePlan, plan};

pub const NAMESPACE: &str = "default";

/// `service("web")`: a single-stack IPv4 ClusterIP Service selecting `app=web`, no ports yet.
pub fn service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            uid: Some(format!("uid-svc-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".to_owned(), name.to_owned())])),
            cluster_ip: Some("10.96.0.10".to_owned()),
            cluster_ips: Some(vec!["10.96.0.10".to_owned()]),
            ip_families: Some(vec!["IPv4".to_owned()]),
            type_: Some("ClusterIP".to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Chainable edits of a fixture Service.
pub trait ServiceFixture: Sized {
    fn spec_mut(&mut self) -> &mut ServiceSpec;
    fn meta_mut(&mut self) -> &mut ObjectMeta;

    /// An unnamed TCP port `port` → numeric `target`.
    fn port(self, port: i32, target: i32) -> Self {
        self.add_port(None, port, IntOrString::Int(target), "TCP")
    }
    /// A named TCP port `port` → named target port `target`.
    fn named_port(self, name: &str, port: i32, target: &str) -> Self {
        self.add_port(
            Some(name),
            port,
            IntOrString::String(target.to_owned()),
            "TCP",
        )
    }
    fn add_port(
        mut self,
        name: Option<&str>,
        port: i32,
        target: IntOrString,
        protocol: &str,
    ) -> Self {
        self.spec_mut()
            .ports
            .get_or_insert_with(Vec::new)
            .push(ServicePort {
                name: name.map(str::to_owned),
                port,
                target_port: Some(target),
                protocol: Some(protocol.to_owned()),
                ..ServicePort::default()
            });
        self
    }
    fn dual_stack(mut self) -> Self {
        let spec = self.spec_mut();
        spec.ip_families = Some(vec!["IPv4".to_owned(), "IPv6".to_owned()]);
        spec.cluster_ips = Some(vec!["10.96.0.10".to_owned(), "fd00:10:96::a".to_owned()]);
        self
    }
    fn headless(mut self) -> Self {
        let spec = self.spec_mut();
        spec.cluster_ip = Some("None".to_owned());
        spec.cluster_ips = Some(vec!["None".to_owned()]);
        self
    }
    fn publish_not_ready(mut self) -> Self {
        self.spec_mut().publish_not_ready_addresses = Some(true);
        self
    }
    fn traffic_distribution(mut self, value: &str) -> Self {
        self.spec_mut().traffic_distribution = Some(value.to_owned());
        self
    }
    fn label(mut self, key: &str, value: &str) -> Self {
        self.meta_mut()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }
    fn without_selector(mut self) -> Self {
        self.spec_mut().selector = None;
        self
    }
    fn external_name(mut self, target: &str) -> Self {
        let spec = self.spec_mut();
        spec.type_ = Some("ExternalName".to_owned());
        spec.external_name = Some(target.to_owned());
        self
    }
}

impl ServiceFixture for Service {
    fn spec_mut(&mut self) -> &mut ServiceSpec {
        self.spec.get_or_insert_with(ServiceSpec::default)
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `pod("web-1")`: a Pod in the fixture namespace with no IP, not ready, on no node.
pub fn pod(name: &str) -> PodView {
    PodView {
        name: name.to_owned(),
        namespace: NAMESPACE.to_owned(),
        uid: format!("uid-pod-{name}"),
        ..PodView::default()
    }
}

/// Chainable edits of a fixture Pod.
pub trait PodFixture: Sized {
    fn ip(self, ip: &str) -> Self;
    fn ready(self) -> Self;
    fn not_ready(self) -> Self;
    fn on(self, node: &str) -> Self;
    fn terminating(self) -> Self;
    fn finished(self) -> Self;
    fn hostname(self, hostname: &str, subdomain: &str) -> Self;
    fn container_port(self, name: &str, port: i32) -> Self;
}

impl PodFixture for PodView {
    fn ip(mut self, ip: &str) -> Self {
        self.ips.push(ip.parse::<IpAddr>().expect("fixture IP"));
        self
    }
    fn ready(mut self) -> Self {
        self.ready = true;
        self
    }
    fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }
    fn on(mut self, node: &str) -> Self {
        self.node_name = Some(node.to_owned());
        self
    }
    fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }
    fn finished(mut self) -> Self {
        self.phase_finished = true;
        self
    }
    fn hostname(mut self, hostname: &str, subdomain: &str) -> Self {
        self.hostname = Some(hostname.to_owned());
        self.subdomain = Some(subdomain.to_owned());
        self
    }
    fn container_port(mut self, name: &str, port: i32) -> Self {
        self.named_ports.push(NamedPort {
            name: name.to_owned(),
            port,
            protocol: "TCP".to_owned(),
        });
        self
    }
}

/// Pod `i` of a numbered set: `web-<i>`, a unique IP in 10.244.0.0/16, ready, on node-1..node-3.
pub fn numbered_pod(prefix: &str, i: usize) -> PodView {
    pod(&format!("{prefix}-{i}"))
        .ip(&format!("10.244.{}.{}", i / 250, i % 250 + 1))
        .ready()
        .on(&format!("node-{}", i % 3 + 1))
}

pub fn numbered_pods(prefix: &str, n: usize) -> Vec<PodView> {
    (0..n).map(|i| numbered_pod(prefix, i)).collect()
}

/// node-1, node-2, node-3 in zone-a, zone-b, zone-c.
pub fn nodes() -> BTreeMap<String, Option<String>> {
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, z)| (format!("node-{}", i + 1), Some(format!("zone-{z}"))))
        .collect()
}

pub fn opts(max: usize) -> Options {
    Options::with_max_endpoints_per_slice(max).expect("valid max")
}

pub fn deleting(mut service: Service) -> Service {
    service.metadata.deletion_timestamp = Some(Time(Default::default()));
    service
}

/// A fake apiserver holding EndpointSlices: applies plans the way the writer will.
#[derive(Debug, Default)]
pub struct SliceStore {
    pub slices: Vec<EndpointSlice>,
    next: u32,
}

impl SliceStore {
    pub fn plan(
        &self,
        svc: &Service,
        pods: &[PodView],
        nodes: &BTreeMap<String, Option<String>>,
        opts: &Options,
    ) -> SlicePlan {
        plan(svc, pods, nodes, &self.slices, opts)
    }

    /// Apply `plan`: creates get a generated name, uid and resourceVersion; updates must name an
    /// existing slice and carry its current resourceVersion; deletes must name an existing slice.
    pub fn apply(&mut self, plan: &SlicePlan) {
        for d in &plan.delete {
            let before = self.slices.len();
            self.slices
                .retain(|s| s.metadata.name.as_deref() != Some(d.name.as_str()));
            assert_eq!(
                self.slices.len() + 1,
                before,
                "delete of unknown slice {}",
                d.name
            );
        }
        for u in &plan.update {
            let name = u.metadata.name.as_deref().expect("update has a name");
            let current = self
                .slices
                .iter_mut()
                .find(|s| s.metadata.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("update of unknown slice {name}"));
            assert_eq!(
                current.metadata.resource_version, u.metadata.resource_version,
                "stale update"
            );
            let rv = bump(current.metadata.resource_version.as_deref());
            *current = u.clone();
            current.metadata.resource_version = Some(rv);
        }
        for c in &plan.create {
            assert!(c.metadata.name.is_none(), "creates carry generateName only");
            let mut slice = c.clone();
            let prefix: String = c
                .metadata
                .generate_name
                .clone()
                .expect("generateName")
                .chars()
                .take(58)
                .collect();
            self.next += 1;
            slice.metadata.name = Some(format!("{prefix}{:05}", self.next));
            slice.metadata.uid = Some(format!("uid-slice-{}", self.next));
            slice.metadata.resource_version = Some("1".to_owned());
            self.slices.push(slice);
        }
    }

    /// Plan, apply, and check that planning again gives nothing to do. Returns the plan applied.
    pub fn converge(
        &mut self,
        svc: &Service,
        pods: &[PodView],
        nodes: &BTreeMap<String, Option<String>>,
        opts: &Options,
    ) -> SlicePlan {
        let plan = self.plan(svc, pods, nodes, opts);
        self.apply(&plan);
        let again = self.plan(svc, pods, nodes, opts);
        assert!(
            again.is_empty(),
            "replanning after apply is not empty: {again:#?}"
        );
        plan
    }

    pub fn slices_of(&self, address_type: &str) -> Vec<&EndpointSlice> {
        self.slices
            .iter()
            .filter(|s| s.address_type == address_type)
            .collect()
    }
}

fn bump(rv: Option<&str>) -> String {
    (rv.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1).to_string()
}

pub fn endpoints(slice: &EndpointSlice) -> &[Endpoint] {
    slice.endpoints.as_deref().unwrap_or_default()
}

pub fn sizes(slices: &[EndpointSlice]) -> Vec<usize> {
    let mut sizes: Vec<usize> = slices.iter().map(|s| endpoints(s).len()).collect();
    sizes.sort_unstable();
    sizes
}

/// The endpoint of pod `name` in `slices`, with the slice holding it.
pub fn find_endpoint<'a>(
    slices: &'a [EndpointSlice],
    name: &str,
) -> Option<(&'a EndpointSlice, &'a Endpoint)> {
    slices.iter().find_map(|s| {
        endpoints(s)
            .iter()
            .find(|e| e.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(name))
            .map(|e| (s, e))
    })
}

/// (ready, serving, terminating) of an endpoint.
pub fn conditions(endpoint: &Endpoint) -> (Option<bool>, Option<bool>, Option<bool>) {
    let c = endpoint.conditions.clone().unwrap_or_default();
    (c.ready, c.serving, c.terminating)
}

pub fn port_numbers(slice: &EndpointSlice) -> Vec<i32> {
    slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.port)
        .collect()
}
