//! Updating after a commit: committed hashes leave, stale nonces are dropped,
//! committed nonces are remembered within a bound.

use super::*;
use crate::Rejection;

/// Committed hashes leave the pool and are not counted as stale.
#[test]
fn update_removes_committed_transactions() {
    let mut pool = Mempool::new(config());
    let a0 = admit(&mut pool, 0, 0);
    let b0 = admit(&mut pool, 1, 0);
    admit(&mut pool, 1, 1);
    assert_eq!(pool.update(&[a0, b0], &[(sender(0), 1), (sender(1), 1)]), 0);
    pool.check_invariants();
    assert!(!pool.contains(&a0) && !pool.contains(&b0));
    assert_eq!((pool.len(), pool.bytes()), (1, BASE));
    assert_eq!(reap_all(&pool), vec![(1, 1)]);
}

/// Pending transactions below a sender's new committed next nonce are dropped
/// and counted; its higher ones and other senders' stay.
#[test]
fn update_drops_stale_lower_nonces() {
    let mut pool = Mempool::new(config());
    let a0 = admit(&mut pool, 0, 0);
    admit(&mut pool, 0, 1);
    admit(&mut pool, 0, 2);
    admit(&mut pool, 0, 3);
    admit(&mut pool, 1, 0);
    assert_eq!(pool.update(&[a0], &[(sender(0), 3)]), 2);
    pool.check_invariants();
    assert_eq!(pool.len(), 2);
    assert_eq!(pool.evicted_stale(), 2);
    assert_eq!(reap_all(&pool), vec![(0, 3), (1, 0)]);
}

/// Hashes not in the pool and senders with nothing pending are ignored.
#[test]
fn update_ignores_unknown_hashes_and_senders() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    assert_eq!(pool.update(&[Hash::digest(b"elsewhere")], &[(sender(5), 9)]), 0);
    pool.check_invariants();
    assert_eq!(pool.len(), 1);
}

/// A committed next nonce never goes back: a lower report is ignored.
#[test]
fn update_never_lowers_a_committed_nonce() {
    let mut pool = Mempool::new(config());
    pool.update(&[], &[(sender(0), 5)]);
    pool.update(&[], &[(sender(0), 3)]);
    assert_eq!(pool.admit(tx(0, 4, 0), info(0, 4, 0)), Err(Rejection::NonceTooLow { got: 4, expected: 5 }));
}

/// The pool remembers committed next nonces of at most `max_txs` senders,
/// forgetting the first-recorded one first.
#[test]
fn update_remembers_committed_nonces_within_the_bound() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 2, ..config() });
    pool.update(&[], &[(sender(0), 5), (sender(1), 5), (sender(2), 5)]);
    pool.check_invariants();
    assert_eq!(pool.remembered_senders(), 2);
    assert!(pool.admit(tx(0, 4, 0), info(0, 4, 4)).is_ok());
    assert_eq!(pool.admit(tx(2, 4, 0), info(2, 4, 4)), Err(Rejection::NonceTooLow { got: 4, expected: 5 }));
}

/// A transaction reported committed is refused if it arrives again (late
/// gossip, with no nonce to stop it), while the pool remembers it: its last
/// `max_txs` committed hashes.
#[test]
fn a_committed_transaction_is_not_admitted_again_while_remembered() {
    let mut pool = Mempool::new(MempoolConfig { max_txs: 2, ..config() });
    let a = admit(&mut pool, 0, 0);
    pool.update(&[a], &[]);
    pool.check_invariants();
    assert_eq!(pool.admit(tx(0, 0, 0), info(0, 0, 0)), Err(Rejection::Committed));
    pool.update(&[Hash::digest(b"one"), Hash::digest(b"two")], &[]);
    pool.check_invariants();
    assert_eq!(pool.admit(tx(0, 0, 0), info(0, 0, 0)), Ok(a));
}
