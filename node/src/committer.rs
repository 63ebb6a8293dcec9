//! The committer: turns committed blocks into durable application state.
//!
//! Runs on its own thread and takes batches of committed blocks from the
//! driver, in order. For each batch it executes the blocks against the
//! committed state (later blocks of a batch see earlier ones' writes), writes
//! every block, certificate, transaction result and state change in one
//! atomic store transaction, and flushes. Only then does it tell anyone:
//! the mempool (drop committed and stale transactions), clients waiting in
//! `broadcast_tx_commit`, subscribers, and the engine (`Input::Executed`).
//!
//! It also checks each block's application-hash claim against its own
//! history: a committed block that claims a different hash for a height this
//! node executed means this node's state diverged from the quorum's. The node
//! then stops rather than keep serving wrong state.

use crate::app::{KvApp, account};
use crate::driver::DriverEvent;
use crate::metrics::Metrics;
use crate::store::{ChainStore, CommitRecord, TxRecord};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use phalanx_consensus::engine::Input;
use phalanx_consensus::smr::{StateMachine, StateView};
use phalanx_consensus::types::{BlockId, CertifiedBlock, Height, Millis};
use phalanx_crypto::{Hash, PublicKey};
use phalanx_mempool::SharedMempool;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot};
use tracing::{error, info};

/// Largest number of blocks committed in one store transaction.
pub const MAX_BATCH: usize = 256;
/// Abandoned fork blocks are deleted every this many heights.
pub const PRUNE_EVERY: u64 = 100;

/// Clients waiting for their transactions to commit.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<Hash, Vec<oneshot::Sender<TxRecord>>>>,
}

impl Waiters {
    /// Registers interest in `hash`; register before submitting so the
    /// commit cannot be missed.
    pub fn register(&self, hash: Hash) -> oneshot::Receiver<TxRecord> {
        let (tx, rx) = oneshot::channel();
        self.map.lock().entry(hash).or_default().push(tx);
        rx
    }

    /// Forgets waiters that gave up on `hash`.
    pub fn forget(&self, hash: &Hash) {
        let mut m = self.map.lock();
        if let Some(v) = m.get_mut(hash) {
            v.retain(|s| !s.is_closed());
            if v.is_empty() {
                m.remove(hash);
            }
        }
    }

