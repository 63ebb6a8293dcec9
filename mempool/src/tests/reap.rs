//! Reaping: order across and within senders, gaps, exclusions, in-flight
//! cursors and limits.

use super::*;

/// Senders are served first-in first-out by their oldest pending transaction;
/// each sender's run is returned whole before the next sender's.
#[test]
fn reap_serves_senders_in_order_of_oldest_arrival() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 0);
    admit(&mut pool, 0, 1);
    admit(&mut pool, 2, 0);
    admit(&mut pool, 1, 1);
    assert_eq!(reap_all(&pool), vec![(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]);
}

/// When a sender's oldest transaction leaves, the sender's place becomes the
/// arrival of its next-oldest one.
#[test]
fn reap_order_follows_the_oldest_remaining_arrival() {
    let mut pool = Mempool::new(config());
    let a0 = admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 0);
    admit(&mut pool, 0, 1);
    pool.update(&[a0], &[(sender(0), 1)]);
    pool.check_invariants();
    assert_eq!(reap_all(&pool), vec![(1, 0), (0, 1)]);
}

/// A sender's transactions come out in nonce order whatever their arrival order.
#[test]
fn reap_returns_a_senders_txs_in_nonce_order() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 2);
    admit(&mut pool, 0, 0);
    admit(&mut pool, 0, 1);
    assert_eq!(reap_all(&pool), vec![(0, 0), (0, 1), (0, 2)]);
}

/// A sender's run stops at the first missing nonce; other senders are still served.
#[test]
fn reap_stops_a_sender_at_a_nonce_gap() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    admit(&mut pool, 0, 1);
    admit(&mut pool, 0, 3);
    admit(&mut pool, 1, 1);
    admit(&mut pool, 2, 0);
    assert_eq!(reap_all(&pool), vec![(0, 0), (0, 1), (2, 0)]);
}

/// Excluded transactions (already in uncommitted blocks) are not returned but
/// count as consumed, so the sender's next nonces follow them.
#[test]
fn reap_skips_excluded_and_continues_the_nonce_sequence() {
    let mut pool = Mempool::new(config());
    let h0 = admit(&mut pool, 0, 0);
    let h1 = admit(&mut pool, 0, 1);
    admit(&mut pool, 0, 2);
    let none = HashMap::new();
    assert_eq!(reap_decoded(&pool, usize::MAX, usize::MAX, &HashSet::from([h0, h1]), &none), vec![(0, 2)]);
    assert_eq!(reap_decoded(&pool, usize::MAX, usize::MAX, &HashSet::from([h1]), &none), vec![(0, 0), (0, 2)]);
}

/// A sender's run starts at its in-flight cursor when that is past the
/// committed next nonce, and at the committed next nonce otherwise.
#[test]
fn reap_starts_each_sender_at_its_in_flight_cursor() {
    let mut pool = Mempool::new(config());
    for nonce in 0..4 {
        admit(&mut pool, 0, nonce);
    }
    admit(&mut pool, 1, 3);
    admit(&mut pool, 1, 4);
    pool.update(&[], &[(sender(1), 3)]);
    let in_flight = HashMap::from([(sender(0), 2), (sender(1), 1)]);
    assert_eq!(
        reap_decoded(&pool, usize::MAX, usize::MAX, &HashSet::new(), &in_flight),
        vec![(0, 2), (0, 3), (1, 3), (1, 4)]
    );
}

/// A reap returns at most `max_txs` transactions, the first in reap order.
#[test]
fn reap_returns_at_most_max_txs() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 0);
    admit(&mut pool, 0, 1);
    admit(&mut pool, 2, 0);
    let (none, empty) = (HashSet::new(), HashMap::new());
    assert_eq!(reap_decoded(&pool, usize::MAX, 3, &none, &empty), vec![(0, 0), (0, 1), (1, 0)]);
    assert_eq!(reap_decoded(&pool, usize::MAX, 0, &none, &empty), vec![]);
}

/// A reap returns at most `max_bytes`: a sender stops at its first
/// transaction that does not fit, and later senders' smaller ones still fill
/// the block, up to exactly the limit.
#[test]
fn reap_returns_at_most_max_bytes() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    admit_padded(&mut pool, 0, 1, 50);
    admit(&mut pool, 0, 2);
    admit(&mut pool, 1, 0);
    let (none, empty) = (HashSet::new(), HashMap::new());
    assert_eq!(reap_decoded(&pool, 2 * BASE, usize::MAX, &none, &empty), vec![(0, 0), (1, 0)]);
    assert_eq!(reap_decoded(&pool, 2 * BASE - 1, usize::MAX, &none, &empty), vec![(0, 0)]);
    assert_eq!(reap_decoded(&pool, 3 * BASE + 50, usize::MAX, &none, &empty), vec![(0, 0), (0, 1), (0, 2)]);
}

/// Reaping removes nothing: the same call returns the same transactions.
#[test]
fn reap_removes_nothing() {
    let mut pool = Mempool::new(config());
    admit(&mut pool, 0, 0);
    admit(&mut pool, 1, 0);
    let first = reap_all(&pool);
    assert_eq!(reap_all(&pool), first);
    assert_eq!((pool.len(), pool.bytes()), (2, 2 * BASE));
    pool.check_invariants();
}
