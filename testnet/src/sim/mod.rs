//! A deterministic simulator over the real consensus engines.
//!
//! The simulator is the second driver of the `Engine` trait (the node is the
//! first). Time is virtual and one `u64` seed determines the whole run: the
//! fault plan (`scenario.rs`), every message delay, loss and duplicate, the
//! crash points and the workload. The same seed gives the same run, bit for
//! bit; the whole event trace is hashed so that is checked, not assumed.
//!
//! Checkers (`checkers/`, one invariant per file) watch every message an
//! instance sends and every block it commits; the first violation stops the
//! run and is reported with its step, a readable trace tail and the command
//! that replays it. `runner.rs` runs many seeds on all cores and summarises.
//!
//! What a crash erases and what it keeps mirrors the node exactly: a crashed
//! instance keeps only what its engine asked to persist (`PersistSafety`,
//! `PersistBlock`) and what it committed; its engine, timers, mempool and
//! in-flight inputs are gone, and it restarts from `Input::Restored`.

pub mod checkers;
mod network;
mod node;
pub mod protocol;
pub mod runner;
pub mod scenario;

pub use network::{Network, NetworkConfig, Partition};
pub use node::{MemStore, SimNode};
pub use protocol::{Broken, FaultModel, HotStuffProtocol, Protocol, RaftProtocol, Timing};
pub use runner::{FaultStats, RunSummary, run_seeds};
pub use scenario::{ByzantineKind, FaultConfig, FaultPlan};

use checkers::{Checker, Ctx, Liveness, LivenessBound};
use phalanx_consensus::engine::{Action, ConsensusMsg, HotStuffMsg, Input, SyncRequest, SyncResponse, TimerId};
use phalanx_consensus::hotstuff::{BlockSource, serve_sync};
use phalanx_consensus::types::{Block, CertifiedBlock, Millis, Round, Tx, ValidatorId, ValidatorSet};
use phalanx_crypto::{Hash, Hasher, Keypair};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Parameters of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub validators: usize,
    pub faults: FaultConfig,
    /// One client transaction every this many ms (0: none).
    pub tx_interval_ms: Millis,
    pub timing: Timing,
    /// Keep the whole trace (not only its tail) in the report.
    pub full_trace: bool,
    /// Checkers not to run (by name), to show another one bites alone.
    pub skip_checkers: Vec<String>,
}

impl SimConfig {
    /// Every fault on: one Twins pair, and message-layer adversaries for
    /// the rest of f (f = (n - 1) / 3).
    pub fn new(seed: u64, validators: usize) -> SimConfig {
        SimConfig {
            seed,
            validators,
            faults: FaultConfig::full(((validators - 1) / 3).saturating_sub(1)),
            tx_interval_ms: 20,
            timing: Timing { timeout_ms_base: 250, timeout_ms_max: 1_000, seed },
            full_trace: false,
            skip_checkers: Vec::new(),
        }
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub at_ms: Millis,
    /// Events processed before it.
    pub step: u64,
    pub detail: String,
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    pub validators: usize,
    pub violation: Option<Violation>,
    /// Highest height committed by an honest instance.
    pub max_height: u64,
    pub committed_txs: usize,
    pub submitted_txs: usize,
    pub events: u64,
    pub faults: FaultStats,
    /// Worst stretch after GST without a new commit.
    pub worst_gap_rounds: Round,
    pub worst_gap_ms: Millis,
    pub gst_ms: Millis,
    /// SHA-256 over the whole event trace.
    pub trace_hash: Hash,
    /// The last events (all of them with `full_trace`).
    pub trace: Vec<String>,
    /// The command that replays this run.
    pub replay: String,
}

impl SimReport {
    pub fn ok(&self) -> bool {
        self.violation.is_none()
    }

