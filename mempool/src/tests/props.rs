//! Random sequences of admit, reap and update keep every invariant, and no
//! reap returns a transaction twice or one with a gap before it.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

const SENDER_COUNT: u8 = 4;

#[derive(Clone, Debug)]
enum Op {
    Admit { index: u8, nonce: u64, pad: usize, next: u64 },
    Reap { max_bytes: usize, max_txs: usize, exclude_mask: u64, in_flight: Vec<(u8, u64)> },
    Commit { index: u8, next: u64, commit_mask: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..SENDER_COUNT, 0..12u64, 0..40usize, 0..4u64)
            .prop_map(|(index, nonce, pad, next)| Op::Admit { index, nonce, pad, next }),
        2 => (0..300usize, 0..12usize, any::<u64>(), vec((0..SENDER_COUNT, 0..12u64), 0..3))
            .prop_map(|(max_bytes, max_txs, exclude_mask, in_flight)| Op::Reap { max_bytes, max_txs, exclude_mask, in_flight }),
        1 => (0..SENDER_COUNT, 0..12u64, any::<u64>())
            .prop_map(|(index, next, commit_mask)| Op::Commit { index, next, commit_mask }),
    ]
}

/// Small bounds, so that fullness, oversize and the nonce gap all happen.
fn small_config() -> MempoolConfig {
    MempoolConfig { max_txs: 16, max_bytes: 400, max_tx_bytes: 45, max_nonce_gap: 6 }
}

/// Every pending transaction as `(sender index, nonce, hash)`, sorted by hash.
fn pending(pool: &Mempool) -> Vec<(u8, u64, Hash)> {
    pool.pending()
        .into_iter()
        .map(|hash| {
            let (index, nonce) = decode(&pool.get(&hash).unwrap());
            (index, nonce, hash)
        })
        .collect()
}

fn masked<T: Copy>(items: &[T], mask: u64) -> Vec<T> {
    items.iter().enumerate().filter(|(i, _)| mask >> (i % 64) & 1 == 1).map(|(_, item)| *item).collect()
}

fn run_admit(pool: &mut Mempool, index: u8, nonce: u64, pad: usize, next: u64) {
    let before = pending(pool);
    match pool.admit(tx(index, nonce, pad), info(index, nonce, next)) {
        Ok(hash) => {
            assert!(pool.contains(&hash));
            assert!(nonce >= next, "admitted a nonce below the checked next nonce");
        }
        Err(_) => assert_eq!(pending(pool), before, "a refused transaction changes nothing"),
    }
}

fn run_reap(pool: &Mempool, max_bytes: usize, max_txs: usize, exclude_mask: u64, in_flight: &[(u8, u64)]) {
    let all = pending(pool);
    let exclude: HashSet<Hash> = masked(&all, exclude_mask).into_iter().map(|(_, _, hash)| hash).collect();
    let in_flight: HashMap<Sender, u64> = in_flight.iter().map(|&(index, next)| (sender(index), next)).collect();
    let out = pool.reap(max_bytes, max_txs, &exclude, &in_flight);
    assert!(out.len() <= max_txs, "at most max_txs");
    assert!(out.iter().map(Bytes::len).sum::<usize>() <= max_bytes, "at most max_bytes");
    let by_nonce: HashMap<(u8, u64), Hash> = all.iter().map(|&(index, nonce, hash)| ((index, nonce), hash)).collect();
    let mut returned = HashSet::new();
    let mut cursors: HashMap<u8, u64> = HashMap::new();
    for tx in &out {
        let hash = Hash::digest(tx);
        assert!(returned.insert(hash), "no transaction twice in one reap");
        assert!(pool.contains(&hash) && !exclude.contains(&hash), "only pending, not excluded transactions");
        let (index, nonce) = decode(tx);
        let key = sender(index);
        let start = pool.committed_next(&key).unwrap().max(in_flight.get(&key).copied().unwrap_or(0));
        let mut cursor = *cursors.get(&index).unwrap_or(&start);
        while cursor < nonce {
            let before = by_nonce.get(&(index, cursor));
            assert!(before.is_some_and(|h| exclude.contains(h)), "no gap before a returned transaction");
            cursor += 1;
        }
        assert_eq!(cursor, nonce, "nonces follow the cursor");
        cursors.insert(index, nonce + 1);
    }
}

fn run_commit(pool: &mut Mempool, index: u8, next: u64, commit_mask: u64) {
    let below: Vec<Hash> =
        pending(pool).into_iter().filter(|&(i, nonce, _)| i == index && nonce < next).map(|(_, _, h)| h).collect();
    let committed = masked(&below, commit_mask);
    let len_before = pool.len();
    let stale = pool.update(&committed, &[(sender(index), next)]);
    assert_eq!(stale, below.len() - committed.len(), "stale counts the dropped, not the committed");
    assert_eq!(pool.len(), len_before - below.len());
}

proptest! {
    /// Random admit, reap and update sequences keep the module-doc invariants;
    /// every reap is within its limits, has no repeats and no nonce gaps.
    #[test]
    fn random_operations_keep_invariants_and_reaps_gap_free(ops in vec(op(), 1..80)) {
        let mut pool = Mempool::new(small_config());
        for op in ops {
            match op {
                Op::Admit { index, nonce, pad, next } => run_admit(&mut pool, index, nonce, pad, next),
                Op::Reap { max_bytes, max_txs, exclude_mask, in_flight } => {
                    run_reap(&pool, max_bytes, max_txs, exclude_mask, &in_flight)
                }
                Op::Commit { index, next, commit_mask } => run_commit(&mut pool, index, next, commit_mask),
            }
            pool.check_invariants();
        }
    }
}
