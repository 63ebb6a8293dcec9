//! A deterministic simulator over the real consensus engines.
//!
//! The simulator is the second driver of the `Engine` trait (the node is
//! the first). Time is virtual and one `u64` seed determines everything:
//! message delays, losses, duplicates, the workload. The same seed gives the
//! same run, bit for bit; each run's trace is hashed so tests can check
//! that.
//!
//! Checkers watch every commit: agreement (no two nodes commit different
//! blocks at one height), chain integrity (each node's commits extend its
//! chain one height at a time), and no transaction committed twice.

mod network;
mod node;

pub use network::{Network, NetworkConfig, Partition};
pub use node::{MemStore, SimNode};

use phalanx_consensus::engine::{Action, ConsensusMsg, Engine, Input, SyncRequest, SyncResponse, TimerId};
use phalanx_consensus::hotstuff::{EngineConfig, HotStuff, serve_sync};
use phalanx_consensus::smr::AcceptAll;
use phalanx_consensus::types::{Block, BlockId, CertifiedBlock, Millis, Tx, ValidatorId, ValidatorSet};
use phalanx_crypto::{Hash, Hasher, Keypair};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Parameters of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub validators: usize,
    /// Virtual time to simulate.
    pub duration_ms: Millis,
    pub network: NetworkConfig,
    /// One client transaction every this many ms (0 = none).
    pub tx_interval_ms: Millis,
    pub timeout_ms_base: Millis,
}

