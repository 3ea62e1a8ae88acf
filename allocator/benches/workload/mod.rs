//! The benchmark workload's prefill, shared by `benches/allocate.rs` and the
//! pinning test `tests/bench_workload.rs`; specified in docs/allocator.md
//! ("Benchmark workload") and mirrored in Go by
//! `e2e/hyperkube/allocbench/allocbench_test.go`.

/// Seed of the prefill permutation, the same every run.
pub const PREFILL_SEED: u64 = 20_261_122;

/// SplitMix64: a tiny generator that is easy to reproduce in any language.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The offsets to prefill: the first `size * permille / 1000` entries of a
/// partial Fisher-Yates shuffle of `0..size` driven by SplitMix64.
pub fn prefill_offsets(size: usize, permille: u64) -> Vec<usize> {
    let count = (size as u64 * permille / 1000) as usize;
    let mut rng = SplitMix64(PREFILL_SEED);
    let mut perm: Vec<usize> = (0..size).collect();
    for i in 0..count {
        let j = i + (rng.next() % (size - i) as u64) as usize;
        perm.swap(i, j);
    }
    perm.truncate(count);
    perm
}