    /// A readable account of a failure.
    pub fn failure_text(&self) -> String {
        let Some(v) = &self.violation else { return format!("seed {} passed", self.seed) };
        format!(
            "seed {} VIOLATED {} at {} ms (step {}): {}\nfaults: {}\nlast events:\n  {}\nreplay: {}",
            self.seed,
            v.invariant,
            v.at_ms,
            v.step,
            v.detail,
            self.faults.describe(),
            self.trace.join("\n  "),
            self.replay
        )
    }
}

enum Event {
    Deliver {
        to: usize,
        from: ValidatorId,
        msg: ConsensusMsg,
    },
    Timer {
        node: usize,
        id: TimerId,
        at: Millis,
        epoch: u64,
    },
    Local {
        node: usize,
        input: Input,
        epoch: u64,
    },
    SyncRequest {
        to: usize,
        requester: usize,
        request: SyncRequest,
    },
    SyncResponse {
        to: usize,
        from: ValidatorId,
        response: SyncResponse,
        epoch: u64,
    },
    SnapshotRequest {
        to: usize,
        requester: usize,
    },
    /// An operator's request to an instance (if it is up).
    Operator {
        node: usize,
        input: Input,
    },
    SnapshotResponse {
        to: usize,
        chain: Vec<CertifiedBlock>,
        epoch: u64,
    },
    Submit {
        tx: Tx,
    },
    Crash {
        node: usize,
        closes_connections: bool,
    },
    Restart {
        node: usize,
    },
    Partition {
        group_of: Vec<u8>,
    },
    Heal,
}

const TRACE_TAIL: usize = 40;
const REPLAY_HISTORY: usize = 128;

/// The chain id of simulated runs.
pub const CHAIN_ID: &str = "sim";

/// A simulated network of validators.
pub struct Simulation {
    cfg: SimConfig,
    protocol: Arc<dyn Protocol>,
    plan: FaultPlan,
    now: Millis,
    rng: ChaCha8Rng,
    queue: BTreeMap<(Millis, u64), Event>,
    seq: u64,
    pub nodes: Vec<SimNode>,
    keys: Vec<Keypair>,
    validators: ValidatorSet,
    genesis: Block,
    net: Network,
    honest: Vec<bool>,
    ids: Vec<ValidatorId>,
    adversary: Vec<Option<ByzantineKind>>,
    sent: Vec<VecDeque<(usize, ConsensusMsg)>>,
    epoch: Vec<u64>,
    crash_pending: Vec<bool>,
    /// Whether the pending crash of each node closes its connections.
    crash_closes: Vec<bool>,
    checkers: Vec<Box<dyn Checker>>,
    liveness: Liveness,
    submitted: BTreeSet<Tx>,
    committed_txs: usize,
    max_height: u64,
    stats: FaultStats,
    violation: Option<Violation>,
    trace: Hasher,
    tail: VecDeque<String>,
    events: u64,
}

fn sim_key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    Keypair::from_seed(&seed)
}

