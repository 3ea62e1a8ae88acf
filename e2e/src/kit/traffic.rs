//! What a Service looks like from a client: its addresses, and which pods answer it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;

use crate::kit::namespace::TestNamespace;
use crate::kit::prober::Prober;
use crate::wait::poll_for;
use crate::{Error, Result};

/// Long enough for a proxy sync on a busy 2-core machine, with room to spare.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The Service's (primary) ClusterIP.
pub async fn cluster_ip(ns: &TestNamespace, name: &str) -> Result<IpAddr> {
    let svc = ns.api::<Service>().get(name).await?;
    svc.spec
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| Error::invalid(name, "no clusterIP"))
}

/// The NodePort of the Service's first port.
pub async fn node_port(ns: &TestNamespace, name: &str) -> Result<u16> {
    let svc = ns.api::<Service>().get(name).await?;
    svc.spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| Error::invalid(name, "no nodePort"))
}

/// Asks `target` over TCP until `want` different pods have answered (or times out).
pub async fn pods_answering(
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

/// Opens `count` connections to `target` one after the other: how many each pod answered.
pub async fn answers(
    prober: &Prober,
    target: SocketAddr,
    count: usize,
) -> Result<BTreeMap<String, usize>> {
    let mut tally = BTreeMap::new();
    for _ in 0..count {
        let reply = prober.tcp(target).await?;
        *tally.entry(reply.pod).or_insert(0) += 1;
    }
    Ok(tally)
}

/// Waits until `in_a_row` connections one after the other are all answered by one pod: the
/// rules no longer lead anywhere else. Returns that pod.
pub async fn only_one_pod_answering(
    prober: &Prober,
    target: SocketAddr,
    in_a_row: usize,
) -> Result<String> {
    poll_for(
        &format!("{in_a_row} answers in a row from one pod on {target}"),
        TIMEOUT,
        || async {
            let tally = answers(prober, target, in_a_row).await.ok()?;
            let mut pods = tally.into_keys();
            match (pods.next(), pods.next()) {
                (Some(pod), None) => Some(pod),
                _ => None,
            }
        },
    )
    .await
}
