//! The thread-safe handle: the checker runs outside the lock, cheap checks
//! run before it, and every outcome is counted.

use super::*;
use crate::{MempoolStats, Rejection, SharedMempool, TxChecker};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Decodes test transactions; a first byte of 0xFF stands for a bad
/// signature; every sender's committed next nonce is 0. Counts its calls.
#[derive(Default)]
struct TestChecker {
    calls: AtomicUsize,
}

impl TxChecker for TestChecker {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if tx.len() < BASE {
            return Err(Rejection::Malformed(format!("{} bytes, a transaction has at least {BASE}", tx.len())));
        }
        if tx[0] == 0xFF {
            return Err(Rejection::BadSignature);
        }
        let (index, nonce) = decode(tx);
        Ok(info(index, nonce, 0))
    }
}

/// A checker that uses the mempool it is checking for.
struct ReentrantChecker {
    pool: SharedMempool,
}

impl TxChecker for ReentrantChecker {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection> {
        // Deadlocks if `add` holds the pool's (non-reentrant) lock here.
        let _pending = self.pool.len();
        let (index, nonce) = decode(tx);
        Ok(info(index, nonce, 0))
    }
}

/// The checker runs without the pool's lock held: a checker that calls
/// `len()` on the same mempool completes instead of deadlocking.
#[test]
fn add_runs_the_checker_without_holding_the_lock() {
    let pool = SharedMempool::new(config());
    let checker = ReentrantChecker { pool: pool.clone() };
    let (done, finished) = mpsc::channel();
    let adder = pool.clone();
    std::thread::spawn(move || {
        let _ = done.send(adder.add(tx(0, 0, 0), &checker));
    });
    let outcome = finished.recv_timeout(Duration::from_secs(10)).expect("add deadlocked calling the checker");
    assert_eq!(outcome, Ok(Hash::digest(&tx(0, 0, 0))));
    assert_eq!(pool.len(), 1);
}

/// Records the hashes `check_batch` is given.
#[derive(Default)]
struct HashRecorder {
    seen: std::sync::Mutex<Vec<Hash>>,
}

impl TxChecker for HashRecorder {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection> {
        let (index, nonce) = decode(tx);
        Ok(info(index, nonce, 0))
    }

    fn check_batch(&self, txs: &[&[u8]], hashes: &[Hash]) -> Vec<Result<TxInfo, Rejection>> {
        self.seen.lock().unwrap().extend_from_slice(hashes);
        txs.iter().map(|t| self.check(t)).collect()
    }
}

/// The checker is handed each transaction's digest with it (so it need not
/// hash again), for exactly the transactions that passed the cheap checks.
#[test]
fn add_batch_hands_the_checker_each_digest() {
    let pool = SharedMempool::new(config());
    let checker = HashRecorder::default();
    pool.add(tx(0, 0, 0), &checker).unwrap();
    let batch = vec![tx(1, 0, 0), tx(0, 0, 0), tx(2, 0, 1_000), tx(3, 0, 0)];
    let out = pool.add_batch(batch.clone(), &checker);
    assert_eq!(out[1], Err(Rejection::Duplicate));
    assert!(matches!(out[2], Err(Rejection::TooLarge { .. })));
    let want: Vec<Hash> = [&tx(0, 0, 0), &batch[0], &batch[3]].iter().map(|t| Hash::digest(t)).collect();
    assert_eq!(*checker.seen.lock().unwrap(), want);
    assert_eq!(out[0], Ok(want[1]));
}

/// Every outcome of `add` is counted once: admitted, or under its
/// rejection's kind, whether the checker or the pool refused it.
#[test]
fn add_counts_admissions_and_rejections_by_kind() {
    let pool = SharedMempool::new(config());
    let checker = TestChecker::default();
    assert!(pool.add(tx(0, 0, 0), &checker).is_ok());
    assert!(pool.add(tx(1, 0, 0), &checker).is_ok());
    assert_eq!(pool.add(tx(0, 0, 0), &checker), Err(Rejection::Duplicate));
    assert_eq!(pool.add(tx(0xFF, 0, 0), &checker), Err(Rejection::BadSignature));
    assert_eq!(pool.add(tx(0xFF, 1, 0), &checker), Err(Rejection::BadSignature));
    assert_eq!(
        pool.add(Bytes::from_static(b"abc"), &checker),
        Err(Rejection::Malformed("3 bytes, a transaction has at least 9".into()))
    );
    assert_eq!(pool.add(tx(0, 0, 1), &checker), Err(Rejection::NonceConflict { nonce: 0 }));
    let expected = MempoolStats {
        admitted: 2,
        rejected: BTreeMap::from([("bad_signature", 2), ("duplicate", 1), ("malformed", 1), ("nonce_conflict", 1)]),
        evicted_stale: 0,
        evicted_gapped: 0,
    };
    assert_eq!(pool.stats(), expected);
    assert_eq!(pool.len(), 2);
}

