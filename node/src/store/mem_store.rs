//! [`MemStore`]: the chain store in memory, for tests of the node's other
//! parts.
//!
//! Same semantics as [`super::SledStore`] (both run the conformance suite),
//! without durability: [`ChainStore::flush`] does nothing and everything is
//! gone when the value is dropped. One mutex guards all of it, so every
//! operation, and in particular every commit, is atomic.

use super::{
    ChainStore, CommitRecord, MEMORY_PATH, StateSnapshot, StoreError, TxRecord, check_batch, check_snapshot,
    describe_chain, evidence_key, source_block, source_committed_block, source_committed_cert, source_committed_height,
    tx_records, view_state,
};
use parking_lot::Mutex;
use phalanx_consensus::hotstuff::BlockSource;
use phalanx_consensus::smr::StateView;
use phalanx_consensus::types::{Block, BlockId, Certificate, CertifiedBlock, Evidence, Height};
use phalanx_consensus::{Recovery, SafetyState};
use phalanx_crypto::Hash;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// The chain store in memory. Not durable.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

/// Everything, mirroring the trees of the sled store.
#[derive(Debug, Default)]
struct Inner {
    /// Chain id and genesis id, once initialized.
    chain: Option<(String, BlockId)>,
    /// The committed tip, once initialized.
    tip: Option<(Height, BlockId)>,
    /// The lowest height whose committed block is held (0 unless a snapshot
    /// was installed).
    base: Height,
    blocks: HashMap<BlockId, Block>,
    heights: BTreeMap<Height, BlockId>,
    certs: BTreeMap<Height, Certificate>,
    app_hashes: BTreeMap<Height, Hash>,
    txs: HashMap<Hash, TxRecord>,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    pending: BTreeSet<(Height, BlockId)>,
    safety: Option<SafetyState>,
    evidence: BTreeMap<[u8; 40], Evidence>,
}

impl MemStore {
    /// An empty, uninitialized store.
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl Inner {
    fn tip(&self) -> Result<(Height, BlockId), StoreError> {
        self.tip.ok_or(StoreError::NotInitialized)
    }

    /// The committed block at `height`; its absence when the height index
    /// names it is corruption.
    fn committed_block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        if height < self.base {
            return Ok(None);
        }
        let Some(id) = self.heights.get(&height) else { return Ok(None) };
        match self.blocks.get(id) {
            Some(b) => Ok(Some(b.clone())),
            None => Err(StoreError::Corrupt {
                what: format!("height {height} names block {} but no such block is stored", id.to_hex()),
            }),
        }
    }

    fn apply(&mut self, r: &CommitRecord) {
        let block = &r.block.block;
        let (height, id) = (block.height(), block.id());
        for (hash, rec) in tx_records(r) {
            self.txs.entry(hash).or_insert(rec);
        }
        for (k, v) in &r.writes {
            match v {
                Some(v) => self.state.insert(k.clone(), v.clone()),
                None => self.state.remove(k),
            };
        }
        self.blocks.insert(id, block.clone());
        self.heights.insert(height, id);
        self.certs.insert(height, r.block.cert.clone());
        self.app_hashes.insert(height, r.app_hash);
        self.pending.remove(&(height, id));
        self.tip = Some((height, id));
    }
}

impl ChainStore for MemStore {
    fn init_genesis(
        &self,
        genesis: &Block,
        initial_state: &BTreeMap<Vec<u8>, Vec<u8>>,
        app_hash: Hash,
    ) -> Result<(), StoreError> {
        if genesis.height() != 0 {
            return Err(StoreError::InvalidRecord {
                height: genesis.height(),
                reason: "a genesis block has height 0".into(),
            });
        }
        let id = genesis.id();
        let chain_id = &genesis.header.chain_id;
        let mut s = self.inner.lock();
        if let Some((found_chain, found_id)) = &s.chain {
            if found_chain == chain_id && *found_id == id {
                return Ok(());
            }
            return Err(StoreError::WrongChain {
                path: PathBuf::from(MEMORY_PATH),
                found: describe_chain(found_chain, found_id),
                expected: describe_chain(chain_id, &id),
            });
        }
        s.chain = Some((chain_id.clone(), id));
        s.blocks.insert(id, genesis.clone());
        s.heights.insert(0, id);
        s.certs.insert(0, Certificate::Genesis);
        s.app_hashes.insert(0, app_hash);
        s.state.extend(initial_state.iter().map(|(k, v)| (k.clone(), v.clone())));
        s.tip = Some((0, id));
        Ok(())
    }

    fn is_initialized(&self) -> bool {
        self.inner.lock().tip.is_some()
    }

    fn save_safety(&self, st: &SafetyState) -> Result<(), StoreError> {
        self.inner.lock().safety = Some(st.clone());
        Ok(())
    }

    fn load_safety(&self) -> Result<Option<SafetyState>, StoreError> {
        Ok(self.inner.lock().safety.clone())
    }

