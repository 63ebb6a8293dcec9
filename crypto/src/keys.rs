//! ed25519 keys and domain-separated signatures.
//!
//! A signed message is `domain tag || len(chain id) || chain id || body`.
//! Tags are fixed, distinct and none is a prefix of another, so a vote can
//! never be replayed as a proposal or a transaction, nor on another chain.

use crate::keycache::{self, KeyFault};
use crate::rule;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// What a signature is for. Each variant has its own fixed tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// A client transaction.
    Transaction,
    /// A block proposal (signs the block id).
    Proposal,
    /// A consensus vote.
    Vote,
    /// A consensus timeout.
    Timeout,
    /// A Raft protocol message.
    Raft,
}

impl Domain {
    /// The fixed tag prefixed to every message of this domain.
    pub const fn tag(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"phalanx/transaction/v1\0",
            Domain::Proposal => b"phalanx/proposal/v1\0",
            Domain::Vote => b"phalanx/vote/v1\0",
            Domain::Timeout => b"phalanx/timeout/v1\0",
            Domain::Raft => b"phalanx/raft/v1\0",
        }
    }
}

/// The exact bytes that are signed for `body` in `domain` on `chain_id`.
pub fn signing_message(domain: Domain, chain_id: &str, body: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let id = chain_id.as_bytes();
    assert!(id.len() <= u8::MAX as usize, "chain ids are at most 255 bytes");
    let mut msg = Vec::with_capacity(tag.len() + 1 + id.len() + body.len());
    msg.extend_from_slice(tag);
    msg.push(id.len() as u8);
    msg.extend_from_slice(id);
    msg.extend_from_slice(body);
    msg
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    #[error("invalid signature encoding: {0}")]
    InvalidSignatureEncoding(String),
    #[error("signature verification failed")]
    BadSignature,
    #[error("signature {index} of the batch failed verification")]
    BadSignatureInBatch { index: usize },
}

/// An ed25519 public key (32 bytes). Shown as lowercase hex.
///
/// Parsing refuses encodings that are not points on the curve and weak
/// (small-order) keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Checks that `bytes` is a usable ed25519 public key.
    /// Valid keys are remembered decompressed (see `keycache`), so parsing a
    /// key seen before is a lookup.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<PublicKey, CryptoError> {
        keycache::decompress(&bytes).map_err(key_error)?;
        Ok(PublicKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first four bytes in hex, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        keycache::decompress(&self.0).map_err(key_error)
    }

    /// Verifies `signature` over `body` in `domain` on `chain_id`.
    pub fn verify(
        &self,
        domain: Domain,
        chain_id: &str,
        body: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        PreparedKey::new(self)?.verify(domain, chain_id, body, signature)
    }
}

fn key_error(fault: KeyFault) -> CryptoError {
    CryptoError::InvalidPublicKey(
        match fault {
            KeyFault::NotOnCurve => "not a point on the curve",
            KeyFault::Weak => "weak (small-order) key",
        }
        .into(),
    )
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl FromStr for PublicKey {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s))
            .map_err(|e| CryptoError::InvalidPublicKey(format!("not hex: {e}")))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            CryptoError::InvalidPublicKey(format!("must be 32 bytes (64 hex characters), got {} bytes", b.len()))
        })?;
        PublicKey::from_bytes(arr)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.serialize_str(&self.to_hex()) } else { self.0.serialize(s) }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
        } else {
            PublicKey::from_bytes(<[u8; 32]>::deserialize(d)?).map_err(serde::de::Error::custom)
        }
    }
}

/// An ed25519 signature (64 bytes). Shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(&self.0[..4]))
    }
}

impl FromStr for Signature {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|e| CryptoError::InvalidSignatureEncoding(format!("not hex: {e}")))?;
        let arr: [u8; 64] = bytes.try_into().map_err(|b: Vec<u8>| {
            CryptoError::InvalidSignatureEncoding(format!("must be 64 bytes, got {}", b.len()))
        })?;
        Ok(Signature(arr))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        if s.is_human_readable() {
            return s.serialize_str(&self.to_hex());
        }
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        if d.is_human_readable() {
            String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
        } else {
            d.deserialize_tuple(64, V)
        }
    }
}

/// A signing key with its public half. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Keypair {
    secret: SigningKey,
    public: PublicKey,
}

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Keypair {
        Keypair::from_seed(&rand_seed())
    }

    /// The key whose 32-byte secret seed is `seed` (deterministic; tests and
    /// the simulator use this).
    pub fn from_seed(seed: &[u8; 32]) -> Keypair {
        let secret = SigningKey::from_bytes(seed);
        let public = PublicKey(secret.verifying_key().to_bytes());
        Keypair { secret, public }
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The 32-byte secret seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// Signs `body` in `domain` on `chain_id`.
    pub fn sign(&self, domain: Domain, chain_id: &str, body: &[u8]) -> Signature {
        let msg = signing_message(domain, chain_id, body);
        Signature(self.secret.sign(&msg).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public.short())
    }
}

fn rand_seed() -> [u8; 32] {
    use rand_core::RngCore as _;
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    seed
}

/// A public key decompressed once, for verifying many signatures by the
/// same signer (decompression is about a third of a verification).
#[derive(Clone)]
pub struct PreparedKey {
    public: PublicKey,
    key: VerifyingKey,
}

impl PreparedKey {
    pub fn new(public: &PublicKey) -> Result<PreparedKey, CryptoError> {
        Ok(PreparedKey { public: *public, key: public.verifying_key()? })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Verifies `signature` over `body` in `domain` on `chain_id`.
    pub fn verify(
        &self,
        domain: Domain,
        chain_id: &str,
        body: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        let msg = signing_message(domain, chain_id, body);
        if rule::verify_one(&self.key, &msg, &signature.0) { Ok(()) } else { Err(CryptoError::BadSignature) }
    }
}

impl fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreparedKey({})", self.public.short())
    }
}

