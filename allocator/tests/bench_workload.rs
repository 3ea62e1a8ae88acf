//! Pins the allocator benchmark's prefill (docs/allocator.md, "Benchmark
//! workload"): the same numbers are pinned by `TestPrefillMatchesRust` in
//! `e2e/hyperkube/allocbench/allocbench_test.go`, so the Rust and the Go
//! (upstream `AllocationBitmap`) benchmarks prefill the very same offsets.

#[path = "../benches/workload/mod.rs"]
mod workload;

use workload::{PREFILL_SEED, SplitMix64, prefill_offsets};

/// Range sizes: `10.96.0.0/16`, `10.96.0.0/12`, NodePorts `30000-32767`.
const SIZE_16: usize = 65_534;
const SIZE_12: usize = 1_048_574;
const SIZE_PORTS: usize = 2_768;

#[test]
fn splitmix64_first_outputs() {
    let mut rng = SplitMix64(PREFILL_SEED);
    let got: Vec<u64> = (0..3).map(|_| rng.next()).collect();
    assert_eq!(got, SPLITMIX64_FIRST);
}

/// First outputs of SplitMix64 seeded with 20261122.
const SPLITMIX64_FIRST: [u64; 3] = [
    0x08fa_96a3_b618_75f2,
    0x1f47_be38_2adb_1444,
    0xb2b5_c6e8_05a2_5b18,
];

#[test]
fn first_shuffled_offsets() {
    assert_eq!(
        prefill_offsets(SIZE_PORTS, 999)[..8],
        [274, 2087, 2648, 2562, 602, 98, 2009, 447]
    );
    assert_eq!(
        prefill_offsets(SIZE_16, 999)[..8],
        [33926, 37225, 36422, 28407, 39676, 45188, 57593, 43050]
    );
    assert_eq!(
        prefill_offsets(SIZE_12, 999)[..8],
        [55060, 991792, 506810, 139419, 505146, 552794, 83025, 634767]
    );
}

#[test]
fn prefill_counts_round_down() {
    let counts = |size| [0, 500, 990, 999].map(|f| prefill_offsets(size, f).len());
    assert_eq!(counts(SIZE_PORTS), [0, 1384, 2740, 2765]);
    assert_eq!(counts(SIZE_16), [0, 32767, 64878, 65468]);
    assert_eq!(counts(SIZE_12), [0, 524287, 1038088, 1047525]);
}

#[test]
fn prefill_offsets_are_distinct_and_in_range() {
    let offsets = prefill_offsets(SIZE_PORTS, 999);
    let mut seen = vec![false; SIZE_PORTS];
    for o in offsets {
        assert!(!seen[o], "offset {o} twice");
        seen[o] = true;
    }
}
