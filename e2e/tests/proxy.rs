//! svcnet-proxy on every node of the local cluster, with real packets: ClusterIP (TCP and UDP) from
//! nodes and pods spreads over the endpoints (evenly, within statistical bounds) and follows scale,
//! a pod reaches itself through its Service, round-robin and source-hash balancing, NodePort answers
//! from outside, externalTrafficPolicy Local keeps the client address, and a Service without
//! endpoints refuses at once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::traffic::{
    answers, cluster_ip, node_port, only_one_pod_answering, pods_answering,
};
use svcnet_e2e::kit::vantage::Vantages;
use svcnet_e2e::kit::workload::{deployment, scale, service};
use svcnet_e2e::probe::Failure;
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(120);

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

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn traffic_spreads_evenly_follows_scale_and_a_pod_reaches_itself() -> Result<()> {
    let client = connect().await?;
    let vantages = Vantages::discover(&client).await?;
    with_namespace(&client, "spread", |ns| async move {
        ns.apply_yaml(&deployment("spread", 3, true, 0)).await?;
        ns.apply_yaml(&service("spread", "spread", &[])).await?;
        let pods = wait_ready(&ns.api::<Pod>(), "app=spread", 3).await?;
        wait_endpoints(&ns.api(), "spread", "3 endpoints", TIMEOUT, |e| {
            e.ready_count() == 3
        })
        .await?;
        let target = SocketAddr::new(cluster_ip(&ns, "spread").await?, 80);
        let node = vantages.from_any_node()?;
        pods_answering(&node, target, 3).await?;

        // Uniform random: 240 connections give each pod 80 on average, with a standard deviation
        // of 7.3; 40..=120 is more than 5 of them either side (a false alarm about once in 10^7).
        let tally = answers(&node, target, 240).await?;
        let all: BTreeSet<String> = pods.iter().map(|p| p.name.clone()).collect();
        assert_eq!(tally.keys().cloned().collect::<BTreeSet<_>>(), all);
        for (pod, count) in &tally {
            assert!(
                (40..=120).contains(count),
                "{pod} answered {count} of 240: {tally:?}"
            );
        }

        // Up: new pods take connections; down to one: nothing else answers any more.
        scale(&ns, "spread", 5).await?;
        wait_endpoints(&ns.api(), "spread", "5 endpoints", TIMEOUT, |e| {
            e.ready_count() == 5
        })
        .await?;
        pods_answering(&node, target, 5).await?;
        scale(&ns, "spread", 1).await?;
        wait_endpoints(&ns.api(), "spread", "1 endpoint", TIMEOUT, |e| {
            e.ready_count() == 1
        })
        .await?;
        let last = only_one_pod_answering(&node, target, 20).await?;

        // Hairpin: the last pod reaches itself through the ClusterIP, and sees another source
        // address than its own (else it would answer itself directly and the connection fail).
        let last = wait_ready(&ns.api::<Pod>(), "app=spread", 1)
            .await?
            .into_iter()
            .find(|p| p.name == last)
            .ok_or_else(|| Error::invalid(&last, "not the ready pod"))?;
        let reply = vantages.from_pod(&ns.name, &last).tcp(target).await?;
        assert_eq!(reply.pod, last.name);
        assert!(
            !last.ips.contains(&reply.client.ip()),
            "the pod saw its own address {} as the client",
            reply.client
        );
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn round_robin_and_source_hash_from_the_annotation() -> Result<()> {
    let client = connect().await?;
    let vantages = Vantages::discover(&client).await?;
    with_namespace(&client, "balancing", |ns| async move {
        ns.apply_yaml(&deployment("lb", 3, true, 0)).await?;
        ns.apply_yaml(&service("rr", "lb", &[])).await?;
        ns.apply_yaml(&service("hash", "lb", &[])).await?;
        for (name, mode) in [("rr", "round-robin"), ("hash", "source-hash")] {
            let patch = json!({ "metadata": { "annotations": {
                "svcnet.dev/load-balancing": mode } } });
            ns.api::<Service>()
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        wait_ready(&ns.api::<Pod>(), "app=lb", 3).await?;
        for name in ["rr", "hash"] {
            wait_endpoints(&ns.api(), name, "3 endpoints", TIMEOUT, |e| {
                e.ready_count() == 3
            })
            .await?;
        }
        let node = vantages.from_any_node()?;

        // Round-robin: once every pod has answered, the rules are final, and any 3 connections
        // in a row (nobody else talks to this Service) reach the 3 pods once each.
        let rr = SocketAddr::new(cluster_ip(&ns, "rr").await?, 80);
        pods_answering(&node, rr, 3).await?;
        let tally = answers(&node, rr, 9).await?;
        assert!(
            tally.len() == 3 && tally.values().all(|n| *n == 3),
            "round-robin over 3 pods, 9 connections: {tally:?}"
        );

        // Source hash: one client address always reaches the same pod (20 in a row from one of
        // 3 pods by chance: about once in 10^9).
        let hash = SocketAddr::new(cluster_ip(&ns, "hash").await?, 80);
        only_one_pod_answering(&node, hash, 20).await?;
        Ok(())
    })
    .await
}
