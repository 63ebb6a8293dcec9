//! The one ed25519 verification rule, applied the same way alone and in
//! batches.
//!
//! Replicas must agree on every signature's verdict: a transaction that one
//! validator executes and another refuses splits their app hashes. Yet each
//! validator checks signatures in batches whose make-up depends on its own
//! arrival order, and falls back to single checks when a batch fails. With
//! ed25519-dalek's own functions the two disagree at the edges: its single
//! `verify` compares the bytes of R with the recomputed point (cofactorless,
//! canonical R only), while its `verify_batch` sums decompressed points with
//! random coefficients (cofactorless). A signature whose error term is a
//! small-order point, or whose R is a non-canonical encoding, always fails
//! alone and passes a batch or not depending on its companions.
//!
//! Phalanx therefore checks the cofactored equation everywhere, the rule of
//! Zcash's ZIP 215 (also used by ed25519-zebra):
//!
//! ```text
//!     [8]([s]B - [k]A - R) = 0,   k = SHA-512(R bytes || A bytes || M) mod l
//! ```
//!
//! with `s` canonical (below the group order l), `R` any 32 bytes that
//! decompress to a curve point, and `A` a key that parsed (on the curve, not
//! of small order; see `keycache`). Every honestly made signature passes. A
//! batch checks `[8] Σ zᵢ([sᵢ]B - [kᵢ]Aᵢ - Rᵢ) = 0` with 128-bit coefficients
//! `zᵢ` derived from a hash of the whole batch. Multiplying by the cofactor
//! sends each error term into the prime-order subgroup, so the batch passes
//! when every member passes, and fails when any member fails (except with
//! probability about 2⁻¹²⁸, which an attacker cannot raise without breaking
//! SHA-512). Single checks are the definition: a batch that fails is always
//! followed by single checks, and their verdicts are the answer.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha512};

/// One signature to check: signer, full signed message, 64 signature bytes.
pub(crate) type Item<'a> = (&'a VerifyingKey, &'a [u8], &'a [u8; 64]);

/// `s` if the signature's second half is a canonical scalar.
fn canonical_s(sig: &[u8; 64]) -> Option<Scalar> {
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    Scalar::from_canonical_bytes(s).into()
}

fn r_bytes(sig: &[u8; 64]) -> CompressedEdwardsY {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    CompressedEdwardsY(r)
}

/// The challenge k = SHA-512(R || A || M) mod l, and its 64-byte hash.
fn challenge(r: &CompressedEdwardsY, key: &VerifyingKey, msg: &[u8]) -> (Scalar, [u8; 64]) {
    let mut h = Sha512::new();
    h.update(r.as_bytes());
    h.update(key.as_bytes());
    h.update(msg);
    let wide: [u8; 64] = h.finalize().into();
    (Scalar::from_bytes_mod_order_wide(&wide), wide)
}

/// Checks one signature under the rule above.
pub(crate) fn verify_one(key: &VerifyingKey, msg: &[u8], sig: &[u8; 64]) -> bool {
    let Some(s) = canonical_s(sig) else { return false };
    let r = r_bytes(sig);
    let (k, _) = challenge(&r, key, msg);
    // [s]B - [k]A: the R an honest signer committed to.
    let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &s);
    // Every honest signature ends here, at no cost beyond the cofactorless check.
    if expected.compress() == r {
        return true;
    }
    let Some(r) = r.decompress() else { return false };
    (expected - r).mul_by_cofactor().is_identity()
}

