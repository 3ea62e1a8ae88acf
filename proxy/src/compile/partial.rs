//! Partial sync: rewrite only what belongs to service ports whose inputs changed.
//!
//! Work is O(number of service ports) cheap comparisons plus O(changes) compilation; the
//! transaction is O(changes). Operations are ordered so every reference is valid at each step:
//!
//! 1. declare new chains;
//! 2. flush changed and removed chains (drops their jumps and set references);
//! 3. delete elements that go away or change value (drops map references to chains);
//! 4. delete removed or redefined affinity sets, then add new or redefined ones;
//! 5. add the rules of new and changed chains;
//! 6. add new elements and the new values of changed ones;
//! 7. delete removed chains (now empty and unreferenced).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::service::Fragment;
use super::{Committed, compile_service, winner};
use crate::ir::{Chain, ElemKey, Element, Value};
use crate::model::{ServiceKey, State};
use crate::transaction::{Op, Transaction};

#[derive(Default)]
struct Buckets {
    add_chains: Vec<Op>,
    flush_chains: Vec<Op>,
    delete_elements: Vec<Op>,
    delete_sets: Vec<Op>,
    add_sets: Vec<Op>,
    add_rules: Vec<Op>,
    add_elements: Vec<Op>,
    delete_chains: Vec<Op>,
}

impl Buckets {
    fn into_ops(self) -> Vec<Op> {
        let Buckets {
            add_chains,
            flush_chains,
            delete_elements,
            delete_sets,
            add_sets,
            add_rules,
            add_elements,
            delete_chains,
        } = self;
        [
            add_chains,
            flush_chains,
            delete_elements,
            delete_sets,
            add_sets,
            add_rules,
            add_elements,
            delete_chains,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn push_rules(&mut self, chain: &Chain) {
        for rule in &chain.rules {
            self.add_rules.push(Op::AddRule {
                chain: chain.name.clone(),
                rule: rule.clone(),
            });
        }
    }
}

/// Updates `next` (the committed state, taken by value) in place: the work follows the changes,
/// not the size of the table. Looks at the service ports in `keys` only (each once): those in
/// `desired` are compiled when their inputs changed, the others are removed.
pub(super) fn compile<'a>(
    desired: &State,
    mut next: Committed,
    keys: impl IntoIterator<Item = &'a ServiceKey>,
) -> (Transaction, Committed) {
    let mut buckets = Buckets::default();
    // Element keys whose claims changed, with the value the kernel held before.
    let mut touched: BTreeMap<(String, ElemKey), Option<Option<Value>>> = BTreeMap::new();
    let empty = Fragment::default();

    for key in keys {
        let Some(svc) = desired.services.get(key) else {
            if let Some(old) = next.services.remove(key) {
                let owner = Arc::new(key.clone());
                diff_fragment(
                    &owner,
                    &old.fragment,
                    &empty,
                    &mut buckets,
                    &mut next,
                    &mut touched,
                );
            }
            continue;
        };
        let endpoints = desired
            .endpoints
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let old = next.services.get(key).cloned();
        if old
            .as_ref()
            .is_some_and(|o| o.svc == *svc && o.endpoints == endpoints)
        {
            continue;
        }
        let compiled = compile_service(desired, key, svc);
        let owner = Arc::new(key.clone());
        let old_fragment = old.as_ref().map_or(&empty, |o| &o.fragment);
        diff_fragment(
            &owner,
            old_fragment,
            &compiled.fragment,
            &mut buckets,
            &mut next,
            &mut touched,
        );
        next.services.insert(key.clone(), Arc::new(compiled));
    }

    for (elem_key, before) in touched {
        let after = winner(&next.claims, &elem_key);
        if before == after {
            continue;
        }
        let (set, key) = elem_key;
        if let Some(value) = before {
            buckets.delete_elements.push(Op::DeleteElement(Element {
                set: set.clone(),
                key: key.clone(),
                value,
            }));
        }
        if let Some(value) = after {
            buckets
                .add_elements
                .push(Op::AddElement(Element { set, key, value }));
        }
    }

    let mut tx = Transaction::new(desired.family, false);
    tx.ops = buckets.into_ops();
    (tx, next)
}

fn diff_fragment(
    owner: &Arc<ServiceKey>,
    old: &Fragment,
    new: &Fragment,
    buckets: &mut Buckets,
    next: &mut Committed,
    touched: &mut BTreeMap<(String, ElemKey), Option<Option<Value>>>,
) {
    // Sets first: a redefined set is deleted and re-added, so every chain using it is rewritten.
    let mut redefined = BTreeSet::new();
    for (name, def) in &new.sets {
        match old.sets.get(name) {
            Some(old_def) if old_def == def => {}
            Some(_) => {
                redefined.insert(name.as_str());
                buckets.delete_sets.push(Op::DeleteSet(name.clone()));
                buckets.add_sets.push(Op::AddSet(def.clone()));
            }
            None => buckets.add_sets.push(Op::AddSet(def.clone())),
        }
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        buckets.delete_sets.push(Op::DeleteSet(name.clone()));
    }

    for (name, chain) in &new.chains {
        let uses_redefined = || {
            chain
                .rules
                .iter()
                .any(|r| r.set_refs().iter().any(|s| redefined.contains(s)))
        };
        match old.chains.get(name) {
            None => {
                buckets.add_chains.push(Op::AddChain(Chain {
                    name: chain.name.clone(),
                    base: chain.base,
                    rules: Vec::new(),
                }));
                buckets.push_rules(chain);
            }
            Some(old_chain) if old_chain.rules != chain.rules || uses_redefined() => {
                buckets.flush_chains.push(Op::FlushChain(name.clone()));
                buckets.push_rules(chain);
            }
            Some(_) => {}
        }
    }
    for name in old.chains.keys().filter(|n| !new.chains.contains_key(*n)) {
        buckets.flush_chains.push(Op::FlushChain(name.clone()));
        buckets.delete_chains.push(Op::DeleteChain(name.clone()));
    }

    // Shared chains: made with their first user, removed with their last.
    for spread in new.shared.difference(&old.shared) {
        let users = next.shared.entry(*spread).or_insert(0);
        *users += 1;
        if *users == 1 {
            let chain = spread.chain();
            buckets.add_chains.push(Op::AddChain(Chain {
                name: chain.name.clone(),
                base: None,
                rules: Vec::new(),
            }));
            buckets.push_rules(&chain);
        }
    }
    for spread in old.shared.difference(&new.shared) {
        if let Some(users) = next.shared.get_mut(spread) {
            *users = users.saturating_sub(1);
            if *users == 0 {
                next.shared.remove(spread);
                let name = spread.chain_name();
                buckets.flush_chains.push(Op::FlushChain(name.clone()));
                buckets.delete_chains.push(Op::DeleteChain(name));
            }
        }
    }

    let keys: BTreeSet<&(String, ElemKey)> =
        old.elements.keys().chain(new.elements.keys()).collect();
    for key in keys {
        let (before, after) = (old.elements.get(key), new.elements.get(key));
        if before == after {
            continue;
        }
        touched
            .entry(key.clone())
            .or_insert_with(|| winner(&next.claims, key));
        let claimants = next.claims.entry(key.clone()).or_default();
        match after {
            Some(value) => claimants.insert(owner, value.clone()),
            None => claimants.remove(owner),
        }
        if claimants.is_empty() {
            next.claims.remove(key);
        }
    }
}
