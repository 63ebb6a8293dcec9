//! What happened to each transaction of a run, shared by the senders and the
//! commit streams.
//!
//! Times are microseconds since the run's start `t0`. Transaction `i` is
//! scheduled at `i / rate` seconds. Each per-transaction figure is an
//! atomic, written by one sender (its admission) or by the first commit
//! stream to see it (its commit), so no lock is held on the hot paths.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// What the node said when transaction `i` was submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Admission {
    /// Not sent (yet).
    NotSent = 0,
    /// Accepted (`broadcast_tx_sync`: admitted to the mempool; `_async`:
    /// queued for admission).
    Accepted = 1,
    /// Refused with a JSON-RPC error (the code is counted).
    Refused = 2,
    /// No answer: the connection failed while the request was out.
    NoAnswer = 3,
}

impl Admission {
    fn from_u8(v: u8) -> Admission {
        match v {
            1 => Admission::Accepted,
            2 => Admission::Refused,
            3 => Admission::NoAnswer,
            _ => Admission::NotSent,
        }
    }
}

/// A committed block as first seen on any stream.
#[derive(Clone, Debug)]
pub struct BlockSeen {
    /// When the first notification of it arrived (µs since t0).
    pub first_us: u64,
    /// Transactions in it (ours or not).
    pub txs: usize,
    /// Its id, to catch two blocks at one height.
    pub block_id: String,
    /// A digest of its transaction list as first notified, to catch a node
    /// that lists the same block's transactions differently.
    pub txs_digest: u64,
}

/// A transaction committed at two heights.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Duplicate {
    /// Its index in the run.
    pub tx: usize,
    /// Its hash (hex).
    pub hash: String,
    /// The node whose stream reported the second height.
    pub node: usize,
    pub first_height: u64,
    pub second_height: u64,
    /// Who accepted its submission.
    pub submitted_to: usize,
}

/// Most duplicates kept as examples.
const DUPLICATE_EXAMPLES: usize = 10;

/// Shared state of a run.
pub struct Tracker {
    /// The run's start: transaction 0's scheduled send time.
    pub t0: Instant,
    /// Offered transactions per second.
    pub rate: f64,
    admission: Vec<AtomicU8>,
    /// Index of the node that answered the submission.
    admitted_by: Vec<AtomicU8>,
    /// First commit notification (µs since t0), `u64::MAX` if none.
    commit_us: Vec<AtomicU64>,
    /// Height of the first commit notification, 0 if none.
    commit_height: Vec<AtomicU32>,
    /// Submission errors by JSON-RPC code (or "transport", "http-NNN").
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Committed blocks by height.
    pub blocks: Mutex<BTreeMap<u64, BlockSeen>>,
    /// A transaction committed at two different heights.
    pub duplicates: AtomicU64,
    /// The first few duplicates, to investigate.
    pub duplicate_examples: Mutex<Vec<Duplicate>>,
    /// A block (same height, same id) whose transactions one node listed
    /// differently from another.
    pub height_mismatches: AtomicU64,
    /// Two different block ids reported for one height.
    pub forks: AtomicU64,
    /// Our transactions committed with a non-zero result code.
    pub failed_execution: AtomicU64,
    /// Our transactions committed (first notification).
    pub committed: AtomicU64,
    /// Our transactions accepted by a node.
    pub accepted: AtomicU64,
}

/// Microseconds since `t0` (0 before it).
pub fn micros_since(t0: Instant) -> u64 {
    Instant::now().saturating_duration_since(t0).as_micros() as u64
}

impl Tracker {
    /// A tracker of `n` transactions offered at `rate` per second from `t0`.
    pub fn new(n: usize, rate: f64, t0: Instant) -> Tracker {
        let atomics8 = || (0..n).map(|_| AtomicU8::new(0)).collect::<Vec<_>>();
        Tracker {
            t0,
            rate,
            admission: atomics8(),
            admitted_by: atomics8(),
            commit_us: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
            commit_height: (0..n).map(|_| AtomicU32::new(0)).collect(),
            errors: Mutex::new(BTreeMap::new()),
            blocks: Mutex::new(BTreeMap::new()),
            duplicates: AtomicU64::new(0),
            duplicate_examples: Mutex::new(Vec::new()),
            height_mismatches: AtomicU64::new(0),
            forks: AtomicU64::new(0),
            failed_execution: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        }
    }

    /// Transactions in the run.
    pub fn len(&self) -> usize {
        self.admission.len()
    }

    /// Whether the run has no transactions.
    pub fn is_empty(&self) -> bool {
        self.admission.is_empty()
    }

    /// Scheduled send time of transaction `i` (µs since t0).
    pub fn scheduled_us(&self, i: usize) -> u64 {
        (i as f64 * 1e6 / self.rate) as u64
    }

    /// How many transactions are due by `us` (µs since t0).
    pub fn due_by(&self, us: u64) -> usize {
        ((us as f64 * self.rate / 1e6).floor() as usize + 1).min(self.len())
    }

