//! An object's uid as the caches hold it: the apiserver makes uids as UUIDs, whose 36 characters fit
//! in 16 bytes with no allocation; anything else is kept as written.

use std::fmt;

/// A uid; [`Uid::of`] then `to_string` gives back exactly the text it was made from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uid {
    /// A UUID in its canonical form (lowercase, hyphenated).
    Uuid([u8; 16]),
    Other(Box<str>),
}

/// Where the hyphens of a canonical UUID are.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

impl Uid {
    pub fn of(text: &str) -> Self {
        parse_uuid(text).map_or_else(|| Uid::Other(text.into()), Uid::Uuid)
    }
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 || HYPHENS.iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let mut digits = bytes.iter().filter(|&&b| b != b'-');
    let mut out = [0u8; 16];
    for byte in &mut out {
        let high = lower_hex(*digits.next()?)?;
        let low = lower_hex(*digits.next()?)?;
        *byte = high << 4 | low;
    }
    Some(out)
}

/// The value of a lowercase hex digit (an uppercase one would not print back the same).
fn lower_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uid::Uuid(bytes) => {
                for (i, byte) in bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Uid::Other(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_print_back_exactly() {
        for text in [
            "0b7e6f4a-2c1d-4e5f-9a8b-7c6d5e4f3a2b",
            "0B7E6F4A-2C1D-4E5F-9A8B-7C6D5E4F3A2B",
            "0b7e6f4a2c1d4e5f9a8b7c6d5e4f3a2b0000",
            "0b7e6f4a-2c1d-4e5f-9a8b-7c6d5e4f3a2",
            "uid-pod-web-1",
            "",
        ] {
            assert_eq!(Uid::of(text).to_string(), text);
        }
        assert!(matches!(
            Uid::of("0b7e6f4a-2c1d-4e5f-9a8b-7c6d5e4f3a2b"),
            Uid::Uuid(_)
        ));
        assert!(matches!(
            Uid::of("0B7E6F4A-2C1D-4E5F-9A8B-7C6D5E4F3A2B"),
            Uid::Other(_)
        ));
        assert_eq!(size_of::<Uid>(), 24);
    }
}
