//! The compiler: desired [`State`] (and what the last successful transaction established) in,
//! one [`Transaction`] out.

mod base;
mod full;
mod partial;
mod service;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use base::{
    CLUSTER_IPS, FIREWALL_IPS, HAIRPIN_ENDPOINTS, LOCAL_INDEX_OFFSET, MARK_FOR_MASQUERADE,
    MASQUERADING, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, NODEPORT_IPS, REJECT_CHAIN,
    SERVICE_IPS, SERVICE_NODEPORTS, SERVICES, SHARED_SPREAD_MAX, Spread, endpoint_map,
    nodeport_ranges,
};

use crate::ir::{ElemKey, Table, Value};
use crate::model::{EndpointState, Family, ProxyConfig, ServiceKey, ServiceState, State};
use crate::transaction::Transaction;
use service::Fragment;

/// One service port as last compiled: its inputs (to skip it when unchanged) and its output.
#[derive(Debug, PartialEq, Eq)]
struct CompiledService {
    svc: ServiceState,
    endpoints: Vec<EndpointState>,
    fragment: Fragment,
}

/// Who wants each element of the shared sets and maps, and with which value. The kernel holds
/// the value of the first claimant in key order, so two Services sharing an externalIP never
/// make a transaction fail, and the survivor takes over when the winner goes away.
type Claims = BTreeMap<(String, ElemKey), Claimants>;

/// The claimants of one element in key order, each Service's key shared with its other claims.
/// Nearly always one: a vector of one costs a fraction of a map's node, and there are hundreds of
/// thousands of elements at 10,000 Services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Claimants(Vec<(Arc<ServiceKey>, Option<Value>)>);

impl Claimants {
    fn first(&self) -> Option<&Option<Value>> {
        self.0.first().map(|(_, value)| value)
    }

    fn insert(&mut self, owner: &Arc<ServiceKey>, value: Option<Value>) {
        match self.0.binary_search_by(|(k, _)| k.as_ref().cmp(owner)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (owner.clone(), value));
            }
        }
    }

    fn remove(&mut self, owner: &ServiceKey) {
        if let Ok(i) = self.0.binary_search_by(|(k, _)| k.as_ref().cmp(owner)) {
            self.0.remove(i);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn winner(claims: &Claims, key: &(String, ElemKey)) -> Option<Option<Value>> {
    claims.get(key).and_then(|c| c.first().cloned())
}

/// What the last successful transaction established. Keep it in memory and pass it to the next
/// [`compile`]; after a failed transaction, keep the previous one (or pass `None` to force a
/// full sync). It is never read back from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    family: Family,
    config: ProxyConfig,
    services: BTreeMap<ServiceKey, Arc<CompiledService>>,
    claims: Claims,
    /// How many service ports use each shared load-balancing chain (only those in use exist).
    shared: BTreeMap<Spread, usize>,
}

impl Committed {
    pub fn family(&self) -> Family {
        self.family
    }

    /// Number of service ports it holds.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// The whole table this state stands for (O(size); for tests, tracing and debugging).
    pub fn table(&self) -> Table {
        let mut table = base::table(self.family, &self.config);
        for spread in self.shared.keys() {
            table.chains.insert(spread.chain_name(), spread.chain());
        }
        for compiled in self.services.values() {
            for (name, chain) in &compiled.fragment.chains {
                table.chains.insert(name.clone(), chain.clone());
            }
            for (name, def) in &compiled.fragment.sets {
                let set = crate::ir::Set {
                    def: def.clone(),
                    elements: BTreeMap::new(),
                };
                table.sets.insert(name.clone(), set);
            }
        }
        for (key, claimants) in &self.claims {
            let (set_name, elem) = key;
            if let (Some(set), Some(value)) = (table.sets.get_mut(set_name), claimants.first()) {
                set.elements.insert(elem.clone(), value.clone());
            }
        }
        table
    }
}

/// Compile `desired` into one transaction for table `<family> svcnet`.
///
/// With `committed == None` it is a full sync: the table is recreated from scratch in one
/// atomic transaction. Otherwise it is a partial sync that only rewrites the chains, sets and
/// elements of the service ports that changed since `committed`; a change of family or
/// [`ProxyConfig`] falls back to a full sync. Returns the transaction and the state to keep
/// once it succeeded.
pub fn compile(desired: &State, committed: Option<&Committed>) -> (Transaction, Committed) {
    compile_from(desired, committed.cloned())
}

/// [`compile`], taking the committed state by value: a partial sync updates it in place instead of
/// copying it, so its cost follows the changes rather than the table. For a caller that drops the
/// committed state when a transaction fails anyway (the runner).
pub fn compile_from(desired: &State, committed: Option<Committed>) -> (Transaction, Committed) {
    match committed {
        Some(c) if c.family == desired.family && c.config == desired.config => {
            // Every service port, desired or committed.
            let removed: Vec<ServiceKey> = c
                .services
                .keys()
                .filter(|k| !desired.services.contains_key(*k))
                .cloned()
                .collect();
            let keys: Vec<ServiceKey> = desired.services.keys().cloned().chain(removed).collect();
            partial::compile(desired, c, &keys)
        }
        _ => full::compile(desired),
    }
}

/// [`compile_from`] for a caller that knows which service ports may have changed since
/// `committed` (those it translated again): a partial sync looks at `changed` only, so its cost
/// follows the changes even in the comparisons.
pub fn compile_changed(
    desired: &State,
    committed: Option<Committed>,
    changed: &BTreeSet<ServiceKey>,
) -> (Transaction, Committed) {
    match committed {
        Some(c) if c.family == desired.family && c.config == desired.config => {
            partial::compile(desired, c, changed)
        }
        _ => full::compile(desired),
    }
}

fn compile_service(desired: &State, key: &ServiceKey, svc: &ServiceState) -> CompiledService {
    let endpoints = desired.endpoints.get(key).cloned().unwrap_or_default();
    let fragment =
        service::compile(desired.family, &desired.config, key, svc, &endpoints).unwrap_or_default();
    CompiledService {
        svc: svc.clone(),
        endpoints,
        fragment,
    }
}