/// Oversized, duplicate and no-room transactions are refused before the
/// (slow) checker is called.
#[test]
fn add_refuses_cheap_cases_before_calling_the_checker() {
    let pool = SharedMempool::new(MempoolConfig { max_txs: 1, ..config() });
    let checker = TestChecker::default();
    pool.add(tx(0, 0, 0), &checker).unwrap();
    assert_eq!(checker.calls.load(Ordering::SeqCst), 1);
    assert_eq!(pool.add(tx(1, 0, 1_000), &checker), Err(Rejection::TooLarge { size: 1_009, max: 1_000 }));
    assert_eq!(pool.add(tx(0, 0, 0), &checker), Err(Rejection::Duplicate));
    assert_eq!(pool.add(tx(1, 0, 0), &checker), Err(Rejection::Full { txs: 1, bytes: BASE }));
    assert_eq!(checker.calls.load(Ordering::SeqCst), 1);
    let rejected = BTreeMap::from([("duplicate", 1), ("full", 1), ("too_large", 1)]);
    assert_eq!(pool.stats().rejected, rejected);
}

/// Clones share one pool; reap and update go through to it, and stale
/// evictions are counted in the stats.
#[test]
fn clones_share_one_pool_and_count_stale_evictions() {
    let pool = SharedMempool::new(config());
    let other = pool.clone();
    let checker = TestChecker::default();
    let h0 = pool.add(tx(0, 0, 0), &checker).unwrap();
    let h1 = other.add(tx(0, 1, 0), &checker).unwrap();
    other.add(tx(0, 2, 0), &checker).unwrap();
    assert!(pool.contains(&h1) && other.contains(&h0));
    assert_eq!((pool.len(), pool.bytes(), pool.is_empty()), (3, 3 * BASE, false));
    assert_eq!(pool.get(&h1), Some(tx(0, 1, 0)));
    let reaped = other.reap(usize::MAX, 2, &HashSet::new(), &HashMap::new());
    assert_eq!(reaped, vec![tx(0, 0, 0), tx(0, 1, 0)]);
    assert_eq!(pool.update(&[h0], &[(sender(0), 2)]), 1);
    assert_eq!(other.len(), 1);
    assert_eq!(
        other.stats(),
        MempoolStats { admitted: 3, rejected: BTreeMap::new(), evicted_stale: 1, evicted_gapped: 0 }
    );
}

/// A batch gets the answers, pool and counters that the same transactions
/// added one by one get: duplicates inside the batch and against the pool,
/// oversized, refused by the checker, nonce conflicts, and no room.
#[test]
fn add_batch_answers_as_adding_one_by_one() {
    let cfg = MempoolConfig { max_txs: 6, ..config() };
    let first = vec![tx(0, 0, 0), tx(1, 0, 0)];
    let batch = vec![
        tx(0, 1, 0),
        tx(0, 1, 0),     // duplicate inside the batch
        tx(1, 0, 0),     // duplicate of a pooled transaction
        tx(2, 0, 1_000), // too large
        tx(0xFF, 0, 0),  // refused by the checker
        tx(0, 1, 1),     // nonce conflict with the first of the batch
        tx(2, 0, 0),
        tx(3, 0, 0),
        tx(4, 0, 0),
        tx(5, 0, 0), // no room: six pooled
    ];
    let one_by_one = SharedMempool::new(cfg);
    let batched = SharedMempool::new(cfg);
    let checker = TestChecker::default();
    for t in &first {
        one_by_one.add(t.clone(), &checker).unwrap();
        batched.add(t.clone(), &checker).unwrap();
    }
    let expected: Vec<_> = batch.iter().map(|t| one_by_one.add(t.clone(), &checker)).collect();
    assert_eq!(expected[9], Err(Rejection::Full { txs: 6, bytes: 6 * BASE }));
    let calls_before = checker.calls.load(Ordering::SeqCst);
    let got = batched.add_batch(batch.clone(), &checker);
    assert_eq!(got, expected);
    // The cheap refusals (oversized, already pooled) never reach the checker.
    assert_eq!(checker.calls.load(Ordering::SeqCst) - calls_before, batch.len() - 2);
    assert_eq!(batched.stats(), one_by_one.stats());
    assert_eq!((batched.len(), batched.bytes()), (one_by_one.len(), one_by_one.bytes()));
    let all = |p: &SharedMempool| p.reap(usize::MAX, usize::MAX, &HashSet::new(), &HashMap::new());
    assert_eq!(all(&batched), all(&one_by_one));
}
