//! Random operation sequences against a `BTreeSet` model.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use svcnet_allocator::{Error, IpAllocator, PortAllocator, PortRange, Snapshot};

/// What the model needs from an allocator under test.
trait Subject {
    type Value: Ord + Copy + Debug;
    fn allocate(&mut self, v: Self::Value) -> Result<(), Error>;
    fn allocate_next(&mut self) -> Result<Self::Value, Error>;
    fn release(&mut self, v: Self::Value) -> bool;
    fn has(&self, v: Self::Value) -> bool;
    fn used(&self) -> usize;
    fn free(&self) -> usize;
    fn size(&self) -> usize;
    fn static_band_size(&self) -> usize;
    fn values(&self) -> Vec<Self::Value>;
    fn snapshot(&self) -> Snapshot;
    /// A fresh allocator over the same range with `snapshot` restored.
    fn restored(&self, snapshot: &Snapshot) -> Self;
}

impl Subject for IpAllocator {
    type Value = IpAddr;
    fn allocate(&mut self, v: IpAddr) -> Result<(), Error> {
        IpAllocator::allocate(self, v)
    }
    fn allocate_next(&mut self) -> Result<IpAddr, Error> {
        IpAllocator::allocate_next(self)
    }
    fn release(&mut self, v: IpAddr) -> bool {
        IpAllocator::release(self, v)
    }
    fn has(&self, v: IpAddr) -> bool {
        IpAllocator::has(self, v)
    }
    fn used(&self) -> usize {
        IpAllocator::used(self)
    }
    fn free(&self) -> usize {
        IpAllocator::free(self)
    }
    fn size(&self) -> usize {
        IpAllocator::size(self)
    }
    fn static_band_size(&self) -> usize {
        IpAllocator::static_band_size(self)
    }
    fn values(&self) -> Vec<IpAddr> {
        self.iter().collect()
    }
    fn snapshot(&self) -> Snapshot {
        IpAllocator::snapshot(self)
    }
    fn restored(&self, snapshot: &Snapshot) -> Self {
        let mut fresh = IpAllocator::with_seed(self.cidr(), 5).unwrap();
        assert!(fresh.restore(snapshot).unwrap().is_empty());
        fresh
    }
}

impl Subject for PortAllocator {
    type Value = u16;
    fn allocate(&mut self, v: u16) -> Result<(), Error> {
        PortAllocator::allocate(self, v)
    }
    fn allocate_next(&mut self) -> Result<u16, Error> {
        PortAllocator::allocate_next(self)
    }
    fn release(&mut self, v: u16) -> bool {
        PortAllocator::release(self, v)
    }
    fn has(&self, v: u16) -> bool {
        PortAllocator::has(self, v)
    }
    fn used(&self) -> usize {
        PortAllocator::used(self)
    }
    fn free(&self) -> usize {
        PortAllocator::free(self)
    }
    fn size(&self) -> usize {
        PortAllocator::size(self)
    }
    fn static_band_size(&self) -> usize {
        PortAllocator::static_band_size(self)
    }
    fn values(&self) -> Vec<u16> {
        self.iter().collect()
    }
    fn snapshot(&self) -> Snapshot {
        PortAllocator::snapshot(self)
    }
    fn restored(&self, snapshot: &Snapshot) -> Self {
        let mut fresh = PortAllocator::with_seed(self.range(), 5);
        assert!(fresh.restore(snapshot).unwrap().is_empty());
        fresh
    }
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(i64),
    AllocateNext,
    Release(i64),
    Has(i64),
    SnapshotRestore,
}

/// Operations on positions `-3..size + 4` relative to the first allocatable
/// value, so out-of-range and reserved values are exercised too.
fn ops(size: i64) -> impl Strategy<Value = Vec<Op>> {
    let pos = -3..size + 4;
    let op = prop_oneof![
        3 => pos.clone().prop_map(Op::Allocate),
        4 => Just(Op::AllocateNext),
        3 => pos.clone().prop_map(Op::Release),
        2 => pos.prop_map(Op::Has),
        1 => Just(Op::SnapshotRestore),
    ];
    prop::collection::vec(op, 1..300)
}