    fn notify(&self, hash: &Hash, rec: &TxRecord) {
        if let Some(v) = self.map.lock().remove(hash) {
            for s in v {
                let _ = s.send(rec.clone());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A committed block, as announced to subscribers.
#[derive(Clone, Debug)]
pub struct BlockEvent {
    pub height: Height,
    pub block_id: BlockId,
    pub time_ms: Millis,
    pub app_hash: Hash,
    /// Hash and result code of each transaction, in block order.
    pub txs: Vec<(Hash, u32)>,
}

/// The latest committed block, for `status`.
#[derive(Clone, Debug, Default)]
pub struct ChainTip {
    pub height: Height,
    pub block_id: BlockId,
    pub app_hash: Hash,
    pub time_ms: Millis,
}

pub struct Committer {
    pub store: Arc<dyn ChainStore>,
    pub app: Arc<KvApp>,
    pub mempool: SharedMempool,
    pub waiters: Arc<Waiters>,
    pub events: broadcast::Sender<Arc<BlockEvent>>,
    pub to_driver: Sender<DriverEvent>,
    pub metrics: Arc<Metrics>,
    pub tip: Arc<parking_lot::RwLock<ChainTip>>,
}

/// State as it will be after the blocks executed so far in this batch.
struct BatchView<'a> {
    store: &'a dyn ChainStore,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl StateView for BatchView<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.store.as_state().get(key),
        }
    }
}

impl Committer {
    /// Runs until the driver drops its end of `rx`.
    pub fn run(self, rx: Receiver<Vec<CertifiedBlock>>) {
        while let Ok(mut batch) = rx.recv() {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&self, blocks: Vec<CertifiedBlock>) {
        let (tip, _) =
            self.store.committed_tip().unwrap_or_else(|e| fatal(&format!("cannot read the committed tip: {e}")));
        let mut prev = self.store.app_hash_at(tip).ok().flatten().unwrap_or_else(|| fatal("no app hash for the tip"));
        let mut view = BatchView { store: self.store.as_ref(), writes: BTreeMap::new() };
        let mut records: Vec<CommitRecord> = Vec::with_capacity(blocks.len());
        for cb in blocks {
            if cb.block.height() <= tip {
                continue; // committed before a restart; the engine replayed it
            }
            if cb.block.header.payload_root != phalanx_consensus::types::payload_root(&cb.block.txs) {
                fatal(&format!(
                    "committed block {} carries transactions that do not match its payload root",
                    cb.block.height()
                ));
            }
            self.check_app_claim(&cb, &records);
            let exec = self.app.execute(&view, &prev, &cb.block);
            for (k, v) in &exec.writes {
                view.writes.insert(k.clone(), v.clone());
            }
            prev = exec.app_hash;
            records.push(CommitRecord {
                block: cb,
                outcomes: exec.outcomes,
                writes: exec.writes,
                app_hash: exec.app_hash,
            });
        }
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.store.commit(&records) {
            fatal(&format!("cannot store committed blocks: {e}"));
        }
        self.announce(&records);
        let top = records.last().map_or(0, |r| r.block.block.height());
        if top / PRUNE_EVERY != tip / PRUNE_EVERY {
            match self.store.prune_forks() {
                Ok(n) if n > 0 => info!(blocks = n, "pruned abandoned fork blocks"),
                Ok(_) => {}
                Err(e) => error!(error = %e, "cannot prune abandoned fork blocks"),
            }
        }
    }

    /// Stops the node if a committed block claims an app hash that differs
    /// from ours at the same height.
    fn check_app_claim(&self, cb: &CertifiedBlock, batch: &[CommitRecord]) {
        let h = &cb.block.header;
        let ours = batch
            .iter()
            .find(|r| r.block.block.height() == h.app_height)
            .map(|r| r.app_hash)
            .or_else(|| self.store.app_hash_at(h.app_height).ok().flatten());
        if let Some(ours) = ours
            && ours != h.app_hash
        {
            fatal(&format!(
                "state divergence: block {} says the app hash at height {} is {}, this node computed {}; \
                 this node's state differs from the quorum's, so it stops",
                h.height, h.app_height, h.app_hash, ours
            ));
        }
    }

    fn announce(&self, records: &[CommitRecord]) {
        let mut committed = Vec::new();
        let mut senders: BTreeSet<PublicKey> = BTreeSet::new();
        for r in records {
            for tx in &r.block.block.txs {
                committed.push(Hash::digest(tx));
                if let Some((s, _)) = KvApp::sender_and_nonce(tx) {
                    senders.insert(s);
                }
            }
        }
        let nonces: Vec<(PublicKey, u64)> =
            senders.into_iter().map(|s| (s, account(self.store.as_state(), &s).nonce)).collect();
        self.mempool.update(&committed, &nonces);
        for r in records {
            let b = &r.block.block;
            let mut txs = Vec::with_capacity(b.txs.len());
            for (i, (tx, outcome)) in b.txs.iter().zip(&r.outcomes).enumerate() {
                let hash = Hash::digest(tx);
                let rec =
                    TxRecord { height: b.height(), index: i as u32, code: outcome.code, log: outcome.log.clone() };
                self.waiters.notify(&hash, &rec);
                txs.push((hash, outcome.code));
            }
            self.metrics.committed(b.height(), b.txs.len(), b.header.time_ms);
            let event = BlockEvent {
                height: b.height(),
                block_id: b.id(),
                time_ms: b.header.time_ms,
                app_hash: r.app_hash,
                txs,
            };
            *self.tip.write() =
                ChainTip { height: b.height(), block_id: b.id(), app_hash: r.app_hash, time_ms: b.header.time_ms };
            let _ = self.events.send(Arc::new(event));
            let input = Input::Executed { height: b.height(), app_hash: r.app_hash };
            let _ = self.to_driver.send(DriverEvent::Input(input));
        }
        if let Some(last) = records.last() {
            let h = last.block.block.height();
            if h % 100 == 0 || records.len() > 1 {
                info!(height = h, blocks = records.len(), "committed");
            }
        }
        self.metrics.mempool(self.mempool.len(), self.mempool.bytes());
    }
}

fn fatal(msg: &str) -> ! {
    error!("{msg}");
    eprintln!("phalanx: fatal: {msg}");
    std::process::exit(3);
}