/// Batch verification with prepared keys: `items` are (full signing
/// message, signature, signer). See [`verify_batch`].
pub fn verify_batch_prepared(items: &[(&[u8], &Signature, &PreparedKey)]) -> Result<(), CryptoError> {
    let keys: Vec<VerifyingKey> = items.iter().map(|(_, _, k)| k.key).collect();
    let msgs: Vec<&[u8]> = items.iter().map(|(m, _, _)| *m).collect();
    let sigs: Vec<Signature> = items.iter().map(|(_, s, _)| **s).collect();
    batch_or_find(&msgs, &sigs, &keys)
}

fn batch_or_find(msgs: &[&[u8]], sigs: &[Signature], keys: &[VerifyingKey]) -> Result<(), CryptoError> {
    let items: Vec<rule::Item<'_>> = keys.iter().zip(msgs).zip(sigs).map(|((k, m), s)| (k, *m, &s.0)).collect();
    rule::verify_many(&items).map_err(|index| CryptoError::BadSignatureInBatch { index })
}

/// One item of a batch verification: a full signing message (see
/// [`signing_message`]), its signature and its signer.
#[derive(Clone, Debug)]
pub struct SignedMessage<'a> {
    pub message: &'a [u8],
    pub signature: &'a Signature,
    pub signer: &'a PublicKey,
}

/// Verifies many signatures at once (ed25519 batch verification, about twice
/// as fast per signature as one by one). On failure, checks them singly and
/// names the first bad one. The verdict on each signature is the one it gets
/// alone, whatever batch it is checked in (see the `rule` module: the
/// cofactored equation of ZIP 215). Deterministic: the batch's coefficients
/// are derived from its contents.
pub fn verify_batch(items: &[SignedMessage<'_>]) -> Result<(), CryptoError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        keys.push(item.signer.verifying_key().map_err(|_| CryptoError::BadSignatureInBatch { index })?);
    }
    let msgs: Vec<&[u8]> = items.iter().map(|i| i.message).collect();
    let sigs: Vec<Signature> = items.iter().map(|i| *i.signature).collect();
    batch_or_find(&msgs, &sigs, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Keypair {
        Keypair::from_seed(&[i; 32])
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let sig = k.sign(Domain::Vote, "chain-a", b"body");
        k.public().verify(Domain::Vote, "chain-a", b"body", &sig).unwrap();
    }

    /// Domain separation: a vote signature is not a proposal signature.
    #[test]
    fn signature_does_not_cross_domains() {
        let k = key(1);
        let sig = k.sign(Domain::Vote, "chain-a", b"body");
        assert_eq!(k.public().verify(Domain::Proposal, "chain-a", b"body", &sig), Err(CryptoError::BadSignature));
    }

    /// Chain separation: a signature on one chain does not verify on another.
    #[test]
    fn signature_does_not_cross_chains() {
        let k = key(1);
        let sig = k.sign(Domain::Transaction, "chain-a", b"body");
        assert_eq!(k.public().verify(Domain::Transaction, "chain-b", b"body", &sig), Err(CryptoError::BadSignature));
    }

    #[test]
    fn tags_are_prefix_free() {
        let all = [Domain::Transaction, Domain::Proposal, Domain::Vote, Domain::Timeout, Domain::Raft];
        for a in all {
            for b in all {
                if a != b {
                    assert!(!a.tag().starts_with(b.tag()), "{a:?} starts with {b:?}");
                }
            }
        }
    }

    #[test]
    fn batch_accepts_good_and_names_the_bad_one() {
        let keys: Vec<Keypair> = (1..=5).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| signing_message(Domain::Vote, "c", &[i])).collect();
        let mut sigs: Vec<Signature> = (0..5).map(|i| keys[i].sign(Domain::Vote, "c", &[i as u8])).collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public()).collect();
        fn items<'a>(msgs: &'a [Vec<u8>], sigs: &'a [Signature], pks: &'a [PublicKey]) -> Vec<SignedMessage<'a>> {
            (0..msgs.len()).map(|i| SignedMessage { message: &msgs[i], signature: &sigs[i], signer: &pks[i] }).collect()
        }
        verify_batch(&items(&msgs, &sigs, &pks)).unwrap();
        sigs[3].0[10] ^= 1;
        assert_eq!(verify_batch(&items(&msgs, &sigs, &pks)), Err(CryptoError::BadSignatureInBatch { index: 3 }));
    }

    #[test]
    fn public_key_parsing_errors_name_the_problem() {
        let e = "zz".parse::<PublicKey>().unwrap_err().to_string();
        assert!(e.contains("not hex"), "{e}");
        let e = "abcd".parse::<PublicKey>().unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        // The identity point is a weak key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        let e = PublicKey::from_bytes(ident).unwrap_err().to_string();
        assert!(e.contains("weak"), "{e}");
    }

    #[test]
    fn keys_and_signatures_round_trip_through_both_encodings() {
        let k = key(9);
        let sig = k.sign(Domain::Timeout, "c", b"x");
        let json = serde_json::to_string(&(k.public(), sig)).unwrap();
        let back: (PublicKey, Signature) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (k.public(), sig));
        let bytes = crate::codec::encode(&(k.public(), sig));
        assert_eq!(bytes.len(), 96);
        let back: (PublicKey, Signature) = crate::codec::decode(&bytes).unwrap();
        assert_eq!(back, (k.public(), sig));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = key(7);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode(k.seed())));
    }
}
