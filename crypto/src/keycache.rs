//! A process-wide memory of public keys already decompressed and checked.
//!
//! Decompressing an ed25519 key (and checking it is not of small order) costs
//! about as much as a third of a signature verification, and a busy node
//! parses the same few senders' keys over and over: when a transaction is
//! admitted, when a proposal carrying it is checked, when it executes. The
//! cache keeps the decompressed key of every valid key it has seen, in two
//! generations of at most [`GENERATION`] keys each (when the current one
//! fills, the older one is dropped). Only keys that passed the checks are
//! remembered, so the cache can never make an invalid key pass.

use ed25519_dalek::VerifyingKey;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Keys per generation.
pub const GENERATION: usize = 16_384;

type Generations = (HashMap<[u8; 32], VerifyingKey>, HashMap<[u8; 32], VerifyingKey>);

fn cache() -> &'static Mutex<Generations> {
    static CACHE: OnceLock<Mutex<Generations>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new((HashMap::new(), HashMap::new())))
}

/// Why a key is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFault {
    /// The bytes are not the encoding of a curve point.
    NotOnCurve,
    /// The point has small order: under the cofactored rule one signature
    /// would pass for every message.
    Weak,
}

/// The decompressed key for `bytes`, if it is a valid (on-curve, not weak)
/// ed25519 public key.
pub fn decompress(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyFault> {
    {
        let g = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = g.0.get(bytes).or_else(|| g.1.get(bytes)) {
            return Ok(*k);
        }
    }
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyFault::NotOnCurve)?;
    if key.is_weak() {
        return Err(KeyFault::Weak);
    }
    let mut g = cache().lock().unwrap_or_else(|e| e.into_inner());
    if g.0.len() >= GENERATION {
        let current = std::mem::take(&mut g.0);
        g.1 = current;
    }
    g.0.insert(*bytes, key);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_valid_keys_and_still_refuses_bad_ones() {
        let good = *crate::Keypair::from_seed(&[7; 32]).public().as_bytes();
        let first = decompress(&good).unwrap();
        assert_eq!(decompress(&good).unwrap(), first);
        // The identity point: on the curve, small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(decompress(&identity), Err(KeyFault::Weak));
        assert_eq!(decompress(&identity), Err(KeyFault::Weak));
        // y = 2 is not the y coordinate of a curve point.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(decompress(&off_curve), Err(KeyFault::NotOnCurve));
    }
}
