//! What the node agent does for a pod, as the kubelet would: readiness from real probes, graceful
//! deletion, host-network pods.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::agent::pods::HEALTHY_ANNOTATION;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::{TestNamespace, with_namespace};
use svcnet_e2e::kit::pods::{wait_gone, wait_readiness, wait_ready};
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::{Result, netns};

fn pod_yaml(name: &str, grace: u32, host_network: bool, port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{ app: {name} }}
spec:
  hostNetwork: {host_network}
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: server
    image: svcnet.dev/testserver:local
    ports: [{{ name: http, containerPort: {port} }}]
    readinessProbe:
      httpGet: {{ path: /healthz, port: http }}
      periodSeconds: 1
      failureThreshold: 1
"
    )
}

async fn set_healthy(ns: &TestNamespace, pod: &str, healthy: bool) -> Result<()> {
    let patch =
        json!({ "metadata": { "annotations": { HEALTHY_ANNOTATION: healthy.to_string() } } });
    ns.api::<Pod>()
        .patch(pod, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn readiness_follows_the_http_probe() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "readiness", |ns| async move {
        ns.apply_yaml(&pod_yaml("web", 0, false, 8080)).await?;
        let api = ns.api::<Pod>();
        wait_ready(&api, "app=web", 1).await?;
        set_healthy(&ns, "web", false).await?;
        wait_readiness(&api, "web", false).await?;
        set_healthy(&ns, "web", true).await?;
        wait_readiness(&api, "web", true).await
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn deleted_pod_keeps_serving_for_its_grace_period_then_its_namespace_goes() -> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    with_namespace(&client, "graceful", |ns| async move {
        ns.apply_yaml(&pod_yaml("slow", 30, false, 8080)).await?;
        let api = ns.api::<Pod>();
        let pod = wait_ready(&api, "app=slow", 1).await?.remove(0);
        let node = topology.node(&pod.node)?;
        api.delete("slow", &DeleteParams::default()).await?;
        let deleting = api.get("slow").await?;
        assert!(deleting.metadata.deletion_timestamp.is_some());
        // Terminating, and still answering.
        let reply = Prober::from_netns(node.netns.as_str())
            .tcp(SocketAddr::new(pod.ips[0], 8080))
            .await?;
        assert_eq!(reply.pod, "slow");
        assert!(netns::exists(&topology.pod_netns(&pod.uid)));
        // A shorter grace period ends it sooner, as with the kubelet.
        let now = DeleteParams {
            grace_period_seconds: Some(1),
            ..DeleteParams::default()
        };
        api.delete("slow", &now).await?;
        wait_gone(&api, "slow").await?;
        assert!(
            !netns::exists(&topology.pod_netns(&pod.uid)),
            "pod namespace left behind"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn host_network_pod_answers_on_its_node_address() -> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    with_namespace(&client, "host-network", |ns| async move {
        ns.apply_yaml(&pod_yaml("hostnet", 0, true, 18080)).await?;
        let pod = wait_ready(&ns.api::<Pod>(), "app=hostnet", 1)
            .await?
            .remove(0);
        let node = topology.node(&pod.node)?;
        assert_eq!(pod.ips[0].to_string(), node.ipv4);
        let reply = Prober::from_netns(topology.outside_netns()?)
            .tcp(SocketAddr::new(pod.ips[0], 18080))
            .await?;
        assert_eq!(reply.pod, "hostnet");
        Ok(())
    })
    .await
}
