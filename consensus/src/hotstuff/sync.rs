//! Block sync: fetching certified blocks this validator lacks.
//!
//! When a QC names a block the engine does not have, it asks one peer for
//! the committed blocks from just above its own committed height and then
//! the chain leading to that block. Answers are verified like proposals
//! (proposer signature, justify QC) and inserted in order; commits then
//! follow from the ordinary 2-chain rule applied to the QCs they carry, so a
//! lying peer can waste our time but never make us commit anything.
//! Unanswered or useless requests move on to the next validator.
//!
//! The answering side is [`serve`], shared by the node (reading sled) and the
//! simulator (reading memory) through [`BlockSource`].

use crate::engine::{SyncRequest, SyncResponse};
use crate::types::Proposal;
use crate::types::{Block, BlockId, Certificate, Height, QuorumCert, ValidatorId, ValidatorSet};
use crate::verify::Verified;

/// Where a responder reads blocks from.
pub trait BlockSource {
    /// Height of the last committed block.
    fn committed_height(&self) -> Height;
    /// The committed block at `height`.
    fn committed_block(&self, height: Height) -> Option<Block>;
    /// The certificate of the committed block at `height`.
    fn committed_cert(&self, height: Height) -> Option<Certificate>;
    /// Any stored block (committed or not) by id.
    fn block(&self, id: &BlockId) -> Option<Block>;
}

/// Longest uncommitted chain a responder walks for one request.
pub const MAX_WALK: usize = 4096;

/// Answers a sync request from `source`, with at most `max_blocks` blocks
/// and about `max_bytes` of transactions (always at least one block if any
/// is available).
pub fn serve(req: &SyncRequest, source: &dyn BlockSource, max_blocks: usize, max_bytes: usize) -> SyncResponse {
    let max_blocks = max_blocks.min(req.max_blocks as usize).max(1);
    let tip = source.committed_height();
    let mut blocks: Vec<Block> = Vec::new();
    let mut bytes = 0usize;
    let full =
        |blocks: &Vec<Block>, bytes: usize| blocks.len() >= max_blocks || (bytes >= max_bytes && !blocks.is_empty());
    let mut h = req.from_height.max(1);
    while h <= tip && !full(&blocks, bytes) {
        let Some(b) = source.committed_block(h) else { break };
        bytes += b.payload_bytes();
        blocks.push(b);
        h += 1;
    }
    if h <= tip {
        // Stopped inside the committed range: certify the last block.
        let last_cert = blocks.last().and_then(|b| source.committed_cert(b.height()));
        return SyncResponse { blocks, last_cert };
    }
    // Reached the committed tip: follow the uncommitted chain to the target,
    // then send its lowest part (the requester asks again for the rest).
    let floor = h;
    let mut tail = Vec::new();
    let mut id = req.target;
    while let Some(b) = source.block(&id) {
        if b.height() < floor || tail.len() >= MAX_WALK {
            break;
        }
        id = b.parent();
        tail.push(b);
    }
    let connects = match (tail.last(), blocks.last()) {
        (Some(lowest), Some(top)) => lowest.parent() == top.id(),
        (Some(lowest), None) => lowest.height() == floor,
        (None, _) => true,
    };
    if connects {
        while let Some(b) = tail.pop() {
            if full(&blocks, bytes) {
                break;
            }
            bytes += b.payload_bytes();
            blocks.push(b);
        }
    }
    let last_cert = match blocks.last() {
        Some(b) if b.height() <= tip => source.committed_cert(b.height()),
        _ => None,
    };
    SyncResponse { blocks, last_cert }
}

/// The requester's side: at most one outstanding request.
#[derive(Default)]
pub struct SyncState {
    pending: Option<Pending>,
    buffered: Vec<(ValidatorId, Verified<Proposal>)>,
}

/// An outstanding request.
#[derive(Clone, Debug)]
pub struct Pending {
    pub target: QuorumCert,
    pub peer: ValidatorId,
    pub from_height: Height,
    pub attempts: u32,
}

/// Proposals kept while their ancestors are fetched.
pub const MAX_BUFFERED: usize = 16;

impl SyncState {
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    /// Starts (or retargets) a request. Returns false if a request for this
    /// target or a higher one is already outstanding.
    pub fn start(&mut self, target: QuorumCert, peer: ValidatorId, from_height: Height) -> bool {
        if let Some(p) = &self.pending
            && p.target.round() >= target.round()
        {
            return false;
        }
        self.pending = Some(Pending { target, peer, from_height, attempts: 0 });
        true
    }

    /// Continues the outstanding request from a new height, same peer.
    pub fn advance(&mut self, from_height: Height) -> Option<&Pending> {
        let p = self.pending.as_mut()?;
        p.from_height = from_height;
        Some(p)
    }

