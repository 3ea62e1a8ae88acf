//! svcnet-controller as it runs in production: killed in the middle of churn and restarted, it
//! converges with no duplicate and no lost endpoint; with two replicas, only the leader writes.
//! These tests stop and start the shared controller, so they live in their own test binary (test
//! binaries run one after another).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::Result;
use svcnet_e2e::kit::addons::{self, http_get};
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::workload::{deployment, service};
use svcnet_e2e::wait::poll_until;

const TIMEOUT: Duration = Duration::from_secs(120);
const MAIN: (&str, u16) = addons::MAIN_CONTROLLER;

fn reconciles(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|l| l.starts_with("svcnet_endpointslice_reconciles_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn controller_killed_mid_churn_converges_without_duplicates_or_losses() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "restart", |ns| async move {
        ns.apply_yaml(&deployment("churn", 20, false, 0)).await?;
        ns.apply_yaml(&service("churn", "churn", &[])).await?;
        let slices = ns.api::<EndpointSlice>();
        wait_endpoints(&slices, "churn", "20 endpoints", TIMEOUT, |e| {
            e.ready_count() == 20
        })
        .await?;

        let deployments = ns.api::<Deployment>();
        let scale = |n: u32| json!({ "spec": { "replicas": n } });
        deployments
            .patch("churn", &PatchParams::default(), &Patch::Merge(scale(60)))
            .await?;
        // Kill it while it is writing the scale-up.
        wait_endpoints(&slices, "churn", "the scale-up under way", TIMEOUT, |e| {
            e.endpoints.len() > 20
        })
        .await?;
        addons::stop(MAIN.0)?;
        deployments
            .patch("churn", &PatchParams::default(), &Patch::Merge(scale(45)))
            .await?;
        addons::start_controller(MAIN.0, MAIN.1)?;

        let eps = wait_endpoints(&slices, "churn", "45 ready endpoints", TIMEOUT, |e| {
            e.ready_count() == 45 && e.endpoints.len() == 45
        })
        .await?;
        assert!(
            eps.duplicates.is_empty(),
            "duplicates: {:?}",
            eps.duplicates
        );
        assert!(eps.largest_slice() <= 100);
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn with_two_replicas_only_the_leader_writes() -> Result<()> {
    let client = connect().await?;
    let second = ("svcnet-controller-2", 18081);
    addons::start_controller(second.0, second.1)?;
    let outcome = with_namespace(&client, "two-replicas", |ns| async move {
        poll_until("the second replica to serve /readyz", TIMEOUT, || async {
            http_get(second.1, "/readyz").is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
        })
        .await?;
        ns.apply_yaml(&deployment("ha", 2, false, 0)).await?;
        ns.apply_yaml(&service("ha", "ha", &[])).await?;
        wait_endpoints(&ns.api(), "ha", "2 endpoints", TIMEOUT, |e| {
            e.ready_count() == 2
        })
        .await?;
        let leader = http_get(MAIN.1, "/metrics")?;
        let follower = http_get(second.1, "/metrics")?;
        assert!(
            reconciles(&leader).unwrap_or(0) > 0,
            "the leader reconciles"
        );
        assert_eq!(
            reconciles(&follower),
            Some(0),
            "the follower never reconciles"
        );
        Ok(())
    })
    .await;
    addons::stop(second.0)?;
    outcome
}
