//! What the pod cache keeps of a Pod: only what the planner and the selector match read, in a
//! compact form. Everything else (managed fields, annotations, volumes, env, most of status) is
//! dropped as it arrives; label sets, namespaces and node names are shared between pods.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::jiff::Timestamp;

use super::interner::Interner;
use super::uid::Uid;
use crate::endpointslice::trigger_time::pod_trigger_time;
use crate::endpointslice::{NamedPort, PodView};

/// The shared copies the pod cache hands out.
#[derive(Debug, Default)]
pub struct Shared {
    labels: Interner<Labels>,
    /// Namespaces and node names.
    strings: Interner<str>,
}

/// What the pod cache holds of a Pod: its labels (for selectors), what the planner reads (see
/// [`PodView`], made again for each plan), and when its readiness last changed. About 150 bytes
/// and a few small allocations, where even a stripped `Pod` is kilobytes of mostly empty fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPod {
    pub labels: Arc<Labels>,
    pub trigger_time: Option<Timestamp>,
    name: Box<str>,
    namespace: Arc<str>,
    uid: Uid,
    ips: Box<[IpAddr]>,
    node_name: Option<Arc<str>>,
    ready: bool,
    terminating: bool,
    phase_finished: bool,
    /// `hostname` and `subdomain`: most pods have neither.
    dns: Option<Box<(Option<String>, Option<String>)>>,
    named_ports: Box<[NamedPort]>,
}

impl CachedPod {
    pub fn of(pod: &Pod, shared: &Shared) -> Self {
        let view = PodView::from_pod(pod);
        let labels = Labels::of(pod.metadata.labels.as_ref());
        let dns = (view.hostname.is_some() || view.subdomain.is_some())
            .then(|| Box::new((view.hostname, view.subdomain)));
        CachedPod {
            labels: shared.labels.intern(&labels, |l| Arc::new(l.clone())),
            trigger_time: pod_trigger_time(pod),
            name: view.name.into(),
            namespace: shared.strings.str(&view.namespace),
            uid: Uid::of(&view.uid),
            ips: view.ips.into(),
            node_name: view.node_name.map(|n| shared.strings.str(&n)),
            ready: view.ready,
            terminating: view.terminating,
            phase_finished: view.phase_finished,
            dns,
            named_ports: view.named_ports.into(),
        }
    }

    /// What the planner reads of the pod.
    pub fn view(&self) -> PodView {
        let (hostname, subdomain) = self.dns.as_deref().cloned().unwrap_or_default();
        PodView {
            name: self.name.to_string(),
            namespace: self.namespace.to_string(),
            uid: self.uid.to_string(),
            ips: self.ips.to_vec(),
            node_name: self.node_name.as_deref().map(str::to_owned),
            ready: self.ready,
            terminating: self.terminating,
            phase_finished: self.phase_finished,
            hostname,
            subdomain,
            named_ports: self.named_ports.to_vec(),
        }
    }
}

/// A pod's labels sorted by key. A pod has a few: a boxed slice of them costs a fraction of a
/// `BTreeMap`, which allocates a node for eleven entries (about half a kilobyte) even for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    pub fn of(labels: Option<&BTreeMap<String, String>>) -> Self {
        // A BTreeMap iterates in key order: the slice is sorted.
        Labels(
            labels
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Every pair of `selector` is among these labels.
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector
            .iter()
            .all(|(k, v)| self.get(k) == Some(v.as_str()))
    }

    /// The same labels as `labels` (a Pod's).
    pub fn same_as(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.len() == labels.len()
            && self
                .0
                .iter()
                .zip(labels)
                .all(|((k, v), (lk, lv))| k == lk && v == lv)
    }
}

fn keep_container(c: &Container) -> Container {
    Container {
        name: c.name.clone(),
        ports: c.ports.as_ref().map(|ports| {
            ports
                .iter()
                .filter(|p| p.name.is_some())
                .map(|p| ContainerPort {
                    name: p.name.clone(),
                    container_port: p.container_port,
                    protocol: p.protocol.clone(),
                    ..ContainerPort::default()
                })
                .collect()
        }),
        restart_policy: c.restart_policy.clone(),
        ..Container::default()
    }
}

