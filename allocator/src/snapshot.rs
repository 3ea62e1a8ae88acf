//! Snapshots: the compact byte form an allocator is persisted in.

use crate::bitmap::{Bitmap, Ones};

/// The most bits any supported range needs (a `/12` or a `/108`).
pub(crate) const MAX_BITS: usize = 1 << 20;

/// The persisted state of one allocator: the range it belongs to and which
/// values in it are allocated.
///
/// * `range` is the range in canonical text form: the CIDR with its host
///   bits cleared for an [`IpAllocator`](crate::IpAllocator)
///   (`"10.96.0.0/16"`), `"first-last"` for a
///   [`PortAllocator`](crate::PortAllocator) (`"30000-32767"`).
/// * `data` is the bitmap as a big-endian unsigned integer with no leading
///   zero bytes, where bit `i` (counting from the least significant bit)
///   stands for the `i`-th allocatable value: the address `network + 1 + i`,
///   or the port `first + i`. An empty range state is an empty vector. This
///   is the same encoding as upstream's `RangeAllocation.data`
///   (`big.Int.Bytes()`), so snapshots can be exchanged with it.
///
/// The size is one bit per allocatable value at most: 128 KiB for a `/12`,
/// 346 bytes for the default NodePort range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Snapshot {
    /// The range the data belongs to.
    pub range: String,
    /// The allocated values, one bit each.
    pub data: Vec<u8>,
}

/// Encodes a bitmap as a big-endian integer without leading zero bytes.
pub(crate) fn encode(bits: &Bitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(bits.words().len() * 8);
    for word in bits.words().iter().rev() {
        out.extend_from_slice(&word.to_be_bytes());
    }
    let leading = out.iter().position(|&b| b != 0).unwrap_or(out.len());
    out.drain(..leading);
    out
}

/// Decodes `data`, taken from a range of `snapshot_size` values, into a
/// bitmap of `len` values. Offsets at or past `len` (the range shrank) are
/// returned, in ascending order, instead of being set. Fails if the data
/// marks an offset the snapshot's own range does not have.
pub(crate) fn decode(
    data: &[u8],
    snapshot_size: usize,
    len: usize,
) -> Result<(Bitmap, Vec<usize>), String> {
    let leading = data.iter().position(|&b| b != 0).unwrap_or(data.len());
    let data = &data[leading..];
    let limit = snapshot_size.min(MAX_BITS);
    if data.len() > limit.div_ceil(8) {
        return Err(format!(
            "data is {} bytes long, but a range of {snapshot_size} values needs at most {}",
            data.len(),
            limit.div_ceil(8)
        ));
    }
    let words: Vec<u64> = data
        .rchunks(8)
        .map(|chunk| chunk.iter().fold(0u64, |w, &b| (w << 8) | u64::from(b)))
        .collect();
    if let Some(&top) = words.last() {
        let highest = (words.len() - 1) * 64 + 63 - top.leading_zeros() as usize;
        if highest >= snapshot_size {
            return Err(format!(
                "value #{highest} is marked allocated, but the range has only {snapshot_size} values"
            ));
        }
    }
    let dropped = Ones::new(&words, len).collect();
    Ok((Bitmap::from_words(words, len), dropped))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bitmap(len: usize, set: &[usize]) -> Bitmap {
        let mut b = Bitmap::new(len);
        for &i in set {
            b.set(i);
        }
        b
    }

    #[test]
    fn encoding_is_big_endian_without_leading_zero_bytes_like_upstream() {
        // big.NewInt(0).SetBit(.., 0) | bit 9 => 0x0201 => [0x02, 0x01]
        assert_eq!(encode(&bitmap(1000, &[0, 9])), [0x02, 0x01]);
        assert_eq!(encode(&bitmap(1000, &[])), Vec::<u8>::new());
        assert_eq!(encode(&bitmap(1000, &[64])), [0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn decode_reverses_encode() {
        let b = bitmap(4094, &[0, 1, 63, 64, 65, 2000, 4093]);
        let (back, dropped) = decode(&encode(&b), 4094, 4094).unwrap();
        assert_eq!(back, b);
        assert!(dropped.is_empty());
    }

    #[test]
    fn decode_tolerates_leading_zero_bytes() {
        let (back, _) = decode(&[0, 0, 0x02, 0x01], 16, 16).unwrap();
        assert_eq!(back, bitmap(16, &[0, 9]));
    }

    #[test]
    fn decode_into_a_smaller_range_returns_what_did_not_fit() {
        let b = bitmap(300, &[1, 100, 200, 299]);
        let (back, dropped) = decode(&encode(&b), 300, 150).unwrap();
        assert_eq!(back, bitmap(150, &[1, 100]));
        assert_eq!(dropped, [200, 299]);
    }

    #[test]
    fn decode_into_a_larger_range_keeps_everything() {
        let b = bitmap(100, &[0, 99]);
        let (back, dropped) = decode(&encode(&b), 100, 1000).unwrap();
        assert_eq!(back, bitmap(1000, &[0, 99]));
        assert!(dropped.is_empty());
    }

    #[test]
    fn decode_refuses_bits_outside_the_snapshot_range() {
        let b = bitmap(64, &[20]);
        let err = decode(&encode(&b), 20, 64).unwrap_err();
        assert!(err.contains("value #20"), "{err}");
        let err = decode(&[1; 10], 16, 16).unwrap_err();
        assert!(err.contains("at most 2"), "{err}");
    }
}
