//! Starting and stopping a validator: wires store, application, mempool,
//! network, consensus driver, committer, RPC and metrics together.
//!
//! Threads and tasks:
//! - the driver thread owns the consensus engine;
//! - the committer thread executes and stores committed blocks;
//! - tokio tasks run the network, the RPC server, transaction gossip and the
//!   metrics endpoint.
//!
//! Shutdown (SIGINT or SIGTERM): RPC stops accepting, the driver stops after
//! its current step, the committer finishes the batch in hand and flushes,
//! the network closes.

use crate::app::{self as application, Application};
use crate::committer::{ChainTip, Committer, Waiters};
use crate::compact::{CompactProposal, FetchLimiter, SentProposals};
use crate::driver::{COMMIT_QUEUE, Driver, DriverEvent, EngineRequests, INBOX, PeerMap};
use crate::evidence::EvidenceReporter;
use crate::faults::{FaultLayer, FaultPlan};
use crate::gossip::GossipQueue;
use crate::metrics::Metrics;
use crate::network::{self, InboundHandler, NetConfig, NetMsg, NetworkHandle};
use crate::rpc::{self, RpcContext};
use crate::state_sync::{self, SnapshotServer};
use crate::store::{ChainStore, SledStore};
use bytes::Bytes;
use crossbeam_channel::Sender;
use libp2p::PeerId;
use parking_lot::RwLock;
use phalanx_config::{Fault, Loaded, Protocol};
use phalanx_consensus::engine::{ConsensusMsg, Engine, EngineStatus, HotStuffMsg, Input, SyncRequest, SyncResponse};
use phalanx_consensus::hotstuff::reputation::Params as ReputationParams;
use phalanx_consensus::hotstuff::{EngineConfig, HotStuff, serve_sync};
use phalanx_consensus::raft::{Raft, RaftConfig};
use phalanx_consensus::smr::PayloadVerifier;
use phalanx_consensus::types::{Block, BlockId, Proposal, Validator, ValidatorSet};
use phalanx_crypto::{Hash, codec as canonical};
use phalanx_mempool::{MempoolConfig, Rejection, SharedMempool};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

/// App hashes of recent heights handed to the engine at start.
pub const EXECUTED_KEEP: usize = 1024;
/// Blocks served per sync request at most.
pub const SYNC_MAX_BLOCKS: usize = 64;
/// Transaction bytes served per sync request at most.
pub const SYNC_MAX_BYTES: usize = 16 << 20;

/// A running node, for tests and the CLI.
pub struct RunningNode {
    pub rpc_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    driver_tx: Sender<DriverEvent>,
    rpc: jsonrpsee::server::ServerHandle,
    driver: Option<std::thread::JoinHandle<()>>,
    committer: Option<std::thread::JoinHandle<()>>,
}

impl RunningNode {
    /// Stops everything and waits for the store to be flushed.
    pub async fn stop(mut self) {
        let _ = self.rpc.stop();
        let _ = self.driver_tx.send(DriverEvent::Shutdown);
        let _ = self.shutdown.send(true);
        let driver = self.driver.take();
        let committer = self.committer.take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(d) = driver {
                let _ = d.join();
            }
            if let Some(c) = committer {
                let _ = c.join();
            }
        })
        .await;
        info!("node stopped");
    }
}

/// Network traffic into the node.
struct Inbound {
    peers: PeerMap,
    driver: Sender<DriverEvent>,
    mempool: SharedMempool,
    app: Arc<dyn Application>,
    store: Arc<dyn ChainStore>,
    metrics: Arc<Metrics>,
    snapshots: SnapshotServer,
    /// The network, once started (it needs this handler first): compact
    /// proposals fetch missing transactions through it.
    net: std::sync::OnceLock<NetworkHandle>,
    /// Payloads of the proposals this node sent compact, for fetches.
    sent: Arc<SentProposals>,
    /// Compact proposals come only from HotStuff leaders, with at most
    /// this many digests.
    compact: Option<CompactLimits>,
    /// Fetches of proposal transactions in flight, per peer.
    fetching: Arc<FetchLimiter<PeerId>>,
}

/// What a compact proposal may name (HotStuff mode only).
#[derive(Clone, Copy)]
struct CompactLimits {
    max_txs: usize,
}

