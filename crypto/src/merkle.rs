//! Merkle roots over lists of digests (RFC 6962 shape).

use crate::hash::{Hash, Hasher};

/// The RFC 6962 Merkle root of `leaves` (each leaf already a digest):
/// leaf nodes are `H(0x00 || leaf)`, inner nodes `H(0x01 || left || right)`,
/// the empty tree is `H("")`. The split point is the largest power of two
/// smaller than the number of leaves, so no two lists share a root.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::digest(b""),
        1 => {
            let mut h = Hasher::with_domain(&[0]);
            h.update(leaves[0].as_bytes());
            h.finish()
        }
        n => {
            // Largest power of two strictly smaller than n: the top bit of n - 1.
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let (l, r) = (merkle_root(&leaves[..k]), merkle_root(&leaves[k..]));
            let mut h = Hasher::with_domain(&[1]);
            h.update(l.as_bytes()).update(r.as_bytes());
            h.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: usize) -> usize {
        // Largest power of two strictly smaller than n.
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    #[test]
    fn split_point_is_largest_power_of_two_below_n() {
        for n in 2..70usize {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            assert_eq!(k, split(n), "n={n}");
        }
    }

    #[test]
    fn roots_differ_by_order_and_length() {
        let a = Hash::digest(b"a");
        let b = Hash::digest(b"b");
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_ne!(merkle_root(&[a]), merkle_root(&[a, a]));
        assert_ne!(merkle_root(&[]), merkle_root(&[a]));
    }
}
