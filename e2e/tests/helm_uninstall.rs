//! `helm uninstall` leaves nothing of svcnet behind: no pods or processes, no objects of the release
//! (the webhook's Secret included), and no `svcnet` nftables table on any node (the proxies remove
//! their tables when they stop because their DaemonSet is gone). Run by scripts/e2e.sh at the end of the
//! Helm phase (it uninstalls), with SVCNET_INSTALL=helm.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};
use svcnet_e2e::Result;
use svcnet_e2e::inventory::StateDir;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::install::{HELM_NAMESPACE, HELM_RELEASE, with_helm};
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::wait::poll_until;

const TIMEOUT: Duration = Duration::from_secs(120);

fn svcnet_tables(netns: &str) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "list", "tables"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(" svcnet"))
        .collect::<Vec<_>>()
        .join(", "))
}

#[tokio::test]
#[ignore = "uninstalls svcnet: run by `make test-e2e` at the end of the Helm phase"]
async fn helm_uninstall_leaves_nothing_behind() -> Result<()> {
    assert!(
        with_helm(),
        "run with SVCNET_INSTALL=helm, after scripts/install-svcnet.sh"
    );
    let client = connect().await?;
    let topology = Topology::local()?;
    for node in topology.nodes() {
        assert!(
            !svcnet_tables(&node.netns)?.is_empty(),
            "{}: svcnet's tables are there before",
            node.name
        );
    }
    let status = Command::new(svcnet_e2e::kit::install::tools_dir()?.join("helm"))
        .args([
            "uninstall",
            HELM_RELEASE,
            "--namespace",
            HELM_NAMESPACE,
            "--wait",
        ])
        .env("KUBECONFIG", StateDir::from_env().kubeconfig())
        .status()?;
    assert!(status.success(), "helm uninstall failed");

    let pods: Api<Pod> = Api::namespaced(client.clone(), HELM_NAMESPACE);
    poll_until("svcnet's pods gone", TIMEOUT, || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
        }
    })
    .await?;
    let state = StateDir::from_env();
    poll_until("svcnet's processes gone", TIMEOUT, || {
        let state = state.clone();
        async move { state.pod_processes().iter().all(|p| !p.is_alive()) }
    })
    .await?;
    for node in topology.nodes() {
        let left = svcnet_tables(&node.netns)?;
        assert!(left.is_empty(), "{}: {left} left behind", node.name);
    }
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    assert!(webhooks.get_opt(HELM_RELEASE).await?.is_none());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), HELM_NAMESPACE);
    let left: Vec<String> = secrets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .filter(|n| n.starts_with(HELM_RELEASE))
        .collect();
    assert!(left.is_empty(), "Secrets left behind: {left:?}");
    Ok(())
}
