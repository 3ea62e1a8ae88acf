//! Allocator benchmarks; the workload is specified in docs/allocator.md
//! ("Benchmark workload") so the Go benchmark of upstream's AllocationBitmap
//! can mirror it.
//!
//! Run: `cargo bench -p svcnet-allocator --bench allocate`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use svcnet_allocator::{IpAllocator, PortAllocator, PortRange};

/// SplitMix64 and the prefill shuffle, shared with `tests/bench_workload.rs`,
/// which pins their first outputs (the Go benchmark pins the same numbers).
mod workload;
use workload::prefill_offsets;

/// Seed of the allocators' own random source (scan start positions).
const ALLOCATOR_SEED: u64 = 1;
/// Fill fractions in per mille: 0%, 50%, 99%, 99.9%.
const FILLS: [(u64, &str); 4] = [(0, "0%"), (500, "50%"), (990, "99%"), (999, "99.9%")];

fn ip_allocator(cidr: &str, permille: u64) -> IpAllocator {
    let net: IpNet = cidr.parse().unwrap_or_else(|e| panic!("{cidr}: {e}"));
    let mut a = IpAllocator::with_seed(net, ALLOCATOR_SEED).unwrap_or_else(|e| panic!("{e}"));
    let IpAddr::V4(network) = net.network() else {
        panic!("IPv4 only")
    };
    let first = u32::from(network) + 1;
    let offsets = prefill_offsets(a.size(), permille);
    for &o in &offsets {
        let ip = IpAddr::V4(Ipv4Addr::from(first + o as u32));
        assert!(a.allocate(ip).is_ok());
    }
    assert_eq!(a.used(), offsets.len());
    a
}

fn port_allocator(permille: u64) -> PortAllocator {
    let mut a = PortAllocator::with_seed(PortRange::NODE_PORTS, ALLOCATOR_SEED);
    let offsets = prefill_offsets(a.size(), permille);
    for &o in &offsets {
        assert!(a.allocate(30000 + o as u16).is_ok());
    }
    assert_eq!(a.used(), offsets.len());
    a
}

fn allocate_next_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate_next+release");
    for cidr in ["10.96.0.0/16", "10.96.0.0/12"] {
        for (permille, label) in FILLS {
            let mut a = ip_allocator(cidr, permille);
            group.bench_function(BenchmarkId::new(cidr, label), |b| {
                b.iter(|| {
                    if let Ok(ip) = a.allocate_next() {
                        a.release(black_box(ip));
                    }
                });
            });
            assert_eq!(a.used(), prefill_offsets(a.size(), permille).len());
        }
    }
    for (permille, label) in FILLS {
        let mut a = port_allocator(permille);
        group.bench_function(BenchmarkId::new("30000-32767", label), |b| {
            b.iter(|| {
                if let Ok(port) = a.allocate_next() {
                    a.release(black_box(port));
                }
            });
        });
    }
    group.finish();
}

fn snapshot_restore(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    let a = ip_allocator("10.96.0.0/12", 500);
    group.bench_function("snapshot 10.96.0.0/12 @ 50%", |b| {
        b.iter(|| black_box(a.snapshot()));
    });
    let snapshot = a.snapshot();
    let mut target = ip_allocator("10.96.0.0/12", 0);
    group.bench_function("restore 10.96.0.0/12 @ 50%", |b| {
        b.iter(|| black_box(target.restore(black_box(&snapshot)).is_ok()));
    });
    assert_eq!(target.used(), a.used());
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = allocate_next_release, snapshot_restore
}
criterion_main!(benches);
