//! The tree of blocks above the last committed block.
//!
//! Owns every block the engine has accepted but not yet committed, the best
//! QC known for each of them, and the highest QC seen anywhere.
//!
//! Invariants (checked by [`BlockTree::check_invariants`] in debug builds):
//! - the root is the last committed block; every other block descends from
//!   it through known parents;
//! - `height == parent.height + 1` and `round > parent.round` for every
//!   non-root block;
//! - `high_qc.round` is the highest round of any QC recorded.
//!
//! Committing a block makes it the new root and drops every block that does
//! not descend from it.

use crate::types::{Block, BlockId, Certificate, CertifiedBlock, Height, QuorumCert};
use std::collections::HashMap;

/// Why a block could not be added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("parent {0} is unknown")]
    UnknownParent(BlockId),
    #[error("height {height} at or below the committed height {root}")]
    BelowRoot { height: Height, root: Height },
    #[error("height {height} does not follow parent height {parent}")]
    BadHeight { height: Height, parent: Height },
    #[error("round {round} does not exceed parent round {parent}")]
    BadRound { round: u64, parent: u64 },
}

struct Entry {
    block: Block,
    children: Vec<BlockId>,
}

pub struct BlockTree {
    root: BlockId,
    blocks: HashMap<BlockId, Entry>,
    qcs: HashMap<BlockId, QuorumCert>,
    high_qc: QuorumCert,
}

impl BlockTree {
    /// A tree whose root is `root`, certified by `root_qc`.
    pub fn new(root: Block, root_qc: QuorumCert) -> BlockTree {
        let id = root.id();
        let mut blocks = HashMap::new();
        blocks.insert(id, Entry { block: root, children: Vec::new() });
        let mut qcs = HashMap::new();
        qcs.insert(id, root_qc.clone());
        BlockTree { root: id, blocks, qcs, high_qc: root_qc }
    }

    pub fn root(&self) -> &Block {
        &self.blocks[&self.root].block
    }

    pub fn root_height(&self) -> Height {
        self.root().height()
    }

    pub fn get(&self, id: &BlockId) -> Option<&Block> {
        self.blocks.get(id).map(|e| &e.block)
    }

    pub fn contains(&self, id: &BlockId) -> bool {
        self.blocks.contains_key(id)
    }

