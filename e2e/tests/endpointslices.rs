//! svcnet-controller's EndpointSlices on the local cluster: they follow scale, readiness and
//! termination, carry hostnames for headless Services, cover both families, drop a relabelled pod,
//! and go when the selector goes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::agent::pods::HEALTHY_ANNOTATION;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::workload::{deployment, pod, scale, service};
use svcnet_e2e::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn slices_follow_a_deployment_scaled_0_to_250_to_3() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "scale", |ns| async move {
        ns.apply_yaml(&deployment("many", 0, false, 0)).await?;
        ns.apply_yaml(&service("many", "many", &[])).await?;
        let slices = ns.api::<EndpointSlice>();
        wait_endpoints(&slices, "many", "a placeholder slice", TIMEOUT, |e| {
            e.slices.len() == 1 && e.endpoints.is_empty()
        })
        .await?;

        scale(&ns, "many", 250).await?;
        let eps = wait_endpoints(&slices, "many", "250 ready endpoints", TIMEOUT, |e| {
            e.ready_count() == 250
        })
        .await?;
        assert!(
            eps.duplicates.is_empty(),
            "duplicates: {:?}",
            eps.duplicates
        );
        assert_eq!(eps.slices.len(), 3, "250 endpoints fit 3 slices of 100");
        assert!(eps.largest_slice() <= 100);

        scale(&ns, "many", 3).await?;
        let eps = wait_endpoints(&slices, "many", "3 endpoints", TIMEOUT, |e| {
            e.endpoints.len() == 3 && e.ready_count() == 3
        })
        .await?;
        assert!(eps.duplicates.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn a_rolling_update_ends_with_exactly_the_new_pods() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "rolling", |ns| async move {
        ns.apply_yaml(&deployment("web", 3, true, 0)).await?;
        ns.apply_yaml(&service("web", "web", &[])).await?;
        let slices = ns.api::<EndpointSlice>();
        let before = wait_endpoints(&slices, "web", "3 ready endpoints", TIMEOUT, |e| {
            e.ready_count() == 3
        })
        .await?;
        let old: Vec<String> = before.endpoints.values().filter_map(|v| v.pod.clone()).collect();
        // A new pod template: the Deployment replaces every pod, a few at a time.
        ns.api::<Deployment>()
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({
                    "spec": { "template": { "metadata": { "annotations": { "e2e.svcnet.dev/rev": "2" } } } }
                })),
            )
            .await?;
        let after = wait_endpoints(&slices, "web", "3 ready endpoints, all new pods", TIMEOUT, |e| {
            e.endpoints.len() == 3
                && e.ready_count() == 3
                && e.endpoints
                    .values()
                    .all(|v| v.pod.as_ref().is_some_and(|p| !old.contains(p)))
        })
        .await?;
        assert!(after.duplicates.is_empty(), "duplicates: {:?}", after.duplicates);
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn conditions_follow_readiness_and_graceful_termination() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "conditions", |ns| async move {
        ns.apply_yaml(&deployment("web", 3, true, 30)).await?;
        ns.apply_yaml(&service("web", "web", &[])).await?;
        let pods = wait_ready(&ns.api::<Pod>(), "app=web", 3).await?;
        let slices = ns.api::<EndpointSlice>();
        wait_endpoints(&slices, "web", "3 ready endpoints", TIMEOUT, |e| {
            e.ready_count() == 3
        })
        .await?;
        let victim = pods[0].name.clone();
        let ip = pods[0].ips[0].to_string();
        let is_victim = |e: &svcnet_e2e::kit::slices::ServiceEndpoints, f: &dyn Fn(&svcnet_e2e::kit::slices::EndpointView) -> bool| {
            e.endpoints.get(&ip).is_some_and(f)
        };

        let annotate = |healthy: bool| {
            json!({ "metadata": { "annotations": { HEALTHY_ANNOTATION: healthy.to_string() } } })
        };
        let pods_api = ns.api::<Pod>();
        pods_api
            .patch(&victim, &PatchParams::default(), &Patch::Merge(annotate(false)))
            .await?;
        wait_endpoints(&slices, "web", "the unhealthy pod not ready", TIMEOUT, |e| {
            is_victim(e, &|v| !v.ready && !v.serving && !v.terminating)
        })
        .await?;
        pods_api
            .patch(&victim, &PatchParams::default(), &Patch::Merge(annotate(true)))
            .await?;
        wait_endpoints(&slices, "web", "the pod ready again", TIMEOUT, |e| {
            is_victim(e, &|v| v.ready && v.serving)
        })
        .await?;
        // The slice that took the flip says when it happened: the pod's Ready transition.
        let flipped = pods_api
            .get(&victim)
            .await?
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_transition_time)
            .ok_or_else(|| Error::invalid(&victim, "no Ready transition time"))?;
        let listed = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await?;
        let holding = listed
            .items
            .iter()
            .find(|s| {
                s.endpoints
                    .iter()
                    .flatten()
                    .any(|e| e.addresses.contains(&ip))
            })
            .ok_or_else(|| Error::invalid(&victim, "in no slice"))?;
        let trigger = holding
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("endpoints.kubernetes.io/last-change-trigger-time"))
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        assert_eq!(trigger, Some(flipped.0));

        pods_api.delete(&victim, &DeleteParams::default()).await?;
        let eps = wait_endpoints(&slices, "web", "the deleted pod terminating", TIMEOUT, |e| {
            is_victim(e, &|v| !v.ready && v.serving && v.terminating)
        })
        .await?;
        assert_eq!(eps.endpoints[&ip].pod.as_deref(), Some(victim.as_str()));
        let quick = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        pods_api.delete(&victim, &quick).await?;
        // By pod name: the replacement may get the freed address.
        wait_endpoints(&slices, "web", "the deleted pod gone, 3 ready", TIMEOUT, |e| {
            e.endpoints
                .values()
                .all(|v| v.pod.as_deref() != Some(victim.as_str()))
                && e.ready_count() == 3
        })
        .await?;
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn headless_service_endpoints_carry_pod_hostnames() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "headless", |ns| async move {
        for host in ["h1", "h2"] {
            let hostname = format!("hostname: {host}");
            ns.apply_yaml(&pod(host, "hl", &[&hostname, "subdomain: hl"]))
                .await?;
        }
        ns.apply_yaml(&service("hl", "hl", &["clusterIP: None"]))
            .await?;
        let eps = wait_endpoints(
            &ns.api(),
            "hl",
            "2 endpoints with hostnames",
            TIMEOUT,
            |e| {
                let mut hosts: Vec<_> = e
                    .endpoints
                    .values()
                    .filter_map(|v| v.hostname.clone())
                    .collect();
                hosts.sort();
                hosts == ["h1", "h2"]
            },
        )
        .await?;
        let headless = eps.slices.iter().all(|s| {
            s.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("service.kubernetes.io/headless"))
        });
        assert!(headless, "headless label on every slice");
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn dual_stack_service_gets_one_slice_set_per_family() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "dual-stack", |ns| async move {
        ns.apply_yaml(&deployment("ds", 3, false, 0)).await?;
        ns.apply_yaml(&service("ds", "ds", &["ipFamilyPolicy: RequireDualStack"]))
            .await?;
        let eps = wait_endpoints(&ns.api(), "ds", "3 endpoints per family", TIMEOUT, |e| {
            e.ready_count() == 6
        })
        .await?;
        let mut families: Vec<&str> = eps.slices.iter().map(|s| s.address_type.as_str()).collect();
        families.sort();
        assert_eq!(families, ["IPv4", "IPv6"]);
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn removing_the_selector_deletes_our_slices() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "selector", |ns| async move {
        ns.apply_yaml(&deployment("sel", 1, false, 0)).await?;
        ns.apply_yaml(&service("sel", "sel", &[])).await?;
        let slices = ns.api::<EndpointSlice>();
        wait_endpoints(&slices, "sel", "1 endpoint", TIMEOUT, |e| {
            e.ready_count() == 1
        })
        .await?;
        let patch = json!({ "spec": { "selector": null } });
        ns.api::<Service>()
            .patch("sel", &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        wait_endpoints(&slices, "sel", "no svcnet slices", TIMEOUT, |e| {
            e.slices.is_empty()
        })
        .await?;
        // Slices of other managers (a user's, here) are left alone.
        let user_slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": { "name": "sel-manual", "labels": { "kubernetes.io/service-name": "sel" } },
            "addressType": "IPv4",
            "endpoints": [ { "addresses": ["10.244.9.9"] } ],
        });
        ns.apply_yaml(&serde_json::to_string(&user_slice).map_err(|e| Error::invalid("json", e))?)
            .await?;
        // Put the selector back: once our slice is back, the Service was reconciled again.
        let patch = json!({ "spec": { "selector": { "app": "sel" } } });
        ns.api::<Service>()
            .patch("sel", &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        wait_endpoints(&slices, "sel", "our slice back", TIMEOUT, |e| {
            e.ready_count() == 1
        })
        .await?;
        let all = slices.list(&ListParams::default()).await?;
        assert!(
            all.items
                .iter()
                .any(|s| s.metadata.name.as_deref() == Some("sel-manual"))
        );
        Ok(())
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn a_relabelled_pod_leaves_its_old_service() -> Result<()> {
    let client = connect().await?;
    with_namespace(&client, "relabel", |ns| async move {
        // A bare pod: no ReplicaSet starts another one, whose arrival would replan the Service anyway.
        ns.apply_yaml(&pod("rl", "rl", &[])).await?;
        ns.apply_yaml(&service("rl", "rl", &[])).await?;
        let slices = ns.api::<EndpointSlice>();
        wait_endpoints(&slices, "rl", "the pod", TIMEOUT, |e| e.ready_count() == 1).await?;
        // Its new labels match no Service: only its labels before the change (still in the
        // controller's pod cache as it applies the change) say which Service to plan again.
        let patch = json!({ "metadata": { "labels": { "app": "elsewhere" } } });
        ns.api::<Pod>()
            .patch("rl", &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        wait_endpoints(&slices, "rl", "the relabelled pod gone", TIMEOUT, |e| {
            e.endpoints.is_empty()
        })
        .await?;
        Ok(())
    })
    .await
}
