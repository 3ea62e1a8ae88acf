//! `sessionAffinity: ClientIP` with real packets: a client sticks to one pod, and once
//! `timeoutSeconds` pass without a new connection it is balanced afresh. Local cluster only: to wait
//! for the expiry as a condition rather than a sleep, it reads the node's affinity sets.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::kit::traffic::{cluster_ip, only_one_pod_answering};
use svcnet_e2e::kit::workload::{deployment, service};
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Result, netns};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The Service's affinity sets on a node (one per endpoint): how many, and how many hold a client.
fn affinity_sets(node_netns: &str, namespace: &str, service: &str) -> Result<(usize, usize)> {
    let listing = netns::exec(node_netns, &["nft", "list sets ip"])?;
    let marker = format!("-{namespace}/{service}/tcp/http__");
    let (mut sets, mut holding) = (0, 0);
    let mut ours = false;
    for line in listing.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("set ") {
            ours = name.starts_with("affinity-") && name.contains(&marker);
            sets += usize::from(ours);
        } else if ours && line.starts_with("elements = ") {
            holding += 1;
        }
    }
    Ok((sets, holding))
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn client_ip_affinity_sticks_then_expires() -> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    let node = topology.first_node()?.clone();
    with_namespace(&client, "affinity", |ns| async move {
        ns.apply_yaml(&deployment("sticky", 3, true, 0)).await?;
        ns.apply_yaml(&service(
            "sticky",
            "sticky",
            &[
                "sessionAffinity: ClientIP",
                "sessionAffinityConfig: { clientIP: { timeoutSeconds: 2 } }",
            ],
        ))
        .await?;
        wait_ready(&ns.api::<Pod>(), "app=sticky", 3).await?;
        wait_endpoints(&ns.api(), "sticky", "3 endpoints", TIMEOUT, |e| {
            e.ready_count() == 3
        })
        .await?;
        // The node's rules lead to all 3 pods before "sticks" means anything.
        poll_for("3 affinity sets on the node", TIMEOUT, || async {
            let (sets, _) = affinity_sets(&node.netns, &ns.name, "sticky").ok()?;
            (sets == 3).then_some(())
        })
        .await?;
        let target = std::net::SocketAddr::new(cluster_ip(&ns, "sticky").await?, 80);
        let prober = Prober::from_netns(node.netns.as_str());

        // Sticks: 20 connections in a row reach one pod (by chance: about once in 10^9).
        let first = only_one_pod_answering(&prober, target, 20).await?;

        // Expires: once no set holds the client any more, a new connection is balanced afresh;
        // each try reaches another pod with probability 2/3.
        let other = poll_for("another pod once affinity expired", TIMEOUT, || async {
            let (_, holding) = affinity_sets(&node.netns, &ns.name, "sticky").ok()?;
            if holding > 0 {
                return None;
            }
            let reply = prober.tcp(target).await.ok()?;
            (reply.pod != first).then_some(reply.pod)
        })
        .await?;
        assert_ne!(other, first);
        Ok(())
    })
    .await
}