    /// Records the node's answer to transaction `i`'s submission.
    pub fn admitted(&self, i: usize, a: Admission, node: usize) {
        self.admission[i].store(a as u8, Ordering::Relaxed);
        self.admitted_by[i].store(node as u8, Ordering::Relaxed);
        if a == Admission::Accepted {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a submission error under `key`.
    pub fn error(&self, key: String, n: u64) {
        *self.errors.lock().expect("errors lock").entry(key).or_insert(0) += n;
    }

    /// The answer to transaction `i`'s submission, and the node that gave it.
    pub fn admission(&self, i: usize) -> (Admission, usize) {
        (
            Admission::from_u8(self.admission[i].load(Ordering::Relaxed)),
            self.admitted_by[i].load(Ordering::Relaxed) as usize,
        )
    }

    /// Records that transaction `i` committed at `height` (first notified
    /// at `us`) with result `code`. Each height's transactions are recorded
    /// once (see [`Tracker::block`]), so a transaction already recorded at
    /// another height was committed twice: returns that first height.
    pub fn commit(&self, i: usize, height: u64, us: u64, code: u32) -> Result<(), u64> {
        let h = height as u32;
        match self.commit_height[i].compare_exchange(0, h, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                self.committed.fetch_add(1, Ordering::Relaxed);
                if code != 0 {
                    self.failed_execution.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(other) if other != h => return Err(other.into()),
            Err(_) => {}
        }
        self.commit_us[i].fetch_min(us, Ordering::Relaxed);
        Ok(())
    }

    /// Accepted transactions not yet reported committed.
    pub fn outstanding(&self) -> usize {
        (0..self.len())
            .filter(|&i| {
                self.admission[i].load(Ordering::Relaxed) == Admission::Accepted as u8
                    && self.commit_us[i].load(Ordering::Relaxed) == u64::MAX
            })
            .count()
    }

    /// When transaction `i` was first reported committed (µs since t0).
    pub fn committed_at(&self, i: usize) -> Option<u64> {
        let us = self.commit_us[i].load(Ordering::Relaxed);
        (us != u64::MAX).then_some(us)
    }

    /// Counts a duplicate commit and keeps the first few as examples.
    pub fn duplicate(&self, mut d: Duplicate) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
        let mut ex = self.duplicate_examples.lock().expect("duplicates lock");
        if ex.len() < DUPLICATE_EXAMPLES {
            d.submitted_to = self.admission(d.tx).1;
            ex.push(d);
        }
    }

    /// Records a block notification received at `us`, whose transaction
    /// list digests to `txs_digest`. Returns whether the caller should read
    /// the block's transactions: only the first notification of a height
    /// is read (then [`Tracker::block_txs`]); a later one of the same block
    /// is checked against it by digest (a different list counts as a
    /// height mismatch), and a different block at that height counts as a
    /// fork.
    pub fn block(&self, height: u64, block_id: &str, txs_digest: u64, us: u64) -> bool {
        let mut blocks = self.blocks.lock().expect("blocks lock");
        match blocks.get_mut(&height) {
            Some(b) if b.block_id != block_id => {
                self.forks.fetch_add(1, Ordering::Relaxed);
                false
            }
            Some(b) => {
                if b.txs_digest != txs_digest {
                    self.height_mismatches.fetch_add(1, Ordering::Relaxed);
                }
                b.first_us = b.first_us.min(us);
                false
            }
            None => {
                let seen = BlockSeen { first_us: us, txs: 0, block_id: block_id.to_owned(), txs_digest };
                blocks.insert(height, seen);
                true
            }
        }
    }

    /// Records how many transactions the block at `height` holds.
    pub fn block_txs(&self, height: u64, txs: usize) {
        if let Some(b) = self.blocks.lock().expect("blocks lock").get_mut(&height) {
            b.txs = txs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_and_due() {
        let t = Tracker::new(100, 1000.0, Instant::now());
        assert_eq!(t.scheduled_us(0), 0);
        assert_eq!(t.scheduled_us(10), 10_000);
        assert_eq!(t.due_by(0), 1);
        assert_eq!(t.due_by(9_999), 10);
        assert_eq!(t.due_by(10_000), 11);
        assert_eq!(t.due_by(10_000_000), 100);
    }

    #[test]
    fn first_commit_counts_and_later_reports_are_checked() {
        let t = Tracker::new(3, 10.0, Instant::now());
        assert_eq!(t.commit(0, 5, 900, 0), Ok(()));
        assert_eq!(t.commit(0, 5, 800, 0), Ok(()));
        assert_eq!(t.committed_at(0), Some(800));
        assert_eq!(t.committed.load(Ordering::Relaxed), 1);
        assert_eq!(t.commit(0, 6, 1000, 0), Err(5), "a second height is a duplicate");
        assert_eq!(t.commit(1, 5, 900, 4), Ok(()));
        assert_eq!(t.failed_execution.load(Ordering::Relaxed), 1);
        assert_eq!(t.committed_at(2), None);
        assert!(t.block(5, "a", 7, 900), "the first notification of a height is read");
        assert!(!t.block(5, "a", 7, 850), "a later one is only checked");
        assert_eq!(t.height_mismatches.load(Ordering::Relaxed), 0);
        assert!(!t.block(5, "a", 8, 950));
        assert_eq!(t.height_mismatches.load(Ordering::Relaxed), 1, "the same block listed differently");
        assert!(!t.block(5, "b", 7, 950));
        assert_eq!(t.forks.load(Ordering::Relaxed), 1);
        t.block_txs(5, 2);
        let b = t.blocks.lock().unwrap()[&5].clone();
        assert_eq!((b.first_us, b.txs), (850, 2));
    }
}
