//! The EndpointSlice planner: plain data in, a [`SlicePlan`] out, no I/O.
//!
//! It follows kube-controller-manager's EndpointSlice reconciler (`k8s.io/endpointslice`,
//! `reconciler.go`): one set of slices per address family, slices grouped by resolved port set,
//! minimal churn (see `docs/endpointslice-planner.md`).

mod desired;
mod family;
mod identity;
mod options;
mod pod_view;
mod port_map;
mod slice_meta;
mod slice_plan;
pub mod trigger_time;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

pub use desired::AddressFamily;
pub use options::{
    DEFAULT_MANAGER, DEFAULT_MAX_ENDPOINTS_PER_SLICE, MAX_ENDPOINTS_PER_SLICE_LIMIT, Options,
};
pub use pod_view::{NamedPort, PodView, parse_ip_sloppy};
pub use slice_meta::{LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
pub use slice_plan::{SlicePlan, SliceRef};

use desired::{ServiceFacts, service_families};
use family::{FamilyInputs, endpoint_count, reconcile_family};
use slice_meta::{SliceTemplate, is_ours};

/// The Node label holding the zone.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// The entry for `node` in the planner's `node_zones` map: its name and zone label (if any).
pub fn node_zone(node: &Node) -> (String, Option<String>) {
    let zone = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
        .filter(|z| !z.is_empty())
        .cloned();
    (node.metadata.name.clone().unwrap_or_default(), zone)
}

/// Whether the planner keeps slices for `service`: it needs a non-empty selector and a type
/// other than `ExternalName`. (An empty selector is the same as none: the apiserver stores it as
/// absent.)
pub fn selects_pods(service: &Service) -> bool {
    let Some(spec) = service.spec.as_ref() else {
        return false;
    };
    spec.type_.as_deref() != Some("ExternalName")
        && spec.selector.as_ref().is_some_and(|s| !s.is_empty())
}

/// Whether any of `slices` has an endpoint ready for traffic (an unset `ready` reads as true).
pub fn has_ready_endpoint(slices: &[EndpointSlice]) -> bool {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .any(|e| {
            e.conditions
                .as_ref()
                .is_none_or(|c| c.ready.unwrap_or(true))
        })
}

/// Plan the EndpointSlices of `service`.
///
/// - `pods`: the Pods its selector matches, in its namespace (the caller matches the selector).
/// - `node_zones`: every Node the caller knows, with its `topology.kubernetes.io/zone` label
///   (see [`node_zone`]). A Pod on a Node not in the map is left out unless the Service has
///   `publishNotReadyAddresses` (upstream behaviour); see [`SlicePlan::pods_on_unknown_nodes`].
/// - `existing`: the slices labelled with the Service's name; slices not managed by
///   `opts.manager()` (or of another namespace or Service) are ignored, never planned.
///
/// The same input always gives the same plan, and applying a plan then planning again gives an
/// empty plan.
pub fn plan(
    service: &Service,
    pods: &[PodView],
    node_zones: &BTreeMap<String, Option<String>>,
    existing: &[EndpointSlice],
    opts: &Options,
) -> SlicePlan {
    let ours: Vec<&EndpointSlice> = existing
        .iter()
        .filter(|s| is_ours(s, service, opts.manager()))
        .collect();
    let mut plan = SlicePlan::default();

    if !selects_pods(service) {
        // ExternalName or selector-less: none of our slices should exist. (Upstream leaves them
        // behind when a selector is removed, kubernetes#118376.)
        for slice in ours {
            plan.endpoints_removed += endpoint_count(slice);
            plan.delete.push(SliceRef::of(slice));
        }
        plan.delete.sort_by(|a, b| a.name.cmp(&b.name));
        return plan;
    }

    let families = service_families(service);
    let facts = ServiceFacts::new(service);
    let template = SliceTemplate::new(service, opts.manager());
    let inputs = FamilyInputs {
        facts: &facts,
        template: &template,
        pods,
        node_zones,
        max: opts.max_endpoints_per_slice(),
    };
    let mut skipped = BTreeSet::new();

    for family in &families {
        let of_family: Vec<&EndpointSlice> = ours
            .iter()
            .copied()
            .filter(|s| s.address_type == family.address_type())
            .collect();
        let out = reconcile_family(&inputs, *family, &of_family, &mut skipped);
        plan.create.extend(out.create);
        plan.update.extend(out.update);
        plan.delete.extend(out.delete.into_iter().map(SliceRef::of));
        plan.endpoints_added += out.added;
        plan.endpoints_removed += out.removed;
        plan.endpoints_degraded += out.degraded;
    }
    // Slices of an address type the Service no longer has.
    for slice in ours {
        if !families
            .iter()
            .any(|f| f.address_type() == slice.address_type)
        {
            plan.endpoints_removed += endpoint_count(slice);
            plan.delete.push(SliceRef::of(slice));
        }
    }

    // Upstream creates nothing for a Service that is being deleted (the garbage collector would
    // race with it); updates and deletes still go ahead.
    if service.metadata.deletion_timestamp.is_some() {
        plan.create.clear();
    }
    plan.update
        .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    plan.delete.sort_by(|a, b| a.name.cmp(&b.name));
    plan.pods_on_unknown_nodes = skipped.into_iter().collect();
    plan
}
