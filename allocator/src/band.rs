//! The two bands of a range and the allocate-next scan strategy.
//!
//! Offsets `0..static_size` form the lower, *static* band; offsets
//! `static_size..size` the upper, *dynamic* band. Allocate-next prefers the
//! dynamic band so that values users pick by hand (which tend to be low, like
//! `10.96.0.10` for DNS) rarely collide with ones handed out automatically.

use crate::bitmap::Bitmap;
use crate::rng::RandomSource;

/// The smallest static band, and the range size at or below which there is
/// no static band at all.
const MIN_STATIC: u64 = 16;

/// Static band of a ClusterIP range (KEP-3070): `min(max(16, basis / 16),
/// 256)`, where `basis` is the CIDR size `2^host_bits` (network and broadcast
/// addresses included, as upstream computes it); no static band when the
/// CIDR has 16 addresses or fewer.
pub(crate) fn ip_static_band(basis: u64, size: usize) -> usize {
    band(basis, 16, 256, size)
}

/// Static band of a NodePort range (KEP-3668): `min(max(16, size / 32),
/// 128)`; no static band when the range has 16 ports or fewer.
pub(crate) fn port_static_band(size: usize) -> usize {
    band(size as u64, 32, 128, size)
}

fn band(basis: u64, step: u64, cap: u64, size: usize) -> usize {
    if basis <= MIN_STATIC {
        return 0;
    }
    let band = (basis / step).clamp(MIN_STATIC, cap) as usize;
    // Never let the static band swallow the whole range: the dynamic band
    // keeps at least one value (the formula already guarantees this for
    // every size the allocators accept).
    band.min(size.saturating_sub(1))
}

/// Picks a free offset: from a random start in the dynamic band, wrapping
/// within it; if the dynamic band is full, from a random start in the static
/// band, wrapping within it. `static_used` is the number of set bits below
/// `static_size`, so a full dynamic band is recognised without scanning it.
pub(crate) fn next_free<R: RandomSource + ?Sized>(
    bits: &Bitmap,
    static_size: usize,
    static_used: usize,
    rng: &mut R,
) -> Option<usize> {
    let size = bits.len();
    let dynamic_size = size - static_size;
    let dynamic_used = bits.ones() - static_used;
    if dynamic_used < dynamic_size {
        let start = static_size + rng.below(dynamic_size);
        return bits.first_zero_wrapping(static_size, size, start);
    }
    if static_used < static_size {
        let start = rng.below(static_size);
        return bits.first_zero_wrapping(0, static_size, start);
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ip_static_band_follows_kep_3070() {
        // /28 (16 addresses) and smaller: no static band.
        assert_eq!(ip_static_band(16, 14), 0);
        assert_eq!(ip_static_band(4, 2), 0);
        // /27: 32 / 16 = 2, raised to the minimum of 16.
        assert_eq!(ip_static_band(32, 30), 16);
        // /24: 256 / 16 = 16.
        assert_eq!(ip_static_band(256, 254), 16);
        // /20: 4096 / 16 = 256 (computed on the CIDR size like upstream,
        // not on the 4094 allocatable addresses, which would give 255).
        assert_eq!(ip_static_band(4096, 4094), 256);
        // /16 and /12: capped at 256.
        assert_eq!(ip_static_band(1 << 16, (1 << 16) - 2), 256);
        assert_eq!(ip_static_band(1 << 20, (1 << 20) - 2), 256);
    }

    #[test]
    fn port_static_band_follows_kep_3668() {
        assert_eq!(port_static_band(2768), 86);
        assert_eq!(port_static_band(16), 0);
        assert_eq!(port_static_band(17), 16);
        assert_eq!(port_static_band(1000), 31);
        assert_eq!(port_static_band(65535), 128);
    }

    struct Fixed(usize);
    impl RandomSource for Fixed {
        fn below(&mut self, n: usize) -> usize {
            self.0 % n
        }
    }

    #[test]
    fn next_free_scans_the_dynamic_band_from_the_random_start_and_wraps_within_it() {
        let mut bits = Bitmap::new(100);
        // start = 10 + 50 = 60
        assert_eq!(next_free(&bits, 10, 0, &mut Fixed(50)), Some(60));
        for i in 60..100 {
            bits.set(i);
        }
        assert_eq!(next_free(&bits, 10, 0, &mut Fixed(50)), Some(10));
    }

    #[test]
    fn next_free_uses_the_static_band_only_when_the_dynamic_band_is_full() {
        let mut bits = Bitmap::new(100);
        for i in 10..100 {
            bits.set(i);
        }
        assert_eq!(next_free(&bits, 10, 0, &mut Fixed(7)), Some(7));
        bits.set(7);
        bits.set(8);
        bits.set(9);
        assert_eq!(next_free(&bits, 10, 3, &mut Fixed(7)), Some(0));
        for i in 0..10 {
            bits.set(i);
        }
        assert_eq!(next_free(&bits, 10, 10, &mut Fixed(7)), None);
    }
}
