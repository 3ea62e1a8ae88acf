//! svcnet's configuration resource on a real apiserver: good configuration is accepted, bad
//! configuration is refused at apply time with a message that names the problem.

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use svcnet_crds::SvcnetConfig;
use svcnet_e2e::Result;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::crds;

async fn apply(
    api: &Api<SvcnetConfig>,
    name: &str,
    spec: Value,
) -> std::result::Result<(), String> {
    let object = json!({
        "apiVersion": "svcnet.dev/v1alpha1", "kind": "SvcnetConfig",
        "metadata": { "name": name }, "spec": spec,
    });
    let params = PatchParams::apply("svcnet-e2e").force().dry_run();
    api.patch(name, &params, &Patch::Apply(object))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn bad_configuration_is_refused_at_apply_time_with_a_clear_message() -> Result<()> {
    let client = connect().await?;
    crds::install(&client).await?;
    let api: Api<SvcnetConfig> = Api::all(client);

    let good = json!({
        "serviceIPRanges": ["10.96.0.0/16", "fd00:10:96::/108"],
        "nodePortRange": { "first": 30000, "last": 32767 },
        "endpointSlices": { "maxEndpointsPerSlice": 100, "endpointUpdatesBatchPeriod": "500ms" },
        "proxy": { "clusterCIDRs": ["10.244.0.0/16"], "loadBalancing": "RoundRobin" },
        "webhook": { "failurePolicy": "Ignore" },
    });
    assert_eq!(apply(&api, "default", good.clone()).await, Ok(()));
    assert_eq!(
        apply(&api, "default", json!({})).await,
        Ok(()),
        "every field has a default"
    );

    let refused = [
        ("other-name", json!({}), "named 'default'"),
        (
            "default",
            json!({ "serviceIPRanges": ["10.96.0.0/33"] }),
            "must be a CIDR",
        ),
        (
            "default",
            json!({ "serviceIPRanges": ["10.0.0.0/8"] }),
            "at most 20 host bits",
        ),
        (
            "default",
            json!({ "serviceIPRanges": ["10.96.0.0/16", "10.97.0.0/16"] }),
            "one range per family",
        ),
        (
            "default",
            json!({ "nodePortRange": { "first": 30000, "last": 30010 } }),
            "at least 16 ports",
        ),
        (
            "default",
            json!({ "nodePortRange": { "first": 0, "last": 30010 } }),
            "nodePortRange.first",
        ),
        (
            "default",
            json!({ "endpointSlices": { "maxEndpointsPerSlice": 1001 } }),
            "maxEndpointsPerSlice",
        ),
        (
            "default",
            json!({ "endpointSlices": { "endpointUpdatesBatchPeriod": "soon" } }),
            "endpointUpdatesBatchPeriod",
        ),
        (
            "default",
            json!({ "serviceIPRanges": ["10.96.0.0/16"], "proxy": { "clusterCIDRs": ["10.96.0.0/12"] } }),
            "must not overlap",
        ),
    ];
    for (name, spec, message) in refused {
        let outcome = apply(&api, name, spec.clone()).await;
        let error = outcome.err().unwrap_or_default();
        assert!(
            error.contains(message),
            "{spec} as {name}: expected {message:?}, got {error:?}"
        );
    }
    // Dry runs only: nothing to clean up (and the other test here owns the real object).
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn max_endpoints_per_slice_from_the_configuration_applies_without_a_restart() -> Result<()> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use std::net::SocketAddr;
    use std::time::Duration;
    use svcnet_e2e::kit::namespace::with_namespace;
    use svcnet_e2e::kit::prober::Prober;
    use svcnet_e2e::kit::slices::wait_endpoints;
    use svcnet_e2e::kit::topology::Topology;
    use svcnet_e2e::kit::traffic::{answers, cluster_ip, pods_answering};
    use svcnet_e2e::kit::workload::{deployment, service};
    use svcnet_e2e::{netns, wait::poll_for};

    let client = connect().await?;
    let topology = Topology::local()?;
    let node = topology.first_node()?.clone();
    crds::install(&client).await?;
    let configs: Api<SvcnetConfig> = Api::all(client.clone());
    // The proxies' default load balancing too: both are followed live.
    let config = json!({
        "apiVersion": "svcnet.dev/v1alpha1", "kind": "SvcnetConfig",
        "metadata": { "name": "default" },
        "spec": {
            "endpointSlices": { "maxEndpointsPerSlice": 5 },
            "proxy": { "loadBalancing": "RoundRobin" },
        },
    });
    configs
        .patch(
            "default",
            &PatchParams::apply("svcnet-e2e").force(),
            &Patch::Apply(config),
        )
        .await?;
    // Wait until the controller has the new maximum: slices it writes before keep their size.
    svcnet_e2e::wait::poll_until(
        "the controller to use a maximum of 5",
        Duration::from_secs(60),
        || async {
            svcnet_e2e::kit::addons::http_get(18080, "/metrics")
                .is_ok_and(|m| m.contains("svcnet_endpointslice_max_endpoints_per_slice 5\n"))
        },
    )
    .await?;
    let outcome = with_namespace(&client, "config", |ns| async move {
        ns.apply_yaml(&deployment("small", 12, false, 0)).await?;
        ns.apply_yaml(&service("small", "small", &[])).await?;
        let slices: Api<EndpointSlice> = ns.api();
        let eps = wait_endpoints(
            &slices,
            "small",
            "12 endpoints in slices of 5",
            Duration::from_secs(120),
            |e| e.ready_count() == 12 && e.largest_slice() <= 5,
        )
        .await?;
        assert_eq!(eps.slices.len(), 3);

        // The Service has no annotation: the configuration's round-robin applies. Once the node's
        // rules take turns over all 12 pods, 24 connections in a row reach each one twice.
        let marker = format!("{}/small/tcp/http", ns.name);
        poll_for(
            "round-robin over 12 pods on the node",
            Duration::from_secs(120),
            || async {
                let table = netns::exec(&node.netns, &["nft", "list table ip svcnet"]).ok()?;
                table
                    .lines()
                    .any(|l| l.contains("numgen inc mod 12"))
                    .then_some(())
                    .filter(|_| table.contains(&marker))
            },
        )
        .await?;
        let target = SocketAddr::new(cluster_ip(&ns, "small").await?, 80);
        let prober = Prober::from_netns(node.netns.as_str());
        pods_answering(&prober, target, 12).await?;
        let tally = answers(&prober, target, 24).await?;
        assert!(
            tally.len() == 12 && tally.values().all(|n| *n == 2),
            "round-robin over 12 pods, 24 connections: {tally:?}"
        );
        Ok(())
    })
    .await;
    configs.delete("default", &DeleteParams::default()).await?;
    outcome
}
