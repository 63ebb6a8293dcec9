//! The thread-safe handle used by RPC handlers, the network and the
//! consensus driver concurrently.
//!
//! Invariants:
//! - the pool's lock is never held while the application's [`TxChecker`]
//!   runs, so a slow signature check never stalls reaping, and a checker may
//!   itself use the mempool;
//! - every transaction given to [`SharedMempool::add`] or
//!   [`SharedMempool::add_batch`] counts exactly once in [`MempoolStats`]:
//!   as admitted, or under its rejection's kind.

use crate::{Mempool, MempoolConfig, Origin, Rejection, Sender, TxChecker};
use bytes::Bytes;
use parking_lot::Mutex;
use phalanx_crypto::Hash;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MempoolStats {
    /// Transactions admitted.
    pub admitted: u64,
    /// Refused transactions per [`Rejection::kind`]; kinds never seen are absent.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Pending transactions dropped because their nonce had been passed.
    pub evicted_stale: u64,
    /// Pending transactions dropped to make room because their sender's
    /// next nonce was missing.
    pub evicted_gapped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    admitted: AtomicU64,
    /// Indexed by `Rejection::code() - 1`.
    rejected: [AtomicU64; Rejection::KINDS.len()],
}

/// Thread-safe handle to a [`Mempool`]; clones share the same pool.
#[derive(Clone, Debug)]
pub struct SharedMempool {
    pool: Arc<Mutex<Mempool>>,
    counters: Arc<Counters>,
    /// A copy of the pool's `max_tx_bytes`, to refuse oversized transactions
    /// before hashing them or taking the lock.
    max_tx_bytes: usize,
}

impl SharedMempool {
    pub fn new(cfg: MempoolConfig) -> SharedMempool {
        SharedMempool {
            pool: Arc::new(Mutex::new(Mempool::new(cfg))),
            counters: Arc::new(Counters::default()),
            max_tx_bytes: cfg.max_tx_bytes,
        }
    }

    /// Full admission: the cheap checks first (size, duplicate hash, room;
    /// under a brief lock), then the application's check without holding the
    /// lock, then [`Mempool::admit`] under the lock. Counts the outcome.
    pub fn add(&self, tx: Bytes, checker: &dyn TxChecker) -> Result<Hash, Rejection> {
        self.add_batch(vec![tx], checker).pop().expect("one answer per transaction")
    }

    /// [`SharedMempool::add`] for many transactions at once: the answer at
    /// `i` is for `txs[i]`, as `add` would give it had they come one by one
    /// in this order (except that when the pool fills during the batch, a
    /// later transaction the application refuses is refused for the
    /// application's reason rather than for want of room). The pool's lock
    /// is taken twice for the whole batch (cheap checks, then admission),
    /// and the application checks the survivors together
    /// ([`TxChecker::check_batch`]) without the lock. Counts every outcome.
    pub fn add_batch(&self, txs: Vec<Bytes>, checker: &dyn TxChecker) -> Vec<Result<Hash, Rejection>> {
        self.add_batch_from(txs, checker, Origin::Peer)
    }

    /// [`SharedMempool::add_batch`] for transactions from `origin`.
    pub fn add_batch_from(
        &self,
        txs: Vec<Bytes>,
        checker: &dyn TxChecker,
        origin: Origin,
    ) -> Vec<Result<Hash, Rejection>> {
        let mut out: Vec<Result<Hash, Rejection>> = Vec::with_capacity(txs.len());
        // Hashed before the lock is taken: hashing is most of the cost of
        // the cheap checks, and the lock also serves reaping and commits.
        let oversized = |tx: &Bytes| tx.len() > self.max_tx_bytes;
        let hashes: Vec<Hash> =
            txs.iter().map(|tx| if oversized(tx) { Hash::ZERO } else { Hash::digest(tx) }).collect();
        {
            let pool = self.pool.lock();
            for (tx, hash) in txs.iter().zip(&hashes) {
                if oversized(tx) {
                    out.push(Err(Rejection::TooLarge { size: tx.len(), max: self.max_tx_bytes }));
                } else {
                    out.push(pool.precheck(hash, tx.len(), origin).map(|()| *hash));
                }
            }
        }
        let passed: Vec<usize> = (0..txs.len()).filter(|&i| out[i].is_ok()).collect();
        let slices: Vec<&[u8]> = passed.iter().map(|&i| &txs[i][..]).collect();
        let passed_hashes: Vec<Hash> = passed.iter().map(|&i| hashes[i]).collect();
        let infos = checker.check_batch(&slices, &passed_hashes);
        debug_assert_eq!(infos.len(), passed.len());
        {
            let mut pool = self.pool.lock();
            for (&i, info) in passed.iter().zip(infos) {
                out[i] = info.and_then(|info| pool.admit_hashed(hashes[i], txs[i].clone(), info, origin));
            }
        }
        for outcome in &out {
            match outcome {
                Ok(_) => self.counters.admitted.fetch_add(1, Ordering::Relaxed),
                Err(r) => self.counters.rejected[r.code() as usize - 1].fetch_add(1, Ordering::Relaxed),
            };
        }
        out
    }

    /// See [`Mempool::reap`].
    pub fn reap<S: BuildHasher, T: BuildHasher>(
        &self,
        max_bytes: usize,
        max_txs: usize,
        exclude: &HashSet<Hash, S>,
        in_flight: &HashMap<Sender, u64, T>,
    ) -> Vec<Bytes> {
        self.pool.lock().reap(max_bytes, max_txs, exclude, in_flight)
    }

    /// See [`Mempool::release`].
    pub fn release(&self, hashes: &[Hash]) {
        if !hashes.is_empty() {
            self.pool.lock().release(hashes);
        }
    }

    /// See [`Mempool::update`].
    pub fn update(&self, committed: &[Hash], next_nonces: &[(Sender, u64)]) -> usize {
        self.pool.lock().update(committed, next_nonces)
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.pool.lock().contains(hash)
    }

    pub fn get(&self, hash: &Hash) -> Option<Bytes> {
        self.pool.lock().get(hash)
    }

    /// The pending transactions with these hashes, in order (`None` for
    /// one not pending), under one lock. Each is the transaction whose
    /// digest is its hash.
    pub fn get_many(&self, hashes: &[Hash]) -> Vec<Option<Bytes>> {
        let pool = self.pool.lock();
        hashes.iter().map(|h| pool.get(h)).collect()
    }

    pub fn len(&self) -> usize {
        self.pool.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.lock().is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.pool.lock().bytes()
    }

    /// Counters since start: admitted, rejected per kind, evicted as stale.
    pub fn stats(&self) -> MempoolStats {
        let rejected = Rejection::KINDS
            .iter()
            .zip(&self.counters.rejected)
            .map(|(kind, count)| (*kind, count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        let (evicted_stale, evicted_gapped) = {
            let pool = self.pool.lock();
            (pool.evicted_stale(), pool.evicted_gapped())
        };
        MempoolStats {
            admitted: self.counters.admitted.load(Ordering::Relaxed),
            rejected,
            evicted_stale,
            evicted_gapped,
        }
    }
}
