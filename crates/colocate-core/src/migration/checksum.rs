//! The checksum of a migration file, recorded in the history table so a file changed after it
//! ran is noticed.
//!
//! SPEC: SHA-256 of the file's bytes, hex `Display`, `from_hex`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// SHA-256 of a migration file's bytes, as recorded in the history table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    pub fn of(bytes: &[u8]) -> Checksum {
        Checksum(Sha256::digest(bytes).into())
    }

    /// Parse 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Checksum> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let s = s.as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Checksum(out))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = HEX[usize::from(b >> 4)];
            buf[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checksum, D::Error> {
        let s = String::deserialize(deserializer)?;
        Checksum::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits (sha-256)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_serde_uses_hex() {
        let c = Checksum::of(b"abc");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, format!("\"{c}\""));
        assert_eq!(serde_json::from_str::<Checksum>(&json).unwrap(), c);
        assert!(serde_json::from_str::<Checksum>(r#""abc""#).is_err());
    }
    #[test]
    fn checksum_hex_round_trip() {
        let c = Checksum::of(b"abc");
        let hex = c.to_string();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Checksum::from_hex(&hex), Some(c));
        assert_eq!(Checksum::from_hex(&hex.to_uppercase()), Some(c));
        assert_eq!(
            Checksum::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(format!("{c:?}"), format!("Checksum({hex})"));
    }

    #[test]
    fn checksum_from_bad_hex() {
        assert_eq!(Checksum::from_hex(""), None);
        assert_eq!(Checksum::from_hex(&"a".repeat(63)), None);
        assert_eq!(Checksum::from_hex(&"a".repeat(65)), None);
        assert_eq!(Checksum::from_hex(&"g".repeat(64)), None);
        assert_eq!(Checksum::from_hex(&format!("{}é", "a".repeat(62))), None);
    }
}