impl Simulation {
    pub fn new(protocol: Arc<dyn Protocol>, mut cfg: SimConfig) -> Simulation {
        cfg.timing.seed = cfg.seed;
        let n = cfg.validators;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let plan = FaultPlan::draw(&mut rng, n, protocol.fault_model(), protocol.max_faulty(n), &cfg.faults);
        let keys: Vec<Keypair> = (0..n).map(sim_key).collect();
        let validators = ValidatorSet::equal(&keys.iter().map(|k| k.public()).collect::<Vec<_>>());
        let genesis_app_hash = Hash::digest(b"sim genesis");
        let genesis = Block::genesis(CHAIN_ID, 0, genesis_app_hash, keys[0].public());
        let twins = plan.twin_instances(n);
        let mut instance_validator: Vec<usize> = (0..n).collect();
        instance_validator.extend(twins.iter().map(|(v, _)| *v));
        let kind_of = |v: usize| plan.byzantine.iter().find(|(b, _)| *b == v).map(|(_, k)| *k);
        let honest: Vec<bool> = instance_validator.iter().map(|&v| kind_of(v).is_none()).collect();
        let adversary: Vec<Option<ByzantineKind>> =
            instance_validator.iter().map(|&v| kind_of(v).filter(|k| *k != ByzantineKind::Twins)).collect();
        let nodes: Vec<SimNode> = instance_validator
            .iter()
            .map(|&v| SimNode {
                id: keys[v].public(),
                engine: protocol.build(keys[v].clone(), &validators, &genesis, &cfg.timing),
                store: MemStore::new(genesis.clone(), genesis_app_hash),
                up: true,
                timers: BTreeMap::new(),
                pool: Vec::new(),
                pool_set: BTreeSet::new(),
            })
            .collect();
        let count = nodes.len();
        let mut stats = FaultStats::default();
        for (_, k) in &plan.byzantine {
            *stats.byzantine.entry(k.name()).or_default() += 1;
        }
        stats.partitions = plan.partitions.len() as u64;
        stats.crashes = plan.crashes.len() as u64;
        stats.silent_crashes = plan.crashes.iter().filter(|c| !c.closes_connections).count() as u64;
        let bound = LivenessBound::for_validators(n, cfg.timing.timeout_ms_max, plan.network.delay_ms_max);
        let checkers = checkers::standard(bound, CHAIN_ID, &validators, &genesis);
        let checkers = checkers
            .into_iter()
            .filter(|c| c.name() != "liveness" && !cfg.skip_checkers.iter().any(|s| s == c.name()))
            .collect();
        Simulation {
            ids: nodes.iter().map(|n| n.id).collect(),
            net: Network::new(plan.network.clone(), count),
            liveness: Liveness::new(bound),
            protocol,
            plan,
            now: 0,
            rng,
            queue: BTreeMap::new(),
            seq: 0,
            nodes,
            keys,
            validators,
            genesis,
            honest,
            adversary,
            sent: vec![VecDeque::new(); count],
            epoch: vec![0; count],
            crash_pending: vec![false; count],
            crash_closes: vec![false; count],
            checkers,
            submitted: BTreeSet::new(),
            committed_txs: 0,
            max_height: 0,
            stats,
            violation: None,
            trace: Hasher::with_domain(b"phalanx/sim-trace/v1\0"),
            tail: VecDeque::new(),
            events: 0,
            cfg,
        }
    }

