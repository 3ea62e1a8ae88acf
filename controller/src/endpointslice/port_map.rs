//! Reconcile the slices of one (address family, port set) with its desired endpoints
//! (upstream `reconcileByPortMapping`).
//!
//! 1. Walk the existing slices: drop endpoints no longer desired, replace changed ones in place.
//!    A slice that lost all its endpoints is deleted; a slice whose endpoints or metadata changed
//!    is updated; the rest are unchanged and will not be written.
//! 2. Fill the slices being updated anyway with new endpoints, fullest first.
//! 3. Put what is left into the one unchanged slice that ends closest to full (only if it takes
//!    all of it), else into new slices of up to `max` endpoints.

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::AddressFamily;
use super::desired::DesiredGroup;
use super::identity::{EndpointKey, only_gains, same_endpoint, sort_endpoints};
use super::slice_meta::SliceTemplate;

/// What one port set needs.
#[derive(Debug, Default)]
pub(crate) struct PortMapOutcome<'a> {
    pub(crate) create: Vec<EndpointSlice>,
    pub(crate) update: Vec<EndpointSlice>,
    pub(crate) delete: Vec<&'a EndpointSlice>,
    /// Desired endpoints that were in none of the existing slices of this port set.
    pub(crate) added: usize,
    /// Existing endpoints dropped from their slice.
    pub(crate) removed: usize,
    pub(crate) degraded: usize,
}

pub(crate) fn reconcile_port_map<'a>(
    template: &SliceTemplate,
    family: AddressFamily,
    existing: &[&'a EndpointSlice],
    desired: DesiredGroup,
    max: usize,
) -> PortMapOutcome<'a> {
    let DesiredGroup {
        ports,
        endpoints: mut wanted,
    } = desired;
    let mut out = PortMapOutcome::default();
    let mut unchanged: Vec<&EndpointSlice> = Vec::new();

    let mut existing = existing.to_vec();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    // 1. Remove what is gone, update what changed, in the slice that holds it.
    for &slice in &existing {
        let old = slice.endpoints.as_deref().unwrap_or_default();
        let mut kept: Vec<Endpoint> = Vec::with_capacity(old.len());
        let mut changed = false;
        for endpoint in old {
            // `remove` also drops duplicates: only the first slice holding an endpoint keeps it.
            if let Some(want) = wanted.remove(&EndpointKey::of(endpoint)) {
                if !same_endpoint(&want, endpoint) {
                    changed = true;
                    if !only_gains(endpoint, &want) {
                        out.degraded += 1;
                    }
                }
                kept.push(want);
            }
        }
        if changed || kept.len() != old.len() {
            out.removed += old.len() - kept.len();
            if kept.is_empty() {
                out.delete.push(slice);
            } else {
                let mut updated = slice.clone();
                updated.endpoints = Some(kept);
                template.apply_meta(&mut updated);
                out.update.push(updated);
            }
        } else if template.meta_drifted(slice) {
            let mut updated = slice.clone();
            template.apply_meta(&mut updated);
            out.update.push(updated);
        } else {
            unchanged.push(slice);
        }
    }
    out.added = wanted.len();

    // 2. Slices we write anyway take new endpoints first, fullest first.
    if !wanted.is_empty() {
        out.update.sort_by(|a, b| {
            len(b)
                .cmp(&len(a))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        for slice in &mut out.update {
            fill(slice, &mut wanted, max);
        }
    }

    // 3. Then one unchanged slice that can take all the rest, then new slices.
    while !wanted.is_empty() {
        let reuse = if wanted.len() < max {
            slice_to_fill(&unchanged, wanted.len(), max).map(|i| unchanged.remove(i).clone())
        } else {
            None
        };
        match reuse {
            Some(mut slice) => {
                fill(&mut slice, &mut wanted, max);
                out.update.push(slice);
            }
            None => {
                let mut slice = template.new_slice(family, ports.clone());
                fill(&mut slice, &mut wanted, max);
                out.create.push(slice);
            }
        }
    }

    for slice in out.update.iter_mut().chain(out.create.iter_mut()) {
        if let Some(endpoints) = slice.endpoints.as_mut() {
            sort_endpoints(endpoints);
        }
    }
    out
}

fn len(slice: &EndpointSlice) -> usize {
    slice.endpoints.as_ref().map_or(0, Vec::len)
}

/// Move desired endpoints (in key order) into `slice` until it holds `max`.
fn fill(slice: &mut EndpointSlice, wanted: &mut BTreeMap<EndpointKey, Endpoint>, max: usize) {
    let endpoints = slice.endpoints.get_or_insert_with(Vec::new);
    while endpoints.len() < max {
        let Some((_, endpoint)) = wanted.pop_first() else {
            break;
        };
        endpoints.push(endpoint);
    }
}

/// Upstream `getSliceToFill`: the slice that ends closest to full after taking all `n`
/// endpoints; `None` if none has room for all of them. Ties go to the first (by name).
fn slice_to_fill(slices: &[&EndpointSlice], n: usize, max: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, slice) in slices.iter().enumerate() {
        let Some(room_left) = max.checked_sub(len(slice) + n) else {
            continue;
        };
        if best.is_none_or(|(_, best_left)| room_left < best_left) {
            best = Some((i, room_left));
            if room_left == 0 {
                break;
            }
        }
    }
    best.map(|(i, _)| i)
}