/// Fetches of one peer's proposal transactions in flight at most.
const FETCHES_PER_PEER: usize = 4;
/// How long a replica waits for fetched proposal transactions: past it the
/// round's timeout has its say anyway.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

impl Inbound {
    fn to_driver(&self, input: Input) {
        if self.driver.try_send(DriverEvent::Input(input)).is_err() {
            self.metrics.inbound_dropped.inc();
        }
    }
}

impl InboundHandler for Inbound {
    fn consensus(&self, from: PeerId, msg: ConsensusMsg) {
        match self.peers.validator(&from) {
            Some(v) => self.to_driver(Input::Message { from: v, msg }),
            None => self.invalid(from, "consensus message from a peer that is not a validator".into()),
        }
    }

    fn transactions(&self, from: PeerId, txs: Vec<Bytes>) {
        let (mempool, app, store, metrics) =
            (self.mempool.clone(), self.app.clone(), self.store.clone(), self.metrics.clone());
        let validator = self.peers.validator(&from);
        tokio::task::spawn_blocking(move || {
            let checker = crate::app::checker(&*app, store.as_state());
            for outcome in mempool.add_batch(txs, &checker) {
                if let Err(r) = outcome {
                    metrics.tx_rejected(r.kind());
                    debug!(peer = %from, reason = %r, "gossiped transaction refused");
                    // A peer's mempool admitted it: an honest peer never
                    // forwards one that no node could admit.
                    let forged = matches!(
                        r,
                        Rejection::Malformed(_)
                            | Rejection::BadSignature
                            | Rejection::WrongChain { .. }
                            | Rejection::TooLarge { .. }
                    );
                    if let (true, Some(v)) = (forged, validator) {
                        metrics.invalid_message(&v.to_hex());
                    }
                }
            }
            metrics.mempool(mempool.len(), mempool.bytes());
        });
    }

    fn compact_proposal(&self, from: PeerId, cp: CompactProposal) {
        let Some(v) = self.peers.validator(&from) else {
            return self.invalid(from, "compact proposal from a peer that is not a validator".into());
        };
        let Some(limits) = self.compact else {
            return self.invalid(from, "compact proposal in Raft mode".into());
        };
        // Checked before any work: only the block's proposer sends it, and
        // it names no more transactions than a block may hold.
        if cp.proposal.block.header.proposer != v {
            return self.invalid(from, "compact proposal of a block it did not propose".into());
        }
        if cp.hashes.len() > limits.max_txs {
            let n = cp.hashes.len();
            return self
                .invalid(from, format!("compact proposal of {n} transactions; a block holds {}", limits.max_txs));
        }
        let (mempool, driver, metrics) = (self.mempool.clone(), self.driver.clone(), self.metrics.clone());
        let fetching = self.fetching.clone();
        let net = self.net.get().cloned();
        // Off the network task: the lookups take the mempool's lock.
        tokio::task::spawn_blocking(move || {
            let counter = metrics.clone();
            let found = mempool.get_many(&cp.hashes);
            let missing = CompactProposal::missing(&found);
            counter.compact_txs.inc_by(cp.hashes.len() as u64);
            let deliver = move |p: Proposal| {
                let msg = ConsensusMsg::HotStuff(HotStuffMsg::Proposal(Box::new(p)));
                if driver.try_send(DriverEvent::Input(Input::Message { from: v, msg })).is_err() {
                    metrics.inbound_dropped.inc();
                }
            };
            if missing.is_empty() {
                match cp.rebuild(found, Vec::new()) {
                    Ok(p) => {
                        counter.compact_proposal("complete");
                        deliver(p);
                    }
                    Err(why) => {
                        counter.compact_proposal("fetch_failed");
                        debug!(%why, "compact proposal: rebuilt from the mempool but refused");
                    }
                }
                return;
            }
            let Some(net) = net else { return counter.compact_proposal("not_fetched") };
            let (block, wanted) = (cp.block_id(), missing.iter().map(|&i| cp.hashes[i]).collect::<Vec<_>>());
            let Some(slot) = fetching.try_take(from) else {
                counter.compact_proposal("not_fetched");
                return debug!(%block, "compact proposal dropped: fetches from its sender already in flight");
            };
            debug!(%block, missing = wanted.len(), of = cp.hashes.len(), "compact proposal: fetching transactions");
            let n_wanted = wanted.len() as u64;
            let answer = net.proposal_txs_request(from, block, wanted);
            tokio::runtime::Handle::current().spawn(async move {
                let answer = tokio::time::timeout(FETCH_TIMEOUT, answer).await;
                drop(slot);
                let fetched = match answer {
                    Ok(Ok(Ok(bytes))) => match canonical::decode::<Option<Vec<Bytes>>>(&bytes) {
                        Ok(Some(txs)) => cp.rebuild(found, txs).map_err(|why| (why, true)),
                        Ok(None) => Err(("the proposer no longer has its payload".into(), false)),
                        Err(e) => Err((format!("undecodable proposal transactions: {e}"), true)),
                    },
                    Ok(Ok(Err(why))) => Err((why.to_string(), false)),
                    Ok(Err(_)) => Err(("the network stopped".into(), false)),
                    Err(_) => Err(("timed out".into(), false)),
                };
                match fetched {
                    Ok(p) => {
                        counter.compact_proposal("fetched");
                        counter.compact_fetched_txs.inc_by(n_wanted);
                        deliver(p)
                    }
                    Err((why, peer_at_fault)) => {
                        counter.compact_proposal("fetch_failed");
                        if peer_at_fault {
                            refuse(&counter, from, why);
                        } else {
                            debug!(%block, %why, "compact proposal: fetch failed");
                        }
                    }
                }
            });
        });
    }

