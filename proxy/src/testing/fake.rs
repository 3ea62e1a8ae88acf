//! A fake nft: applies a [`Transaction`] atomically to an in-memory [`Table`] and refuses what
//! the kernel refuses (dangling references, deleting what is in use, conflicting elements).

use crate::error::Error;
use crate::ir::{ElemKey, Element, KeyType, Set, SetKind, Table, Value};
use crate::model::Family;
use crate::render;
use crate::transaction::{Op, Transaction};

/// The kernel's view of table `<family> svcnet`, as far as this crate's transactions go.
#[derive(Clone, Debug, Default)]
pub struct FakeNft {
    table: Option<Table>,
}

impl FakeNft {
    pub fn new() -> Self {
        FakeNft::default()
    }

    /// The table, if it exists.
    pub fn table(&self) -> Option<&Table> {
        self.table.as_ref()
    }

    /// Apply all of `tx` or nothing.
    pub fn apply(&mut self, tx: &Transaction) -> Result<(), Error> {
        let mut work = self.table.clone();
        for op in &tx.ops {
            apply_op(&mut work, tx.family, op).map_err(|reason| Error::Refused {
                op: render::op(tx.family, op),
                reason,
            })?;
        }
        self.table = work;
        Ok(())
    }
}

fn key_fits(family: Family, key_type: KeyType, key: &ElemKey) -> bool {
    match (key_type, key) {
        (KeyType::Addr, ElemKey::Addr(ip))
        | (KeyType::AddrProtoPort, ElemKey::AddrProtoPort(ip, _, _)) => family.holds(ip),
        (KeyType::Net, ElemKey::Net(net)) => family.holds_net(net),
        (KeyType::ProtoPort, ElemKey::ProtoPort(_, _)) => true,
        (KeyType::AddrPair, ElemKey::AddrPair(a, b)) => family.holds(a) && family.holds(b),
        (KeyType::AddrProtoPortIndex, ElemKey::AddrProtoPortIndex(ip, ..)) => family.holds(ip),
        (KeyType::ProtoPortIndex, ElemKey::ProtoPortIndex(..)) => true,
        _ => false,
    }
}

fn set_of<'a>(table: &'a mut Table, name: &str) -> Result<&'a mut Set, String> {
    table
        .sets
        .get_mut(name)
        .ok_or_else(|| format!("no such set or map {name}"))
}

fn check_element(table: &Table, family: Family, e: &Element) -> Result<(), String> {
    let set = table
        .sets
        .get(&e.set)
        .ok_or_else(|| format!("no such set or map {}", e.set))?;
    let fits = match (set.def.kind, &e.value) {
        (SetKind::Set, None) | (SetKind::VerdictMap, Some(Value::Verdict(_))) => true,
        (SetKind::EndpointMap(_), Some(Value::Target(ip, _))) => family.holds(ip),
        _ => false,
    };
    if !fits {
        return Err("element value does not match the set/map kind".to_owned());
    }
    if !key_fits(family, set.def.key, &e.key) {
        return Err("element key does not match the key type".to_owned());
    }
    if let Some(target) = e.value.as_ref().and_then(Value::target_chain)
        && !table.chains.contains_key(target)
    {
        return Err(format!("no such chain {target}"));
    }
    Ok(())
}

fn apply_op(work: &mut Option<Table>, family: Family, op: &Op) -> Result<(), String> {
    match op {
        Op::AddTable => {
            work.get_or_insert_with(|| Table::new(family));
            return Ok(());
        }
        Op::DeleteTable => {
            return work
                .take()
                .map(|_| ())
                .ok_or_else(|| "no such table".to_owned());
        }
        _ => {}
    }
    let table = work.as_mut().ok_or_else(|| "no such table".to_owned())?;
    match op {
        Op::AddTable | Op::DeleteTable => {}
        Op::AddChain(chain) => match table.chains.get(&chain.name) {
            Some(existing) if existing.base != chain.base => {
                return Err("chain exists with another hook".to_owned());
            }
            Some(_) => {}
            None => {
                table.chains.insert(chain.name.clone(), chain.clone());
            }
        },
        Op::FlushChain(name) => {
            table
                .chains
                .get_mut(name)
                .ok_or_else(|| format!("no such chain {name}"))?
                .rules
                .clear();
        }
        Op::DeleteChain(name) => {
            let chain = table
                .chains
                .get(name)
                .ok_or_else(|| format!("no such chain {name}"))?;
            if !chain.rules.is_empty() {
                return Err("chain is not empty".to_owned());
            }
            if table.referenced_chains().contains(name.as_str()) {
                return Err("chain is in use".to_owned());
            }
            table.chains.remove(name);
        }
        Op::AddRule { chain, rule } => {
            for target in rule.chain_refs() {
                if !table.chains.contains_key(target) {
                    return Err(format!("no such chain {target}"));
                }
            }
            for set in rule.set_refs() {
                if !table.sets.contains_key(set) {
                    return Err(format!("no such set or map {set}"));
                }
            }
            let rules = &mut table
                .chains
                .get_mut(chain)
                .ok_or_else(|| format!("no such chain {chain}"))?
                .rules;
            rules.push(rule.clone());
        }
        Op::AddSet(def) => match table.sets.get(&def.name) {
            Some(existing) if existing.def != *def => {
                return Err("set exists with another definition".to_owned());
            }
            Some(_) => {}
            None => {
                let set = Set {
                    def: def.clone(),
                    elements: Default::default(),
                };
                table.sets.insert(def.name.clone(), set);
            }
        },
        Op::DeleteSet(name) => {
            if !table.sets.contains_key(name) {
                return Err(format!("no such set {name}"));
            }
            if table.referenced_sets().contains(name.as_str()) {
                return Err("set is in use".to_owned());
            }
            table.sets.remove(name);
        }
        Op::AddElement(e) => {
            check_element(table, family, e)?;
            let set = set_of(table, &e.set)?;
            match set.elements.get(&e.key) {
                Some(existing) if *existing != e.value => {
                    return Err("element exists with another value".to_owned());
                }
                _ => {
                    set.elements.insert(e.key.clone(), e.value.clone());
                }
            }
        }
        Op::DeleteElement(e) => {
            let set = set_of(table, &e.set)?;
            set.elements
                .remove(&e.key)
                .ok_or_else(|| "no such element".to_owned())?;
        }
    }
    Ok(())
}
