//! svcnet-proxy on every node of the local cluster, with real packets: ClusterIP (TCP and UDP) from
//! nodes and pods spreads over the endpoints, NodePort answers from outside, externalTrafficPolicy
//! Local keeps the client address, and a Service without endpoints refuses at once.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::{TestNamespace, with_namespace};
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::vantage::Vantages;
use svcnet_e2e::kit::workload::{deployment, service};
use svcnet_e2e::probe::Failure;
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(120);

async fn cluster_ip(ns: &TestNamespace, name: &str) -> Result<IpAddr> {
    let svc = ns.api::<Service>().get(name).await?;
    svc.spec
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| Error::invalid(name, "no clusterIP"))
}

async fn node_port(ns: &TestNamespace, name: &str) -> Result<u16> {
    let svc = ns.api::<Service>().get(name).await?;
    svc.spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| Error::invalid(name, "no nodePort"))
}

/// Asks `target` over TCP until `want` different pods have answered (or times out).
async fn pods_answering(
    prober: &Prober,
    target: SocketAddr,
    want: usize,
) -> Result<BTreeSet<String>> {
    let seen = std::sync::Mutex::new(BTreeSet::new());
    poll_for(
        &format!("{want} pods answering on {target}"),
        TIMEOUT,
        || async {
            // Rules follow the slices within a sync: retry until they are in place.
            let reply = prober.tcp(target).await.ok();
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.extend(reply.map(|r| r.pod));
            (seen.len() >= want).then(|| seen.clone())
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn cluster_ip_spreads_over_endpoints_from_nodes_and_pods_over_tcp_and_udp() -> Result<()> {
    let client = connect().await?;
    let vantages = Vantages::discover(&client).await?;
    with_namespace(&client, "clusterip", |ns| async move {
        ns.apply_yaml(&deployment("web", 3, true, 0)).await?;
        ns.apply_yaml(&service("web", "web", &[])).await?;
        let pods = wait_ready(&ns.api::<Pod>(), "app=web", 3).await?;
        wait_endpoints(&ns.api(), "web", "3 endpoints", TIMEOUT, |e| {
            e.ready_count() == 3
        })
        .await?;
        let ip = cluster_ip(&ns, "web").await?;
        let node = vantages.from_any_node()?;
        let all: BTreeSet<String> = pods.iter().map(|p| p.name.clone()).collect();
        assert_eq!(
            pods_answering(&node, SocketAddr::new(ip, 80), 3).await?,
            all
        );
        let from_pod = vantages.from_pod(&ns.name, &pods[0]);
        assert!(
            !pods_answering(&from_pod, SocketAddr::new(ip, 80), 1)
                .await?
                .is_empty()
        );
        let reply = node.udp(SocketAddr::new(ip, 81)).await?;
        assert!(all.contains(&reply.pod), "UDP answered by {}", reply.pod);
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn nodeport_answers_from_outside_and_local_policy_keeps_the_client_address() -> Result<()> {
    let client = connect().await?;
    let vantages = Vantages::discover(&client).await?;
    with_namespace(&client, "nodeport", |ns| async move {
        ns.apply_yaml(&deployment("np", 1, false, 0)).await?;
        ns.apply_yaml(&service("np", "np", &["type: NodePort"]))
            .await?;
        ns.apply_yaml(&service(
            "local",
            "np",
            &["type: NodePort", "externalTrafficPolicy: Local"],
        ))
        .await?;
        let pod = wait_ready(&ns.api::<Pod>(), "app=np", 1).await?.remove(0);
        wait_endpoints(&ns.api(), "local", "1 endpoint", TIMEOUT, |e| {
            e.ready_count() == 1
        })
        .await?;
        let outside = vantages.from_outside()?;
        let other_ip = vantages.other_node(&pod.node)?.v4()?;
        let own_ip = vantages.node(&pod.node)?.v4()?;

        // Policy Cluster: any node answers, the client address is masqueraded.
        let port = node_port(&ns, "np").await?;
        let seen = pods_answering(&outside, SocketAddr::new(other_ip, port), 1).await?;
        assert!(seen.contains(&pod.name));

        // Policy Local: the pod's node answers with the client's own address kept.
        let port = node_port(&ns, "local").await?;
        let reply = poll_for("the Local NodePort to answer", TIMEOUT, || async {
            outside.tcp(SocketAddr::new(own_ip, port)).await.ok()
        })
        .await?;
        assert_eq!(reply.client.ip(), vantages.outside_address(own_ip)?);
        // ...and a node without a local endpoint drops it.
        let quick = outside.clone().with_timeout(Duration::from_secs(1));
        assert!(quick.tcp(SocketAddr::new(other_ip, port)).await.is_err());
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn service_without_endpoints_refuses_at_once() -> Result<()> {
    let client = connect().await?;
    let vantages = Vantages::discover(&client).await?;
    with_namespace(&client, "no-endpoints", |ns| async move {
        ns.apply_yaml(&service("nobody", "nobody", &[])).await?;
        let ip = cluster_ip(&ns, "nobody").await?;
        let node = vantages.from_any_node()?;
        poll_for("connection refused", TIMEOUT, || async {
            match node.tcp(SocketAddr::new(ip, 80)).await {
                Err(Error::Probe {
                    failure: Failure::Refused,
                    ..
                }) => Some(()),
                _ => None,
            }
        })
        .await
    })
    .await
}
