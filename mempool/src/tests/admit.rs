//! Admission: each rejection the pool raises, and the order of its checks.

use super::*;
use crate::{Origin, Rejection};

/// Admission returns the SHA-256 of the bytes and keeps them retrievable.
#[test]
fn admit_returns_the_digest_and_keeps_the_bytes() {
    let mut pool = Mempool::new(config());
    let hash = pool.admit(tx(0, 0, 3), info(0, 0, 0)).unwrap();
    assert_eq!(hash, Hash::digest(&tx(0, 0, 3)));
    assert!(pool.contains(&hash));
    assert_eq!(pool.get(&hash), Some(tx(0, 0, 3)));
    assert_eq!((pool.len(), pool.bytes(), pool.is_empty()), (1, BASE + 3, false));
    pool.check_invariants();
}

/// A transaction larger than `max_tx_bytes` is refused with code 5; one of
/// exactly the limit is admitted.
#[test]
fn too_large_is_refused_with_code_5() {
    let mut pool = Mempool::new(config());
    let err = pool.admit(tx(0, 0, 1_000 - BASE + 1), info(0, 0, 0)).unwrap_err();
    assert_eq!(err, Rejection::TooLarge { size: 1_001, max: 1_000 });
    assert_eq!((err.code(), err.kind()), (5, "too_large"));
    assert_eq!(err.to_string(), "transaction is 1001 bytes, the limit is 1000");
    assert!(pool.is_empty());
    assert!(pool.admit(tx(0, 0, 1_000 - BASE), info(0, 0, 0)).is_ok());
    pool.check_invariants();
}

/// The same bytes twice are refused with code 7 and change nothing.
#[test]
fn duplicate_is_refused_with_code_7() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    let err = pool.admit(tx(0, 0, 0), info(0, 0, 0)).unwrap_err();
    assert_eq!(err, Rejection::Duplicate);
    assert_eq!((err.code(), err.kind()), (7, "duplicate"));
    assert_eq!(err.to_string(), "transaction already in the mempool");
    assert_eq!((pool.len(), pool.bytes()), (1, BASE));
}

/// A nonce below the application's committed next nonce is refused with code 4.
#[test]
fn nonce_below_checked_next_nonce_is_refused_with_code_4() {
    let mut pool = Mempool::new(config());
    let err = pool.admit(tx(0, 3, 0), info(0, 3, 5)).unwrap_err();
    assert_eq!(err, Rejection::NonceTooLow { got: 3, expected: 5 });
    assert_eq!((err.code(), err.kind()), (4, "nonce_too_low"));
    assert_eq!(err.to_string(), "nonce 3 already used (next nonce is 5): replayed or stale transaction");
    assert!(pool.is_empty());
}

/// The committed next nonce `update` reported wins over a lower one the
/// application saw when it checked (a check racing a commit), even after the
/// sender's queue emptied.
#[test]
fn nonce_below_updated_next_nonce_is_refused() {
    let mut pool = Mempool::new(config());
    let hash = admit(&mut pool, 0, 4);
    assert_eq!(pool.update(&[hash], &[(sender(0), 5)]), 0);
    assert!(pool.is_empty());
    let err = pool.admit(tx(0, 4, 0), info(0, 4, 4)).unwrap_err();
    assert_eq!(err, Rejection::NonceTooLow { got: 4, expected: 5 });
    assert!(pool.is_empty());
}

/// A nonce more than `max_nonce_gap` past the committed next nonce is
/// refused with code 8; one exactly at the gap is admitted.
#[test]
fn nonce_past_the_gap_is_refused_with_code_8() {
    let mut pool = Mempool::new(config());
    let err = pool.admit(tx(0, 19, 0), info(0, 19, 2)).unwrap_err();
    assert_eq!(err, Rejection::NonceTooHigh { got: 19, max: 18 });
    assert_eq!((err.code(), err.kind()), (8, "nonce_too_high"));
    assert_eq!(
        err.to_string(),
        "nonce 19 is too far ahead (the highest accepted now is 18); submit the missing lower nonces first"
    );
    assert!(pool.is_empty());
    assert!(pool.admit(tx(0, 18, 0), info(0, 18, 2)).is_ok());
    pool.check_invariants();
}