impl SimConfig {
    pub fn new(seed: u64, validators: usize) -> SimConfig {
        SimConfig {
            seed,
            validators,
            duration_ms: 20_000,
            network: NetworkConfig::default(),
            tx_interval_ms: 10,
            timeout_ms_base: 500,
        }
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub at_ms: Millis,
    pub detail: String,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    pub violations: Vec<Violation>,
    /// Highest height committed by any node.
    pub max_height: u64,
    /// Lowest committed height among live nodes at the end.
    pub min_height: u64,
    pub committed_txs: usize,
    pub submitted_txs: usize,
    pub events: u64,
    pub invalid_messages: u64,
    pub evidence: u64,
    /// Longest stretch after GST with no new commit anywhere.
    pub max_commit_gap_ms: Millis,
    /// SHA-256 over the whole event trace.
    pub trace_hash: Hash,
    /// The last events, for reading a failure.
    pub trace_tail: Vec<String>,
}

impl SimReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

enum Event {
    Deliver { to: usize, from: ValidatorId, msg: ConsensusMsg },
    Timer { node: usize, id: TimerId, at: Millis },
    Local { node: usize, input: Input },
    SyncRequest { to: usize, requester: usize, request: SyncRequest },
    SyncResponse { to: usize, from: ValidatorId, response: SyncResponse },
    Submit { tx: Tx },
}

const TRACE_TAIL: usize = 64;
/// Debug: keep the whole trace when PHALANX_SIM_FULL_TRACE is set.
fn full_trace() -> bool {
    std::env::var_os("PHALANX_SIM_FULL_TRACE").is_some()
}

/// A simulated network of validators.
pub struct Simulation {
    cfg: SimConfig,
    now: Millis,
    rng: ChaCha8Rng,
    queue: BTreeMap<(Millis, u64), Event>,
    seq: u64,
    pub nodes: Vec<SimNode>,
    net: Network,
    canonical: Vec<BlockId>,
    committed_txs: BTreeSet<Tx>,
    submitted: BTreeSet<Tx>,
    violations: Vec<Violation>,
    invalid_messages: u64,
    evidence: u64,
    last_commit_ms: Millis,
    max_gap_ms: Millis,
    trace: Hasher,
    tail: VecDeque<String>,
    events: u64,
}

impl Simulation {
    pub fn new(cfg: SimConfig) -> Simulation {
        let keys: Vec<Keypair> = (0..cfg.validators)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                Keypair::from_seed(&seed)
            })
            .collect();
        let ids: Vec<ValidatorId> = keys.iter().map(|k| k.public()).collect();
        let validators = ValidatorSet::equal(&ids);
        let genesis_app_hash = Hash::digest(b"sim genesis");
        let genesis = Block::genesis("sim", 0, genesis_app_hash, ids[0]);
        let engine_cfg = EngineConfig {
            chain_id: "sim".into(),
            validators,
            genesis: genesis.clone(),
            timeout_ms_base: cfg.timeout_ms_base,
            timeout_ms_max: cfg.timeout_ms_base * 16,
            block_max_bytes: 1 << 20,
            block_max_txs: 500,
            empty_block_interval_ms: cfg.timeout_ms_base / 4,
            sync_timeout_ms: cfg.timeout_ms_base,
            sync_max_blocks: 32,
        };
        let nodes = keys
            .into_iter()
            .map(|k| SimNode {
                id: k.public(),
                engine: Box::new(HotStuff::new(engine_cfg.clone(), k, Arc::new(AcceptAll))) as Box<dyn Engine>,
                store: MemStore::new(genesis.clone(), genesis_app_hash),
                up: true,
                timers: BTreeMap::new(),
                pool: Vec::new(),
                pool_set: BTreeSet::new(),
            })
            .collect::<Vec<_>>();
        let n = nodes.len();
        Simulation {
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            queue: BTreeMap::new(),
            seq: 0,
            nodes,
            net: Network::new(cfg.network.clone(), n),
            canonical: vec![genesis.id()],
            committed_txs: BTreeSet::new(),
            submitted: BTreeSet::new(),
            violations: Vec::new(),
            invalid_messages: 0,
            evidence: 0,
            last_commit_ms: 0,
            max_gap_ms: 0,
            trace: Hasher::with_domain(b"phalanx/sim-trace/v1\0"),
            tail: VecDeque::new(),
            events: 0,
            cfg,
        }
    }

    fn schedule(&mut self, at: Millis, ev: Event) {
        debug_assert!(at >= self.now, "event scheduled in the past: {at} < {}", self.now);
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn note(&mut self, line: String) {
        self.trace.update(line.as_bytes()).update(b"\n");
        if self.tail.len() == TRACE_TAIL && !full_trace() {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    fn violation(&mut self, invariant: &'static str, detail: String) {
        self.note(format!("{} VIOLATION {invariant}: {detail}", self.now));
        self.violations.push(Violation { invariant, at_ms: self.now, detail });
    }

    /// Runs to the configured duration and reports.
    pub fn run(mut self) -> SimReport {
        for i in 0..self.nodes.len() {
            let recovery = self.nodes[i].store.recovery();
            self.step(i, Input::Restored(Box::new(recovery)));
        }
        if self.cfg.tx_interval_ms > 0 {
            let mut t = 0;
            let mut n = 0u64;
            while t < self.cfg.duration_ms {
                let tx = Tx::from(format!("tx-{}-{n}", self.cfg.seed).into_bytes());
                self.schedule(t, Event::Submit { tx });
                t += self.cfg.tx_interval_ms;
                n += 1;
            }
        }
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at > self.cfg.duration_ms {
                break;
            }
            self.now = at;
            self.events += 1;
            self.handle(ev);
        }
        self.report()
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Deliver { to, from, msg } => {
                if self.nodes[to].up {
                    self.note(format!("{} deliver {}->{} {}", self.now, from.short(), to, msg_kind(&msg)));
                    self.step(to, Input::Message { from, msg });
                }
            }
            Event::Timer { node, id, at } => {
                if self.nodes[node].up && self.nodes[node].timers.get(&id) == Some(&at) {
                    self.nodes[node].timers.remove(&id);
                    self.note(format!("{} timer {node} {id:?}", self.now));
                    self.step(node, Input::Timer(id));
                }
            }
            Event::Local { node, input } => {
                if self.nodes[node].up {
                    self.step(node, input);
                }
            }
            Event::SyncRequest { to, requester, request } => {
                if self.nodes[to].up {
                    let response = serve_sync(&request, &self.nodes[to].store, 32, 1 << 20);
                    let from = self.nodes[to].id;
                    self.note(format!("{} sync {to}->{requester} {} blocks", self.now, response.blocks.len()));
                    for d in self.net.delays(&mut self.rng, self.now, to, requester) {
                        self.schedule(
                            self.now + d,
                            Event::SyncResponse { to: requester, from, response: response.clone() },
                        );
                    }
                }
            }
            Event::SyncResponse { to, from, response } => {
                if self.nodes[to].up {
                    self.step(to, Input::Synced { from, response });
                }
            }
            Event::Submit { tx } => {
                self.submitted.insert(tx.clone());
                for node in self.nodes.iter_mut().filter(|n| n.up) {
                    node.add_tx(tx.clone());
                }
            }
        }
    }

    fn step(&mut self, i: usize, input: Input) {
        let mut out = Vec::new();
        self.nodes[i].engine.step(self.now, input, &mut out);
        for a in out {
            self.execute(i, a);
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: ConsensusMsg) {
        let id = self.nodes[from].id;
        for d in self.net.delays(&mut self.rng, self.now, from, to) {
            self.schedule(self.now + d, Event::Deliver { to, from: id, msg: msg.clone() });
        }
    }

    fn execute(&mut self, i: usize, action: Action) {
        match action {
            Action::PersistSafety(s) => self.nodes[i].store.safety = Some(s),
            Action::PersistBlock(b) => {
                self.nodes[i].store.blocks.insert(b.id(), b);
            }
            Action::Send { to, msg } => {
                let targets: Vec<usize> = (0..self.nodes.len()).filter(|&j| self.nodes[j].id == to && j != i).collect();
                for j in targets {
                    self.send(i, j, msg.clone());
                }
            }
            Action::Broadcast(msg) => {
                let me = self.nodes[i].id;
                let targets: Vec<usize> = (0..self.nodes.len()).filter(|&j| self.nodes[j].id != me).collect();
                for j in targets {
                    self.send(i, j, msg.clone());
                }
            }
            Action::SetTimer { id, at } => {
                self.nodes[i].timers.insert(id, at);
                self.schedule(at, Event::Timer { node: i, id, at });
            }
            Action::RequestPayload { ticket, max_txs, exclude, .. } => {
                let txs = self.nodes[i].reap(max_txs, &exclude);
                self.schedule(self.now, Event::Local { node: i, input: Input::Payload { ticket, txs } });
            }
            Action::Commit(blocks) => {
                for cb in blocks {
                    self.commit(i, cb);
                }
            }
            Action::RequestSync { from, request } => {
                if let Some(j) = (0..self.nodes.len()).find(|&j| self.nodes[j].id == from && j != i) {
                    for d in self.net.delays(&mut self.rng, self.now, i, j) {
                        self.schedule(
                            self.now + d,
                            Event::SyncRequest { to: j, requester: i, request: request.clone() },
                        );
                    }
                }
            }
            Action::Evidence(_) => self.evidence += 1,
            Action::Invalid { .. } => self.invalid_messages += 1,
        }
    }

    fn commit(&mut self, i: usize, cb: CertifiedBlock) {
        let height = cb.block.height();
        let store = &self.nodes[i].store;
        let expected = store.committed.len() as u64;
        let parent_ok = store.committed.last().is_some_and(|p| p.block.id() == cb.block.parent());
        if height != expected || !parent_ok {
            self.violation(
                "chain integrity",
                format!("node {i} committed height {height}, expected {expected} on its tip"),
            );
            return;
        }
        let id = cb.block.id();
        match self.canonical.get(height as usize) {
            Some(c) if *c != id => {
                let detail =
                    format!("node {i} committed {} at height {height}, another node {}", id.short(), c.short());
                self.violation("agreement", detail);
            }
            Some(_) => {}
            None => {
                self.canonical.push(id);
                self.max_gap_ms =
                    self.max_gap_ms.max(self.now.saturating_sub(self.last_commit_ms.max(self.cfg.network.gst_ms)));
                self.last_commit_ms = self.now;
                for tx in &cb.block.txs {
                    if !self.submitted.contains(tx) {
                        self.violation("validity", format!("height {height} commits a transaction never submitted"));
                    }
                    if !self.committed_txs.insert(tx.clone()) {
                        self.violation("no duplicate commit", format!("height {height} commits a transaction again"));
                    }
                }
            }
        }
        let node = &mut self.nodes[i];
        let app_hash = MemStore::next_app_hash(node.store.app_hashes.last().expect("genesis"), &cb.block);
        node.store.app_hashes.push(app_hash);
        node.remove_committed(&cb.block.txs);
        node.store.blocks.remove(&id);
        node.store.committed.push(cb);
        self.note(format!("{} commit node {i} height {height} {}", self.now, id.short()));
        self.schedule(self.now, Event::Local { node: i, input: Input::Executed { height, app_hash } });
    }

    fn report(mut self) -> SimReport {
        let end_gap = self.cfg.duration_ms.saturating_sub(self.last_commit_ms.max(self.cfg.network.gst_ms));
        self.max_gap_ms = self.max_gap_ms.max(end_gap);
        let heights: Vec<u64> =
            self.nodes.iter().filter(|n| n.up).map(|n| n.store.committed.len() as u64 - 1).collect();
        SimReport {
            seed: self.cfg.seed,
            max_height: self.canonical.len() as u64 - 1,
            min_height: heights.iter().copied().min().unwrap_or(0),
            committed_txs: self.committed_txs.len(),
            submitted_txs: self.submitted.len(),
            events: self.events,
            invalid_messages: self.invalid_messages,
            evidence: self.evidence,
            max_commit_gap_ms: self.max_gap_ms,
            violations: self.violations,
            trace_hash: self.trace.finish(),
            trace_tail: self.tail.into_iter().collect(),
        }
    }
}

fn msg_kind(msg: &ConsensusMsg) -> String {
    use phalanx_consensus::engine::HotStuffMsg;
    match msg {
        ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p)) => {
            format!("proposal r{} h{}", p.block.round(), p.block.height())
        }
        ConsensusMsg::HotStuff(HotStuffMsg::Vote(v)) => format!("vote r{}", v.data.round),
        ConsensusMsg::HotStuff(HotStuffMsg::Timeout(t)) => format!("timeout r{}", t.round),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_validators_commit_on_a_good_network() {
        let mut cfg = SimConfig::new(1, 4);
        cfg.network.gst_ms = 0;
        let r = Simulation::new(cfg).run();
        assert!(r.ok(), "{:?}\n{}", r.violations, r.trace_tail.join("\n"));
        assert!(r.max_height > 50, "height {}", r.max_height);
        assert!(r.committed_txs > r.submitted_txs * 9 / 10, "{} of {}", r.committed_txs, r.submitted_txs);
    }

    #[test]
    fn same_seed_same_trace() {
        let a = Simulation::new(SimConfig::new(7, 4)).run();
        let b = Simulation::new(SimConfig::new(7, 4)).run();
        assert_eq!(a.trace_hash, b.trace_hash);
        let c = Simulation::new(SimConfig::new(8, 4)).run();
        assert_ne!(a.trace_hash, c.trace_hash);
    }

    #[test]
    fn lossy_network_before_gst_then_commits_resume() {
        for seed in 0..20 {
            let mut cfg = SimConfig::new(seed, 4);
            cfg.network.gst_ms = 5_000;
            cfg.network.loss_before_gst = 0.3;
            let r = Simulation::new(cfg).run();
            assert!(r.ok(), "seed {seed}: {:?}\n{}", r.violations, r.trace_tail.join("\n"));
            assert!(r.max_commit_gap_ms < 8_000, "seed {seed}: gap {}", r.max_commit_gap_ms);
        }
    }
}
