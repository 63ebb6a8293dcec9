//! Compact proposals: a HotStuff proposal travels with its transactions'
//! digests instead of the transactions, which the replicas already hold in
//! their mempools (gossip spread them before the leader reaped them).
//!
//! Sending: the driver turns every proposal that carries transactions into
//! a [`CompactProposal`] (the proposal with an empty payload, plus the
//! payload's digests in order) and remembers the payload in
//! [`SentProposals`] for a while.
//!
//! Receiving: the node looks the digests up in its mempool. If all are
//! there, it rebuilds the block (the mempool keys its entries by digest, so
//! the digests become the block's hash cache and nothing is hashed again)
//! and hands the proposal to the engine as if it had come whole. If some
//! are missing (typically the leader's own submissions of the last gossip
//! interval), it asks the sender for exactly those over `/phalanx/sync/3`
//! (`SyncWire::ProposalTxs`), checks each answer against the digest it
//! asked for, then rebuilds. A sender that cannot or will not answer costs
//! the replica that proposal, as a lost message would: the engine's
//! timeouts handle it.
//!
//! The engine never sees the difference: the rebuilt block is the block
//! the leader signed, with the same header, payload root and id, and the
//! engine verifies it as before. This removes one of the two trips every
//! payload made over the network (gossip, then inside the proposal), and
//! the decoding and hashing of the payload on every replica.

use bytes::Bytes;
use parking_lot::Mutex;
use phalanx_consensus::types::{BlockId, Proposal, Tx, TxHashes, tx_hash};
use phalanx_crypto::Hash;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A proposal whose payload travels as digests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompactProposal {
    /// The proposal with an empty payload (header, certificates and
    /// signature unchanged: they cover the payload root, not the bytes).
    pub proposal: Proposal,
    /// The payload's digests, in block order.
    pub hashes: Vec<Hash>,
}

impl CompactProposal {
    /// Splits `p` into its compact form and its payload (with digests).
    pub fn split(mut p: Proposal) -> (CompactProposal, Vec<Tx>, Arc<[Hash]>) {
        let hashes = p.block.tx_hashes();
        let txs = std::mem::take(&mut p.block.txs);
        p.block.hashes = TxHashes::default();
        (CompactProposal { proposal: p, hashes: hashes.to_vec() }, txs, hashes)
    }

    /// The block's id.
    pub fn block_id(&self) -> BlockId {
        self.proposal.block.id()
    }

    /// The positions of the digests `found` (one answer per digest, from the
    /// mempool) lacks.
    pub fn missing(found: &[Option<Bytes>]) -> Vec<usize> {
        found.iter().enumerate().filter(|(_, t)| t.is_none()).map(|(i, _)| i).collect()
    }

    /// The whole proposal: `found` answers each digest from the mempool
    /// (`None` where it had none), `fetched` holds the missing ones in
    /// order, each checked against its digest here.
    pub fn rebuild(self, found: Vec<Option<Bytes>>, fetched: Vec<Bytes>) -> Result<Proposal, String> {
        if found.len() != self.hashes.len() {
            return Err(format!("{} answers for {} digests", found.len(), self.hashes.len()));
        }
        let mut fetched = fetched.into_iter();
        let mut txs = Vec::with_capacity(found.len());
        for (i, tx) in found.into_iter().enumerate() {
            let tx = match tx {
                Some(tx) => tx,
                None => {
                    let tx = fetched.next().ok_or_else(|| format!("transaction {i} of the payload is missing"))?;
                    if tx_hash(&tx) != self.hashes[i] {
                        return Err(format!("transaction {i} of the payload does not match its digest"));
                    }
                    tx
                }
            };
            txs.push(tx);
        }
        if fetched.next().is_some() {
            return Err("more transactions fetched than were missing".into());
        }
        let mut p = self.proposal;
        // The mempool's entries are keyed by their digest and the fetched
        // ones were checked above: the digests describe these bytes.
        p.block.hashes = TxHashes::known(&txs, self.hashes.into());
        p.block.txs = txs;
        Ok(p)
    }
}

