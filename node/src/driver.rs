//! The driver: runs one consensus engine against the real world.
//!
//! Owns the engine, on a dedicated thread. It feeds the engine inputs
//! (messages from the network, fired timers, mempool payloads, sync answers,
//! execution results) and executes the actions it returns, in order. It has
//! no protocol logic of its own.
//!
//! Promises kept here:
//! - **persist before send**: a `PersistSafety` is written to the store and
//!   flushed (fsync) before any later `Send`/`Broadcast` of the same batch
//!   leaves the node. Consecutive persists share one flush.
//! - **commit before acknowledge**: `Commit` is handed, in order, to the
//!   committer thread, which executes, stores and flushes before anything is
//!   told the transactions committed.
//!
//! Queues: network input is bounded (a full queue drops the message and
//! counts it; consensus tolerates loss); the committer queue is bounded and
//! applies back-pressure to the driver; execution results come back on an
//! unbounded queue that the committer can never block on, so the two threads
//! cannot deadlock.

use crate::app::Application;
use crate::committer::CommitJob;
use crate::compact::{CompactProposal, SentProposals};
use crate::evidence::EvidenceReporter;
use crate::faults::{Dest, FaultLayer, Outgoing};
use crate::metrics::Metrics;
use crate::network::{NetMsg, NetworkHandle};
use crate::store::{ChainStore, StateSnapshot};
use crossbeam_channel::{Receiver, Sender, select};
use libp2p::PeerId;
use parking_lot::RwLock;
use phalanx_consensus::engine::{Action, ConsensusMsg, Engine, EngineStatus, HotStuffMsg, Input, TimerId};
use phalanx_consensus::types::{Block, BlockId, Height, Millis, Tx, ValidatorId};
use phalanx_crypto::{DigestHasher, DigestSet, Hash};
use phalanx_mempool::{Sender as TxSender, SharedMempool};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{debug, error, warn};

/// Milliseconds since the Unix epoch: the engines' clock in a real node.
pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// Validator ids and network peer ids, both ways. Clones share one map, so
/// members added by a Raft configuration entry are seen by the driver and
/// the inbound handler alike.
#[derive(Clone, Debug, Default)]
pub struct PeerMap {
    inner: Arc<RwLock<PeerMapInner>>,
}

#[derive(Debug, Default)]
struct PeerMapInner {
    to_peer: HashMap<ValidatorId, PeerId>,
    to_validator: HashMap<PeerId, ValidatorId>,
}

impl PeerMap {
    pub fn new(pairs: impl IntoIterator<Item = (ValidatorId, PeerId)>) -> PeerMap {
        let m = PeerMap::default();
        for (v, p) in pairs {
            m.insert(v, p);
        }
        m
    }
    /// Records a validator's network identity; returns false if it was
    /// known already.
    pub fn insert(&self, v: ValidatorId, p: PeerId) -> bool {
        let mut m = self.inner.write();
        let new = m.to_peer.insert(v, p) != Some(p);
        m.to_validator.insert(p, v);
        new
    }
    pub fn peer(&self, v: &ValidatorId) -> Option<PeerId> {
        self.inner.read().to_peer.get(v).copied()
    }
    pub fn validator(&self, p: &PeerId) -> Option<ValidatorId> {
        self.inner.read().to_validator.get(p).copied()
    }
}

/// Requests waiting for the engine's answer: linearizable reads (the read
/// index to wait for) and membership changes (the index that completed
/// them), each `Ok(index)` or why not.
#[derive(Default)]
pub struct EngineRequests {
    next: std::sync::atomic::AtomicU64,
    waiting: parking_lot::Mutex<HashMap<u64, tokio::sync::oneshot::Sender<Result<Height, String>>>>,
}

impl EngineRequests {
    /// A new read id and where its answer (the index to wait for, or why
    /// not) will arrive.
    pub fn register(&self) -> (u64, tokio::sync::oneshot::Receiver<Result<Height, String>>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiting.lock().insert(id, tx);
        (id, rx)
    }

    /// Drops a read whose client gave up.
    pub fn forget(&self, id: u64) {
        self.waiting.lock().remove(&id);
    }

    fn resolve(&self, id: u64, result: Result<Height, String>) {
        if let Some(tx) = self.waiting.lock().remove(&id) {
            let _ = tx.send(result);
        }
    }
}

/// Inputs queued for the driver thread.
// Inputs are moved once through a channel; boxing them would cost an
// allocation per message for no gain.
#[allow(clippy::large_enum_variant)]
pub enum DriverEvent {
    Input(Input),
    /// A state snapshot fetched for the engine (`Action::RequestSnapshot`),
    /// or `None` if the fetch failed; the driver queues it for the
    /// committer to install.
    Snapshot(Option<Box<StateSnapshot>>),
    Shutdown,
}