/// A second, different transaction with a pending sender and nonce is
/// refused with code 9; the first stays.
#[test]
fn same_sender_and_nonce_is_refused_with_code_9() {
    let mut pool = Mempool::new(config());
    let first = admit(&mut pool, 0, 2);
    let err = pool.admit(tx(0, 2, 1), info(0, 2, 0)).unwrap_err();
    assert_eq!(err, Rejection::NonceConflict { nonce: 2 });
    assert_eq!((err.code(), err.kind()), (9, "nonce_conflict"));
    assert_eq!(err.to_string(), "another pending transaction from this sender already has nonce 2");
    assert_eq!(pool.len(), 1);
    assert!(pool.contains(&first));
}

/// At `max_txs` transactions the pool refuses more with code 6.
#[test]
fn full_by_count_is_refused_with_code_6() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 2, ..config() });
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 0);
    let err = pool.admit(tx(2, 0, 0), info(2, 0, 0)).unwrap_err();
    assert_eq!(err, Rejection::Full { txs: 2, bytes: 2 * BASE });
    assert_eq!((err.code(), err.kind()), (6, "full"));
    assert_eq!(err.to_string(), "mempool full (2 transactions, 18 bytes); try again later");
    assert_eq!(pool.len(), 2);
}

/// A transaction that would take the total past `max_bytes` is refused with
/// code 6; one that lands exactly on it is admitted.
#[test]
fn full_by_bytes_is_refused_with_code_6() {
    let mut pool = Mempool::new(MempoolConfig { max_bytes: 30, ..config() });
    admit_padded(&mut pool, 0, 0, 1);
    admit_padded(&mut pool, 1, 0, 1);
    let err = pool.admit(tx(2, 0, 2), info(2, 0, 0)).unwrap_err();
    assert_eq!(err, Rejection::Full { txs: 2, bytes: 20 });
    assert_eq!(pool.bytes(), 20);
    admit_padded(&mut pool, 2, 0, 1);
    assert_eq!(pool.bytes(), 30);
}

/// The checks run in the documented order: duplicate before nonce rules,
/// nonce rules before fullness.
#[test]
fn checks_run_in_documented_order() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 1, ..config() });
    admit(&mut pool, 0, 0);
    // The same bytes, now checked against a later committed state.
    assert_eq!(pool.admit(tx(0, 0, 0), info(0, 0, 1)), Err(Rejection::Duplicate));
    assert_eq!(pool.admit(tx(1, 0, 0), info(1, 0, 1)), Err(Rejection::NonceTooLow { got: 0, expected: 1 }));
    assert_eq!(pool.admit(tx(1, 99, 0), info(1, 99, 0)), Err(Rejection::NonceTooHigh { got: 99, max: 16 }));
    assert_eq!(pool.admit(tx(0, 0, 1), info(0, 0, 0)), Err(Rejection::NonceConflict { nonce: 0 }));
    assert_eq!(pool.admit(tx(1, 0, 0), info(1, 0, 0)), Err(Rejection::Full { txs: 1, bytes: BASE }));
    pool.check_invariants();
}

/// Admitting with a higher committed next nonce than the pool knew drops the
/// sender's pending transactions below it, and reaping starts there.
#[test]
fn admission_with_higher_next_nonce_drops_stale() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    admit(&mut pool, 0, 1);
    admit(&mut pool, 1, 0);
    pool.admit(tx(0, 2, 0), info(0, 2, 2)).unwrap();
    pool.check_invariants();
    assert_eq!((pool.len(), pool.evicted_stale()), (2, 2));
    assert_eq!(reap_all(&pool), vec![(1, 0), (0, 2)]);
}