    /// The plan this seed drew.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    fn schedule(&mut self, at: Millis, ev: Event) {
        debug_assert!(at >= self.now, "event scheduled in the past: {at} < {}", self.now);
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn note(&mut self, line: String) {
        self.trace.update(line.as_bytes()).update(b"\n");
        if self.tail.len() == TRACE_TAIL && !self.cfg.full_trace {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    fn ctx_round(&self) -> Round {
        (0..self.nodes.len())
            .filter(|&i| self.honest[i] && self.nodes[i].up)
            .map(|i| self.nodes[i].engine.status().round)
            .max()
            .unwrap_or(0)
    }

    /// Runs every checker hook `f`; records the first violation.
    fn check(&mut self, f: impl Fn(&mut dyn Checker, &Ctx<'_>) -> Result<(), String>) {
        if self.violation.is_some() {
            return;
        }
        let ctx = Ctx {
            now: self.now,
            gst: self.plan.network.gst_ms,
            honest: &self.honest,
            ids: &self.ids,
            validators: &self.validators,
            genesis: &self.genesis,
            submitted: &self.submitted,
            honest_round: self.ctx_round(),
        };
        let mut found = None;
        for c in self.checkers.iter_mut() {
            if let Err(detail) = f(c.as_mut(), &ctx) {
                found = Some((c.name(), detail));
                break;
            }
        }
        if found.is_none()
            && let Err(detail) = f(&mut self.liveness, &ctx)
        {
            found = Some(("liveness", detail));
        }
        if let Some((invariant, detail)) = found {
            let step = self.events;
            self.note(format!("{} VIOLATION {invariant}: {detail}", self.now));
            self.violation = Some(Violation { invariant, at_ms: self.now, step, detail });
        }
    }

    /// Runs to the plan's duration (or the first violation) and reports.
    pub fn run(mut self) -> SimReport {
        for i in 0..self.nodes.len() {
            let recovery = self.nodes[i].store.recovery();
            self.step(i, Input::Restored(Box::new(recovery)));
        }
        self.schedule_plan();
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at > self.plan.duration_ms || self.violation.is_some() {
                break;
            }
            self.now = at;
            self.events += 1;
            self.handle(ev);
        }
        self.now = self.now.max(self.plan.duration_ms);
        self.check(|c, ctx| c.at_end(ctx));
        self.report()
    }

    fn schedule_plan(&mut self) {
        if self.cfg.tx_interval_ms > 0 {
            let (mut t, mut n) = (0, 0u64);
            while t < self.plan.duration_ms {
                let tx = Tx::from(format!("tx-{}-{n}", self.cfg.seed).into_bytes());
                self.schedule(t, Event::Submit { tx });
                t += self.cfg.tx_interval_ms;
                n += 1;
            }
        }
        for p in self.plan.partitions.clone() {
            self.schedule(p.at, Event::Partition { group_of: p.group_of });
            self.schedule(p.until, Event::Heal);
        }
        for c in self.plan.crashes.clone() {
            self.schedule(c.at, Event::Crash { node: c.instance, closes_connections: c.closes_connections });
            self.schedule(c.restart_at, Event::Restart { node: c.instance });
        }
        let ids: Vec<_> = self.nodes.iter().map(|n| n.id).collect();
        for (at, node, input) in self.protocol.operator_inputs(&ids, self.plan.network.gst_ms, self.cfg.seed) {
            self.schedule(at, Event::Operator { node, input });
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Deliver { to, from, msg } => {
                if self.nodes[to].up {
                    let line = format!("{} {}->{to} {}", self.now, from.short(), self.protocol.describe(&msg));
                    self.note(line);
                    self.step(to, Input::Message { from, msg });
                }
            }
            Event::Timer { node, id, at, epoch } => {
                if self.nodes[node].up && self.epoch[node] == epoch && self.nodes[node].timers.get(&id) == Some(&at) {
                    self.nodes[node].timers.remove(&id);
                    self.note(format!("{} timer {node} {id:?}", self.now));
                    self.step(node, Input::Timer(id));
                }
            }
            Event::Local { node, input, epoch } => {
                if self.nodes[node].up && self.epoch[node] == epoch {
                    self.step(node, input);
                }
            }
            Event::SyncRequest { to, requester, request } => self.serve_sync(to, requester, request),
            Event::SnapshotRequest { to, requester } => self.serve_snapshot(to, requester),
            Event::Operator { node, input } => {
                if self.nodes[node].up {
                    let input = self.protocol.adapt_operator_input(&self.nodes[node].engine.status(), input);
                    self.note(format!("{} operator -> {node}: {input:?}", self.now));
                    self.step(node, input);
                }
            }
            Event::SnapshotResponse { to, chain, epoch } => {
                if self.nodes[to].up && self.epoch[to] == epoch {
                    self.install_snapshot(to, chain);
                }
            }
            Event::SyncResponse { to, from, response, epoch } => {
                if self.nodes[to].up && self.epoch[to] == epoch {
                    self.step(to, Input::Synced { from, response });
                }
            }
            Event::Submit { tx } => {
                self.submitted.insert(tx.clone());
                for node in self.nodes.iter_mut().filter(|n| n.up) {
                    node.add_tx(tx.clone());
                }
            }
            Event::Crash { node, closes_connections } => {
                let how = if closes_connections { "process" } else { "silent host" };
                self.note(format!("{} crash ({how}) scheduled for {node}", self.now));
                self.crash_pending[node] = true;
                self.crash_closes[node] = closes_connections;
            }
            Event::Restart { node } => self.restart(node),
            Event::Partition { group_of } => {
                self.note(format!("{} partition {group_of:?}", self.now));
                self.net.partition = Partition { group_of };
            }
            Event::Heal => {
                self.note(format!("{} heal", self.now));
                self.net.partition = Partition::none(self.nodes.len());
            }
        }
    }

    fn serve_sync(&mut self, to: usize, requester: usize, request: SyncRequest) {
        if !self.nodes[to].up {
            return;
        }
        let response = serve_sync(&request, &self.nodes[to].store, 32, 1 << 20);
        let from = self.nodes[to].id;
        self.note(format!("{} sync {to}->{requester} {} blocks", self.now, response.blocks.len()));
        let epoch = self.epoch[requester];
        for d in self.net.delays(&mut self.rng, self.now, to, requester) {
            let ev = Event::SyncResponse { to: requester, from, response: response.clone(), epoch };
            self.schedule(self.now + d, ev);
        }
    }

    /// A state snapshot is the server's committed chain (the simulator's
    /// application state is a function of it), sent as one message.
    fn serve_snapshot(&mut self, to: usize, requester: usize) {
        if !self.nodes[to].up {
            return;
        }
        let chain = self.nodes[to].store.committed.clone();
        self.note(format!("{} snapshot {to}->{requester} at h{}", self.now, chain.len() - 1));
        let epoch = self.epoch[requester];
        for d in self.net.delays(&mut self.rng, self.now, to, requester) {
            let ev = Event::SnapshotResponse { to: requester, chain: chain.clone(), epoch };
            self.schedule(self.now + d, ev);
        }
    }

    /// Installs a snapshot like the node does: the state (here the
    /// committed blocks it covers, which the checkers see as commits) is
    /// durable first, then the engine is told.
    fn install_snapshot(&mut self, i: usize, chain: Vec<CertifiedBlock>) {
        let have = self.nodes[i].store.committed.len();
        if chain.len() <= have {
            let (block, app_hash) = {
                let store = &self.nodes[i].store;
                (store.committed[have - 1].block.clone(), *store.app_hashes.last().expect("genesis"))
            };
            return self.step(i, Input::SnapshotInstalled { block: Box::new(block), app_hash, config: None });
        }
        let tip = chain.last().expect("genesis at least").block.clone();
        for cb in chain.into_iter().skip(have) {
            self.commit(i, cb);
        }
        let app_hash = *self.nodes[i].store.app_hashes.last().expect("genesis");
        self.step(i, Input::SnapshotInstalled { block: Box::new(tip), app_hash, config: None });
    }

    fn step(&mut self, i: usize, input: Input) {
        let mut out = Vec::new();
        self.nodes[i].engine.step(self.now, input, &mut out);
        // A crash lands inside this step: only a prefix of its actions runs
        // (possibly a persist without the send it protects).
        let cut = if self.crash_pending[i] { self.rng.gen_range(0..=out.len()) } else { out.len() };
        for a in out.into_iter().take(cut) {
            self.execute(i, a);
        }
        if self.crash_pending[i] {
            self.crash(i);
        }
    }

    fn crash(&mut self, i: usize) {
        self.crash_pending[i] = false;
        let node = &mut self.nodes[i];
        node.up = false;
        node.timers.clear();
        node.pool.clear();
        node.pool_set.clear();
        self.epoch[i] += 1;
        self.note(format!("{} CRASH {i}", self.now));
        // A crashed process's connections close: the others' transports
        // report it a moment later. A host that stops answering (like a
        // partition) closes nothing: the others find it by timeouts.
        if !self.crash_closes[i] {
            return;
        }
        let id = self.nodes[i].id;
        let others: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i && self.nodes[j].up).collect();
        for j in others {
            let input = Input::PeerDisconnected(id);
            self.schedule(self.now + 1, Event::Local { node: j, input, epoch: self.epoch[j] });
        }
    }

    fn restart(&mut self, i: usize) {
        if self.crash_pending[i] {
            // It never stepped since the crash was due: crash it now.
            self.crash(i);
        }
        if self.nodes[i].up {
            return;
        }
        let v = self.validators.position(&self.nodes[i].id).expect("a validator");
        self.nodes[i].engine =
            self.protocol.build(self.keys[v].clone(), &self.validators, &self.genesis, &self.cfg.timing);
        self.nodes[i].up = true;
        self.epoch[i] += 1;
        self.stats.restarts += 1;
        self.note(format!("{} RESTART {i}", self.now));
        let recovery = self.nodes[i].store.recovery();
        self.step(i, Input::Restored(Box::new(recovery)));
    }

    /// Sends `msg` from instance `from` to instance `to` through the network
    /// and, for a Byzantine sender, its adversary.
    fn send(&mut self, from: usize, to: usize, mut msg: ConsensusMsg) {
        let mut extra_delay = 0;
        match self.adversary[from] {
            Some(ByzantineKind::DropAll) => {
                self.stats.adversary_dropped += 1;
                return;
            }
            Some(ByzantineKind::Delay) => extra_delay = self.rng.gen_range(0..=2 * self.cfg.timing.timeout_ms_base),
            Some(ByzantineKind::CorruptSignatures) => {
                corrupt(&mut msg);
                self.stats.corrupted += 1;
            }
            Some(ByzantineKind::Replay) => {
                let h = &self.sent[from];
                if !h.is_empty() && self.rng.gen_bool(0.3) {
                    let (_, old) = h[self.rng.gen_range(0..h.len())].clone();
                    let target = self.rng.gen_range(0..self.nodes.len());
                    if target != from {
                        self.stats.replayed += 1;
                        self.deliver(from, target, old, 0);
                    }
                }
                let h = &mut self.sent[from];
                if h.len() == REPLAY_HISTORY {
                    h.pop_front();
                }
                h.push_back((to, msg.clone()));
            }
            _ => {}
        }
        self.deliver(from, to, msg, extra_delay);
    }

    fn deliver(&mut self, from: usize, to: usize, msg: ConsensusMsg, extra_delay: Millis) {
        let id = self.nodes[from].id;
        let delays = self.net.delays(&mut self.rng, self.now, from, to);
        if delays.is_empty() {
            self.stats.messages_lost += 1;
        }
        if delays.len() > 1 {
            self.stats.messages_duplicated += 1;
        }
        for d in delays {
            self.schedule(self.now + d + extra_delay, Event::Deliver { to, from: id, msg: msg.clone() });
        }
    }

    /// A stale-proposal adversary leading a round entered through a TC
    /// re-signs its proposal on a QC up to two blocks older than its
    /// parent's.
    fn stale_rewrite(&mut self, i: usize, msg: ConsensusMsg) -> ConsensusMsg {
        if self.adversary[i] != Some(ByzantineKind::StaleProposal) {
            return msg;
        }
        let ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p)) = &msg else { return msg };
        let Some(tc) = p.tc.clone() else { return msg };
        // Walk back as far as two blocks below the one it should extend: a
        // block there may already be committed by some validators, which is
        // exactly what the lock protects.
        let store = &self.nodes[i].store;
        let Some(mut below) = store.block(&p.block.parent()) else { return msg };
        let mut stale_qc = None;
        for _ in 0..2 {
            let Some(qc) = below.justify.as_quorum().cloned() else { break };
            let Some(b) = store.block(&qc.block_id()) else { break };
            stale_qc = Some(qc);
            below = b;
        }
        let Some(stale_qc) = stale_qc else { return msg };
        let grandparent = below;
        let v = self.validators.position(&self.nodes[i].id).expect("a validator");
        let mut header = p.block.header.clone();
        header.height = stale_qc.height() + 1;
        header.parent = stale_qc.block_id();
        header.parent_round = stale_qc.round();
        header.payload_root = phalanx_consensus::types::payload_root(&[]);
        header.app_height = grandparent.header.app_height;
        header.app_hash = grandparent.header.app_hash;
        let block = Block::sign(header, phalanx_consensus::types::Certificate::Quorum(stale_qc), vec![], &self.keys[v]);
        self.stats.stale_proposals += 1;
        self.note(format!("{} {i} proposes stale block {} at height {}", self.now, block.id().short(), block.height()));
        let proposal = phalanx_consensus::types::Proposal { block, tc: Some(tc) };
        ConsensusMsg::HotStuff(HotStuffMsg::Proposal(Box::new(proposal)))
    }

    fn execute(&mut self, i: usize, action: Action) {
        match action {
            Action::PersistSafety(s) => self.nodes[i].store.safety = Some(s),
            Action::PersistBlock(b) => {
                self.nodes[i].store.blocks.insert(b.id(), b);
            }
            Action::Send { to, msg } => {
                self.check(|c, ctx| c.on_send(ctx, i, &msg));
                let targets: Vec<usize> = (0..self.nodes.len()).filter(|&j| self.nodes[j].id == to && j != i).collect();
                for j in targets {
                    self.send(i, j, msg.clone());
                }
            }
            Action::Broadcast(msg) => {
                self.check(|c, ctx| c.on_send(ctx, i, &msg));
                let msg = self.stale_rewrite(i, msg);
                let me = self.nodes[i].id;
                let targets: Vec<usize> = (0..self.nodes.len()).filter(|&j| self.nodes[j].id != me).collect();
                for j in targets {
                    self.send(i, j, msg.clone());
                }
            }
            Action::SetTimer { id, at } => {
                self.nodes[i].timers.insert(id, at);
                let epoch = self.epoch[i];
                self.schedule(at.max(self.now), Event::Timer { node: i, id, at, epoch });
            }
            Action::RequestPayload { ticket, max_txs, exclude, .. } => {
                let txs = self.nodes[i].reap(max_txs, &exclude);
                let epoch = self.epoch[i];
                self.schedule(self.now, Event::Local { node: i, input: Input::Payload { ticket, txs }, epoch });
            }
            Action::Commit(blocks) => {
                for cb in blocks {
                    self.commit(i, cb);
                }
            }
            Action::RequestSync { from, request } => {
                if let Some(j) = (0..self.nodes.len()).find(|&j| self.nodes[j].id == from && j != i) {
                    self.stats.sync_requests += 1;
                    for d in self.net.delays(&mut self.rng, self.now, i, j) {
                        let ev = Event::SyncRequest { to: j, requester: i, request: request.clone() };
                        self.schedule(self.now + d, ev);
                    }
                }
            }
            Action::RequestSnapshot { from } => {
                if let Some(j) = (0..self.nodes.len()).find(|&j| self.nodes[j].id == from && j != i) {
                    self.stats.sync_requests += 1;
                    for d in self.net.delays(&mut self.rng, self.now, i, j) {
                        self.schedule(self.now + d, Event::SnapshotRequest { to: j, requester: i });
                    }
                }
            }
            Action::Evidence(_) => self.stats.evidence += 1,
            // The simulator's clients do not read; membership changes are
            // counted when complete.
            Action::ReadReady { .. }
            | Action::ReadFailed { .. }
            | Action::MembershipChanged(_)
            | Action::ChangeDone { result: Err(_), .. } => {}
            Action::ChangeDone { id, result: Ok(index) } => {
                self.stats.membership_changes += 1;
                self.note(format!("{} {i} membership change #{id} complete at {index}", self.now));
            }
            Action::Invalid { from, reason } => {
                self.stats.invalid_messages += 1;
                self.note(format!("{} {i} refused from {}: {reason}", self.now, from.short()));
            }
        }
    }

    fn commit(&mut self, i: usize, cb: CertifiedBlock) {
        let height = cb.block.height();
        self.check(|c, ctx| c.on_commit(ctx, i, &cb));
        let store = &self.nodes[i].store;
        if height != store.committed.len() as u64 {
            return; // a replayed commit after restart, or the integrity checker's business
        }
        if self.honest[i] && height > self.max_height {
            self.max_height = height;
            self.committed_txs += cb.block.txs.len();
        }
        let node = &mut self.nodes[i];
        let app_hash = MemStore::next_app_hash(node.store.app_hashes.last().expect("genesis"), &cb.block);
        node.store.app_hashes.push(app_hash);
        node.remove_committed(&cb.block.txs);
        node.store.blocks.remove(&cb.block.id());
        let id = cb.block.id();
        node.store.committed.push(cb);
        self.note(format!("{} commit {i} h{height} {}", self.now, id.short()));
        let epoch = self.epoch[i];
        self.schedule(self.now, Event::Local { node: i, input: Input::Executed { height, app_hash }, epoch });
    }

    fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -p phalanx-testnet --bin phalanx-sim -- --protocol {} --validators {} --seed {}",
            self.protocol.name(),
            self.cfg.validators,
            self.cfg.seed
        );
        let f = &self.cfg.faults;
        cmd += &format!(" --twins {} --adversaries {}", f.twins, f.adversaries);
        if let Some(k) = f.only_kind {
            cmd += &format!(" --only {}", k.name());
        }
        if !f.partitions {
            cmd += " --no-partitions";
        }
        if !f.crashes {
            cmd += " --no-crashes";
        }
        let d = FaultConfig::full(0);
        if f.after_gst_ms != d.after_gst_ms {
            cmd += &format!(" --after-gst {}", f.after_gst_ms);
        }
        if f.gst_ms_max != d.gst_ms_max {
            cmd += &format!(" --gst-max {}", f.gst_ms_max);
        }
        if f.partition_ms_max != d.partition_ms_max {
            cmd += &format!(" --partition-max {}", f.partition_ms_max);
        }
        cmd += &self.protocol.replay_flags();
        for c in &self.cfg.skip_checkers {
            cmd += &format!(" --skip-checker '{c}'");
        }
        cmd + " --trace"
    }

    fn report(mut self) -> SimReport {
        SimReport {
            seed: self.cfg.seed,
            validators: self.cfg.validators,
            replay: self.replay_command(),
            violation: self.violation.take(),
            max_height: self.max_height,
            committed_txs: self.committed_txs,
            submitted_txs: self.submitted.len(),
            events: self.events,
            worst_gap_rounds: self.liveness.worst_rounds,
            worst_gap_ms: self.liveness.worst_ms,
            gst_ms: self.plan.network.gst_ms,
            faults: self.stats,
            trace_hash: self.trace.finish(),
            trace: self.tail.into_iter().collect(),
        }
    }
}

