//! Reading EndpointSlices the way tests compare them: every endpoint of a Service, by address, with
//! what matters (conditions, node, zone, hostname, target pod), whatever slice it sits in.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use crate::error::{Error, Result};
use crate::wait::poll_for;

pub const SVCNET_MANAGER: &str = "svcnet-controller";
pub const UPSTREAM_MANAGER: &str = "endpointslice-controller.k8s.io";

/// One endpoint, as a test compares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndpointView {
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
    pub zone: Option<String>,
    pub hostname: Option<String>,
    pub pod: Option<String>,
    /// Zone hints (`hints.forZones`).
    pub zone_hints: Vec<String>,
    /// `name/port/protocol` of the slice's ports.
    pub ports: Vec<String>,
}

/// A Service's endpoints from one manager's slices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceEndpoints {
    pub slices: Vec<EndpointSlice>,
    /// By address; an address listed twice (in two slices) is an error found by [`Self::duplicates`].
    pub endpoints: BTreeMap<String, EndpointView>,
    pub duplicates: Vec<String>,
}

impl ServiceEndpoints {
    pub fn ready_count(&self) -> usize {
        self.endpoints.values().filter(|e| e.ready).count()
    }

    pub fn largest_slice(&self) -> usize {
        self.slices
            .iter()
            .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
            .max()
            .unwrap_or(0)
    }
}

pub async fn endpoints(
    api: &Api<EndpointSlice>,
    service: &str,
    manager: &str,
) -> Result<ServiceEndpoints> {
    let selector = format!(
        "kubernetes.io/service-name={service},endpointslice.kubernetes.io/managed-by={manager}"
    );
    let slices = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    let mut out = ServiceEndpoints::default();
    for slice in &slices {
        let mut ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}/{}",
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or_default(),
                    p.protocol.clone().unwrap_or_default()
                )
            })
            .collect();
        ports.sort();
        for ep in slice.endpoints.iter().flatten() {
            let c = ep.conditions.clone().unwrap_or_default();
            let view = EndpointView {
                ready: c.ready.unwrap_or(false),
                serving: c.serving.unwrap_or(false),
                terminating: c.terminating.unwrap_or(false),
                node: ep.node_name.clone(),
                zone: ep.zone.clone(),
                hostname: ep.hostname.clone(),
                pod: ep.target_ref.as_ref().and_then(|r| r.name.clone()),
                zone_hints: ep
                    .hints
                    .as_ref()
                    .and_then(|h| h.for_zones.as_ref())
                    .map(|zones| zones.iter().map(|z| z.name.clone()).collect())
                    .unwrap_or_default(),
                ports: ports.clone(),
            };
            for address in &ep.addresses {
                if out
                    .endpoints
                    .insert(address.clone(), view.clone())
                    .is_some()
                {
                    out.duplicates.push(address.clone());
                }
            }
        }
    }
    out.slices = slices;
    Ok(out)
}

/// Waits until `check` holds for the Service's svcnet slices; returns them. On timeout the error
/// shows the last endpoints seen.
pub async fn wait_endpoints(
    api: &Api<EndpointSlice>,
    service: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&ServiceEndpoints) -> bool,
) -> Result<ServiceEndpoints> {
    let last = std::sync::Mutex::new(None);
    let result = poll_for(what, timeout, || async {
        let got = endpoints(api, service, SVCNET_MANAGER).await.ok()?;
        let ok = check(&got);
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(got.clone());
        ok.then_some(got)
    })
    .await;
    result.map_err(|e| {
        let last = last.lock().unwrap_or_else(|e| e.into_inner()).take();
        Error::invalid(
            e.to_string(),
            format!("last seen: {:?}", last.map(|l| l.endpoints)),
        )
    })
}
