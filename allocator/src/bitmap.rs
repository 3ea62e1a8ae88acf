//! The bitmap core: one bit per allocatable value, scanned a 64-bit word at
//! a time.
//!
//! Bit `i` is set when offset `i` is allocated. Bits past `len` in the last
//! word are always zero. Callers (the pool) guarantee that every offset they
//! pass is below `len`.

use std::fmt;

const WORD_BITS: usize = u64::BITS as usize;

/// A fixed-size set of offsets `0..len`, stored as little-endian words.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    len: usize,
    ones: usize,
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bitmap")
            .field("len", &self.len)
            .field("ones", &self.ones)
            .finish_non_exhaustive()
    }
}

impl Bitmap {
    /// An empty bitmap of `len` bits.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(WORD_BITS)],
            len,
            ones: 0,
        }
    }

    /// Builds a bitmap of `len` bits from raw words, clearing any bit at or
    /// past `len`. Missing words are zero, extra words are ignored.
    pub(crate) fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        let count = len.div_ceil(WORD_BITS);
        words.resize(count, 0);
        let tail = len % WORD_BITS;
        if tail != 0
            && let Some(last) = words.last_mut()
        {
            *last &= (1u64 << tail) - 1;
        }
        let ones = words.iter().map(|w| w.count_ones() as usize).sum();
        Self { words, len, ones }
    }

    /// The raw words (bit `i` of word `w` is offset `64 * w + i`).
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// Number of bits.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of set bits.
    pub(crate) fn ones(&self) -> usize {
        self.ones
    }

    /// Whether bit `i` is set.
    pub(crate) fn get(&self, i: usize) -> bool {
        self.words[i / WORD_BITS] & (1u64 << (i % WORD_BITS)) != 0
    }

    /// Sets bit `i`; returns `true` if it was clear.
    pub(crate) fn set(&mut self, i: usize) -> bool {
        let word = &mut self.words[i / WORD_BITS];
        let mask = 1u64 << (i % WORD_BITS);
        let was_clear = *word & mask == 0;
        *word |= mask;
        self.ones += usize::from(was_clear);
        was_clear
    }

    /// Clears bit `i`; returns `true` if it was set.
    pub(crate) fn clear(&mut self, i: usize) -> bool {
        let word = &mut self.words[i / WORD_BITS];
        let mask = 1u64 << (i % WORD_BITS);
        let was_set = *word & mask != 0;
        *word &= !mask;
        self.ones -= usize::from(was_set);
        was_set
    }

    /// The lowest clear bit in `from..to`, if any (`to <= len`).
    ///
    /// Full words are skipped with one compare against `!0`; the first word
    /// with a hole is resolved with `trailing_ones`.
    pub(crate) fn first_zero(&self, from: usize, to: usize) -> Option<usize> {
        if from >= to {
            return None;
        }
        let last = (to - 1) / WORD_BITS;
        let mut w = from / WORD_BITS;
        // Pretend the bits below `from` in the first word are taken.
        let mut word = self.words[w] | ((1u64 << (from % WORD_BITS)) - 1);
        loop {
            if word != u64::MAX {
                let bit = w * WORD_BITS + word.trailing_ones() as usize;
                return (bit < to).then_some(bit);
            }
            if w == last {
                return None;
            }
            w += 1;
            word = self.words[w];
        }
    }

    /// The first clear bit in `lo..hi` scanning from `start` up to `hi`, then
    /// wrapping around from `lo` up to `start`.
    pub(crate) fn first_zero_wrapping(&self, lo: usize, hi: usize, start: usize) -> Option<usize> {
        self.first_zero(start, hi)
            .or_else(|| self.first_zero(lo, start))
    }

    /// Number of set bits in `0..to`.
    pub(crate) fn ones_below(&self, to: usize) -> usize {
        let full = to / WORD_BITS;
        let mut n: usize = self.words[..full]
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum();
        let tail = to % WORD_BITS;
        if tail != 0 {
            n += (self.words[full] & ((1u64 << tail) - 1)).count_ones() as usize;
        }
        n
    }

    /// The set bits in ascending order.
    pub(crate) fn iter_ones(&self) -> Ones<'_> {
        Ones::new(&self.words, 0)
    }
}

