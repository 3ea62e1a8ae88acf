//! Full sync: recreate the table in one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Claims, Committed, compile_service};
use crate::model::State;
use crate::transaction::{Op, Transaction};

/// `add table` + `delete table` + `add table` (the add makes the delete safe when the table is
/// missing), then everything. Only our table is named, so nothing else is touched; the whole
/// swap is atomic.
pub(super) fn compile(desired: &State) -> (Transaction, Committed) {
    let mut services = BTreeMap::new();
    let mut claims = Claims::new();
    let mut shared = BTreeMap::new();
    for (key, svc) in &desired.services {
        let compiled = compile_service(desired, key, svc);
        let owner = Arc::new(key.clone());
        for spread in &compiled.fragment.shared {
            *shared.entry(*spread).or_insert(0) += 1;
        }
        for (elem, value) in &compiled.fragment.elements {
            claims
                .entry(elem.clone())
                .or_default()
                .insert(&owner, value.clone());
        }
        services.insert(key.clone(), Arc::new(compiled));
    }
    let committed = Committed {
        family: desired.family,
        config: desired.config.clone(),
        services,
        claims,
        shared,
    };

    let mut tx = Transaction::new(desired.family, true);
    tx.ops.extend([Op::AddTable, Op::DeleteTable, Op::AddTable]);
    tx.push_table(&committed.table());
    (tx, committed)
}