/// Proposals sent most recently at most, kept to answer fetches.
pub const SENT_KEPT: usize = 8;
/// Bytes of payload kept at most (the newest payload is always kept).
pub const SENT_KEPT_BYTES: usize = 64 << 20;

/// The payloads of the last [`SENT_KEPT`] proposals this node sent, to
/// answer replicas that lack some of their transactions.
#[derive(Default)]
pub struct SentProposals {
    sent: Mutex<VecDeque<SentPayload>>,
}

/// A sent proposal's payload, its digests, and (built on the first fetch)
/// where each digest is.
struct SentPayload {
    id: BlockId,
    txs: Vec<Tx>,
    hashes: Arc<[Hash]>,
    bytes: usize,
    index: std::sync::OnceLock<HashMap<Hash, usize>>,
}

impl SentProposals {
    /// Remembers the payload of block `id`, forgetting the oldest.
    pub fn insert(&self, id: BlockId, txs: Vec<Tx>, hashes: Arc<[Hash]>) {
        let mut sent = self.sent.lock();
        if sent.iter().any(|p| p.id == id) {
            return;
        }
        let bytes = txs.iter().map(|t| t.len()).sum();
        sent.push_back(SentPayload { id, txs, hashes, bytes, index: Default::default() });
        while sent.len() > SENT_KEPT
            || (sent.len() > 1 && sent.iter().map(|p| p.bytes).sum::<usize>() > SENT_KEPT_BYTES)
        {
            sent.pop_front();
        }
    }

    /// The transactions of block `id` with these digests, in the order
    /// asked; `None` if the block is not remembered or lacks one of them.
    pub fn serve(&self, id: &BlockId, wanted: &[Hash]) -> Option<Vec<Tx>> {
        let sent = self.sent.lock();
        let p = sent.iter().find(|p| p.id == *id)?;
        let at = p.index.get_or_init(|| p.hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect());
        wanted.iter().map(|h| at.get(h).map(|&i| p.txs[i].clone())).collect()
    }
}

/// Fetches in flight per sender, at most `max` each: a compact proposal
/// that would need one more is dropped, as a lost message.
pub struct FetchLimiter<K> {
    max: usize,
    in_flight: Mutex<HashMap<K, usize>>,
}