    /// Nothing to do: memory is as durable as this store gets.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn save_block(&self, b: &Block) -> Result<(), StoreError> {
        let mut s = self.inner.lock();
        let id = b.id();
        s.blocks.insert(id, b.clone());
        s.pending.insert((b.height(), id));
        Ok(())
    }

    fn commit(&self, records: &[CommitRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut s = self.inner.lock();
        check_batch(s.tip()?, records)?;
        for r in records {
            s.apply(r);
        }
        Ok(())
    }

    fn committed_tip(&self) -> Result<(Height, BlockId), StoreError> {
        self.inner.lock().tip()
    }

    fn block_by_id(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        Ok(self.inner.lock().blocks.get(id).cloned())
    }

    fn block_at(&self, height: Height) -> Result<Option<Block>, StoreError> {
        self.inner.lock().committed_block(height)
    }

    fn cert_at(&self, height: Height) -> Result<Option<Certificate>, StoreError> {
        let s = self.inner.lock();
        Ok(if height < s.base { None } else { s.certs.get(&height).cloned() })
    }

    fn app_hash_at(&self, height: Height) -> Result<Option<Hash>, StoreError> {
        let s = self.inner.lock();
        Ok(if height < s.base { None } else { s.app_hashes.get(&height).copied() })
    }

    fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, StoreError> {
        Ok(self.inner.lock().txs.get(hash).cloned())
    }

    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.lock().state.get(key).cloned())
    }

    fn recovery(&self, keep: usize) -> Result<Recovery, StoreError> {
        let s = self.inner.lock();
        let (tip, _) = s.tip()?;
        let block = s
            .committed_block(tip)?
            .ok_or_else(|| StoreError::Corrupt { what: format!("the committed block at height {tip} is missing") })?;
        let cert = s.certs.get(&tip).cloned().ok_or_else(|| StoreError::Corrupt {
            what: format!("the certificate of the committed block at height {tip} is missing"),
        })?;
        let mut blocks = Vec::new();
        for (height, id) in s.pending.range((tip + 1, Hash::ZERO)..) {
            let b = s.blocks.get(id).ok_or_else(|| StoreError::Corrupt {
                what: format!("pending block {} at height {height} is missing", id.to_hex()),
            })?;
            blocks.push(b.clone());
        }
        let executed = s.app_hashes.range(s.base..=tip).rev().take(keep).map(|(h, a)| (*h, *a)).collect::<Vec<_>>();
        Ok(Recovery {
            membership: None,
            history: Vec::new(),
            safety: s.safety.clone(),
            committed: CertifiedBlock { block, cert },
            blocks,
            executed: executed.into_iter().rev().collect(),
        })
    }

    fn export_snapshot(&self) -> Result<StateSnapshot, StoreError> {
        let s = self.inner.lock();
        let (height, _) = s.tip()?;
        let missing =
            |what: &str| StoreError::Corrupt { what: format!("the {what} at committed height {height} is missing") };
        let Some((chain_id, _)) = &s.chain else { return Err(StoreError::NotInitialized) };
        Ok(StateSnapshot {
            chain_id: chain_id.clone(),
            height,
            block: s.committed_block(height)?.ok_or_else(|| missing("block"))?,
            cert: s.certs.get(&height).cloned().ok_or_else(|| missing("certificate"))?,
            app_hash: s.app_hashes.get(&height).copied().ok_or_else(|| missing("app hash"))?,
            entries: s.state.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    fn install_snapshot(&self, snap: &StateSnapshot) -> Result<(), StoreError> {
        let mut s = self.inner.lock();
        let (tip, _) = s.tip()?;
        let Some((chain_id, _)) = &s.chain else { return Err(StoreError::NotInitialized) };
        check_snapshot(chain_id, tip, snap)?;
        let height = snap.height;
        let committed: Vec<BlockId> = s.heights.values().copied().collect();
        let pending: Vec<(Height, BlockId)> = s.pending.range(..=(height, Hash([0xff; 32]))).copied().collect();
        for id in committed.iter().chain(pending.iter().map(|(_, id)| id)) {
            s.blocks.remove(id);
        }
        for key in &pending {
            s.pending.remove(key);
        }
        s.heights.clear();
        s.certs.clear();
        s.app_hashes.clear();
        s.state = snap.entries.iter().cloned().collect();
        let id = snap.block.id();
        s.blocks.insert(id, snap.block.clone());
        s.heights.insert(height, id);
        s.certs.insert(height, snap.cert.clone());
        s.app_hashes.insert(height, snap.app_hash);
        s.tip = Some((height, id));
        s.base = height;
        Ok(())
    }

    fn base_height(&self) -> Height {
        self.inner.lock().base
    }

    fn save_evidence(&self, e: &Evidence) -> Result<(), StoreError> {
        self.inner.lock().evidence.insert(evidence_key(e), e.clone());
        Ok(())
    }

    fn evidence(&self) -> Result<Vec<Evidence>, StoreError> {
        Ok(self.inner.lock().evidence.values().cloned().collect())
    }

    fn prune_forks(&self) -> Result<usize, StoreError> {
        let mut s = self.inner.lock();
        let (tip, _) = s.tip()?;
        let stale: Vec<(Height, BlockId)> = s.pending.range(..=(tip, Hash([0xff; 32]))).copied().collect();
        let mut removed = 0;
        for (height, id) in stale {
            s.pending.remove(&(height, id));
            if s.heights.get(&height) != Some(&id) && s.blocks.remove(&id).is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn as_state(&self) -> &(dyn StateView + Sync) {
        self
    }

    fn as_block_source(&self) -> &dyn BlockSource {
        self
    }
}

impl StateView for MemStore {
    /// Committed application state (this store cannot fail to read).
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        view_state(self, key)
    }
}

impl BlockSource for MemStore {
    fn committed_height(&self) -> Height {
        source_committed_height(self)
    }
    fn committed_block(&self, height: Height) -> Option<Block> {
        source_committed_block(self, height)
    }
    fn committed_cert(&self, height: Height) -> Option<Certificate> {
        source_committed_cert(self, height)
    }
    fn block(&self, id: &BlockId) -> Option<Block> {
        source_block(self, id)
    }
}
