//! The injectable random source used to pick where a dynamic scan starts.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::{SmallRng, SysRng};
use rand::{RngExt, SeedableRng};

/// Where [`allocate_next`](crate::IpAllocator::allocate_next) starts
/// scanning each band.
///
/// Implemented for every [`rand::Rng`] (for example
/// [`SmallRng`](rand::rngs::SmallRng) or `StdRng`), so
/// a seeded generator makes allocation deterministic in tests. Implement it
/// yourself to script the start positions exactly.
pub trait RandomSource {
    /// A value in `0..n`. Called with `n >= 1` only.
    fn below(&mut self, n: usize) -> usize;
}

impl<R: rand::Rng + ?Sized> RandomSource for R {
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.random_range(0..n)
    }
}

/// The default random source: a [`SmallRng`] seeded from the operating
/// system, or from the clock if the system has no entropy to give (as
/// upstream seeds from the clock).
pub(crate) fn default_rng() -> SmallRng {
    SmallRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        SmallRng::seed_from_u64(nanos as u64 ^ (nanos >> 64) as u64)
    })
}

/// A [`SmallRng`] seeded with `seed`, for reproducible allocation.
pub(crate) fn seeded_rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}
