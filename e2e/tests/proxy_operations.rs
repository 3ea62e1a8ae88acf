//! svcnet-proxy as operators meet it: its health endpoints, the health check node port of Local
//! Services, a restart that keeps established connections, and other programs' tables left alone.
//! Its own test binary: it restarts a node's proxy.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use svcnet_e2e::kit::addons;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::kit::workload::{deployment, service};
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result, netns};

const TIMEOUT: Duration = Duration::from_secs(120);

fn ip(s: &str) -> Result<IpAddr> {
    s.parse().map_err(|e| Error::invalid(s, e))
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn health_check_node_port_answers_200_only_where_endpoints_are_local() -> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    with_namespace(&client, "health-check", |ns| async move {
        ns.apply_yaml(&deployment("lb", 1, false, 0)).await?;
        ns.apply_yaml(&service(
            "lb",
            "lb",
            &["type: LoadBalancer", "externalTrafficPolicy: Local"],
        ))
        .await?;
        let pod = wait_ready(&ns.api::<Pod>(), "app=lb", 1).await?.remove(0);
        wait_endpoints(&ns.api(), "lb", "1 endpoint", TIMEOUT, |e| {
            e.ready_count() == 1
        })
        .await?;
        let svc = ns.api::<Service>().get("lb").await?;
        let port = svc
            .spec
            .and_then(|s| s.health_check_node_port)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| Error::invalid("lb", "no healthCheckNodePort"))?;
        let outside = Prober::from_netns(topology.outside_netns()?);
        for node in topology.nodes() {
            let want = if node.name == pod.node { 200 } else { 503 };
            let target = SocketAddr::new(ip(&node.ipv4)?, port);
            let (status, body) = poll_for(
                &format!("{} answering {want}", node.name),
                TIMEOUT,
                || async {
                    outside
                        .http_get(target, "/healthz")
                        .await
                        .ok()
                        .filter(|(s, _)| *s == want)
                },
            )
            .await?;
            assert_eq!(status, want);
            assert!(
                body.contains(&format!("\"localEndpoints\":{}", u8::from(want == 200))),
                "{body}"
            );
        }
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn proxy_serves_healthz_and_metrics_on_its_node() -> Result<()> {
    let topology = Topology::local()?;
    // Not the first node: the restart test in this binary restarts that one's proxy meanwhile.
    let last = topology
        .nodes()
        .last()
        .ok_or_else(|| Error::invalid("cluster", "has no node"))?;
    let node = Prober::from_netns(last.netns.as_str());
    let target = SocketAddr::from(([127, 0, 0, 1], 10256));
    let (status, _) = node.http_get(target, "/healthz").await?;
    assert_eq!(status, 200);
    let (_, metrics) = node.http_get(target, "/metrics").await?;
    assert!(
        metrics.contains("svcnet_proxy_sync_duration_seconds"),
        "{metrics}"
    );
    // Endpoint changes since the proxy started (the pods of the tests) are timed from the slices'
    // last-change trigger time.
    poll_for("network programming latency observed", TIMEOUT, || async {
        let (_, metrics) = node.http_get(target, "/metrics").await.ok()?;
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("svcnet_proxy_network_programming_duration_seconds_count ")
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
            .filter(|n| *n > 0)
    })
    .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn restarting_the_proxy_keeps_established_connections_and_others_tables() -> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    let node = topology.nodes()[0].clone();
    // Another program's table, which the proxy must never touch.
    netns::exec(&node.netns, &["nft", "add table inet bystander"])?;
    netns::exec(&node.netns, &["nft", "add chain inet bystander keep"])?;
    let on = node.clone();
    let outcome = with_namespace(&client, "restart-proxy", |ns| async move {
        let node = on;
        ns.apply_yaml(&deployment("steady", 2, false, 0)).await?;
        ns.apply_yaml(&service("steady", "steady", &[])).await?;
        wait_ready(&ns.api::<Pod>(), "app=steady", 2).await?;
        wait_endpoints(&ns.api(), "steady", "2 endpoints", TIMEOUT, |e| {
            e.ready_count() == 2
        })
        .await?;
        let svc = ns.api::<Service>().get("steady").await?;
        let cluster_ip = ip(&svc.spec.and_then(|s| s.cluster_ip).unwrap_or_default())?;
        let prober = Prober::from_netns(node.netns.as_str());
        let target = SocketAddr::new(cluster_ip, 80);
        poll_for("the ClusterIP to answer", TIMEOUT, || async {
            prober.tcp(target).await.ok()
        })
        .await?;

        // An echo connection through the ClusterIP, open across the restart.
        let mut conn = prober.connect(target).await?;
        let mut echo = |text: &str| -> std::io::Result<String> {
            conn.write_all(text.as_bytes())?;
            let mut buf = vec![0u8; text.len()];
            conn.read_exact(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        };
        assert_eq!(echo("before\n")?, "before\n");
        addons::stop(&addons::proxy_name(&node.name))?;
        assert_eq!(
            echo("between\n")?,
            "between\n",
            "rules stay while the proxy is down"
        );
        addons::start_proxy(&node.name)?;
        let health = SocketAddr::from(([127, 0, 0, 1], 10256));
        poll_for("the new proxy to sync", TIMEOUT, || async {
            prober
                .http_get(health, "/healthz")
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
        })
        .await?;
        assert_eq!(
            echo("after\n")?,
            "after\n",
            "the full sync keeps established connections"
        );
        assert!(
            prober.tcp(target).await.is_ok(),
            "new connections work after the restart"
        );
        Ok(())
    })
    .await;
    let bystander = netns::exec(&node.netns, &["nft", "list table inet bystander"]);
    netns::exec(&node.netns, &["nft", "delete table inet bystander"])?;
    outcome?;
    assert!(
        bystander.is_ok_and(|t| t.contains("chain keep")),
        "another program's table was touched"
    );
    Ok(())
}
