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
//! then stops rather than keep serving wrong state. A node that started from
//! a state snapshot has no hashes below the snapshot's height (the store's
//! base height) and checks no claim about them.
//!
//! The committer reads the committed tip from the store at every batch, so
//! after a state snapshot is installed (with the committer idle) the next
//! batch simply continues from the snapshot's height. The shared [`ChainTip`]
//! moves only when the committer commits; refresh it after an install with
//! [`tip_of`].

use crate::app::{Application, raft_config};
use crate::driver::DriverEvent;
use crate::metrics::Metrics;
use crate::store::{ChainStore, CommitRecord, StateSnapshot, StoreError, TxRecord};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use phalanx_consensus::engine::Input;
use phalanx_consensus::smr::StateView;
use phalanx_consensus::types::{BlockId, CertifiedBlock, Height, Millis};
use phalanx_crypto::Hash;
use phalanx_mempool::{Sender as TxSender, SharedMempool};
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

/// The store's committed tip as a [`ChainTip`]: what the node puts in the
/// shared tip at start, and again after installing a state snapshot (the
/// committer moves the shared tip only when it commits).
///
/// A tip whose block or app hash the store does not hold is
/// [`StoreError::Corrupt`].
pub fn tip_of(store: &dyn ChainStore) -> Result<ChainTip, StoreError> {
    let (height, block_id) = store.committed_tip()?;
    let missing =
        |what: &str| StoreError::Corrupt { what: format!("the {what} at committed height {height} is missing") };
    let block = store.block_at(height)?.ok_or_else(|| missing("block"))?;
    let app_hash = store.app_hash_at(height)?.ok_or_else(|| missing("app hash"))?;
    Ok(ChainTip { height, block_id, app_hash, time_ms: block.header.time_ms })
}

pub struct Committer {
    pub store: Arc<dyn ChainStore>,
    pub app: Arc<dyn Application>,
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

/// Work for the committer, in the order the driver decided it.
// A snapshot is large, but it is moved once through the channel.
#[allow(clippy::large_enum_variant)]
pub enum CommitJob {
    /// Committed blocks, in height order.
    Blocks(Vec<CertifiedBlock>),
    /// A fetched state snapshot to install (Raft catch-up).
    Install(Box<StateSnapshot>),
}

impl Committer {
    /// Runs until the driver drops its end of `rx`.
    pub fn run(self, rx: Receiver<CommitJob>) {
        let mut next = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            match job {
                CommitJob::Install(s) => self.install(&s),
                CommitJob::Blocks(mut batch) => {
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(CommitJob::Blocks(more)) => batch.extend(more),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(batch);
                }
            }
        }
    }

