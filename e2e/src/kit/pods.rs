//! Waiting for pods: Running and Ready with addresses, or gone.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::error::Result;
use crate::wait::{poll_for, poll_until};

/// How long a pod may take to start on the local cluster.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A pod that is Running and Ready, with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyPod {
    pub name: String,
    pub uid: String,
    pub node: String,
    pub ips: Vec<IpAddr>,
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod as a [`ReadyPod`] when it is Running, Ready, addressed and not being deleted.
pub fn ready_pod(pod: &Pod) -> Option<ReadyPod> {
    let status = pod.status.as_ref()?;
    let running = status.phase.as_deref() == Some("Running");
    if !running || !is_ready(pod) || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.ip.parse().ok())
        .collect();
    (!ips.is_empty()).then(|| ReadyPod {
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        ips,
    })
}

/// Waits until exactly `count` pods matching `selector` are ready.
pub async fn wait_ready(api: &Api<Pod>, selector: &str, count: usize) -> Result<Vec<ReadyPod>> {
    poll_for(
        &format!("{count} ready pods ({selector})"),
        START_TIMEOUT,
        || async move {
            let list = api
                .list(&ListParams::default().labels(selector))
                .await
                .ok()?;
            let ready: Vec<ReadyPod> = list.items.iter().filter_map(ready_pod).collect();
            (ready.len() == count).then_some(ready)
        },
    )
    .await
}

/// Waits until the pod's Ready condition is `ready`.
pub async fn wait_readiness(api: &Api<Pod>, name: &str, ready: bool) -> Result<()> {
    poll_until(
        &format!("pod {name} Ready={ready}"),
        START_TIMEOUT,
        || async move {
            api.get_opt(name)
                .await
                .ok()
                .flatten()
                .is_some_and(|p| is_ready(&p) == ready)
        },
    )
    .await
}

/// Waits until the pod object is gone.
pub async fn wait_gone(api: &Api<Pod>, name: &str) -> Result<()> {
    poll_until(
        &format!("pod {name} to be gone"),
        START_TIMEOUT,
        || async move { matches!(api.get_opt(name).await, Ok(None)) },
    )
    .await
}