/// Checks many signatures at once; on failure, the index of the first one
/// that fails alone. Deterministic: the coefficients come from the batch's
/// own contents.
pub(crate) fn verify_many(items: &[Item<'_>]) -> Result<(), usize> {
    match items.len() {
        0 => return Ok(()),
        1 => return if verify_one(items[0].0, items[0].1, items[0].2) { Ok(()) } else { Err(0) },
        _ => {}
    }
    if batch_holds(items) == Some(true) {
        return Ok(());
    }
    // The single verdicts are the rule. (A failed batch whose members all
    // pass alone cannot happen: their error terms vanish under [8].)
    match items.iter().position(|(key, msg, sig)| !verify_one(key, msg, sig)) {
        Some(index) => Err(index),
        None => Ok(()),
    }
}

/// Whether the batch equation holds; `None` if some member is malformed
/// (non-canonical s, or R not a curve point).
fn batch_holds(items: &[Item<'_>]) -> Option<bool> {
    let n = items.len();
    let mut ss = Vec::with_capacity(n);
    let mut ks = Vec::with_capacity(n);
    let mut rs = Vec::with_capacity(n);
    // The coefficients' seed binds every R, A, k (hence every message) and s.
    let mut seed = Sha512::new();
    seed.update(b"phalanx/batch-verify/v1\0");
    for (key, msg, sig) in items {
        let s = canonical_s(sig)?;
        let r = r_bytes(sig);
        let (k, wide) = challenge(&r, key, msg);
        seed.update(sig);
        seed.update(key.as_bytes());
        seed.update(wide);
        rs.push(r.decompress()?);
        ss.push(s);
        ks.push(k);
    }
    let seed: [u8; 64] = seed.finalize().into();
    let zs = coefficients(&seed, n);

    // [8]( [-Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ ) = 0
    let b_coefficient: Scalar = zs.iter().zip(&ss).map(|(z, s)| z * s).sum();
    let scalars =
        std::iter::once(-b_coefficient).chain(zs.iter().copied()).chain(zs.iter().zip(&ks).map(|(z, k)| z * k));
    let points = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(rs)
        .chain(items.iter().map(|(key, _, _)| key.to_edwards()));
    Some(EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity())
}

/// `n` 128-bit coefficients, four from each SHA-512 of `seed || counter`.
fn coefficients(seed: &[u8; 64], n: usize) -> Vec<Scalar> {
    let mut zs = Vec::with_capacity(n);
    let mut counter = 0u64;
    while zs.len() < n {
        let block: [u8; 64] = Sha512::new().chain_update(seed).chain_update(counter.to_le_bytes()).finalize().into();
        for chunk in block.chunks_exact(16) {
            if zs.len() < n {
                let mut z = [0u8; 32];
                z[..16].copy_from_slice(chunk);
                zs.push(Scalar::from_bytes_mod_order(z));
            }
        }
        counter += 1;
    }
    zs
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
    use proptest::prelude::*;

    fn signer(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// A signature by `key` on `msg` whose R is `[r]B + extra` (encoded as
    /// `encode` says), s made to match: its error term is `extra`.
    fn crafted(
        key: &SigningKey,
        msg: &[u8],
        r: Scalar,
        extra: EdwardsPoint,
        encode: fn(EdwardsPoint) -> [u8; 32],
    ) -> [u8; 64] {
        let r_point = r * B + extra;
        let r_enc = CompressedEdwardsY(encode(r_point));
        let (k, _) = challenge(&r_enc, &key.verifying_key(), msg);
        let s = r + k * key.to_scalar();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(r_enc.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }

    fn canonical(p: EdwardsPoint) -> [u8; 32] {
        p.compress().to_bytes()
    }

    /// The identity's other encoding: y = p + 1 = 2²⁵⁵ - 18.
    fn identity_non_canonical(p: EdwardsPoint) -> [u8; 32] {
        assert!(p.is_identity());
        let mut b = [0xff; 32];
        b[0] = 0xee;
        b[31] = 0x7f;
        b
    }

    fn honest(i: u8, msg: &[u8]) -> (VerifyingKey, Vec<u8>, [u8; 64]) {
        let k = signer(i);
        (k.verifying_key(), msg.to_vec(), k.sign(msg).to_bytes())
    }

    #[test]
    fn honest_signatures_pass_alone_and_together() {
        let sigs: Vec<_> = (1..=9).map(|i| honest(i, &[i; 40])).collect();
        let items: Vec<Item<'_>> = sigs.iter().map(|(k, m, s)| (k, &m[..], s)).collect();
        assert!(items.iter().all(|(k, m, s)| verify_one(k, m, s)));
        assert_eq!(verify_many(&items), Ok(()));
    }

    /// The case that split verdicts before: an error term of small order.
    /// ed25519-dalek's single check refuses it; the rule accepts it, alone
    /// and in every batch, whatever its companions and position.
    #[test]
    fn a_small_order_error_gets_one_verdict_alone_and_in_every_batch() {
        let key = signer(1);
        let msg = b"transfer 10 to bob";
        for torsion in EIGHT_TORSION.iter().skip(1) {
            let sig = crafted(&key, msg, Scalar::from(12345u64), *torsion, canonical);
            let vk = key.verifying_key();
            assert!(
                vk.verify(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_err(),
                "dalek's own check refuses it"
            );
            assert!(verify_one(&vk, msg, &sig));
            for companions in 1..=12u8 {
                let others: Vec<_> = (0..companions).map(|i| honest(i + 2, &[i, companions])).collect();
                for at in 0..=others.len() {
                    let mut items: Vec<Item<'_>> = others.iter().map(|(k, m, s)| (k, &m[..], s)).collect();
                    items.insert(at, (&vk, &msg[..], &sig));
                    assert_eq!(verify_many(&items), Ok(()), "companions {companions}, position {at}");
                }
            }
        }
    }

    #[test]
    fn a_non_canonical_r_gets_one_verdict_alone_and_in_a_batch() {
        let key = signer(3);
        let vk = key.verifying_key();
        let msg = b"m";
        let sig = crafted(&key, msg, Scalar::ZERO, EdwardsPoint::default(), identity_non_canonical);
        assert!(CompressedEdwardsY(sig[..32].try_into().unwrap()).decompress().is_some());
        assert!(vk.verify(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_err(), "dalek's own check refuses it");
        assert!(verify_one(&vk, msg, &sig));
        let other = honest(4, b"n");
        assert_eq!(verify_many(&[(&other.0, &other.1, &other.2), (&vk, msg, &sig)]), Ok(()));
    }

    #[test]
    fn a_small_order_error_plus_anything_else_fails_alone_and_in_every_batch() {
        let key = signer(5);
        let vk = key.verifying_key();
        let msg = b"m";
        let sig = crafted(&key, msg, Scalar::from(7u64), EIGHT_TORSION[3] + B, canonical);
        assert!(!verify_one(&vk, msg, &sig));
        for companions in 1..=8u8 {
            let others: Vec<_> = (0..companions).map(|i| honest(i + 6, &[i])).collect();
            let mut items: Vec<Item<'_>> = others.iter().map(|(k, m, s)| (k, &m[..], s)).collect();
            items.push((&vk, msg, &sig));
            assert_eq!(verify_many(&items), Err(companions as usize));
        }
    }

    #[test]
    fn non_canonical_s_and_r_off_the_curve_are_refused() {
        let (vk, msg, sig) = honest(9, b"m");
        // s + l: same value mod l, non-canonical encoding.
        let s = Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()).unwrap();
        let mut wide = [0u8; 33];
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = s.as_bytes()[i] as u16 + l[i] as u16 + carry;
            wide[i] = v as u8;
            carry = v >> 8;
        }
        wide[32] = carry as u8;
        assert_eq!(wide[32], 0, "s + l fits in 32 bytes");
        let mut high_s = sig;
        high_s[32..].copy_from_slice(&wide[..32]);
        assert!(!verify_one(&vk, &msg, &high_s));
        // R = y 2, not on the curve.
        let mut off_curve = sig;
        off_curve[..32].fill(0);
        off_curve[0] = 2;
        assert!(!verify_one(&vk, &msg, &off_curve));
        let other = honest(10, b"n");
        for bad in [high_s, off_curve] {
            assert_eq!(verify_many(&[(&other.0, &other.1, &other.2), (&vk, &msg, &bad)]), Err(1));
        }
    }

    /// A key with a small-order component (on the curve, not itself of
    /// small order, so parsing accepts it): its honest-looking signatures
    /// get one verdict alone and in batches of every size, including
    /// those large enough for the other multiplication algorithm.
    #[test]
    fn a_key_with_a_small_order_component_gets_one_verdict_everywhere() {
        let secret = Scalar::from(987_654_321u64);
        let a_point = secret * B + EIGHT_TORSION[5];
        let vk = VerifyingKey::from_bytes(&a_point.compress().to_bytes()).unwrap();
        assert!(!vk.is_weak());
        let msg = b"mixed";
        let r = Scalar::from(4242u64);
        let r_enc = (r * B).compress();
        let (k, _) = challenge(&r_enc, &vk, msg);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(r_enc.as_bytes());
        sig[32..].copy_from_slice((r + k * secret).as_bytes());
        assert!(verify_one(&vk, msg, &sig));
        let others: Vec<_> = (0..240u32).map(|i| honest((i % 200) as u8 + 1, &i.to_le_bytes())).collect();
        for n in [1usize, 7, 63, 189, 190, 239] {
            let mut items: Vec<Item<'_>> = others[..n].iter().map(|(k, m, s)| (k, &m[..], s)).collect();
            items.insert(n / 2, (&vk, &msg[..], &sig));
            assert_eq!(verify_many(&items), Ok(()), "batch of {}", n + 1);
        }
        // And a forged one among 200 is found at its place.
        let mut bad = sig;
        bad[40] ^= 1;
        let mut items: Vec<Item<'_>> = others[..199].iter().map(|(k, m, s)| (k, &m[..], s)).collect();
        items.insert(150, (&vk, &msg[..], &bad));
        assert_eq!(verify_many(&items), Err(150));
    }

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Honest,
        SmallOrderError,
        Forged,
    }

    proptest! {
        /// Any mix, in any order: the batch verdict is the first member that
        /// fails alone, or none.
        #[test]
        fn batch_verdict_is_the_single_verdicts(kinds in proptest::collection::vec(
            prop_oneof![3 => Just(Kind::Honest), 2 => Just(Kind::SmallOrderError), 1 => Just(Kind::Forged)], 1..24)) {
            let sigs: Vec<(VerifyingKey, Vec<u8>, [u8; 64])> = kinds.iter().enumerate().map(|(i, kind)| {
                let key = signer(i as u8 + 1);
                let msg = vec![i as u8; 8];
                let sig = match kind {
                    Kind::Honest => key.sign(&msg).to_bytes(),
                    Kind::SmallOrderError => crafted(&key, &msg, Scalar::from(i as u64 + 99), EIGHT_TORSION[1 + i % 7], canonical),
                    Kind::Forged => crafted(&key, &msg, Scalar::from(i as u64 + 99), EIGHT_TORSION[i % 8] + B, canonical),
                };
                (key.verifying_key(), msg, sig)
            }).collect();
            let items: Vec<Item<'_>> = sigs.iter().map(|(k, m, s)| (k, &m[..], s)).collect();
            let first_bad = items.iter().position(|(k, m, s)| !verify_one(k, m, s));
            prop_assert_eq!(first_bad, kinds.iter().position(|k| matches!(k, Kind::Forged)));
            prop_assert_eq!(verify_many(&items), first_bad.map_or(Ok(()), Err));
        }
    }
}
