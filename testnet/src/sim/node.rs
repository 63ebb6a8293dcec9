//! One simulated validator: an engine, the durable state its engine asked
//! to keep, its timers and its mempool.
//!
//! [`MemStore`] is the only state that survives a simulated crash: exactly
//! what the engine asked to persist (`PersistSafety`, `PersistBlock`) and
//! what it committed. Everything else (timers, mempool, the engine's memory)
//! is rebuilt on restart from the store, the way a real node restarts.

use phalanx_consensus::engine::{Engine, HistoryEntry, Recovery, SafetyState, TimerId};
use phalanx_consensus::hotstuff::BlockSource;
use phalanx_consensus::types::{Block, BlockId, Certificate, CertifiedBlock, Height, Millis, Tx, ValidatorId};
use phalanx_crypto::{Hash, Hasher};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a crash does not erase.
#[derive(Clone, Default)]
pub struct MemStore {
    pub safety: Option<SafetyState>,
    pub blocks: HashMap<BlockId, Block>,
    pub committed: Vec<CertifiedBlock>,
    pub app_hashes: Vec<Hash>,
}

impl MemStore {
    pub fn new(genesis: Block, genesis_app_hash: Hash) -> MemStore {
        MemStore {
            safety: None,
            blocks: HashMap::new(),
            committed: vec![CertifiedBlock { block: genesis, cert: Certificate::Genesis }],
            app_hashes: vec![genesis_app_hash],
        }
    }

    pub fn recovery(&self) -> Recovery {
        let tip = self.committed.len() - 1;
        let committed_height = tip as Height;
        let start = tip.saturating_sub(64);
        let oldest = tip.saturating_sub(phalanx_config::genesis::REPUTATION_WINDOW_MAX as usize).max(1);
        Recovery {
            history: (oldest..tip)
                .map(|h| {
                    let b = &self.committed[h].block;
                    let voters = b.justify.as_quorum().map(|q| q.signers.clone()).unwrap_or_default();
                    HistoryEntry { height: h as Height, round: b.round(), voters }
                })
                .collect(),
            membership: None,
            safety: self.safety.clone(),
            committed: self.committed[tip].clone(),
            blocks: self.blocks.values().filter(|b| b.height() > committed_height).cloned().collect(),
            executed: (start..=tip).map(|h| (h as Height, self.app_hashes[h])).collect(),
        }
    }

    /// The app hash after applying `block` on top of `prev` (the simulator's
    /// application: a hash chain over the transactions themselves, so a block
    /// whose transactions were swapped gives a different hash).
    pub fn next_app_hash(prev: &Hash, block: &Block) -> Hash {
        let mut h = Hasher::with_domain(b"phalanx/sim-app/v1\0");
        h.update(prev.as_bytes());
        for tx in &block.txs {
            h.update(&(tx.len() as u64).to_le_bytes()).update(tx);
        }
        h.finish()
    }
}

impl BlockSource for MemStore {
    fn committed_height(&self) -> Height {
        (self.committed.len() - 1) as Height
    }
    fn committed_block(&self, height: Height) -> Option<Block> {
        self.committed.get(height as usize).map(|c| c.block.clone())
    }
    fn committed_cert(&self, height: Height) -> Option<Certificate> {
        self.committed.get(height as usize).map(|c| c.cert.clone())
    }
    fn block(&self, id: &BlockId) -> Option<Block> {
        self.blocks
            .get(id)
            .cloned()
            .or_else(|| self.committed.iter().rev().find(|c| c.block.id() == *id).map(|c| c.block.clone()))
    }
}

/// A simulated validator.
pub struct SimNode {
    pub id: ValidatorId,
    pub engine: Box<dyn Engine>,
    pub store: MemStore,
    pub up: bool,
    /// Pending deadline per timer id (a timer fires only if still current).
    pub timers: BTreeMap<TimerId, Millis>,
    /// Transactions this node knows and has not seen committed, in arrival order.
    pub pool: Vec<Tx>,
    pub pool_set: BTreeSet<Tx>,
}

impl SimNode {
    /// Takes up to `max_txs` pool transactions not in `exclude`d blocks.
    pub fn reap(&self, max_txs: usize, exclude: &[BlockId]) -> Vec<Tx> {
        let in_flight: BTreeSet<&Tx> =
            exclude.iter().filter_map(|id| self.store.blocks.get(id)).flat_map(|b| b.txs.iter()).collect();
        self.pool.iter().filter(|t| !in_flight.contains(t)).take(max_txs).cloned().collect()
    }

    pub fn add_tx(&mut self, tx: Tx) {
        if self.pool_set.insert(tx.clone()) {
            self.pool.push(tx);
        }
    }

    pub fn remove_committed(&mut self, txs: &[Tx]) {
        let gone: BTreeSet<&Tx> = txs.iter().collect();
        if gone.iter().any(|t| self.pool_set.contains(*t)) {
            self.pool.retain(|t| !gone.contains(t));
            for t in txs {
                self.pool_set.remove(t);
            }
        }
    }
}