    pub fn high_qc(&self) -> &QuorumCert {
        &self.high_qc
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Adds `block`, whose parent must be in the tree. Returns `false` if it
    /// was already there. Records the block's justify as its parent's QC.
    pub fn insert(&mut self, block: Block) -> Result<bool, TreeError> {
        let id = block.id();
        if self.blocks.contains_key(&id) {
            return Ok(false);
        }
        let root = self.root_height();
        if block.height() <= root {
            return Err(TreeError::BelowRoot { height: block.height(), root });
        }
        let parent = self.blocks.get(&block.parent()).ok_or(TreeError::UnknownParent(block.parent()))?;
        if block.height() != parent.block.height() + 1 {
            return Err(TreeError::BadHeight { height: block.height(), parent: parent.block.height() });
        }
        if block.round() <= parent.block.round() {
            return Err(TreeError::BadRound { round: block.round(), parent: parent.block.round() });
        }
        if let Certificate::Quorum(qc) = &block.justify {
            self.insert_qc(qc.clone());
        }
        self.blocks.get_mut(&block.parent()).expect("parent checked").children.push(id);
        self.blocks.insert(id, Entry { block, children: Vec::new() });
        Ok(true)
    }

    /// Records a QC (for a known block or not). Returns true if it is a new
    /// highest QC.
    pub fn insert_qc(&mut self, qc: QuorumCert) -> bool {
        let higher = qc.round() > self.high_qc.round();
        if higher {
            self.high_qc = qc.clone();
        }
        self.qcs.entry(qc.block_id()).or_insert(qc);
        higher
    }

    pub fn qc_for(&self, id: &BlockId) -> Option<&QuorumCert> {
        self.qcs.get(id)
    }

    /// The blocks from just above the root up to `id` inclusive, ascending;
    /// `None` if `id` is not in the tree. Empty if `id` is the root.
    pub fn path_from_root(&self, id: &BlockId) -> Option<Vec<BlockId>> {
        let mut path = Vec::new();
        let mut cur = *id;
        while cur != self.root {
            let e = self.blocks.get(&cur)?;
            path.push(cur);
            cur = e.block.parent();
        }
        path.reverse();
        Some(path)
    }

    /// Commits every block from just above the root up to `id`, in height
    /// order, each with its QC; `id` becomes the root and blocks not
    /// descending from it are dropped. Empty if `id` is unknown, the root, or
    /// a block whose QC is unknown.
    pub fn commit(&mut self, id: &BlockId) -> Vec<CertifiedBlock> {
        let Some(path) = self.path_from_root(id) else { return Vec::new() };
        if path.is_empty() || path.iter().any(|b| !self.qcs.contains_key(b)) {
            return Vec::new();
        }
        // Each block but the last is certified by its child's justify, so
        // the stored certificates are the chain's own (leader reputation
        // reads their signers back at restart); the last by its best QC.
        let committed: Vec<CertifiedBlock> = path
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let cert = match path.get(i + 1).map(|c| &self.blocks[c].block.justify) {
                    Some(justify @ Certificate::Quorum(_)) => justify.clone(),
                    _ => Certificate::Quorum(self.qcs[b].clone()),
                };
                CertifiedBlock { block: self.blocks[b].block.clone(), cert }
            })
            .collect();
        self.root = *id;
        self.prune();
        committed
    }

    /// Drops every block that does not descend from the root.
    fn prune(&mut self) {
        let mut keep = HashMap::with_capacity(self.blocks.len());
        let mut stack = vec![self.root];
        while let Some(id) = stack.pop() {
            if let Some(e) = self.blocks.remove(&id) {
                stack.extend(e.children.iter().copied());
                keep.insert(id, e);
            }
        }
        self.blocks = keep;
        let blocks = &self.blocks;
        let root_height = blocks[&self.root].block.height();
        self.qcs.retain(|id, qc| blocks.contains_key(id) || qc.height() > root_height);
    }

    /// Blocks other than the root, in height order (for tests and status).
    pub fn uncommitted(&self) -> Vec<&Block> {
        let mut v: Vec<&Block> = self.blocks.values().map(|e| &e.block).filter(|b| b.id() != self.root).collect();
        v.sort_by_key(|b| (b.height(), b.round()));
        v
    }

    /// Checks the invariants in the module doc; panics naming the one broken.
    pub fn check_invariants(&self) {
        let root_height = self.root_height();
        let mut max_qc = 0;
        for qc in self.qcs.values() {
            max_qc = max_qc.max(qc.round());
        }
        assert!(self.high_qc.round() >= max_qc, "high QC is not the highest recorded QC");
        for (id, e) in &self.blocks {
            if *id == self.root {
                continue;
            }
            let p = self.blocks.get(&e.block.parent()).expect("every block's parent is in the tree");
            assert_eq!(e.block.height(), p.block.height() + 1, "height follows parent");
            assert!(e.block.round() > p.block.round(), "round exceeds parent");
            assert!(e.block.height() > root_height, "block above root");
            assert!(self.path_from_root(id).is_some(), "block descends from root");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BlockHeader, SignerBitmap, VoteData};
    use crate::verify::genesis_qc;
    use phalanx_crypto::{Hash, Keypair};

    fn key() -> Keypair {
        Keypair::from_seed(&[1; 32])
    }

    fn genesis() -> Block {
        Block::genesis("c", 0, Hash::ZERO, key().public())
    }

    fn qc_for(b: &Block) -> QuorumCert {
        QuorumCert { vote: VoteData::for_block(b), signers: SignerBitmap::default(), signatures: vec![] }
    }

    fn child(parent: &Block, round: u64) -> Block {
        let header = BlockHeader {
            chain_id: "c".into(),
            height: parent.height() + 1,
            round,
            parent: parent.id(),
            parent_round: parent.round(),
            payload_root: Hash::ZERO,
            app_height: 0,
            app_hash: Hash::ZERO,
            proposer: key().public(),
            time_ms: round,
        };
        Block::sign(header, Certificate::Quorum(qc_for(parent)), vec![], &key())
    }

    #[test]
    fn insert_requires_known_parent_and_consistent_height_and_round() {
        let g = genesis();
        let mut t = BlockTree::new(g.clone(), genesis_qc(&g));
        let b1 = child(&g, 1);
        let b2 = child(&b1, 2);
        assert_eq!(t.insert(b2.clone()), Err(TreeError::UnknownParent(b1.id())));
        assert_eq!(t.insert(b1.clone()), Ok(true));
        assert_eq!(t.insert(b1.clone()), Ok(false));
        assert_eq!(t.insert(b2.clone()), Ok(true));
        let mut bad = child(&b2, 2);
        bad.header.round = 2;
        assert!(matches!(t.insert(bad), Err(TreeError::BadRound { .. })));
        t.check_invariants();
        assert_eq!(t.high_qc().round(), 1, "b2's justify certifies b1 (round 1)");
    }

    #[test]
    fn commit_returns_path_in_order_and_prunes_forks() {
        let g = genesis();
        let mut t = BlockTree::new(g.clone(), genesis_qc(&g));
        let b1 = child(&g, 1);
        let b2 = child(&b1, 2);
        let b3 = child(&b2, 3);
        let fork = child(&b1, 4);
        for b in [&b1, &b2, &b3, &fork] {
            t.insert(b.clone()).unwrap();
        }
        let committed = t.commit(&b2.id());
        let heights: Vec<u64> = committed.iter().map(|c| c.block.height()).collect();
        assert_eq!(heights, vec![1, 2]);
        assert_eq!(committed[1].cert, Certificate::Quorum(qc_for(&b2)));
        assert_eq!(committed[0].cert, b2.justify, "certified by its child's justify");
        assert_eq!(t.root().id(), b2.id());
        assert!(!t.contains(&fork.id()), "the fork off b1 is dropped");
        assert!(t.contains(&b3.id()));
        t.check_invariants();
    }

    #[test]
    fn commit_needs_a_qc_for_every_block() {
        let g = genesis();
        let mut t = BlockTree::new(g.clone(), genesis_qc(&g));
        let b1 = child(&g, 1);
        t.insert(b1.clone()).unwrap();
        assert!(t.commit(&b1.id()).is_empty(), "b1 has no QC yet");
        t.insert_qc(qc_for(&b1));
        assert_eq!(t.commit(&b1.id()).len(), 1);
    }
}
