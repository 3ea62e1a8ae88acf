//! What the agent reports for a pod, as the kubelet would: a pure function of the pod and what the
//! agent knows about it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// What the agent knows about a running pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRuntime {
    pub ips: Vec<IpAddr>,
    pub host_ips: Vec<String>,
    /// RFC 3339, when the sandbox came up.
    pub started_at: String,
    /// Readiness per container, from probes (or true when a container has none).
    pub container_ready: BTreeMap<String, bool>,
    /// When the pod's readiness last changed.
    pub ready_since: String,
}

impl PodRuntime {
    pub fn ready(&self) -> bool {
        !self.container_ready.is_empty() && self.container_ready.values().all(|r| *r)
    }
}

fn condition(type_: &str, status: bool, since: &str) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "lastTransitionTime": since,
    })
}

/// The `status` of a running pod.
pub fn running_status(pod: &Pod, rt: &PodRuntime) -> Value {
    let ready = rt.ready();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let container_statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "ready": rt.container_ready.get(&c.name).copied().unwrap_or(false),
                "started": true,
                "restartCount": 0,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("svcnet://{uid}/{}", c.name),
                "state": { "running": { "startedAt": rt.started_at } },
            })
        })
        .collect();
    let ips: Vec<Value> = rt
        .ips
        .iter()
        .map(|ip| json!({ "ip": ip.to_string() }))
        .collect();
    let host_ips: Vec<Value> = rt.host_ips.iter().map(|ip| json!({ "ip": ip })).collect();
    json!({
        "phase": "Running",
        "hostIP": rt.host_ips.first(),
        "hostIPs": host_ips,
        "podIP": rt.ips.first().map(|ip| ip.to_string()),
        "podIPs": ips,
        "startTime": rt.started_at,
        "conditions": [
            condition("PodReadyToStartContainers", true, &rt.started_at),
            condition("Initialized", true, &rt.started_at),
            condition("Ready", ready, &rt.ready_since),
            condition("ContainersReady", ready, &rt.ready_since),
            condition("PodScheduled", true, &rt.started_at),
        ],
        "containerStatuses": container_statuses,
    })
}

/// Now, as the apiserver writes `Time` (seconds) and `MicroTime` (microseconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "web-1", "namespace": "t", "uid": "u1" },
            "spec": { "containers": [ { "name": "a", "image": "img" }, { "name": "b" } ] },
        }))
        .unwrap_or_default()
    }

    fn runtime(a: bool, b: bool) -> PodRuntime {
        PodRuntime {
            ips: vec!["10.244.1.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))],
            host_ips: vec!["172.18.0.11".into()],
            started_at: "2026-11-22T00:00:00Z".into(),
            container_ready: [("a".to_owned(), a), ("b".to_owned(), b)].into(),
            ready_since: "2026-11-22T00:00:01Z".into(),
        }
    }

    #[test]
    fn pod_is_ready_only_when_every_container_is() {
        let s = running_status(&pod(), &runtime(true, false));
        assert_eq!(s["conditions"][2]["type"], "Ready");
        assert_eq!(s["conditions"][2]["status"], "False");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        let s = running_status(&pod(), &runtime(true, true));
        assert_eq!(s["conditions"][2]["status"], "True");
        assert_eq!(s["podIP"], "10.244.1.2");
        assert_eq!(s["containerStatuses"][1]["containerID"], "svcnet://u1/b");
    }

    #[test]
    fn timestamps_have_the_apiserver_formats() {
        assert_eq!(now_rfc3339().len(), "2026-11-22T00:00:00Z".len());
        assert_eq!(now_micro().len(), "2026-11-22T00:00:00.000000Z".len());
    }
}
