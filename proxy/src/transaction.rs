//! A transaction: the ordered operations of one `nft -f -` run.

use std::fmt;

use crate::ir::{Chain, Element, Rule, SetDef, Table};
use crate::model::Family;
use crate::render;

/// One operation on table `<family> svcnet`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    AddTable,
    DeleteTable,
    /// Declares a chain (its rules are added by [`Op::AddRule`]).
    AddChain(Chain),
    FlushChain(String),
    DeleteChain(String),
    AddRule {
        chain: String,
        rule: Rule,
    },
    /// Declares a set or map.
    AddSet(SetDef),
    DeleteSet(String),
    AddElement(Element),
    DeleteElement(Element),
}

/// The operations of one sync, in order, for one family's table. Render it with `Display`
/// (one nft command a line; runs of element operations on one set share one) and feed it to
/// `nft -f -`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub family: Family,
    pub ops: Vec<Op>,
    /// Whether this is a full sync (it recreates the table).
    pub full: bool,
}

impl Transaction {
    pub fn new(family: Family, full: bool) -> Self {
        Transaction {
            family,
            ops: Vec::new(),
            full,
        }
    }

    /// Nothing to do: the kernel already holds the desired ruleset.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of operations (element operations on one set share a line of text).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The operations that build `table` from nothing, in an order nft accepts: declarations,
    /// then rules, then elements.
    pub fn push_table(&mut self, table: &Table) {
        for chain in table.chains.values() {
            self.ops.push(Op::AddChain(Chain {
                name: chain.name.clone(),
                base: chain.base,
                rules: Vec::new(),
            }));
        }
        for set in table.sets.values() {
            self.ops.push(Op::AddSet(set.def.clone()));
        }
        for chain in table.chains.values() {
            for rule in &chain.rules {
                self.ops.push(Op::AddRule {
                    chain: chain.name.clone(),
                    rule: rule.clone(),
                });
            }
        }
        for set in table.sets.values() {
            for (key, value) in &set.elements {
                let element = Element {
                    set: set.def.name.clone(),
                    key: key.clone(),
                    value: value.clone(),
                };
                self.ops.push(Op::AddElement(element));
            }
        }
    }
}

impl fmt::Display for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in render::lines(self.family, &self.ops) {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}