    /// Installs a state snapshot between two commits (never during one),
    /// then moves the shared tip, refreshes the mempool's nonces, and tells
    /// the engine. A snapshot this node has already passed is dropped.
    fn install(&self, s: &StateSnapshot) {
        match self.store.committed_tip() {
            Ok((tip, _)) if tip >= s.height => {
                info!(height = s.height, tip, "state snapshot not needed any more: already committed past it");
                return;
            }
            Err(e) => fatal(&format!("cannot read the committed tip: {e}")),
            Ok(_) => {}
        }
        if let Err(e) = self.store.install_snapshot(s) {
            error!(error = %e, height = s.height, "cannot install the state snapshot");
            return;
        }
        match tip_of(self.store.as_ref()) {
            Ok(t) => *self.tip.write() = t,
            Err(e) => fatal(&format!("cannot read the tip after installing a snapshot: {e}")),
        }
        self.metrics.height.set(s.height as i64);
        self.mempool.update(&[], &self.app.snapshot_nonces(&s.entries));
        let input = Input::SnapshotInstalled {
            block: Box::new(s.block.clone()),
            app_hash: s.app_hash,
            config: raft_config(self.store.as_state()),
        };
        let _ = self.to_driver.send(DriverEvent::Input(input));
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
            // The block's digests were computed once when it was verified
            // (or proposed) and are shared here by the root check, the tx
            // index, the mempool and the notifications.
            let tx_hashes: Vec<Hash> = cb.block.tx_hashes().to_vec();
            if cb.block.header.payload_root != phalanx_crypto::merkle_root(&tx_hashes) {
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
                tx_hashes,
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
    /// from ours at the same height. A claim about a height below the
    /// store's base height (this node started from a snapshot above it) has
    /// nothing to compare with, which is not divergence.
    fn check_app_claim(&self, cb: &CertifiedBlock, batch: &[CommitRecord]) {
        let h = &cb.block.header;
        if h.app_height < self.store.base_height() {
            return;
        }
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
        let mut senders: BTreeSet<TxSender> = BTreeSet::new();
        for r in records {
            committed.extend_from_slice(&r.tx_hashes);
            for tx in &r.block.block.txs {
                if let Some((s, _)) = self.app.sender_and_nonce(tx) {
                    senders.insert(s);
                }
            }
        }
        let nonces: Vec<(TxSender, u64)> =
            senders.into_iter().map(|s| (s, self.app.next_nonce(self.store.as_state(), &s))).collect();
        self.mempool.update(&committed, &nonces);
        for r in records {
            let b = &r.block.block;
            // The tip moves before any client hears of the commit, so a
            // client that was told its transaction committed never sees an
            // older height in `status` or `query`.
            *self.tip.write() =
                ChainTip { height: b.height(), block_id: b.id(), app_hash: r.app_hash, time_ms: b.header.time_ms };
            let mut txs = Vec::with_capacity(b.txs.len());
            for (i, (&hash, outcome)) in r.tx_hashes.iter().zip(&r.outcomes).enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::KvApp;
    use crate::store::MemStore;
    use phalanx_consensus::types::{Block, BlockHeader, Certificate, payload_root};
    use phalanx_crypto::Keypair;
    use phalanx_mempool::MempoolConfig;

    const CHAIN: &str = "committer-test";

    /// A store holding genesis (one funded account), and the genesis block.
    fn genesis_store(key: &Keypair) -> (Arc<MemStore>, Block) {
        let (state, app_hash) = KvApp::genesis_state(&[(key.public(), 100)]);
        let genesis = Block::genesis(CHAIN, 0, app_hash, key.public());
        let store = Arc::new(MemStore::new());
        store.init_genesis(&genesis, &state, app_hash).unwrap();
        (store, genesis)
    }

    /// A committer over `store`, its shared tip set from the store.
    fn committer(store: Arc<MemStore>) -> (Committer, Receiver<DriverEvent>) {
        let store: Arc<dyn ChainStore> = store;
        let (to_driver, from_committer) = crossbeam_channel::unbounded();
        let tip = Arc::new(parking_lot::RwLock::new(tip_of(store.as_ref()).unwrap()));
        let committer = Committer {
            store,
            app: Arc::new(KvApp::new(CHAIN.into(), 1024)),
            mempool: SharedMempool::new(MempoolConfig::default()),
            waiters: Arc::new(Waiters::default()),
            events: broadcast::channel(16).0,
            to_driver,
            metrics: Arc::new(Metrics::new()),
            tip,
        };
        (committer, from_committer)
    }

    /// An empty Raft-style committed block on `parent` claiming the app hash
    /// `claim.1` at height `claim.0`.
    fn block(key: &Keypair, parent: &Block, claim: (Height, Hash)) -> CertifiedBlock {
        let height = parent.height() + 1;
        let header = BlockHeader {
            chain_id: CHAIN.into(),
            height,
            round: 1,
            parent: parent.id(),
            parent_round: 1,
            payload_root: payload_root(&[]),
            app_height: claim.0,
            app_hash: claim.1,
            proposer: key.public(),
            time_ms: 1_000 + height,
        };
        let block = Block::sign(header, Certificate::Raft { term: 1, index: parent.height() }, Vec::new(), key);
        CertifiedBlock { block, cert: Certificate::Raft { term: 1, index: height } }
    }

    /// After a snapshot install the committer continues from the snapshot's
    /// height, computing the same app hash as a node that replayed every
    /// block; a claim about a height below the base (unknown here) is not
    /// divergence; `tip_of` gives the shared tip the install moved.
    #[test]
    fn commits_continue_after_a_snapshot_install() {
        let key = Keypair::from_seed(&[3; 32]);
        let (source, genesis) = genesis_store(&key);
        let (replayer, _events) = committer(source.clone());
        let mut parent = genesis;
        for _ in 0..3 {
            let claim = (parent.height(), source.app_hash_at(parent.height()).unwrap().unwrap());
            let b = block(&key, &parent, claim);
            replayer.commit(vec![b.clone()]);
            parent = b.block;
        }
        assert_eq!(replayer.tip.read().height, 3);
        let snap = source.export_snapshot().unwrap();

        let (target, _) = genesis_store(&key);
        let (installer, _events) = committer(target.clone());
        target.install_snapshot(&snap).unwrap();
        assert_eq!(installer.tip.read().height, 0, "the committer does not know of the install");
        *installer.tip.write() = tip_of(target.as_ref()).unwrap();
        let tip = installer.tip.read().clone();
        assert_eq!((tip.height, tip.block_id, tip.app_hash), (3, parent.id(), snap.app_hash));
        assert_eq!(tip.time_ms, parent.header.time_ms);

        let next = block(&key, &parent, (2, source.app_hash_at(2).unwrap().unwrap()));
        replayer.commit(vec![next.clone()]);
        installer.commit(vec![next.clone()]);
        assert_eq!(target.committed_tip(), Ok((4, next.block.id())));
        assert_eq!(target.app_hash_at(4).unwrap(), source.app_hash_at(4).unwrap());
        assert_eq!(installer.tip.read().height, 4);
        assert_eq!(target.base_height(), 3);
        assert_eq!(target.export_snapshot().unwrap().entries, source.export_snapshot().unwrap().entries);
    }
}