    fn serve_proposal_txs(&self, block: &BlockId, hashes: &[Hash]) -> Vec<u8> {
        canonical::encode(&self.sent.serve(block, hashes))
    }

    fn serve_sync(&self, request: SyncRequest) -> SyncResponse {
        serve_sync(&request, self.store.as_block_source(), SYNC_MAX_BLOCKS, SYNC_MAX_BYTES)
    }

    fn serve_snapshot(&self, query: &[u8]) -> Vec<u8> {
        self.snapshots.answer(query)
    }

    fn sync_response(&self, from: PeerId, response: SyncResponse) {
        if let Some(v) = self.peers.validator(&from) {
            self.to_driver(Input::Synced { from: v, response });
        }
    }

    fn disconnected(&self, peer: PeerId) {
        // Rare, and worth not dropping when the inbox is full (as
        // `to_driver` would): a blocking send, off the network task.
        if let Some(v) = self.peers.validator(&peer) {
            let driver = self.driver.clone();
            tokio::task::spawn_blocking(move || {
                let _ = driver.send(DriverEvent::Input(Input::PeerDisconnected(v)));
            });
        }
    }

    fn invalid(&self, from: PeerId, reason: String) {
        refuse(&self.metrics, from, reason);
    }
}

/// Logs and counts input `from` sent that we could not use (garbage, or
/// a fetch answered with something other than what was asked).
fn refuse(metrics: &Metrics, from: PeerId, reason: String) {
    warn!(peer = %from, %reason, "refused input from peer");
    metrics.invalid_message(&from.to_string());
}

fn parse_addr(s: &str, field: &str) -> anyhow::Result<SocketAddr> {
    s.parse().map_err(|_| anyhow::anyhow!("node.toml: {field}: {s:?} is not an IP:port address"))
}

/// Opens the store, checks it belongs to this chain, writes genesis on first
/// start, and returns the store and the genesis block.
pub fn open_store(loaded: &Loaded) -> anyhow::Result<(Arc<SledStore>, Block)> {
    let genesis = &loaded.genesis;
    let accounts: Vec<_> = genesis.app.accounts.iter().map(|a| (a.pub_key, a.balance)).collect();
    let (initial, app_hash) = application::genesis_state(genesis.app.kind, &accounts);
    let block = Block::genesis(&genesis.chain_id, genesis.genesis_time_ms(), app_hash, genesis.validators[0].pub_key);
    let store = Arc::new(SledStore::open(&loaded.data_dir())?);
    store.init_genesis(&block, &initial, app_hash)?;
    Ok((store, block))
}

