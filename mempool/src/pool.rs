//! The single-threaded mempool core.
//!
//! State: every pending transaction is an entry keyed by its hash; each
//! sender with pending transactions has a queue of them by nonce; senders are
//! ordered by the arrival of their oldest pending transaction.
//!
//! Invariants (checked by `check_invariants` in the tests after every step):
//! - the byte and count totals equal the sums over entries, and stay within
//!   `max_bytes` and `max_txs`; no entry is larger than `max_tx_bytes`;
//! - every entry is in its sender's nonce map under its nonce, and every
//!   nonce map value is an entry of that sender with that nonce;
//! - a sender has a queue if and only if it has a pending entry;
//! - the arrival index holds exactly one key per queued sender: the arrival
//!   of its oldest pending entry;
//! - every pending nonce lies in `[committed_next, committed_next + max_nonce_gap]`
//!   of its sender's queue: stale transactions are dropped as soon as the
//!   committed next nonce is known to have passed them;
//! - the gapped set names exactly the senders whose first pending nonce is
//!   past their committed next nonce (none of their transactions can be
//!   reaped unless the missing nonces are in an uncommitted block); when
//!   the pool is full, a transaction that leaves its sender ungapped may
//!   evict gapped senders' transactions to make room, if that makes enough;
//! - the pool remembers the hashes of the last `max_txs` transactions
//!   [`Mempool::update`] reported committed, and admits none of them again.
//!
//! Costs: `admit` is O(log n); `reap` is O(returned + excluded skipped +
//! senders visited); `update` is O((committed + stale) log n). Nothing here
//! does I/O or calls the application.

use crate::senders::{Pending, RecentHashes, RecentNonces, SenderQueue};
use crate::{Rejection, Sender, TxInfo};
use bytes::Bytes;
use phalanx_crypto::{DigestHasher, DigestMap, Hash};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;

/// The bounds of a mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// At most this many pending transactions. Also bounds how many senders'
    /// committed next nonces are remembered after their queues empty.
    pub max_txs: usize,
    /// At most this many bytes of pending transactions in total.
    pub max_bytes: usize,
    /// No single transaction larger than this.
    pub max_tx_bytes: usize,
    /// A nonce at most this far past the sender's committed next nonce.
    pub max_nonce_gap: u64,
}

impl Default for MempoolConfig {
    /// 50,000 transactions, 64 MiB, 64 KiB per transaction, nonces up to 64 ahead.
    fn default() -> Self {
        MempoolConfig { max_txs: 50_000, max_bytes: 64 << 20, max_tx_bytes: 64 << 10, max_nonce_gap: 64 }
    }
}

/// Where a transaction comes from: it decides how much of the pool the
/// transaction may fill and whether it may be proposed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Forwarded by a peer: may fill the whole pool; proposable at once.
    Peer,
    /// Submitted by a client: may fill only three quarters of the pool
    /// (the rest stays for peers' transactions, which the leaders' proposals
    /// name); proposable at once.
    Client,
    /// Submitted by a client and queued for gossip: as [`Origin::Client`],
    /// but held back from [`Mempool::reap`] until [`Mempool::release`],
    /// so that a proposal names it only once peers have been sent it.
    ClientHeld,
}

/// Three quarters of `limit`: the part of the pool's count and byte limits
/// that client submissions may fill.
fn client_share(limit: usize) -> usize {
    limit - limit / 4
}

/// A pending transaction.
#[derive(Debug)]
struct Entry {
    tx: Bytes,
    sender: Sender,
    nonce: u64,
    /// Arrival sequence number, unique within the pool.
    seq: u64,
    /// Not to be reaped yet ([`Origin::ClientHeld`] until released).
    held: bool,
}

/// How much a reap may still take.
struct Budget {
    bytes_left: usize,
    txs_left: usize,
}

/// Gapped senders whose transactions one admission may evict at most.
const EVICT_SENDERS: usize = 16;

/// The single-threaded mempool core; see the module doc for its invariants.
pub struct Mempool {
    cfg: MempoolConfig,
    entries: DigestMap<Entry>,
    senders: HashMap<Sender, SenderQueue, DigestHasher>,
    /// Each queued sender keyed by the arrival of its oldest pending entry.
    by_arrival: BTreeMap<u64, Sender>,
    recent: RecentNonces,
    /// Recently committed hashes, refused if they arrive again.
    committed: RecentHashes,
    bytes: usize,
    next_seq: u64,
    evicted_stale: u64,
    /// Senders whose first pending nonce is past their committed next
    /// nonce: none of their transactions can be proposed until the missing
    /// one arrives.
    gapped: HashSet<Sender, DigestHasher>,
    /// False once an eviction found too little to evict, until a sender
    /// becomes gapped or a block commits: a full pool then refuses cheaply
    /// (before the application's check) again.
    may_evict: bool,
    evicted_gapped: u64,
}