fn admit_from(pool: &mut Mempool, index: u8, nonce: u64, origin: Origin) -> Result<Hash, Rejection> {
    let t = tx(index, nonce, 0);
    let out = pool.admit_hashed(Hash::digest(&t), t, info(index, nonce, 0), origin);
    pool.check_invariants();
    out
}

/// Clients may fill three quarters of the pool; the rest is kept for
/// transactions forwarded by peers, which leaders' proposals name.
#[test]
fn clients_fill_three_quarters_and_peers_the_rest() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 4, ..config() });
    for i in 0..3 {
        admit_from(&mut pool, i, 0, Origin::Client).unwrap();
    }
    let err = admit_from(&mut pool, 3, 0, Origin::ClientHeld).unwrap_err();
    assert_eq!(err, Rejection::Full { txs: 3, bytes: 3 * BASE });
    admit_from(&mut pool, 3, 0, Origin::Peer).unwrap();
    assert_eq!(pool.len(), 4);
}

/// When the pool is full, a transaction its sender can have proposed evicts
/// the queues of senders whose next nonce is missing (oldest first is not
/// promised); the eviction is counted.
#[test]
fn a_full_pool_evicts_gapped_senders_for_a_proposable_transaction() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 3, ..config() });
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 2); // nonces 0 and 1 of sender 1 are missing
    admit(&mut pool, 1, 3);
    assert_eq!(reap_all(&pool), vec![(0, 0)], "a gapped sender's transactions cannot be proposed");
    admit(&mut pool, 2, 0);
    assert_eq!(pool.len(), 2, "sender 1's queue made room");
    assert_eq!(pool.evicted_gapped(), 2);
    assert_eq!(reap_all(&pool), vec![(0, 0), (2, 0)]);
}

/// A transaction that would itself be gapped evicts nothing, and no sender
/// loses its queue to its own missing nonce's arrival.
#[test]
fn gapped_or_own_arrivals_evict_nothing() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 3, ..config() });
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 1);
    admit(&mut pool, 1, 2);
    let full = Rejection::Full { txs: 3, bytes: 3 * BASE };
    assert_eq!(
        pool.admit(tx(2, 5, 0), info(2, 5, 0)),
        Err(Rejection::Full { txs: 3, bytes: 3 * BASE }),
        "a gapped arrival"
    );
    assert_eq!(pool.admit(tx(1, 0, 0), info(1, 0, 0)), Err(full), "sender 1's missing nonce");
    pool.check_invariants();
    assert_eq!((pool.len(), pool.evicted_gapped()), (3, 0));
}

/// A client's transaction held for gossip is not proposed until released,
/// and holds back its sender's later nonces.
#[test]
fn held_transactions_are_reaped_only_once_released() {
    let mut pool = Mempool::new(config());
    let h0 = admit_from(&mut pool, 0, 0, Origin::ClientHeld).unwrap();
    admit_from(&mut pool, 0, 1, Origin::Client).unwrap();
    admit_from(&mut pool, 1, 0, Origin::Peer).unwrap();
    assert_eq!(reap_all(&pool), vec![(1, 0)]);
    pool.release(&[h0, Hash::digest(b"not pending")]);
    assert_eq!(reap_all(&pool), vec![(0, 0), (0, 1), (1, 0)]);
}

/// An eviction that would not make enough room evicts nothing: a refused
/// transaction changes nothing.
#[test]
fn an_eviction_that_cannot_make_room_evicts_nothing() {
    let mut pool = Mempool::new(MempoolConfig { max_bytes: 30, ..config() });
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 2); // gapped, 9 bytes
    admit(&mut pool, 2, 0);
    let err = pool.admit(tx(3, 0, 10), info(3, 0, 0)).unwrap_err();
    assert_eq!(err, Rejection::Full { txs: 3, bytes: 27 });
    pool.check_invariants();
    assert_eq!((pool.len(), pool.evicted_gapped()), (3, 0), "19 bytes need 16 freed; the gapped sender holds 9");
    admit(&mut pool, 3, 0);
    assert_eq!((pool.len(), pool.evicted_gapped()), (3, 1));
}
