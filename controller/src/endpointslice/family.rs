//! Reconcile all slices of one address family (upstream `reconcileByAddressType` and the
//! create-to-update conversion of `finalize`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::AddressFamily;
use super::desired::{ServiceFacts, desired_groups};
use super::identity::PortKey;
use super::pod_view::PodView;
use super::port_map::reconcile_port_map;
use super::slice_meta::SliceTemplate;

/// The plan for one family, before it is merged into the [`super::SlicePlan`].
#[derive(Debug, Default)]
pub(crate) struct FamilyOutcome<'a> {
    pub(crate) create: Vec<EndpointSlice>,
    pub(crate) update: Vec<EndpointSlice>,
    pub(crate) delete: Vec<&'a EndpointSlice>,
    pub(crate) added: usize,
    pub(crate) removed: usize,
    pub(crate) degraded: usize,
}

/// Inputs shared by every family of one plan.
#[derive(Debug)]
pub(crate) struct FamilyInputs<'p> {
    pub(crate) facts: &'p ServiceFacts<'p>,
    pub(crate) template: &'p SliceTemplate,
    pub(crate) pods: &'p [PodView],
    pub(crate) node_zones: &'p BTreeMap<String, Option<String>>,
    pub(crate) max: usize,
}

pub(crate) fn reconcile_family<'a>(
    inputs: &FamilyInputs<'_>,
    family: AddressFamily,
    existing: &[&'a EndpointSlice],
    skipped: &mut BTreeSet<String>,
) -> FamilyOutcome<'a> {
    let template = inputs.template;
    let mut out = FamilyOutcome::default();

    // Slices owned by another incarnation of the Service are deleted, never reused.
    let mut by_ports: BTreeMap<PortKey, Vec<&'a EndpointSlice>> = BTreeMap::new();
    for &slice in existing {
        if template.owned(slice) {
            let key = PortKey::of(slice.ports.as_deref().unwrap_or_default());
            by_ports.entry(key).or_default().push(slice);
        } else {
            out.removed += endpoint_count(slice);
            out.delete.push(slice);
        }
    }

    let groups = desired_groups(
        inputs.facts,
        family,
        inputs.pods,
        inputs.node_zones,
        skipped,
    );
    for (key, group) in groups {
        let slices = by_ports.remove(&key).unwrap_or_default();
        let pm = reconcile_port_map(template, family, &slices, group, inputs.max);
        out.create.extend(pm.create);
        out.update.extend(pm.update);
        out.delete.extend(pm.delete);
        out.added += pm.added;
        out.removed += pm.removed;
        out.degraded += pm.degraded;
    }
    // Port sets no Pod resolves to any more.
    for slice in by_ports.into_values().flatten() {
        out.removed += endpoint_count(slice);
        out.delete.push(slice);
    }

    // A Service with no slice left in this family gets one placeholder (no ports, no
    // endpoints); an identical existing placeholder is kept as it is.
    if existing.len() == out.delete.len() && out.create.is_empty() {
        if let [only] = out.delete.as_slice()
            && template.is_placeholder(only, family)
        {
            out.delete.clear();
        } else {
            out.create.push(template.new_slice(family, Vec::new()));
        }
    }

    // A slice to delete and a slice to create become one update of the slice to delete.
    out.delete
        .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let deletes = std::mem::take(&mut out.delete);
    for old in deletes {
        let reusable = old.address_type == family.address_type() && template.owned(old);
        match out.create.pop() {
            Some(new) if reusable => out.update.push(reuse(old, new)),
            popped => {
                out.create.extend(popped);
                out.delete.push(old);
            }
        }
    }
    out
}

/// `new`'s content under `old`'s identity (name, uid, resourceVersion, annotations), so the
/// writer can update `old` in place with optimistic concurrency.
fn reuse(old: &EndpointSlice, new: EndpointSlice) -> EndpointSlice {
    let mut slice = old.clone();
    slice.metadata.labels = new.metadata.labels;
    slice.metadata.owner_references = new.metadata.owner_references;
    slice.ports = new.ports;
    slice.endpoints = new.endpoints;
    slice
}

pub(crate) fn endpoint_count(slice: &EndpointSlice) -> usize {
    slice.endpoints.as_ref().map_or(0, Vec::len)
}