/// Flips a bit of every signature in `msg`.
fn corrupt(msg: &mut ConsensusMsg) {
    let ConsensusMsg::HotStuff(m) = msg else { return };
    match m {
        HotStuffMsg::Proposal(p) => p.block.signature.0[0] ^= 1,
        HotStuffMsg::Vote(v) => v.signature.0[0] ^= 1,
        HotStuffMsg::Timeout(t) => t.signature.0[0] ^= 1,
        HotStuffMsg::SyncInfo(si) => {
            if let Some(s) = si.high_qc.signatures.first_mut() {
                s.0[0] ^= 1;
            }
        }
    }
}

/// Runs one seed of `protocol` with `cfg`.
pub fn run_seed(protocol: Arc<dyn Protocol>, cfg: SimConfig) -> SimReport {
    Simulation::new(protocol, cfg).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hotstuff() -> Arc<dyn Protocol> {
        Arc::new(HotStuffProtocol::default())
    }

    /// Without faults, four validators commit steadily and every submitted
    /// transaction but the last few is committed.
    #[test]
    fn four_validators_commit_on_a_good_network() {
        let mut cfg = SimConfig::new(1, 4);
        cfg.faults = FaultConfig::none();
        let r = run_seed(hotstuff(), cfg);
        assert!(r.ok(), "{}", r.failure_text());
        assert!(r.max_height > 100, "height {}", r.max_height);
        assert!(r.committed_txs > r.submitted_txs * 9 / 10, "{} of {}", r.committed_txs, r.submitted_txs);
    }

    /// Determinism: two runs of one seed produce identical traces (compared
    /// by hash); another seed produces a different one.
    #[test]
    fn same_seed_same_trace() {
        let a = run_seed(hotstuff(), SimConfig::new(7, 4));
        let b = run_seed(hotstuff(), SimConfig::new(7, 4));
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.events, b.events);
        let c = run_seed(hotstuff(), SimConfig::new(8, 4));
        assert_ne!(a.trace_hash, c.trace_hash);
    }
}
