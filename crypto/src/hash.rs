//! SHA-256 digests.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;
use std::fmt;
use std::str::FromStr;

/// Builds the hasher of maps and sets keyed by digests ([`DigestMap`],
/// [`DigestSet`]): foldhash with a per-process random seed. A digest is
/// already uniform, so the map needs only a few cheap mixing steps, not
/// SipHash (the standard library's default, several times slower per
/// lookup, which showed as about 3 % of a loaded validator's CPU in the
/// mempool); the seed keeps senders who grind transaction digests from
/// choosing which buckets they land in.
pub type DigestHasher = foldhash::fast::RandomState;
/// A hash map keyed by digests. Make one with `DigestMap::default()`.
pub type DigestMap<V> = std::collections::HashMap<Hash, V, DigestHasher>;
/// A hash set of digests. Make one with `DigestSet::default()`.
pub type DigestSet = std::collections::HashSet<Hash, DigestHasher>;

/// A SHA-256 digest. Shown and parsed as 64 lowercase hex characters;
/// encoded canonically as 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero digest, used where no predecessor exists.
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Hash {
        Hash(sha2::Sha256::digest(data).into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first four bytes in hex, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl FromStr for Hash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(s).map_err(|e| format!("not a hex digest: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("a digest is 32 bytes (64 hex characters), got {}", b.len()))?;
        Ok(Hash(arr))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.serialize_str(&self.to_hex()) } else { self.0.serialize(s) }
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(Hash(<[u8; 32]>::deserialize(d)?))
        }
    }
}

/// Incremental SHA-256, for digests over several parts.
#[derive(Default, Clone)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    /// A hasher whose input starts with `domain`, so digests of different
    /// kinds of object never collide by construction.
    pub fn with_domain(domain: &[u8]) -> Hasher {
        let mut h = Hasher::default();
        h.update(domain);
        h
    }

    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    pub fn finish(self) -> Hash {
        Hash(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(Hash::digest(b"abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash::digest(b"x");
        assert_eq!(h.to_hex().parse::<Hash>().unwrap(), h);
        assert!("abc".parse::<Hash>().unwrap_err().contains("hex"));
        assert!("abcd".parse::<Hash>().unwrap_err().contains("32 bytes"));
    }

    #[test]
    fn json_is_hex_and_codec_is_raw() {
        let h = Hash::digest(b"x");
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{}\"", h.to_hex()));
        assert_eq!(crate::codec::encode(&h).len(), 32);
    }
}