/// Strips a Pod in place down to what the controller reads.
pub fn strip_pod(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(spec) = pod.spec.take() {
        pod.spec = Some(PodSpec {
            node_name: spec.node_name,
            hostname: spec.hostname,
            subdomain: spec.subdomain,
            containers: spec.containers.iter().map(keep_container).collect(),
            init_containers: spec
                .init_containers
                .map(|cs| cs.iter().map(keep_container).collect()),
            ..PodSpec::default()
        });
    }
    if let Some(status) = pod.status.take() {
        let ready = status.conditions.and_then(|cs| {
            cs.into_iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    // The trigger time of the slices' last-change annotation.
                    last_transition_time: c.last_transition_time,
                    ..PodCondition::default()
                })
        });
        pod.status = Some(PodStatus {
            phase: status.phase,
            pod_ip: status.pod_ip,
            pod_ips: status.pod_ips,
            conditions: ready.map(|c| vec![c]),
            ..PodStatus::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripping_keeps_everything_the_planner_reads() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "ns", "uid": "u1", "labels": { "app": "web" },
                "annotations": { "big": "x".repeat(4096) },
                "deletionTimestamp": "2026-11-22T00:00:00Z",
            },
            "spec": {
                "nodeName": "node-1", "hostname": "h", "subdomain": "web",
                "containers": [{
                    "name": "c", "image": "img", "env": [{ "name": "A", "value": "b" }],
                    "ports": [{ "name": "http", "containerPort": 8080, "protocol": "TCP" },
                              { "containerPort": 9090 }],
                }],
            },
            "status": {
                "phase": "Running", "podIP": "10.244.1.2", "podIPs": [{ "ip": "10.244.1.2" }],
                "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T00:00:00Z" },
                               { "type": "PodScheduled", "status": "True" }],
                "containerStatuses": [{ "name": "c", "ready": true, "restartCount": 0, "image": "i", "imageID": "" }],
            },
        }))
        .unwrap_or_default();
        let before = PodView::from_pod(&pod);
        let mut stripped = pod.clone();
        strip_pod(&mut stripped);
        assert_eq!(PodView::from_pod(&stripped), before);
        assert_eq!(stripped.metadata.labels, pod.metadata.labels);
        let shared = Shared::default();
        assert_eq!(
            CachedPod::of(&stripped, &shared),
            CachedPod::of(&pod, &shared)
        );
        assert_eq!(CachedPod::of(&pod, &shared).view(), before);
        let labels = CachedPod::of(&pod, &shared).labels;
        assert!(labels.same_as(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())));
        assert_eq!(labels.get("app"), Some("web"));
        let selector = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(labels.matches(&selector("app", "web")) && !labels.matches(&selector("app", "db")));
        assert!(CachedPod::of(&stripped, &shared).trigger_time.is_some());
        let size = serde_json::to_vec(&stripped)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        assert!(size < 700, "stripped pod is {size} bytes of JSON");
    }

    #[test]
    fn pods_of_one_replica_set_share_labels_namespace_and_node() {
        let pod = |name: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "shop", "uid": name,
                             "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"}},
                "spec": {"nodeName": "node-1", "containers": []},
                "status": {"podIPs": [{"ip": "10.244.1.5"}]},
            }))
            .unwrap_or_default()
        };
        let shared = Shared::default();
        let (a, b) = (
            CachedPod::of(&pod("web-1"), &shared),
            CachedPod::of(&pod("web-2"), &shared),
        );
        assert!(Arc::ptr_eq(&a.labels, &b.labels));
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
        assert!(matches!((&a.node_name, &b.node_name), (Some(x), Some(y)) if Arc::ptr_eq(x, y)));
        assert_eq!(a.view().name, "web-1");
        assert!(size_of::<CachedPod>() <= 160, "{}", size_of::<CachedPod>());
    }
}