/// Iterator over the set bits of a [`Bitmap`], lowest first.
#[derive(Debug, Clone)]
pub(crate) struct Ones<'a> {
    words: &'a [u64],
    index: usize,
    current: u64,
}

impl<'a> Ones<'a> {
    /// The set bits of `words` at or past bit `start`, lowest first.
    pub(crate) fn new(words: &'a [u64], start: usize) -> Self {
        let index = start / WORD_BITS;
        let below = (1u64 << (start % WORD_BITS)) - 1;
        Self {
            words,
            index,
            current: words.get(index).map_or(0, |w| w & !below),
        }
    }
}

impl Iterator for Ones<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.current == 0 {
            self.index += 1;
            self.current = *self.words.get(self.index)?;
        }
        let bit = self.current.trailing_zeros() as usize;
        self.current &= self.current - 1;
        Some(self.index * WORD_BITS + bit)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn set_and_clear_report_whether_the_bit_changed_and_keep_the_count() {
        let mut b = Bitmap::new(130);
        assert!(b.set(129));
        assert!(!b.set(129));
        assert!(b.get(129));
        assert_eq!(b.ones(), 1);
        assert!(b.clear(129));
        assert!(!b.clear(129));
        assert_eq!(b.ones(), 0);
    }

    #[test]
    fn first_zero_skips_full_words_and_respects_bounds() {
        let mut b = Bitmap::new(200);
        for i in 0..150 {
            b.set(i);
        }
        assert_eq!(b.first_zero(0, 200), Some(150));
        assert_eq!(b.first_zero(10, 150), None);
        assert_eq!(b.first_zero(151, 200), Some(151));
        assert_eq!(b.first_zero(199, 200), Some(199));
        assert_eq!(b.first_zero(5, 5), None);
        b.clear(70);
        assert_eq!(b.first_zero(3, 200), Some(70));
        assert_eq!(b.first_zero(71, 150), None);
    }

    #[test]
    fn first_zero_never_reports_padding_bits_past_len() {
        let mut b = Bitmap::new(70);
        for i in 0..70 {
            b.set(i);
        }
        assert_eq!(b.first_zero(0, 70), None);
        assert_eq!(b.first_zero(65, 70), None);
    }

    #[test]
    fn first_zero_wrapping_wraps_to_the_bottom_of_the_band() {
        let mut b = Bitmap::new(256);
        for i in 16..256 {
            b.set(i);
        }
        b.clear(20);
        assert_eq!(b.first_zero_wrapping(16, 256, 100), Some(20));
        assert_eq!(b.first_zero_wrapping(16, 256, 20), Some(20));
        b.set(20);
        assert_eq!(b.first_zero_wrapping(16, 256, 100), None);
        assert_eq!(b.first_zero_wrapping(0, 16, 7), Some(7));
    }

    #[test]
    fn iter_ones_yields_set_bits_in_ascending_order() {
        let mut b = Bitmap::new(300);
        for i in [299, 0, 63, 64, 128, 5] {
            b.set(i);
        }
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), [0, 5, 63, 64, 128, 299]);
        assert_eq!(Bitmap::new(0).iter_ones().count(), 0);
        assert_eq!(Ones::new(b.words(), 64).collect::<Vec<_>>(), [64, 128, 299]);
        assert_eq!(Ones::new(b.words(), 65).collect::<Vec<_>>(), [128, 299]);
        assert_eq!(Ones::new(b.words(), 300).count(), 0);
        assert_eq!(Ones::new(b.words(), 10_000).count(), 0);
    }

    #[test]
    fn ones_below_counts_a_prefix() {
        let mut b = Bitmap::new(300);
        for i in [0, 15, 16, 64, 200] {
            b.set(i);
        }
        assert_eq!(b.ones_below(16), 2);
        assert_eq!(b.ones_below(64), 3);
        assert_eq!(b.ones_below(65), 4);
        assert_eq!(b.ones_below(300), 5);
    }

    #[test]
    fn from_words_clears_bits_past_len() {
        let b = Bitmap::from_words(vec![u64::MAX, u64::MAX], 70);
        assert_eq!(b.ones(), 70);
        assert_eq!(b.words().len(), 2);
        let short = Bitmap::from_words(vec![1], 200);
        assert_eq!(short.words().len(), 4);
        assert_eq!(short.ones(), 1);
    }
}