    /// Moves the outstanding request to the next peer after the current one
    /// in validator order (never `me`).
    pub fn rotate(&mut self, validators: &ValidatorSet, me: &ValidatorId, from_height: Height) -> Option<&Pending> {
        let p = self.pending.as_mut()?;
        let n = validators.len();
        let start = validators.position(&p.peer).unwrap_or(0);
        for step in 1..=n {
            let cand = validators.get((start + step) % n).expect("in range").id;
            if cand != *me {
                p.peer = cand;
                break;
            }
        }
        p.attempts += 1;
        p.from_height = from_height;
        Some(p)
    }

    pub fn finish(&mut self) {
        self.pending = None;
    }

    /// Keeps a proposal until its parent arrives (bounded: the oldest is
    /// dropped first).
    pub fn buffer(&mut self, from: ValidatorId, p: Verified<Proposal>) {
        if self.buffered.iter().any(|(_, q)| q.block.id() == p.block.id()) {
            return;
        }
        if self.buffered.len() >= MAX_BUFFERED {
            self.buffered.remove(0);
        }
        self.buffered.push((from, p));
    }

    /// Takes the buffered proposals, oldest first.
    pub fn take_buffered(&mut self) -> Vec<(ValidatorId, Verified<Proposal>)> {
        std::mem::take(&mut self.buffered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BlockHeader, SignerBitmap, VoteData};
    use phalanx_crypto::{Hash, Keypair};
    use std::collections::HashMap;

    struct Mem {
        committed: Vec<Block>,
        all: HashMap<BlockId, Block>,
    }

    impl BlockSource for Mem {
        fn committed_height(&self) -> Height {
            self.committed.len() as Height - 1
        }
        fn committed_block(&self, h: Height) -> Option<Block> {
            self.committed.get(h as usize).cloned()
        }
        fn committed_cert(&self, h: Height) -> Option<Certificate> {
            let b = self.committed.get(h as usize)?;
            Some(Certificate::Quorum(QuorumCert {
                vote: VoteData::for_block(b),
                signers: SignerBitmap::default(),
                signatures: vec![],
            }))
        }
        fn block(&self, id: &BlockId) -> Option<Block> {
            self.all.get(id).cloned()
        }
    }

    fn chain(n: usize) -> Vec<Block> {
        let key = Keypair::from_seed(&[1; 32]);
        let mut v = vec![Block::genesis("c", 0, Hash::ZERO, key.public())];
        for i in 1..n as u64 {
            let p = v.last().unwrap();
            let header = BlockHeader {
                chain_id: "c".into(),
                height: i,
                round: i,
                parent: p.id(),
                parent_round: p.round(),
                payload_root: Hash::ZERO,
                app_height: 0,
                app_hash: Hash::ZERO,
                proposer: key.public(),
                time_ms: i,
            };
            v.push(Block::sign(header, Certificate::Genesis, vec![], &key));
        }
        v
    }

    fn source(all: &[Block], committed: usize) -> Mem {
        Mem { committed: all[..=committed].to_vec(), all: all.iter().map(|b| (b.id(), b.clone())).collect() }
    }

    #[test]
    fn serves_committed_then_the_chain_to_the_target() {
        let c = chain(8); // heights 0..=7
        let src = source(&c, 4);
        let req = SyncRequest { from_height: 2, target: c[7].id(), max_blocks: 100 };
        let resp = serve(&req, &src, 100, usize::MAX);
        let heights: Vec<Height> = resp.blocks.iter().map(|b| b.height()).collect();
        assert_eq!(heights, vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(resp.last_cert, None, "the requester holds the target's QC");
    }

    #[test]
    fn stops_at_max_blocks_with_the_cert_of_the_last() {
        let c = chain(8);
        let src = source(&c, 6);
        let req = SyncRequest { from_height: 1, target: c[7].id(), max_blocks: 3 };
        let resp = serve(&req, &src, 100, usize::MAX);
        let heights: Vec<Height> = resp.blocks.iter().map(|b| b.height()).collect();
        assert_eq!(heights, vec![1, 2, 3]);
        assert!(resp.last_cert.is_some());
    }

    #[test]
    fn unknown_target_returns_only_committed_blocks() {
        let c = chain(5);
        let src = source(&c, 4);
        let req = SyncRequest { from_height: 3, target: Hash::digest(b"nope"), max_blocks: 10 };
        let resp = serve(&req, &src, 100, usize::MAX);
        let heights: Vec<Height> = resp.blocks.iter().map(|b| b.height()).collect();
        assert_eq!(heights, vec![3, 4]);
        assert!(resp.last_cert.is_some());
    }
}
