//! The same workload's EndpointSlices from svcnet-controller and from upstream
//! kube-controller-manager's endpointslice-controller (run beside it for this test) must agree on
//! every endpoint: address, conditions, node, zone, hostname, target pod and ports. Slice names and
//! packing may differ. Its own test binary: the upstream controller writes slices in every namespace
//! while it runs.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::agent::pods::HEALTHY_ANNOTATION;
use svcnet_e2e::kit::addons;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::slices::{SVCNET_MANAGER, UPSTREAM_MANAGER, endpoints};
use svcnet_e2e::kit::workload::{deployment, service};
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result};

const UPSTREAM: &str = "upstream-endpointslice";

async fn agree(api: &Api<EndpointSlice>, services: &[&str]) -> Result<()> {
    let last = std::sync::Mutex::new(String::new());
    let result = poll_for(
        "both controllers to agree",
        Duration::from_secs(120),
        || {
            let last = &last;
            async move {
                for svc in services {
                    let ours = endpoints(api, svc, SVCNET_MANAGER).await.ok()?;
                    let theirs = endpoints(api, svc, UPSTREAM_MANAGER).await.ok()?;
                    if ours.endpoints != theirs.endpoints || theirs.slices.is_empty() {
                        *last.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                            "{svc}:\n  svcnet:   {:?}\n  upstream: {:?}",
                            ours.endpoints, theirs.endpoints
                        );
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await;
    let last = last.into_inner().unwrap_or_else(|e| e.into_inner());
    result.map_err(|e| Error::invalid(e.to_string(), last))
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn svcnet_and_upstream_controllers_agree_on_every_endpoint() -> Result<()> {
    let client = connect().await?;
    addons::start_upstream_endpointslice(UPSTREAM)?;
    let outcome = with_namespace(&client, "differential", |ns| async move {
        ns.apply_yaml(&deployment("web", 4, true, 30)).await?;
        ns.apply_yaml(&service("plain", "web", &[])).await?;
        ns.apply_yaml(&service(
            "dual",
            "web",
            &["ipFamilyPolicy: PreferDualStack"],
        ))
        .await?;
        ns.apply_yaml(&service("headless", "web", &["clusterIP: None"]))
            .await?;
        ns.apply_yaml(&service(
            "publish",
            "web",
            &["publishNotReadyAddresses: true"],
        ))
        .await?;
        ns.apply_yaml(&service(
            "close",
            "web",
            &["trafficDistribution: PreferClose"],
        ))
        .await?;
        ns.apply_yaml(&service("nobody", "nobody", &[])).await?;
        let all = ["plain", "dual", "headless", "publish", "close", "nobody"];
        let pods = wait_ready(&ns.api::<Pod>(), "app=web", 4).await?;
        let slices = ns.api::<EndpointSlice>();
        agree(&slices, &all).await?;

        // One pod not ready, one terminating: conditions must still agree.
        let unhealthy = json!({ "metadata": { "annotations": { HEALTHY_ANNOTATION: "false" } } });
        ns.api::<Pod>()
            .patch(
                &pods[0].name,
                &PatchParams::default(),
                &Patch::Merge(unhealthy),
            )
            .await?;
        ns.api::<Pod>()
            .delete(&pods[1].name, &DeleteParams::default())
            .await?;
        agree(&slices, &all).await
    })
    .await;
    addons::stop(UPSTREAM)?;
    outcome
}