/// Network inputs queued for the driver at most.
pub const INBOX: usize = 8192;
/// Commit batches queued for the committer at most.
pub const COMMIT_QUEUE: usize = 1024;

/// A block persisted but not committed, with what reaping must skip.
struct PendingBlock {
    height: Height,
    tx_hashes: Arc<[Hash]>,
    /// Per sender, the nonce after the last of its transactions in here.
    next_nonces: Vec<(TxSender, u64)>,
}

pub struct Driver {
    pub engine: Box<dyn Engine>,
    pub store: Arc<dyn ChainStore>,
    /// The application, for transactions' senders and nonces.
    pub app: Arc<dyn Application>,
    pub net: NetworkHandle,
    pub peers: PeerMap,
    pub mempool: SharedMempool,
    pub commits: Sender<CommitJob>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<RwLock<EngineStatus>>,
    pub reads: Arc<EngineRequests>,
    /// Membership changes waiting for the engine (Raft mode).
    pub changes: Arc<EngineRequests>,
    /// Runs state snapshot fetches.
    pub runtime: tokio::runtime::Handle,
    /// The driver's own internal queue (fetched snapshots come back here).
    pub to_self: Sender<DriverEvent>,
    /// Network input (bounded; producers drop when full).
    pub inbox: Receiver<DriverEvent>,
    /// Injected faults rewrite what leaves the node (`--fault`).
    pub faults: Option<FaultLayer>,
    /// Submits detected evidence as transactions (HotStuff mode).
    pub evidence: Option<EvidenceReporter>,
    /// Execution results and control (unbounded; never dropped).
    pub internal: Receiver<DriverEvent>,
    /// Payloads of the proposals sent compact, for replicas that fetch.
    pub sent: Arc<SentProposals>,
}

struct State {
    timers: BTreeMap<TimerId, Millis>,
    /// A state snapshot fetch is running.
    fetching: bool,
    pending: HashMap<BlockId, PendingBlock>,
    unflushed: bool,
    queue: VecDeque<Input>,
}

impl Driver {
    /// Runs until a `Shutdown` event or the inbox closes. `first` is the
    /// engine's `Input::Restored`.
    pub fn run(mut self, first: Input) {
        let mut st = State {
            timers: BTreeMap::new(),
            fetching: false,
            pending: HashMap::new(),
            unflushed: false,
            queue: VecDeque::new(),
        };
        if let Input::Restored(r) = &first {
            // Blocks restored from the store are uncommitted ancestors too:
            // reaping must skip their transactions after a restart.
            for b in &r.blocks {
                st.pending.insert(b.id(), pending_of(&*self.app, b));
            }
        }
        st.queue.push_back(first);
        loop {
            self.drain(&mut st);
            let wait = st
                .timers
                .values()
                .min()
                .map_or(Duration::from_secs(1), |&at| Duration::from_millis(at.saturating_sub(now_ms())));
            select! {
                recv(self.internal) -> ev => match ev {
                    Ok(DriverEvent::Input(i)) => st.queue.push_back(i),
                    Ok(DriverEvent::Snapshot(s)) => self.snapshot_fetched(&mut st, s),
                    Ok(DriverEvent::Shutdown) | Err(_) => break,
                },
                recv(self.inbox) -> ev => match ev {
                    Ok(DriverEvent::Input(i)) => st.queue.push_back(i),
                    Ok(DriverEvent::Snapshot(s)) => self.snapshot_fetched(&mut st, s),
                    Ok(DriverEvent::Shutdown) | Err(_) => break,
                },
                default(wait) => {}
            }
            let now = now_ms();
            let due: Vec<TimerId> = st.timers.iter().filter(|(_, at)| **at <= now).map(|(id, _)| *id).collect();
            for id in due {
                st.timers.remove(&id);
                st.queue.push_back(Input::Timer(id));
            }
        }
        if st.unflushed {
            let _ = self.store.flush();
        }
        debug!("consensus driver stopped");
    }

    fn drain(&mut self, st: &mut State) {
        while let Some(input) = st.queue.pop_front() {
            if let Input::Executed { height, .. } = &input {
                // Executed blocks left the mempool: no need to exclude them now.
                st.pending.retain(|_, p| p.height > *height);
            }
            let mut out = Vec::new();
            self.engine.step(now_ms(), input, &mut out);
            for a in out {
                self.execute(st, a);
            }
        }
        let s = self.engine.status();
        self.metrics.round.set(s.round as i64);
        *self.status.write() = s;
    }

