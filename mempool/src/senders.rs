//! Per-sender bookkeeping: each sender's pending nonces, and bounded memories
//! of committed next nonces and of committed transaction hashes.
//!
//! Invariants:
//! - a [`SenderQueue`] is never empty while it is stored: its `by_nonce` and
//!   `arrivals` hold one item per pending transaction of the sender;
//! - [`RecentNonces`] holds at most `cap` senders, and its eviction order
//!   names each of them exactly once; [`RecentHashes`] likewise for hashes.

use crate::Sender;
use phalanx_crypto::{DigestHasher, DigestSet, Hash};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// The pending transactions of one sender.
#[derive(Debug)]
pub(crate) struct SenderQueue {
    /// Pending transactions by nonce; at most one per nonce.
    pub(crate) by_nonce: BTreeMap<u64, Hash>,
    /// Arrival sequence numbers of the pending transactions; the first is
    /// the sender's place in the pool's first-in first-out order.
    pub(crate) arrivals: BTreeSet<u64>,
    /// The highest committed next nonce known for this sender; every pending
    /// nonce is at least this.
    pub(crate) committed_next: u64,
}

impl SenderQueue {
    pub(crate) fn new(committed_next: u64) -> SenderQueue {
        SenderQueue { by_nonce: BTreeMap::new(), arrivals: BTreeSet::new(), committed_next }
    }

    /// The arrival of the sender's oldest pending transaction.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.arrivals.first().copied()
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
