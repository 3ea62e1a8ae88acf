//! The family-agnostic allocator over offsets `0..size`, shared by the IP
//! and port allocators (which translate values to offsets and back).

use crate::band;
use crate::bitmap::{Bitmap, Ones};
use crate::rng::RandomSource;
use crate::snapshot;

/// A bitmap with its band split and random source.
#[derive(Debug, Clone)]
pub(crate) struct Pool<R> {
    bits: Bitmap,
    static_size: usize,
    /// Set bits below `static_size`, kept so a full dynamic band is known
    /// without scanning it.
    static_used: usize,
    rng: R,
}

impl<R: RandomSource> Pool<R> {
    pub(crate) fn new(size: usize, static_size: usize, rng: R) -> Self {
        Self {
            bits: Bitmap::new(size),
            static_size,
            static_used: 0,
            rng,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.bits.len()
    }

    pub(crate) fn static_size(&self) -> usize {
        self.static_size
    }

    pub(crate) fn used(&self) -> usize {
        self.bits.ones()
    }

    pub(crate) fn free(&self) -> usize {
        self.bits.len() - self.bits.ones()
    }

    /// Whether `offset` (below `size`) is allocated.
    pub(crate) fn has(&self, offset: usize) -> bool {
        self.bits.get(offset)
    }

    /// Allocates `offset` (below `size`); `false` if it already was.
    pub(crate) fn allocate(&mut self, offset: usize) -> bool {
        let newly = self.bits.set(offset);
        if newly && offset < self.static_size {
            self.static_used += 1;
        }
        newly
    }

    /// Allocates a free offset chosen by the band strategy.
    pub(crate) fn allocate_next(&mut self) -> Option<usize> {
        let offset = band::next_free(
            &self.bits,
            self.static_size,
            self.static_used,
            &mut self.rng,
        )?;
        self.allocate(offset);
        Some(offset)
    }

    /// Releases `offset` (below `size`); `true` if it was allocated.
    pub(crate) fn release(&mut self, offset: usize) -> bool {
        let was = self.bits.clear(offset);
        if was && offset < self.static_size {
            self.static_used -= 1;
        }
        was
    }

    /// Allocated offsets in ascending order.
    pub(crate) fn iter(&self) -> Ones<'_> {
        self.bits.iter_ones()
    }

    pub(crate) fn snapshot_data(&self) -> Vec<u8> {
        snapshot::encode(&self.bits)
    }

    /// Replaces the state with `data` taken from a range of `snapshot_size`
    /// values; returns the offsets that do not fit this pool. The state is
    /// untouched on error.
    pub(crate) fn restore(
        &mut self,
        data: &[u8],
        snapshot_size: usize,
    ) -> Result<Vec<usize>, String> {
        let (bits, dropped) = snapshot::decode(data, snapshot_size, self.bits.len())?;
        self.static_used = bits.ones_below(self.static_size);
        self.bits = bits;
        Ok(dropped)
    }
}
