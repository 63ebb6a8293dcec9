//! Keys, signatures, digests and the one canonical codec of Phalanx.
//!
//! Everything that is signed or hashed anywhere in the project goes through
//! this crate, so that there is exactly one byte encoding ([`codec`]), one
//! digest ([`Hash`], SHA-256) and one signing scheme ([`Keypair::sign`],
//! ed25519 over `domain tag || chain id || body`).
//!
//! Invariants this crate owns:
//! - A signature made for one [`Domain`] never verifies for another, and a
//!   signature made on one chain never verifies on another.
//! - [`codec::decode`] accepts exactly what [`codec::encode`] produces: no
//!   trailing bytes, no oversized length prefixes.
//! - A signature gets the same verdict alone and in any batch: both apply
//!   the cofactored ed25519 equation (ZIP 215 rules), and weak (small-order)
//!   public keys are refused when parsed. Replicas that batch differently
//!   therefore never disagree on a transaction.
//!
//! This crate depends on no other member of the workspace and does no I/O
//! except in [`keyfile`].

pub mod codec;
mod hash;
mod keycache;
pub mod keyfile;
mod keys;
mod merkle;
mod rule;

pub use hash::{DigestHasher, DigestMap, DigestSet, Hash, Hasher};
pub use keys::{
    CryptoError, Domain, Keypair, PreparedKey, PublicKey, Signature, SignedMessage, signing_message, verify_batch,
    verify_batch_prepared,
};
pub use merkle::merkle_root;
