//! What the pod cache keeps of a Pod: only what the planner and the selector match read. Everything
//! else (managed fields, annotations, volumes, env, most of status) is dropped as it arrives, which
//! keeps the cache near 1 KB per pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::jiff::Timestamp;

use crate::endpointslice::PodView;
use crate::endpointslice::trigger_time::pod_trigger_time;

/// What the pod cache holds of a Pod: its labels (for selectors), what the planner reads, and when
/// its readiness last changed. A few hundred bytes, where even a stripped `Pod` is kilobytes of
/// mostly empty fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPod {
    pub labels: Labels,
    pub view: PodView,
    pub trigger_time: Option<Timestamp>,
}

impl CachedPod {
    pub fn of(pod: &Pod) -> Self {
        CachedPod {
            labels: Labels::of(pod.metadata.labels.as_ref()),
            view: PodView::from_pod(pod),
            trigger_time: pod_trigger_time(pod),
        }
    }
}

/// A pod's labels sorted by key. A pod has a few: a boxed slice of them costs a fraction of a
/// `BTreeMap`, which allocates a node for eleven entries (about half a kilobyte) even for one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
        assert_eq!(CachedPod::of(&stripped), CachedPod::of(&pod));
        let labels = CachedPod::of(&pod).labels;
        assert!(labels.same_as(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())));
        assert_eq!(labels.get("app"), Some("web"));
        let selector = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(labels.matches(&selector("app", "web")) && !labels.matches(&selector("app", "db")));
        assert!(CachedPod::of(&stripped).trigger_time.is_some());
        let size = serde_json::to_vec(&stripped)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        assert!(size < 700, "stripped pod is {size} bytes of JSON");
    }
}