/// Runs `ops` on `subject`; `value(p)` is the value at position `p` (the
/// first allocatable value is position 0) and `None` if it does not exist.
fn check<S: Subject>(mut subject: S, ops: &[Op], value: impl Fn(i64) -> Option<S::Value>) {
    let size = subject.size();
    let static_size = subject.static_band_size();
    let first_dynamic = value(static_size as i64).unwrap();
    let mut model: BTreeSet<S::Value> = BTreeSet::new();
    for op in ops {
        match *op {
            Op::Allocate(p) => {
                let Some(v) = value(p) else { continue };
                let got = subject.allocate(v);
                if !(0..size as i64).contains(&p) {
                    assert!(
                        matches!(
                            got,
                            Err(Error::NotInRange { .. }
                                | Error::Reserved { .. }
                                | Error::PortNotInRange { .. })
                        ),
                        "{v:?}: {got:?}"
                    );
                } else if model.insert(v) {
                    assert_eq!(got, Ok(()));
                } else {
                    assert!(
                        matches!(
                            got,
                            Err(Error::AlreadyAllocated { .. } | Error::PortAlreadyAllocated { .. })
                        ),
                        "{v:?}: {got:?}"
                    );
                }
            }
            Op::AllocateNext => match subject.allocate_next() {
                Ok(v) => {
                    let dynamic_free = model.range(first_dynamic..).count() < size - static_size;
                    assert!(
                        !dynamic_free || v >= first_dynamic,
                        "{v:?} from the static band"
                    );
                    assert!(model.insert(v), "{v:?} handed out twice");
                }
                Err(e) => {
                    assert_eq!(model.len(), size, "{e}");
                    assert!(matches!(
                        e,
                        Error::RangeFull { .. } | Error::PortRangeFull { .. }
                    ));
                }
            },
            Op::Release(p) => {
                let Some(v) = value(p) else { continue };
                assert_eq!(subject.release(v), model.remove(&v), "{v:?}");
            }
            Op::Has(p) => {
                let Some(v) = value(p) else { continue };
                assert_eq!(subject.has(v), model.contains(&v), "{v:?}");
            }
            Op::SnapshotRestore => {
                let snapshot = subject.snapshot();
                let restored = subject.restored(&snapshot);
                assert_eq!(restored.values(), subject.values());
                assert_eq!(restored.snapshot(), snapshot);
                subject = restored;
            }
        }
        assert_eq!(subject.used(), model.len());
        assert_eq!(subject.free(), size - model.len());
        assert_eq!(subject.values(), model.iter().copied().collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn small_ipv4_range_agrees_with_a_set_model(seed: u64, ops in ops(30)) {
        // 10.96.0.0/27: 30 allocatable addresses, static band of 16.
        let subject = IpAllocator::with_seed("10.96.0.0/27".parse().unwrap(), seed).unwrap();
        let base = u32::from(Ipv4Addr::new(10, 96, 0, 1));
        check(subject, &ops, |p| {
            u32::try_from(i64::from(base) + p).ok().map(|v| IpAddr::V4(v.into()))
        });
    }

    #[test]
    fn small_ipv6_range_agrees_with_a_set_model(seed: u64, ops in ops(31)) {
        // fd00::/123: 31 allocatable addresses (all-ones included), static band of 16.
        let subject = IpAllocator::with_seed("fd00::/123".parse().unwrap(), seed).unwrap();
        let base = u128::from("fd00::1".parse::<Ipv6Addr>().unwrap());
        check(subject, &ops, |p| {
            let v = if p < 0 { base - p.unsigned_abs() as u128 } else { base + p as u128 };
            Some(IpAddr::V6(v.into()))
        });
    }

    #[test]
    fn port_range_agrees_with_a_set_model(seed: u64, ops in ops(40)) {
        // 30000-30039: 40 ports, static band of 16.
        let subject = PortAllocator::with_seed(PortRange::new(30000, 30039).unwrap(), seed);
        check(subject, &ops, |p| u16::try_from(30000 + p).ok());
    }

    #[test]
    fn ip_snapshot_then_restore_gives_the_same_state(
        offsets in prop::collection::btree_set(0u32..4094, 0..600),
    ) {
        let mut a = IpAllocator::with_seed("10.96.0.0/20".parse().unwrap(), 1).unwrap();
        for o in &offsets {
            a.allocate(IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + o))).unwrap();
        }
        let restored = a.restored(&a.snapshot());
        prop_assert_eq!(restored.values(), a.values());
        prop_assert_eq!(restored.used(), offsets.len());
    }

    #[test]
    fn port_snapshot_then_restore_gives_the_same_state(
        ports in prop::collection::btree_set(30000u16..=32767, 0..600),
    ) {
        let mut a = PortAllocator::with_seed(PortRange::NODE_PORTS, 1);
        for &p in &ports {
            a.allocate(p).unwrap();
        }
        let restored = a.restored(&a.snapshot());
        prop_assert_eq!(restored.values(), ports.into_iter().collect::<Vec<_>>());
    }
}
