//! Per-sender bookkeeping: each sender's pending nonces, and bounded memories
//! of committed next nonces and of committed transaction hashes.
//!
//! Invariants:
//! - a [`SenderQueue`] is never empty while it is stored: it holds one item
//!   per pending transaction of the sender, sorted by nonce, and knows the
//!   earliest arrival among them;
//! - [`RecentNonces`] holds at most `cap` senders, and its eviction order
//!   names each of them exactly once; [`RecentHashes`] likewise for hashes.

use crate::Sender;
use phalanx_crypto::{DigestHasher, DigestSet, Hash};
use std::collections::{HashMap, VecDeque};

/// One pending transaction in its sender's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) nonce: u64,
    pub(crate) hash: Hash,
    /// Its arrival sequence number in the pool.
    pub(crate) seq: u64,
}

/// The pending transactions of one sender: a vector sorted by nonce (at
/// most `max_nonce_gap + 1` of them), and the earliest arrival among them.
///
/// A vector rather than ordered trees: most senders have a handful of
/// pending transactions (a noop payload is its own sender, with one), and
/// one small allocation per sender costs far less than a tree node per map.
#[derive(Debug)]
pub(crate) struct SenderQueue {
    /// Pending transactions by increasing nonce; at most one per nonce.
    pending: Vec<Pending>,
    /// The smallest `seq` in `pending` (meaningless when it is empty): the
    /// sender's place in the pool's first-in first-out order.
    oldest: u64,
    /// The highest committed next nonce known for this sender; every pending
    /// nonce is at least this.
    pub(crate) committed_next: u64,
}

impl SenderQueue {
    pub(crate) fn new(committed_next: u64) -> SenderQueue {
        SenderQueue { pending: Vec::new(), oldest: 0, committed_next }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The arrival of the sender's oldest pending transaction.
    pub(crate) fn oldest(&self) -> Option<u64> {
        (!self.pending.is_empty()).then_some(self.oldest)
    }

    fn position(&self, nonce: u64) -> Result<usize, usize> {
        self.pending.binary_search_by_key(&nonce, |p| p.nonce)
    }

    /// The pending transaction with `nonce`, if any.
    pub(crate) fn get(&self, nonce: u64) -> Option<&Pending> {
        self.position(nonce).ok().map(|i| &self.pending[i])
    }

    /// Adds a transaction that arrived after every pending one (`seq` is
    /// the pool's newest), at a nonce none of them has.
    pub(crate) fn insert(&mut self, nonce: u64, hash: Hash, seq: u64) {
        debug_assert!(self.pending.iter().all(|p| p.seq < seq), "arrivals are issued in order");
        let at = self.position(nonce).expect_err("one pending transaction per nonce");
        if self.pending.is_empty() {
            self.oldest = seq;
        }
        self.pending.insert(at, Pending { nonce, hash, seq });
    }

    /// Removes the transaction with `nonce`.
    pub(crate) fn remove(&mut self, nonce: u64) -> Option<Pending> {
        let p = self.pending.remove(self.position(nonce).ok()?);
        if p.seq == self.oldest {
            self.oldest = self.pending.iter().map(|q| q.seq).min().unwrap_or(0);
        }
        Some(p)
    }

    /// The lowest pending nonce.
    pub(crate) fn first_nonce(&self) -> Option<u64> {
        self.pending.first().map(|p| p.nonce)
    }

    /// The hashes of all pending transactions.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = Hash> + '_ {
        self.pending.iter().map(|p| p.hash)
    }

    /// The pending transactions with a nonce below `next`.
    pub(crate) fn below(&self, next: u64) -> &[Pending] {
        &self.pending[..self.position(next).unwrap_or_else(|i| i)]
    }

    /// The pending transactions from nonce `cursor` up, in nonce order.
    pub(crate) fn from(&self, cursor: u64) -> &[Pending] {
        &self.pending[self.position(cursor).unwrap_or_else(|i| i)..]
    }

    /// All pending transactions, in nonce order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter()
    }
}

/// Committed next nonces that [`crate::Mempool::update`] reported, kept for
/// the `cap` most recently first-seen senders, so that a transaction checked
/// against committed state just before a commit cannot slip in as a replay
/// after its sender's queue emptied.
#[derive(Debug)]
pub(crate) struct RecentNonces {
    next: HashMap<Sender, u64, DigestHasher>,
    order: VecDeque<Sender>,
    cap: usize,
}

impl RecentNonces {
    pub(crate) fn new(cap: usize) -> RecentNonces {
        RecentNonces { next: HashMap::default(), order: VecDeque::new(), cap }
    }

    pub(crate) fn get(&self, sender: &Sender) -> Option<u64> {
        self.next.get(sender).copied()
    }

    /// Records `next` as `sender`'s committed next nonce (nonces only rise),
    /// forgetting the oldest-recorded sender when full.
    pub(crate) fn record(&mut self, sender: Sender, next: u64) {
        if let Some(known) = self.next.get_mut(&sender) {
            *known = (*known).max(next);
            return;
        }
        if self.cap == 0 {
            return;
        }
        if self.next.len() >= self.cap
            && let Some(evicted) = self.order.pop_front()
        {
            self.next.remove(&evicted);
        }
        self.next.insert(sender, next);
        self.order.push_back(sender);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.next.len()
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert!(self.next.len() <= self.cap, "recent nonces stay within their bound");
        assert_eq!(self.order.len(), self.next.len(), "the eviction order names every remembered sender");
        assert!(
            self.order.iter().all(|s| self.next.contains_key(s)),
            "the eviction order names only remembered senders"
        );
    }
}

/// The hashes of the last `cap` committed transactions, so that one arriving
/// again (by late gossip, or from a client) is not admitted and committed a
/// second time.
#[derive(Debug)]
pub(crate) struct RecentHashes {
    set: DigestSet,
    order: VecDeque<Hash>,
    cap: usize,
}

impl RecentHashes {
    pub(crate) fn new(cap: usize) -> RecentHashes {
        RecentHashes { set: DigestSet::default(), order: VecDeque::new(), cap }
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.set.contains(hash)
    }

    /// Remembers `hash`, forgetting the oldest when full.
    pub(crate) fn record(&mut self, hash: Hash) {
        if self.cap == 0 || !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        if self.order.len() > self.cap
            && let Some(evicted) = self.order.pop_front()
        {
            self.set.remove(&evicted);
        }
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert!(self.set.len() <= self.cap, "recent hashes stay within their bound");
        assert_eq!(self.order.len(), self.set.len(), "the eviction order names every remembered hash once");
        assert!(self.order.iter().all(|h| self.set.contains(h)), "the eviction order names only remembered hashes");
    }
}
