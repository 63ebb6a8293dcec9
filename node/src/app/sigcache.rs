//! A bounded memory of transactions whose signatures verified.
//!
//! A transaction is checked when it enters the mempool, again when a block
//! carrying it is proposed to us, and again when it executes. The cache makes
//! the second and third checks free. It holds two generations of at most
//! `capacity` hashes each; when the current one fills, the older is dropped.
//! Only successful verifications are remembered, so the cache can never make
//! a bad signature pass.

use parking_lot::Mutex;
use phalanx_crypto::{DigestSet, Hash};

pub struct SigCache {
    capacity: usize,
    gens: Mutex<(DigestSet, DigestSet)>,
}

impl SigCache {
    pub fn new(capacity: usize) -> SigCache {
        SigCache { capacity: capacity.max(1), gens: Mutex::new((DigestSet::default(), DigestSet::default())) }
    }

    pub fn contains(&self, h: &Hash) -> bool {
        let g = self.gens.lock();
        g.0.contains(h) || g.1.contains(h)
    }

    pub fn insert(&self, h: Hash) {
        let mut g = self.gens.lock();
        if g.0.len() >= self.capacity {
            let current = std::mem::take(&mut g.0);
            g.1 = current;
        }
        g.0.insert(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_two_generations_then_forgets() {
        let c = SigCache::new(2);
        let h = |i: u8| Hash::digest(&[i]);
        c.insert(h(1));
        c.insert(h(2));
        c.insert(h(3)); // 1, 2 move to the old generation
        assert!(c.contains(&h(1)) && c.contains(&h(3)));
        c.insert(h(4));
        c.insert(h(5)); // 3, 4 become old; 1, 2 are gone
        assert!(!c.contains(&h(1)) && c.contains(&h(3)) && c.contains(&h(5)));
    }
}
