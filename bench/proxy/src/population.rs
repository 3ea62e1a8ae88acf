//! The benchmark's Services: selector-less ClusterIP Services, each with one EndpointSlice of ready
//! endpoints written by the benchmark (as a user or another controller would), so both proxies read
//! exactly the same objects and no controller changes them underneath.

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "proxy-bench";
/// Requests in flight while creating.
const CONCURRENCY: usize = 32;

fn service_name(i: usize) -> String {
    format!("bench-{i:05}")
}

fn slice_name(i: usize) -> String {
    format!("bench-{i:05}-a")
}

/// Endpoint address number `k` (unique per endpoint): 10.128.0.0/9 holds 8M of them.
fn address(k: usize) -> String {
    let k = k + 1;
    format!("10.{}.{}.{}", 128 + (k >> 16), (k >> 8) & 255, k & 255)
}

/// The endpoints of Service `i`; with `replaced`, the first one has address number `replaced`. Without
/// `node` they name no node, as a user or another controller may write them.
pub fn endpoints(
    i: usize,
    per_service: usize,
    replaced: Option<usize>,
    node: Option<&str>,
) -> Value {
    let list: Vec<Value> = (0..per_service)
        .map(|j| {
            let k = match (j, replaced) {
                (0, Some(fresh)) => fresh,
                _ => i * per_service + j,
            };
            let mut endpoint =
                json!({ "addresses": [address(k)], "conditions": { "ready": true } });
            if let Some(node) = node {
                endpoint["nodeName"] = json!(node);
            }
            endpoint
        })
        .collect();
    Value::Array(list)
}

/// Creates Services `from..to` (and their slices); ones that already exist are kept.
pub async fn create(
    client: &kube::Client,
    from: usize,
    to: usize,
    per_service: usize,
) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?;
    tolerate_exists(namespaces.create(&PostParams::default(), &ns).await)?;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    futures::stream::iter(from..to)
        .map(|i| {
            let services = services.clone();
            let slices = slices.clone();
            async move { create_one(&services, &slices, i, per_service).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Service `i` (one TCP port, no selector); the apiserver picks its ClusterIP unless one is given.
pub fn service(i: usize, cluster_ip: Option<std::net::Ipv4Addr>) -> Result<Service> {
    let mut spec =
        json!({ "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }] });
    if let Some(ip) = cluster_ip {
        spec["clusterIP"] = json!(ip.to_string());
        spec["clusterIPs"] = json!([ip.to_string()]);
    }
    Ok(serde_json::from_value(json!({
        "metadata": { "name": service_name(i), "namespace": NAMESPACE },
        "spec": spec,
    }))?)
}

/// The EndpointSlice of Service `i` (see [`endpoints`]).
pub fn slice(
    i: usize,
    per_service: usize,
    replaced: Option<usize>,
    node: Option<&str>,
) -> Result<EndpointSlice> {
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": slice_name(i),
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": service_name(i),
                "endpointslice.kubernetes.io/managed-by": "bench.svcnet.dev",
            }
        },
        "addressType": "IPv4",
        "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
        "endpoints": endpoints(i, per_service, replaced, node),
    }))?)
}

async fn create_one(
    services: &Api<Service>,
    slices: &Api<EndpointSlice>,
    i: usize,
    per_service: usize,
) -> Result<()> {
    let name = service_name(i);
    tolerate_exists(
        services
            .create(&PostParams::default(), &service(i, None)?)
            .await,
    )
    .with_context(|| format!("Service {name}"))?;
    tolerate_exists(
        slices
            .create(&PostParams::default(), &slice(i, per_service, None, None)?)
            .await,
    )
    .with_context(|| format!("EndpointSlice of {name}"))?;
    Ok(())
}

/// Replaces the first endpoint of Service `i` with address number `fresh`.
pub async fn change_one(
    client: &kube::Client,
    i: usize,
    per_service: usize,
    fresh: usize,
) -> Result<()> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = json!({ "endpoints": endpoints(i, per_service, Some(fresh), None) });
    slices
        .patch(
            &slice_name(i),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .with_context(|| format!("EndpointSlice of Service {i}"))?;
    Ok(())
}

fn tolerate_exists<T>(result: kube::Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unique_and_inside_10_128_0_0_9() {
        assert_eq!(address(0), "10.128.0.1");
        assert_eq!(address(65535), "10.129.0.0");
        assert_eq!(address(299_999), "10.132.147.224");
        let all: std::collections::BTreeSet<String> = (0..70_000).map(address).collect();
        assert_eq!(all.len(), 70_000);
    }

    #[test]
    fn a_change_replaces_only_the_first_endpoint() {
        let before = endpoints(3, 10, None, None);
        let after = endpoints(3, 10, Some(1_000_000), None);
        let (before, after) = (before.as_array().unwrap(), after.as_array().unwrap());
        assert_eq!(before.len(), 10);
        assert_ne!(before[0], after[0]);
        assert_eq!(before[1..], after[1..]);
    }
}