/// One fetch in flight from `key`; ends when dropped.
pub struct FetchSlot<K: std::hash::Hash + Eq> {
    limiter: Arc<FetchLimiter<K>>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> FetchLimiter<K> {
    pub fn new(max: usize) -> FetchLimiter<K> {
        FetchLimiter { max, in_flight: Mutex::new(HashMap::new()) }
    }

    /// A slot for one more fetch from `key`, if it has fewer than `max`.
    pub fn try_take(self: &Arc<Self>, key: K) -> Option<FetchSlot<K>> {
        let mut f = self.in_flight.lock();
        let n = f.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(FetchSlot { limiter: self.clone(), key })
    }
}

impl<K: std::hash::Hash + Eq> Drop for FetchSlot<K> {
    fn drop(&mut self) {
        let mut f = self.limiter.in_flight.lock();
        if let Some(n) = f.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                f.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_consensus::types::{Block, BlockHeader, Certificate};
    use phalanx_crypto::Keypair;

    fn proposal(txs: Vec<Tx>) -> Proposal {
        let key = Keypair::from_seed(&[3; 32]);
        let genesis = Block::genesis("c", 0, Hash::digest(b"app"), key.public());
        let (payload_root, hashes) = TxHashes::root_of(&txs);
        let header = BlockHeader {
            chain_id: "c".into(),
            height: 1,
            round: 1,
            parent: genesis.id(),
            parent_round: 0,
            payload_root,
            app_height: 0,
            app_hash: Hash::digest(b"app"),
            proposer: key.public(),
            time_ms: 1,
        };
        // Rebuilding checks no signature: the genesis block's will do.
        let block = Block { header, justify: Certificate::Genesis, txs, hashes, ..genesis };
        Proposal { block, tc: None }
    }

    fn txs(n: u8) -> Vec<Tx> {
        (0..n).map(|i| Bytes::from(vec![i; 40])).collect()
    }

    #[test]
    fn a_proposal_rebuilds_from_the_mempool_and_fetched_transactions() {
        let whole = proposal(txs(5));
        let (cp, payload, _) = CompactProposal::split(whole.clone());
        assert!(cp.proposal.block.txs.is_empty());
        assert_eq!(cp.block_id(), whole.block.id(), "the id covers the header, not the bytes");
        // The mempool has all but transactions 1 and 3.
        let found: Vec<Option<Bytes>> =
            payload.iter().enumerate().map(|(i, t)| (i != 1 && i != 3).then(|| t.clone())).collect();
        assert_eq!(CompactProposal::missing(&found), vec![1, 3]);
        let rebuilt = cp.rebuild(found, vec![payload[1].clone(), payload[3].clone()]).unwrap();
        assert_eq!(rebuilt, whole);
        assert_eq!(rebuilt.block.computed_payload_root(), whole.block.header.payload_root);
    }

    #[test]
    fn a_wrong_short_or_long_fetch_is_refused() {
        let (cp, payload, _) = CompactProposal::split(proposal(txs(3)));
        let found = vec![Some(payload[0].clone()), None, Some(payload[2].clone())];
        let wrong = cp.clone().rebuild(found.clone(), vec![Bytes::from_static(b"forged")]).unwrap_err();
        assert_eq!(wrong, "transaction 1 of the payload does not match its digest");
        assert_eq!(cp.clone().rebuild(found.clone(), vec![]).unwrap_err(), "transaction 1 of the payload is missing");
        let long = cp.clone().rebuild(found.clone(), vec![payload[1].clone(), payload[1].clone()]).unwrap_err();
        assert_eq!(long, "more transactions fetched than were missing");
        assert_eq!(cp.rebuild(found[..2].to_vec(), vec![]).unwrap_err(), "2 answers for 3 digests");
    }

    #[test]
    fn fetches_are_limited_per_sender_and_slots_come_back_when_dropped() {
        let limiter = Arc::new(FetchLimiter::new(2));
        let a1 = limiter.try_take("a").unwrap();
        let a2 = limiter.try_take("a").unwrap();
        assert!(limiter.try_take("a").is_none(), "a third fetch from one sender waits for none");
        let b = limiter.try_take("b");
        assert!(b.is_some(), "another sender has its own slots");
        drop(a1);
        assert!(limiter.try_take("a").is_some(), "a finished fetch frees its slot");
        drop((a2, b));
        assert!(limiter.in_flight.lock().is_empty(), "no sender is remembered with nothing in flight");
    }

    #[test]
    fn sent_payloads_are_served_by_digest_for_the_last_few_blocks() {
        let sent = SentProposals::default();
        let mut ids = Vec::new();
        for n in 1..=(SENT_KEPT as u8 + 1) {
            let (cp, payload, hashes) = CompactProposal::split(proposal(txs(n)));
            ids.push((cp.block_id(), payload.clone(), hashes.clone()));
            sent.insert(cp.block_id(), payload, hashes);
        }
        assert_eq!(sent.serve(&ids[0].0, &[ids[0].2[0]]), None, "the oldest was forgotten");
        let (id, payload, hashes) = &ids[SENT_KEPT];
        assert_eq!(sent.serve(id, &[hashes[2], hashes[0]]), Some(vec![payload[2].clone(), payload[0].clone()]));
        assert_eq!(sent.serve(id, &[Hash::digest(b"not in it")]), None);
    }
}