    fn flush_if_needed(&self, st: &mut State) {
        if st.unflushed {
            if let Err(e) = self.store.flush() {
                error!(error = %e, "cannot flush the store; refusing to send unprotected messages");
                std::process::exit(2);
            }
            st.unflushed = false;
        }
    }

    fn execute(&mut self, st: &mut State, action: Action) {
        match action {
            Action::PersistSafety(s) => {
                if let Err(e) = self.store.save_safety(&s) {
                    error!(error = %e, "cannot persist safety state; stopping");
                    std::process::exit(2);
                }
                st.unflushed = true;
            }
            Action::PersistBlock(b) => self.persist_block(st, b),
            Action::Send { to, msg } => {
                self.flush_if_needed(st);
                crash_point(&msg);
                self.send(Dest::One(to), msg);
            }
            Action::Broadcast(msg) => {
                self.flush_if_needed(st);
                crash_point(&msg);
                self.send(Dest::All, msg);
            }
            Action::SetTimer { id, at } => {
                st.timers.insert(id, at);
            }
            Action::RequestPayload { ticket, max_bytes, max_txs, exclude } => {
                let txs = self.reap(st, max_bytes, max_txs, &exclude);
                st.queue.push_back(Input::Payload { ticket, txs });
            }
            Action::Commit(blocks) => {
                if self.commits.send(CommitJob::Blocks(blocks)).is_err() {
                    error!("the committer stopped; a validator that cannot execute must not keep voting");
                    std::process::exit(3);
                }
            }
            Action::RequestSync { from, request } => match self.peers.peer(&from) {
                Some(p) => self.net.request_sync(p, &request),
                None => warn!(from = %from.short(), "no network identity for validator"),
            },
            Action::RequestSnapshot { from } => self.fetch_snapshot(st, from),
            Action::Evidence(e) => {
                warn!(culprit = %e.culprit().short(), round = e.round(), "misbehaviour evidence recorded");
                self.metrics.evidence.inc();
                if let Err(err) = self.store.save_evidence(&e) {
                    error!(error = %err, "cannot store evidence");
                }
                if let Some(r) = &mut self.evidence {
                    r.report(&e);
                }
            }
            Action::Invalid { from, reason } => {
                debug!(from = %from.short(), %reason, "invalid consensus message");
                self.metrics.invalid_message(&from.to_hex());
            }
            Action::ReadReady { id, index } => self.reads.resolve(id, Ok(index)),
            Action::ReadFailed { id, reason } => self.reads.resolve(id, Err(reason)),
            Action::ChangeDone { id, result } => self.changes.resolve(id, result),
            Action::MembershipChanged(m) => {
                for (id, addr) in &m.directory {
                    let peer = crate::network::peer_id_of(&addr.node_key);
                    if self.peers.insert(*id, peer) {
                        match addr.p2p_addr.parse() {
                            Ok(sock) => self.net.add_peer(peer, &sock),
                            Err(_) => {
                                warn!(member = %id.short(), addr = %addr.p2p_addr, "member address is not IP:port")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends a consensus message, through the fault layer if faults are
    /// injected.
    fn send(&mut self, dest: Dest, msg: ConsensusMsg) {
        let Some(faults) = &mut self.faults else {
            return self.deliver(Outgoing { dest, msg, delay: None });
        };
        let height = self.status.read().committed_height;
        for o in faults.outgoing(dest, msg, height) {
            self.deliver(o);
        }
    }

    fn deliver(&self, o: Outgoing) {
        log_signed(&o.msg);
        let to = match o.dest {
            Dest::All => None,
            Dest::One(v) => match self.peers.peer(&v) {
                Some(p) => Some(p),
                None => return warn!(to = %v.short(), "no network identity for validator"),
            },
        };
        let msg = match o.msg {
            // Replicas hold the payload already (gossip): send its digests.
            ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p)) if !p.block.txs.is_empty() => {
                let (cp, txs, hashes) = CompactProposal::split(*p);
                self.sent.insert(cp.block_id(), txs, hashes);
                NetMsg::CompactProposal(Box::new(cp))
            }
            m => NetMsg::Consensus(m),
        };
        let net = self.net.clone();
        let send = move || match to {
            Some(p) => net.send(p, &msg),
            None => net.broadcast(&msg),
        };
        match o.delay {
            None => send(),
            Some(d) => {
                self.runtime.spawn(async move {
                    tokio::time::sleep(d).await;
                    send();
                });
            }
        }
    }

    /// Starts fetching `from`'s state snapshot, unless a fetch runs.
    fn fetch_snapshot(&self, st: &mut State, from: ValidatorId) {
        if st.fetching {
            return;
        }
        let Some(peer) = self.peers.peer(&from) else {
            return warn!(from = %from.short(), "no network identity for validator");
        };
        st.fetching = true;
        let (net, back, metrics) = (self.net.clone(), self.to_self.clone(), self.metrics.clone());
        self.runtime.spawn(async move {
            let fetched = match crate::state_sync::fetch(&net, peer).await {
                Ok(s) => Some(Box::new(s)),
                Err(e) => {
                    warn!(error = %e, "state snapshot fetch failed; the engine asks again later");
                    metrics.snapshot_failures.inc();
                    None
                }
            };
            let _ = back.send(DriverEvent::Snapshot(fetched));
        });
    }

    fn snapshot_fetched(&self, st: &mut State, s: Option<Box<StateSnapshot>>) {
        st.fetching = false;
        if let Some(s) = s
            && self.commits.send(CommitJob::Install(s)).is_err()
        {
            error!("the committer stopped; a validator that cannot execute must not keep voting");
            std::process::exit(3);
        }
    }

    fn persist_block(&mut self, st: &mut State, b: Block) {
        if let Err(e) = self.store.save_block(&b) {
            error!(error = %e, "cannot store a block");
            return;
        }
        st.pending.insert(b.id(), pending_of(&*self.app, &b));
    }

    /// Asks the mempool for a payload, skipping what the uncommitted blocks
    /// in `exclude` already carry and continuing their senders' nonces.
    ///
    /// Blocks the engine has committed but the committer has not executed
    /// yet are skipped too: their transactions leave the mempool only once
    /// executed, and HotStuff's `exclude` (the path from the committed root)
    /// no longer names them, so without this a leader re-proposes them and
    /// a transaction commits twice.
    fn reap(&self, st: &State, max_bytes: usize, max_txs: usize, exclude: &[BlockId]) -> Vec<Tx> {
        let committed = self.engine.status().committed_height;
        let mut hashes = DigestSet::default();
        let mut in_flight: HashMap<TxSender, u64, DigestHasher> = HashMap::default();
        let unexecuted = st.pending.values().filter(|p| p.height <= committed);
        for p in exclude.iter().filter_map(|id| st.pending.get(id)).chain(unexecuted) {
            hashes.extend(p.tx_hashes.iter().copied());
            for (s, n) in &p.next_nonces {
                let e = in_flight.entry(*s).or_insert(0);
                *e = (*e).max(*n);
            }
        }
        self.mempool.reap(max_bytes, max_txs, &hashes, &in_flight)
    }
}

fn pending_of(app: &dyn Application, b: &Block) -> PendingBlock {
    let mut next: HashMap<TxSender, u64, DigestHasher> = HashMap::default();
    for t in &b.txs {
        if let Some((s, n)) = app.sender_and_nonce(t) {
            let e = next.entry(s).or_insert(0);
            *e = (*e).max(n + 1);
        }
    }
    PendingBlock { height: b.height(), tx_hashes: b.tx_hashes(), next_nonces: next.into_iter().collect() }
}

/// Logs every signed consensus message this node sends, under the target
/// `phalanx::votes` at debug level: the record tests use to prove that a
/// validator never signed two different votes in one round.
fn log_signed(msg: &ConsensusMsg) {
    let ConsensusMsg::HotStuff(m) = msg else { return };
    match m {
        HotStuffMsg::Vote(v) => {
            debug!(target: "phalanx::votes", round = v.data.round, block = %v.data.block_id, "vote sent")
        }
        HotStuffMsg::Proposal(p) => {
            debug!(target: "phalanx::votes", round = p.block.round(), block = %p.block.id(), "proposal sent")
        }
        HotStuffMsg::Timeout(t) => debug!(target: "phalanx::votes", round = t.round, "timeout sent"),
        HotStuffMsg::SyncInfo(_) => {}
    }
}

/// Test hook: with `PHALANX_TEST_CRASH_BEFORE_VOTE_ROUND=R` set, the process
/// aborts after persisting (and flushing) its first vote of a round >= R and
/// before sending it: the worst moment for a restart, used by the
/// end-to-end test that proves a restarted validator never double-signs.
/// Inert when the variable is unset.
fn crash_point(msg: &ConsensusMsg) {
    static ROUND: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at =
        ROUND.get_or_init(|| std::env::var("PHALANX_TEST_CRASH_BEFORE_VOTE_ROUND").ok().and_then(|v| v.parse().ok()));
    if let (Some(at), ConsensusMsg::HotStuff(HotStuffMsg::Vote(v))) = (at, msg)
        && v.data.round >= *at
    {
        error!(
            target: "phalanx::votes",
            round = v.data.round,
            block = %v.data.block_id,
            "test crash point: vote persisted, aborting before sending it"
        );
        std::process::abort();
    }
}