/// Starts a validator from a loaded home. Returns once everything runs.
pub async fn start(loaded: Loaded, faults: FaultPlan) -> anyhow::Result<RunningNode> {
    let genesis = loaded.genesis.clone();
    let cfg = loaded.node.clone();
    if genesis.consensus.protocol == Protocol::Pbft {
        anyhow::bail!(
            "genesis.json: consensus.protocol \"pbft\" is not available in this build; use \"hotstuff\" or \"raft\""
        );
    }
    if phalanx_consensus::UNSAFE_TEST_HOOKS {
        tracing::warn!(
            "this binary was built with the consensus crate's unsafe-test-hooks feature (a workspace test build); do not run it as a production validator"
        );
    }
    if !faults.is_empty() {
        tracing::warn!(
            faults = ?faults.names(),
            from_height = faults.from_height,
            "FAULT INJECTION: this validator will misbehave on purpose; never run it on a chain that matters"
        );
        if genesis.consensus.protocol == Protocol::Raft {
            let byzantine: Vec<String> = faults
                .faults
                .iter()
                .filter(|f| !matches!(f, Fault::Delay(_) | Fault::Drop(_) | Fault::Amnesia | Fault::TxFlood(_)))
                .map(|f| f.to_string())
                .collect();
            if !byzantine.is_empty() {
                tracing::warn!(faults = ?byzantine, "raft mode tolerates crash faults only; these Byzantine faults act on HotStuff messages and have no effect here");
            }
        }
    }
    let (store, genesis_block) = open_store(&loaded)?;
    let store: Arc<dyn ChainStore> = store;
    let validators =
        ValidatorSet::new(genesis.validators.iter().map(|v| Validator { id: v.pub_key, power: v.power }).collect())?;
    let app = application::build(
        genesis.app.kind,
        &genesis.chain_id,
        genesis.consensus.tx_max_bytes as usize,
        validators.clone(),
    );
    let peers = PeerMap::new(genesis.validators.iter().map(|v| (v.pub_key, network::peer_id_of(&v.node_key))));
    let metrics = Arc::new(Metrics::new());
    let mempool = SharedMempool::new(MempoolConfig {
        max_txs: cfg.mempool.max_txs,
        max_bytes: cfg.mempool.max_bytes,
        max_tx_bytes: genesis.consensus.tx_max_bytes as usize,
        max_nonce_gap: cfg.mempool.max_nonce_gap,
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (driver_tx, driver_rx) = crossbeam_channel::bounded(INBOX);
    let (internal_tx, internal_rx) = crossbeam_channel::unbounded();
    let (commit_tx, commit_rx) = crossbeam_channel::bounded(COMMIT_QUEUE);

    let sent_proposals = Arc::new(SentProposals::default());
    let inbound = Arc::new(Inbound {
        peers: peers.clone(),
        driver: driver_tx.clone(),
        mempool: mempool.clone(),
        app: app.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        snapshots: SnapshotServer::new(store.clone(), state_sync::CHUNK_BYTES),
        net: std::sync::OnceLock::new(),
        sent: sent_proposals.clone(),
        compact: (genesis.consensus.protocol == Protocol::HotStuff)
            .then_some(CompactLimits { max_txs: genesis.consensus.block_max_txs as usize }),
        fetching: Arc::new(FetchLimiter::new(FETCHES_PER_PEER)),
    });
    let p2p_addr = parse_addr(&cfg.p2p.listen_addr, "p2p.listen_addr")?;
    let block_max_bytes = genesis.consensus.block_max_bytes as usize;
    let net_cfg = NetConfig {
        listen: p2p_addr,
        peers: cfg
            .p2p
            .persistent_peers
            .iter()
            .map(|p| parse_addr(p, "p2p.persistent_peers"))
            .collect::<Result<_, _>>()?,
        allowed: genesis.validators.iter().map(|v| network::peer_id_of(&v.node_key)).collect(),
        dial_interval: Duration::from_millis(cfg.p2p.dial_interval_ms),
        max_message_bytes: genesis.consensus.block_max_bytes as usize + (1 << 20),
        // Room for a block sync answer, or a whole block's fetched payload.
        max_sync_bytes: (SYNC_MAX_BYTES * 2).max(block_max_bytes) + (8 << 20),
        // A fetch names at most a block's transactions, 32 bytes each
        // (a transaction is at least a byte, so at most block_max_bytes).
        max_sync_request_bytes: (genesis.consensus.block_max_txs as usize)
            .min(block_max_bytes)
            .saturating_mul(33)
            .saturating_add(4096)
            .min(64 << 20),
    };
    let net = network::spawn(net_cfg, &loaded.node_key, inbound.clone(), shutdown_rx.clone())?;
    let _ = inbound.net.set(net.clone());

    let mut recovery = store.recovery(EXECUTED_KEEP)?;
    recovery.membership = crate::app::raft_config(store.as_state());
    if genesis.consensus.protocol == Protocol::HotStuff {
        let params = ReputationParams::new(genesis.consensus.reputation_window, genesis.validators.len());
        recovery.history = store.committed_history(params.window, params.absent_blocks)?;
    }
    if faults.has(Fault::Amnesia)
        && recovery.committed.block.height() >= faults.from_height
        && recovery.safety.is_some()
    {
        tracing::warn!("fault amnesia: starting without the persisted safety state (last voted round, lock)");
        recovery.safety = None;
    }
    let tip_block = recovery.committed.block.clone();
    let tip = Arc::new(RwLock::new(ChainTip {
        height: tip_block.height(),
        block_id: tip_block.id(),
        app_hash: store.app_hash_at(tip_block.height())?.unwrap_or_default(),
        time_ms: tip_block.header.time_ms,
    }));
    metrics.height.set(tip_block.height() as i64);
    let (events, _) = broadcast::channel(1024);
    let waiters = Arc::new(Waiters::default());
    let engine_status = Arc::new(RwLock::new(EngineStatus::default()));
    let reads = Arc::new(EngineRequests::default());
    let changes = Arc::new(EngineRequests::default());

    let committer = Committer {
        store: store.clone(),
        app: app.clone(),
        mempool: mempool.clone(),
        waiters: waiters.clone(),
        events: events.clone(),
        to_driver: internal_tx.clone(),
        metrics: metrics.clone(),
        tip: tip.clone(),
    };
    let committer = std::thread::Builder::new().name("committer".into()).spawn(move || committer.run(commit_rx))?;

    let (validators_for_faults, genesis_for_faults) = (validators.clone(), genesis_block.clone());
    let engine: Box<dyn Engine> = match genesis.consensus.protocol {
        Protocol::Raft => {
            let mut cfg = RaftConfig::new(
                genesis.chain_id.clone(),
                validators,
                genesis_block,
                genesis.consensus.timeout_ms_base,
                rand::random(),
            );
            cfg.block_max_bytes = genesis.consensus.block_max_bytes as usize;
            cfg.block_max_txs = genesis.consensus.block_max_txs as usize;
            cfg.log_keep = loaded.node.consensus.raft_log_keep as usize;
            Box::new(Raft::new(cfg, loaded.validator_key.clone()))
        }
        _ => {
            let engine_cfg = EngineConfig {
                chain_id: genesis.chain_id.clone(),
                validators,
                genesis: genesis_block,
                timeout_ms_base: genesis.consensus.timeout_ms_base,
                timeout_ms_max: genesis.consensus.timeout_ms_max,
                block_max_bytes: genesis.consensus.block_max_bytes as usize,
                block_max_txs: genesis.consensus.block_max_txs as usize,
                empty_block_interval_ms: genesis.consensus.empty_block_interval_ms,
                sync_timeout_ms: cfg.consensus.sync_timeout_ms,
                sync_max_blocks: SYNC_MAX_BLOCKS as u32,
                reputation_window: genesis.consensus.reputation_window,
            };
            let verifier: Arc<dyn PayloadVerifier> = app.clone() as Arc<dyn PayloadVerifier>;
            Box::new(HotStuff::new(engine_cfg, loaded.validator_key.clone(), verifier))
        }
    };
    let peers_for_rpc = peers.clone();
    let (fault_layer, evidence) = match genesis.consensus.protocol {
        Protocol::Raft => (None, None),
        _ => (
            (!faults.is_empty()).then(|| {
                FaultLayer::new(
                    faults.clone(),
                    loaded.validator_key.clone(),
                    genesis.chain_id.clone(),
                    &validators_for_faults,
                    genesis_for_faults,
                )
            }),
            Some(EvidenceReporter::new(
                loaded.validator_key.clone(),
                genesis.chain_id.clone(),
                app.clone(),
                store.clone(),
                mempool.clone(),
                net.clone(),
            )),
        ),
    };
    let driver = Driver {
        engine,
        store: store.clone(),
        app: app.clone(),
        net: net.clone(),
        peers,
        mempool: mempool.clone(),
        commits: commit_tx,
        metrics: metrics.clone(),
        status: engine_status.clone(),
        reads: reads.clone(),
        changes: changes.clone(),
        runtime: tokio::runtime::Handle::current(),
        to_self: internal_tx.clone(),
        inbox: driver_rx,
        internal: internal_rx,
        faults: fault_layer,
        evidence,
        sent: sent_proposals,
    };
    let first = Input::Restored(Box::new(recovery));
    let driver = std::thread::Builder::new().name("consensus".into()).spawn(move || driver.run(first))?;

    // HotStuff proposals travel compact: a client's transaction waits for
    // its gossip before this node proposes it.
    let compact = genesis.consensus.protocol == Protocol::HotStuff;
    let gossip = GossipQueue::start(cfg.mempool.gossip, compact, net.clone(), mempool.clone(), shutdown_rx.clone());
    tokio::spawn(watch_peers(net.clone(), metrics.clone(), shutdown_rx.clone()));
    if let Some(rate) = faults.tx_flood() {
        let flood = TxFlood { rate, from_height: faults.from_height, chain_id: genesis.chain_id.clone() };
        tokio::spawn(flood.run(net.clone(), tip.clone(), shutdown_rx.clone()));
    }
    if !cfg.metrics.listen_addr.is_empty() {
        let addr = parse_addr(&cfg.metrics.listen_addr, "metrics.listen_addr")?;
        crate::metrics::serve(addr, metrics.clone(), shutdown_rx.clone()).await?;
    }
    let rpc_addr = parse_addr(&cfg.rpc.listen_addr, "rpc.listen_addr")?;
    let ctx = RpcContext {
        moniker: cfg.moniker.clone(),
        genesis: genesis.clone(),
        validator_key: loaded.validator_key.public(),
        store: store.clone(),
        app,
        mempool,
        gossip,
        waiters,
        events,
        tip,
        engine: engine_status,
        net,
        metrics,
        commit_timeout: Duration::from_millis(cfg.rpc.commit_timeout_ms),
        faults: faults.names(),
        rpc_addr,
        p2p_addr,
        reads,
        changes,
        admin: cfg.rpc.admin,
        peers: peers_for_rpc,
        driver: internal_tx.clone(),
    };
    let (rpc, rpc_addr) = rpc::serve(ctx, rpc_addr, cfg.rpc.max_connections, cfg.rpc.max_request_bytes).await?;
    info!(moniker = %cfg.moniker, chain_id = %genesis.chain_id, rpc = %rpc_addr, "validator started");
    Ok(RunningNode {
        rpc_addr,
        shutdown: shutdown_tx,
        driver_tx: internal_tx,
        rpc,
        driver: Some(driver),
        committer: Some(committer),
    })
}

/// The `tx-flood=RATE` fault: gossips RATE transactions per second that
/// decode but carry invalid signatures, in batches every 100 ms.
struct TxFlood {
    rate: u64,
    from_height: u64,
    chain_id: String,
}

impl TxFlood {
    async fn run(self, net: NetworkHandle, tip: Arc<RwLock<ChainTip>>, mut shutdown: watch::Receiver<bool>) {
        use crate::app::{Op, SignedTx, Transaction};
        let sender = phalanx_crypto::Keypair::generate().public();
        let per_batch = self.rate.div_ceil(10);
        let mut nonce = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        warn!(rate = self.rate, "fault tx-flood: gossiping invalid transactions");
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if tip.read().height < self.from_height {
                continue;
            }
            let batch = (0..per_batch)
                .map(|_| {
                    nonce += 1;
                    let tx = Transaction {
                        chain_id: self.chain_id.clone(),
                        sender,
                        nonce,
                        op: Op::Put { key: b"flood".to_vec(), value: nonce.to_be_bytes().to_vec() },
                    };
                    Bytes::from(SignedTx { tx, signature: phalanx_crypto::Signature([0xAB; 64]) }.encode())
                })
                .collect();
            net.broadcast(&NetMsg::Txs(batch));
        }
    }
}

async fn watch_peers(net: NetworkHandle, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => { metrics.peers.set(net.stats().peers.read().len() as i64); }
            _ = shutdown.changed() => return,
        }
    }
}