impl fmt::Debug for Mempool {
    /// A summary: the pool may hold megabytes of transactions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("txs", &self.entries.len())
            .field("bytes", &self.bytes)
            .field("senders", &self.senders.len())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Mempool {
        Mempool {
            cfg,
            entries: DigestMap::default(),
            senders: HashMap::default(),
            by_arrival: BTreeMap::new(),
            recent: RecentNonces::new(cfg.max_txs),
            committed: RecentHashes::new(cfg.max_txs),
            bytes: 0,
            next_seq: 0,
            evicted_stale: 0,
            gapped: HashSet::default(),
            may_evict: false,
            evicted_gapped: 0,
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.cfg
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    pub fn get(&self, hash: &Hash) -> Option<Bytes> {
        self.entries.get(hash).map(|e| e.tx.clone())
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Transactions dropped as stale since start, by [`Mempool::update`] or
    /// because an admission learned a higher committed nonce.
    pub(crate) fn evicted_stale(&self) -> u64 {
        self.evicted_stale
    }

    /// Transactions dropped since start to make room, because their sender's
    /// next nonce was missing ([`Mempool::admit`]).
    pub(crate) fn evicted_gapped(&self) -> u64 {
        self.evicted_gapped
    }

    /// Admits a transaction already checked by the application.
    ///
    /// Checks, in order: size ([`Rejection::TooLarge`]), duplicate hash
    /// ([`Rejection::Duplicate`]), nonce below the sender's known committed
    /// next nonce, the maximum of `info.next_nonce` and what [`Mempool::update`]
    /// reported ([`Rejection::NonceTooLow`]), nonce past that plus
    /// `max_nonce_gap` ([`Rejection::NonceTooHigh`]), recently committed hash
    /// ([`Rejection::Committed`]), another pending
    /// transaction with the same sender and nonce ([`Rejection::NonceConflict`]),
    /// count and byte bounds ([`Rejection::Full`]). A refused transaction
    /// changes nothing. On success returns the transaction's hash.
    pub fn admit(&mut self, tx: Bytes, info: TxInfo) -> Result<Hash, Rejection> {
        self.check_size(tx.len())?;
        let hash = Hash::digest(&tx);
        self.admit_hashed(hash, tx, info, Origin::Peer)
    }

    /// The cheap checks [`crate::SharedMempool::add`] makes before calling the
    /// application: size, duplicate hash and room.
    pub(crate) fn precheck(&self, hash: &Hash, size: usize, origin: Origin) -> Result<(), Rejection> {
        self.check_size(size)?;
        if self.contains(hash) {
            return Err(Rejection::Duplicate);
        }
        match self.check_room(size, origin) {
            // Admission may make room by evicting gapped senders.
            Err(_) if self.may_evict => Ok(()),
            room => room,
        }
    }

    /// [`Mempool::admit`] for a transaction whose hash the caller computed.
    pub(crate) fn admit_hashed(
        &mut self,
        hash: Hash,
        tx: Bytes,
        info: TxInfo,
        origin: Origin,
    ) -> Result<Hash, Rejection> {
        debug_assert_eq!(hash, Hash::digest(&tx));
        self.check_size(tx.len())?;
        if self.contains(&hash) {
            return Err(Rejection::Duplicate);
        }
        let known = self.known_next(&info);
        self.check_nonce(&info, known)?;
        if self.committed.contains(&hash) {
            return Err(Rejection::Committed);
        }
        if self.senders.get(&info.sender).is_some_and(|q| q.get(info.nonce).is_some()) {
            return Err(Rejection::NonceConflict { nonce: info.nonce });
        }
        if self.check_room(tx.len(), origin).is_err() && !self.would_gap(&info, known) {
            self.evict_gapped(tx.len(), origin, &info.sender);
        }
        self.check_room(tx.len(), origin)?;
        self.raise_committed(info.sender, known);
        self.insert(hash, tx, info, known, origin == Origin::ClientHeld);
        Ok(hash)
    }

    fn check_size(&self, size: usize) -> Result<(), Rejection> {
        if size > self.cfg.max_tx_bytes {
            return Err(Rejection::TooLarge { size, max: self.cfg.max_tx_bytes });
        }
        Ok(())
    }

    /// The count and byte limits for a transaction from `origin`.
    fn limits(&self, origin: Origin) -> (usize, usize) {
        match origin {
            Origin::Peer => (self.cfg.max_txs, self.cfg.max_bytes),
            Origin::Client | Origin::ClientHeld => (client_share(self.cfg.max_txs), client_share(self.cfg.max_bytes)),
        }
    }

    fn check_room(&self, size: usize, origin: Origin) -> Result<(), Rejection> {
        let (max_txs, max_bytes) = self.limits(origin);
        let count_full = self.entries.len() >= max_txs;
        let bytes_full = self.bytes.saturating_add(size) > max_bytes;
        if count_full || bytes_full {
            return Err(Rejection::Full { txs: self.entries.len(), bytes: self.bytes });
        }
        Ok(())
    }

    /// The highest committed next nonce known for the transaction's sender.
    fn known_next(&self, info: &TxInfo) -> u64 {
        let queued = self.senders.get(&info.sender).map_or(0, |q| q.committed_next);
        let reported = self.recent.get(&info.sender).unwrap_or(0);
        info.next_nonce.max(queued).max(reported)
    }

    fn check_nonce(&self, info: &TxInfo, known: u64) -> Result<(), Rejection> {
        if info.nonce < known {
            return Err(Rejection::NonceTooLow { got: info.nonce, expected: known });
        }
        let max = known.saturating_add(self.cfg.max_nonce_gap);
        if info.nonce > max {
            return Err(Rejection::NonceTooHigh { got: info.nonce, max });
        }
        Ok(())
    }

    fn insert(&mut self, hash: Hash, tx: Bytes, info: TxInfo, known: u64, held: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += tx.len();
        let queue = self.senders.entry(info.sender).or_insert_with(|| SenderQueue::new(known));
        if queue.is_empty() {
            self.by_arrival.insert(seq, info.sender);
        }
        queue.insert(info.nonce, hash, seq);
        self.entries.insert(hash, Entry { tx, sender: info.sender, nonce: info.nonce, seq, held });
        self.refresh_gap(&info.sender);
    }

    /// Whether `sender`'s first pending nonce is past its committed next
    /// nonce.
    fn is_gapped(&self, sender: &Sender) -> bool {
        self.senders.get(sender).is_some_and(|q| q.first_nonce().is_some_and(|n| n > q.committed_next))
    }

    /// Puts `sender` in or out of the gapped set after its queue changed.
    fn refresh_gap(&mut self, sender: &Sender) {
        if self.is_gapped(sender) {
            self.may_evict |= self.gapped.insert(*sender);
        } else if !self.gapped.is_empty() {
            self.gapped.remove(sender);
        }
    }

    /// Whether admitting `info` (its sender's committed next nonce being
    /// `known`) would leave its sender gapped.
    fn would_gap(&self, info: &TxInfo, known: u64) -> bool {
        // Pending nonces below `known` are dropped as stale on admission.
        let first = self.senders.get(&info.sender).and_then(|q| q.from(known).first()).map_or(u64::MAX, |p| p.nonce);
        first.min(info.nonce) > known
    }

    /// Drops whole queues of gapped senders (not `keep`) so that a
    /// transaction of `size` bytes from `origin` fits, looking at up to
    /// [`EVICT_SENDERS`] of them, and only if they make enough room (else
    /// nothing changes). None of their transactions can be proposed until a
    /// missing nonce arrives (its client's submission was refused, or is
    /// late), or, rarely, commits from a block this node fetched; the node
    /// they were submitted to keeps its copies. A transaction that can be
    /// proposed is worth more room.
    fn evict_gapped(&mut self, size: usize, origin: Origin, keep: &Sender) {
        let (max_txs, max_bytes) = self.limits(origin);
        let over_txs = (self.entries.len() + 1).saturating_sub(max_txs);
        let over_bytes = (self.bytes + size).saturating_sub(max_bytes);
        let mut victims: Vec<Hash> = Vec::new();
        let mut bytes = 0;
        let mut enough = false;
        for sender in self.gapped.iter().filter(|s| *s != keep).take(EVICT_SENDERS) {
            for hash in self.senders[sender].hashes() {
                bytes += self.entries[&hash].tx.len();
                victims.push(hash);
            }
            if victims.len() >= over_txs && bytes >= over_bytes {
                enough = true;
                break;
            }
        }
        if !enough {
            self.may_evict = false;
            return;
        }
        for hash in &victims {
            self.remove(hash);
        }
        self.evicted_gapped += victims.len() as u64;
    }

    /// Removes one entry and repairs the sender's queue and its place in the
    /// arrival order.
    fn remove(&mut self, hash: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.tx.len();
        let queue = self.senders.get_mut(&entry.sender).expect("every entry is in its sender's queue");
        let was_oldest = queue.oldest() == Some(entry.seq);
        queue.remove(entry.nonce);
        if was_oldest {
            self.by_arrival.remove(&entry.seq);
            match queue.oldest() {
                Some(next_oldest) => {
                    self.by_arrival.insert(next_oldest, entry.sender);
                }
                None => {
                    self.senders.remove(&entry.sender);
                }
            }
        }
        self.refresh_gap(&entry.sender);
        Some(entry)
    }

    /// Records that `sender`'s committed next nonce is at least `next` and
    /// drops its pending transactions below it. Returns how many it dropped.
    fn raise_committed(&mut self, sender: Sender, next: u64) -> usize {
        let Some(queue) = self.senders.get_mut(&sender) else { return 0 };
        if next <= queue.committed_next {
            return 0;
        }
        queue.committed_next = next;
        let stale: Vec<Hash> = queue.below(next).iter().map(|p| p.hash).collect();
        for hash in &stale {
            self.remove(hash);
        }
        self.evicted_stale += stale.len() as u64;
        self.refresh_gap(&sender);
        stale.len()
    }

    /// Up to `max_txs` transactions totalling at most `max_bytes`, for a new
    /// block. Removes nothing.
    ///
    /// Senders are served in the order of the arrival of their oldest pending
    /// transaction. Each sender's transactions are taken in consecutive nonce
    /// order from `max(committed next nonce, in_flight[sender])`, stopping at
    /// the first gap, at the first one still held ([`Origin::ClientHeld`]),
    /// or at the first one that does not fit in `max_bytes`
    /// (later senders may still fit). A transaction in `exclude` (already in
    /// an uncommitted block) is not returned but counts as consumed, so the
    /// sender's next nonce may follow it.
    pub fn reap<S: BuildHasher, T: BuildHasher>(
        &self,
        max_bytes: usize,
        max_txs: usize,
        exclude: &HashSet<Hash, S>,
        in_flight: &HashMap<Sender, u64, T>,
    ) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(max_txs.min(self.entries.len()));
        let mut budget = Budget { bytes_left: max_bytes, txs_left: max_txs };
        for sender in self.by_arrival.values() {
            if budget.txs_left == 0 {
                break;
            }
            let queue = &self.senders[sender];
            let cursor = queue.committed_next.max(in_flight.get(sender).copied().unwrap_or(0));
            self.reap_sender(queue, cursor, exclude, &mut budget, &mut out);
        }
        out
    }

    /// Appends one sender's consecutive run of transactions from `cursor`.
    fn reap_sender<S: BuildHasher>(
        &self,
        queue: &SenderQueue,
        mut cursor: u64,
        exclude: &HashSet<Hash, S>,
        budget: &mut Budget,
        out: &mut Vec<Bytes>,
    ) {
        for &Pending { nonce, ref hash, .. } in queue.from(cursor) {
            if nonce != cursor {
                return;
            }
            // Saturates only at u64::MAX, the last key a map can hold.
            cursor = cursor.saturating_add(1);
            if exclude.contains(hash) {
                continue;
            }
            let entry = &self.entries[hash];
            let tx = &entry.tx;
            if entry.held || budget.txs_left == 0 || tx.len() > budget.bytes_left {
                return;
            }
            budget.txs_left -= 1;
            budget.bytes_left -= tx.len();
            out.push(tx.clone());
        }
    }

    /// Lets [`Mempool::reap`] take these held transactions
    /// ([`Origin::ClientHeld`]); hashes not pending are ignored.
    pub fn release(&mut self, hashes: &[Hash]) {
        for hash in hashes {
            if let Some(e) = self.entries.get_mut(hash) {
                e.held = false;
            }
        }
    }

    /// After a block commits: removes the `committed` hashes and remembers
    /// them (see [`Rejection::Committed`]), records each
    /// `(sender, next_nonce)` as that sender's committed next nonce, and drops
    /// the sender's pending transactions with a lower nonce (they can never
    /// apply). Returns how many were dropped as stale, not counting committed
    /// ones. Hashes not in the pool are ignored.
    pub fn update(&mut self, committed: &[Hash], next_nonces: &[(Sender, u64)]) -> usize {
        self.may_evict = !self.gapped.is_empty();
        for hash in committed {
            self.remove(hash);
            self.committed.record(*hash);
        }
        let mut stale = 0;
        for &(sender, next) in next_nonces {
            self.recent.record(sender, next);
            stale += self.raise_committed(sender, next);
        }
        stale
    }
}

#[cfg(test)]
impl Mempool {
    /// Asserts every invariant in the module doc. O(pool): tests only.
    pub(crate) fn check_invariants(&self) {
        let total: usize = self.entries.values().map(|e| e.tx.len()).sum();
        assert_eq!(self.bytes, total, "the byte total equals the sum over entries");
        assert!(self.entries.len() <= self.cfg.max_txs, "the count stays within max_txs");
        assert!(self.bytes <= self.cfg.max_bytes, "the bytes stay within max_bytes");
        for (hash, e) in &self.entries {
            assert_eq!(*hash, Hash::digest(&e.tx), "entries are keyed by their digest");
            assert!(e.tx.len() <= self.cfg.max_tx_bytes, "no entry exceeds max_tx_bytes");
            let queue = self.senders.get(&e.sender).expect("every entry's sender has a queue");
            let p = queue.get(e.nonce).expect("every entry is in its sender's queue");
            assert_eq!((p.hash, p.seq), (*hash, e.seq), "every entry is in its sender's queue under its nonce");
            assert!(e.nonce >= queue.committed_next, "no pending nonce is below the committed next nonce");
            assert!(e.nonce - queue.committed_next <= self.cfg.max_nonce_gap, "no pending nonce is past the gap");
        }
        let mut queued = 0;
        for (sender, queue) in &self.senders {
            assert!(!queue.is_empty(), "no stored queue is empty");
            let nonces: Vec<u64> = queue.iter().map(|p| p.nonce).collect();
            assert!(nonces.windows(2).all(|w| w[0] < w[1]), "a queue is sorted by nonce, one per nonce");
            for p in queue.iter() {
                let e = self.entries.get(&p.hash).expect("every queued hash is an entry");
                assert_eq!((e.sender, e.nonce, e.seq), (*sender, p.nonce, p.seq), "queue items match their entry");
            }
            let oldest = queue.oldest().expect("queue is not empty");
            assert_eq!(Some(oldest), queue.iter().map(|p| p.seq).min(), "a queue knows its earliest arrival");
            assert_eq!(self.by_arrival.get(&oldest), Some(sender), "senders are indexed by their oldest arrival");
            queued += queue.len();
        }
        assert_eq!(queued, self.entries.len(), "the queues hold exactly the entries");
        for (sender, queue) in &self.senders {
            let gapped = queue.first_nonce().is_some_and(|n| n > queue.committed_next);
            assert_eq!(self.gapped.contains(sender), gapped, "the gapped set names exactly the gapped senders");
        }
        assert!(self.gapped.iter().all(|s| self.senders.contains_key(s)), "a gapped sender has a queue");
        assert_eq!(self.by_arrival.len(), self.senders.len(), "one arrival key per queued sender");
        assert!(self.by_arrival.keys().all(|seq| *seq < self.next_seq), "arrivals are issued in order");
        self.recent.check_invariants();
        self.committed.check_invariants();
        assert!(
            self.entries.keys().all(|h| !self.committed.contains(h)),
            "no pending transaction is remembered as committed"
        );
    }

    pub(crate) fn remembered_senders(&self) -> usize {
        self.recent.len()
    }

    /// The hashes of all pending transactions, sorted.
    pub(crate) fn pending(&self) -> Vec<Hash> {
        let mut hashes: Vec<Hash> = self.entries.keys().copied().collect();
        hashes.sort();
        hashes
    }

    /// The committed next nonce of a sender with pending transactions.
    pub(crate) fn committed_next(&self, sender: &Sender) -> Option<u64> {
        self.senders.get(sender).map(|q| q.committed_next)
    }
}
