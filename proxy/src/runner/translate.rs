//! The desired state kept between syncs: a sync translates the Services the watches touched
//! again, not every Service and slice (that alone took about 30 ms at 10,000 Services).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

use super::changes::Touched;
use crate::from_kube::{Entry, desired_state, slice_owner, update_service};
use crate::model::{Family, ProxyConfig, ServiceKey, State};

/// What a translation changed.
#[derive(Debug)]
pub struct Translated {
    /// The service ports that may differ from the last translation; `None`: any of them.
    pub keys: Option<BTreeSet<ServiceKey>>,
    /// The entries it replaced or removed, as they were.
    pub replaced: Vec<Entry>,
}

/// The desired state of `family`: `prev` with the touched Services translated again, or every
/// Service when everything was touched or the configuration changed.
pub fn translate(
    prev: Option<State>,
    config: &ProxyConfig,
    family: Family,
    touched: &Touched,
    services: &Store<Service>,
    slices: &[Arc<EndpointSlice>],
) -> (State, Translated) {
    let (mut state, names) = match (prev, touched) {
        (Some(state), Touched::Some(names)) if state.config == *config => (state, names),
        (prev, _) => return translate_all(prev, config, family, services, slices),
    };
    // The touched Services' slices, found without allocating per slice: one pass over all.
    let wanted: HashSet<(&str, &str)> = names
        .iter()
        .map(|(ns, name)| (ns.as_str(), name.as_str()))
        .collect();
    let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
    for slice in slices.iter().filter(|_| !wanted.is_empty()) {
        if let Some(owner) = slice_owner(slice).filter(|o| wanted.contains(o)) {
            by_service.entry(owner).or_default().push(slice);
        }
    }
    let mut translated = Translated {
        keys: Some(BTreeSet::new()),
        replaced: Vec::new(),
    };
    for name in names {
        let (ns, svc_name) = name;
        let svc = services.get(&ObjectRef::new(svc_name).within(ns));
        let own = by_service
            .get(&(ns.as_str(), svc_name.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (old, written) = update_service(&mut state, ns, svc_name, svc.as_deref(), own);
        let keys = translated.keys.get_or_insert_with(BTreeSet::new);
        keys.extend(old.iter().map(|(k, _, _)| k.clone()));
        keys.extend(written);
        translated.replaced.extend(old);
    }
    (state, translated)
}

fn translate_all(
    prev: Option<State>,
    config: &ProxyConfig,
    family: Family,
    services: &Store<Service>,
    slices: &[Arc<EndpointSlice>],
) -> (State, Translated) {
    let svcs = services.state();
    let svc_refs: Vec<&Service> = svcs.iter().map(AsRef::as_ref).collect();
    let slice_refs: Vec<&EndpointSlice> = slices.iter().map(AsRef::as_ref).collect();
    let state = desired_state(config, family, &svc_refs, &slice_refs);
    let replaced = prev.map_or_else(Vec::new, |p| {
        let mut endpoints = p.endpoints;
        p.services
            .into_iter()
            .map(|(k, svc)| {
                let eps = endpoints.remove(&k).unwrap_or_default();
                (k, svc, eps)
            })
            .collect()
    });
    let translated = Translated {
        keys: None,
        replaced,
    };
    (state, translated)
}

/// Keeps the oldest version of each entry: the one the kernel held at the last successful sync.
pub fn remember(before: &mut State, replaced: Vec<Entry>) {
    for (key, svc, eps) in replaced {
        if !before.services.contains_key(&key) {
            before.endpoints.insert(key.clone(), eps);
            before.services.insert(key, svc);
        }
    }
}
