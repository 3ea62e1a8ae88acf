//! Repair: reconcile the book with the Services, as kube-apiserver's repair controllers do.
//!
//! - A value a Service holds but the book does not is adopted (the apiserver allocated it while the
//!   webhook was unavailable, or the book was lost).
//! - A value outside the ranges is reported (a range shrank, or the apiserver chose it): the Service
//!   keeps it.
//! - A value held by more than one Service is reported.
//! - A value in the book that no Service holds and no reservation covers is a leak; it is released
//!   only on the `passes`-th consecutive pass that sees it, so a Service the watch has not delivered
//!   yet is not robbed.
//! - A reservation whose values are seen on Services is settled; one never seen is dropped after
//!   `passes` passes (its values then follow the leak rule).

use std::collections::HashMap;

use super::book::Book;
use super::holders::Holders;
use super::plan::Held;

/// What repair remembers between passes.
#[derive(Debug, Default)]
pub struct Memory {
    leaks: HashMap<Held, u32>,
    stale_reservations: HashMap<String, u32>,
}

/// What one pass decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub adopt: Vec<Held>,
    pub release: Vec<Held>,
    /// (Service, values) reservations to settle.
    pub settle: Vec<(String, Vec<Held>)>,
    pub out_of_range: Vec<(String, Held)>,
    pub duplicates: Vec<(Held, Vec<String>)>,
    /// Leaks seen but not yet released.
    pub suspected_leaks: usize,
}

impl Findings {
    /// Whether the book must change.
    pub fn changes_book(&self) -> bool {
        !self.adopt.is_empty() || !self.release.is_empty() || !self.settle.is_empty()
    }
}

/// One pass.
pub fn pass(book: &Book, holders: &Holders, memory: &mut Memory, passes: u32) -> Findings {
    let mut findings = Findings {
        duplicates: holders.duplicates(),
        ..Findings::default()
    };
    for (service, values) in holders.iter() {
        for &v in values {
            if !book.in_range(v) {
                findings.out_of_range.push((service.to_owned(), v));
            } else if !book.has(v) {
                findings.adopt.push(v);
            }
        }
    }
    findings.adopt.sort();
    findings.adopt.dedup();

    let mut still_reserved: Vec<Held> = Vec::new();
    let mut stale = HashMap::new();
    for (service, values) in book.pending() {
        let (seen, unseen): (Vec<Held>, Vec<Held>) =
            values.iter().partition(|v| holders.is_held(**v));
        if unseen.is_empty() {
            findings.settle.push((service.clone(), seen));
            continue;
        }
        let n = memory.stale_reservations.get(service).copied().unwrap_or(0) + 1;
        if n >= passes {
            findings.settle.push((service.clone(), values.clone()));
        } else {
            if !seen.is_empty() {
                findings.settle.push((service.clone(), seen));
            }
            stale.insert(service.clone(), n);
            still_reserved.extend(unseen);
        }
    }
    memory.stale_reservations = stale;

    let mut leaks = HashMap::new();
    for v in book.allocated() {
        if holders.is_held(v) || still_reserved.contains(&v) {
            continue;
        }
        let n = memory.leaks.get(&v).copied().unwrap_or(0) + 1;
        if n >= passes {
            findings.release.push(v);
        } else {
            leaks.insert(v, n);
        }
    }
    findings.suspected_leaks = leaks.len();
    memory.leaks = leaks;
    findings
}

/// Applies a pass's decisions to a (possibly newer) book: releases only values still unheld by a
/// reservation there.
pub fn apply(book: &mut Book, findings: &Findings) {
    for &v in &findings.adopt {
        book.adopt(v);
    }
    for (service, values) in &findings.settle {
        book.settle(service, values);
    }
    for &v in &findings.release {
        if !book.is_pending(v) {
            book.release(v);
        }
    }
}
