//! The Raft engine: leader election with pre-vote and check-quorum, log
//! replication with batching and pipelining, commitment by current-term
//! majority, membership changes by joint consensus, and catch-up of
//! followers behind the compaction point by state snapshot.
//!
//! Section numbers cite Ongaro & Ousterhout, "In Search of an Understandable
//! Consensus Algorithm" (2014), and Ongaro's dissertation (2014) for §9.6
//! (pre-vote, check-quorum) and §6.4 (read index). The rules as implemented
//! are listed in `docs/raft.md`.
//!
//! Like every engine it is a pure state machine: time comes in with each
//! input, election jitter from a seeded generator in its configuration, and
//! everything it wants done leaves as actions. Persisted state
//! ([`HardState`] and the log's blocks) is emitted as `PersistSafety` /
//! `PersistBlock` before any message that depends on it; the driver makes
//! them durable before sending.

use super::log::{Index, RaftLog, Term};
use super::membership::{Membership, MembershipChange};
use super::msg::{HardState, RaftMsg};
use crate::engine::{Action, ConsensusMsg, Engine, EngineStatus, Input, Recovery, SafetyState, TimerId};
use crate::types::{
    Block, BlockHeader, BlockId, Certificate, CertifiedBlock, Height, Millis, Tx, TxHashes, ValidatorId, ValidatorSet,
};
use phalanx_crypto::{Hash, Keypair};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::{debug, info};

/// How often a leader with an empty mempool asks it again.
pub const PROPOSE_POLL_MS: Millis = 5;

/// Parameters of a Raft engine.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub chain_id: String,
    /// The voting members (voting power is ignored: Raft counts members).
    pub validators: ValidatorSet,
    pub genesis: Block,
    /// Election timeout T: a follower that hears no leader for a random time
    /// in [T, 2T) starts a (pre-)election (§5.2); a leader that hears from
    /// no majority for T steps down (check-quorum, §9.6).
    pub election_timeout_ms: Millis,
    /// How often a leader sends heartbeats (well below T).
    pub heartbeat_ms: Millis,
    pub block_max_bytes: usize,
    pub block_max_txs: usize,
    /// Append messages in flight per follower at most (pipelining).
    pub max_inflight: usize,
    /// Entries per append message at most (batching).
    pub max_append_entries: usize,
    /// Uncommitted entries a leader creates ahead of its commit index at most.
    pub max_uncommitted: usize,
    /// A leader proposes a block while an earlier entry is still
    /// uncommitted only if its previous block carried at least this many
    /// transactions. Under light or closed-loop load it waits for the
    /// commit instead, so the next block gathers everything that arrived
    /// during one replication round trip: every block costs each node a
    /// persist, a flush, an append and its acknowledgement, execution and a
    /// second flush, which a handful of transactions cannot pay for. Under
    /// heavy load blocks are large and pipeline up to `max_uncommitted`.
    pub pipeline_min_txs: usize,
    /// Applied entries kept in memory for slow followers; older ones are
    /// compacted (the state machine's snapshot covers them) and followers
    /// behind them catch up by installing a state snapshot.
    pub log_keep: usize,
    /// Seed of the election jitter.
    pub seed: u64,
}

impl RaftConfig {
    /// Defaults for everything but the chain, members, timeout and seed.
    pub fn new(
        chain_id: String,
        validators: ValidatorSet,
        genesis: Block,
        election_timeout_ms: Millis,
        seed: u64,
    ) -> RaftConfig {
        RaftConfig {
            chain_id,
            validators,
            genesis,
            election_timeout_ms,
            heartbeat_ms: (election_timeout_ms / 10).max(1),
            block_max_bytes: 4 << 20,
            block_max_txs: 10_000,
            max_inflight: 8,
            max_append_entries: 64,
            max_uncommitted: 64,
            pipeline_min_txs: 100,
            log_keep: 1024,
            seed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// A leader's view of one follower (§5.3 nextIndex / matchIndex).
#[derive(Clone, Debug)]
struct Progress {
    match_index: Index,
    next_index: Index,
    /// (prev index, last index) of each append in flight, oldest first.
    inflight: VecDeque<(Index, Index)>,
    /// After a rejection: one append at a time until one succeeds.
    probing: bool,
    /// When the follower last answered anything in this term.
    last_heard: Millis,
    /// When `match_index` last moved (or the follower was last reset).
    last_progress: Millis,
    /// When a catch-up notice was last sent, while the follower syncs.
    catching_up: Option<Millis>,
}

impl Progress {
    fn new(now: Millis, next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            inflight: VecDeque::new(),
            probing: true,
            last_heard: now,
            last_progress: now,
            catching_up: None,
        }
    }
}

/// Who asked for a read index or a membership change.
#[derive(Clone, Copy, Debug)]
enum Origin {
    /// A client of this node (`Input::Read { id }`,
    /// `Input::ChangeMembership { id, .. }`).
    Local(u64),
    /// A follower, for its client `ctx`.
    Remote(ValidatorId, u64),
}

/// A read waiting for a majority to confirm this node still leads.
struct PendingRead {
    /// The heartbeat round that confirms it.
    seq: u64,
    /// The commit index when the read arrived.
    index: Index,
    acks: BTreeSet<ValidatorId>,
    origin: Origin,
}

/// A follower fetching a state snapshot.
struct CatchUp {
    from: ValidatorId,
    asked_at: Millis,
}

/// A Raft node's consensus state.
pub struct Raft {
    cfg: RaftConfig,
    key: Keypair,
    me: ValidatorId,
    /// The configuration before any configuration entry: every genesis
    /// validator votes.
    genesis_config: Membership,
    /// Persisted state; `hs.configs` holds the configurations of the log.
    hs: HardState,
    log: RaftLog,
    commit: Index,
    executed: BTreeMap<Height, Hash>,
    role: Role,
    leader: Option<ValidatorId>,
    /// When this node last heard from a leader of its current term (pre-vote
    /// and vote requests are refused for an election timeout after that).
    leader_contact: Option<Millis>,
    votes: BTreeSet<ValidatorId>,
    progress: BTreeMap<ValidatorId, Progress>,
    proposing: Option<u64>,
    /// Transactions in the last block this leader proposed (see
    /// [`RaftConfig::pipeline_min_txs`]).
    last_block_txs: usize,
    next_ticket: u64,
    catch_up: Option<CatchUp>,
    rng: u64,
    restored: bool,
    /// Always true in a validator; false only in the simulator's
    /// deliberately broken engines (feature `unsafe-test-hooks`).
    one_vote_per_term: bool,
    /// Leader: reads awaiting a confirming heartbeat round, oldest first.
    reads: VecDeque<PendingRead>,
    /// Leader: reads that arrived before an entry of this term committed.
    reads_before_commit: Vec<Origin>,
    /// Follower: local reads forwarded to the leader.
    forwarded_reads: BTreeSet<u64>,
    read_seq: u64,
    /// Leader: membership changes waiting for their configuration entry
    /// (index) to commit, and who asked.
    pending_changes: Vec<(Index, Origin)>,
    /// Follower: local membership changes forwarded to the leader.
    forwarded_changes: BTreeSet<u64>,
}

impl Raft {
    /// An engine for the member holding `key`. It does nothing until it
    /// receives `Input::Restored`.
    pub fn new(cfg: RaftConfig, key: Keypair) -> Raft {
        let me = key.public();
        Raft {
            me,
            key,
            genesis_config: Membership::from_genesis(&cfg.validators),
            hs: HardState::default(),
            log: RaftLog::new(&cfg.genesis),
            commit: 0,
            executed: BTreeMap::new(),
            role: Role::Follower,
            leader: None,
            leader_contact: None,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            proposing: None,
            last_block_txs: 0,
            next_ticket: 0,
            catch_up: None,
            rng: cfg.seed ^ 0x9e37_79b9_7f4a_7c15,
            restored: false,
            one_vote_per_term: true,
            reads: VecDeque::new(),
            reads_before_commit: Vec::new(),
            forwarded_reads: BTreeSet::new(),
            read_seq: 0,
            pending_changes: Vec::new(),
            forwarded_changes: BTreeSet::new(),
            cfg,
        }
    }

    /// Builds this engine so it grants a vote to every up-to-date candidate
    /// of a term, not only the first: for showing that the simulator's
    /// election safety checker catches a broken engine. Never in a validator.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn allow_second_vote_in_term_for_tests(&mut self) {
        self.one_vote_per_term = false;
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.hs.term
    }

    /// Is this node the leader?
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The commit index.
    pub fn commit_index(&self) -> Index {
        self.commit
    }

    /// The index of the last log entry.
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// The configuration in effect: the latest in the log (§6, dissertation
    /// §4.1), committed or not.
    pub fn config(&self) -> &Membership {
        self.hs.configs.last().map_or(&self.genesis_config, |(_, c)| c)
    }

    /// The index of the entry that set the configuration in effect (0 for
    /// genesis).
    fn config_index(&self) -> Index {
        self.hs.configs.last().map_or(0, |(i, _)| *i)
    }

    /// Does `granted` form a quorum of the configuration in effect?
    fn has_quorum(&self, granted: &BTreeSet<ValidatorId>) -> bool {
        self.config().has_quorum(granted)
    }

    /// Is `v` a member of any configuration this node knows of? Messages
    /// from anyone else are refused.
    fn knows(&self, v: &ValidatorId) -> bool {
        if self.hs.configs.is_empty() {
            return self.genesis_config.contains(v);
        }
        self.hs.configs.iter().any(|(_, c)| c.contains(v))
    }

    /// Appends an entry; a configuration entry takes effect at once.
    /// Returns whether the configuration changed.
    fn log_append(&mut self, b: Block) -> bool {
        let config = Membership::from_entry(&b.txs);
        let index = b.height();
        self.log.append(b);
        match config {
            Some(c) => {
                self.hs.configs.push((index, c));
                true
            }
            None => false,
        }
    }

    /// Drops entries after `index`, with the configurations they set.
    /// Returns whether the configuration changed.
    fn log_truncate_after(&mut self, index: Index) -> bool {
        self.log.truncate_after(index);
        let before = self.hs.configs.len();
        self.hs.configs.retain(|(at, _)| *at <= index);
        before != self.hs.configs.len()
    }

    /// The configuration in effect changed: tell the driver (who connects
    /// to new members) and, as leader, start or stop replicating to members.
    fn config_changed(&mut self, now: Millis, out: &mut Vec<Action>) {
        let c = self.config().clone();
        info!(
            index = self.config_index(),
            voters = c.voters.len(),
            outgoing = c.outgoing.len(),
            learners = c.learners.len(),
            "raft: configuration in effect"
        );
        if self.role == Role::Leader {
            // A leader's configuration changes only by its own appends: new
            // members start from the configuration entry just appended and
            // back off from there.
            let next = self.log.last_index().max(1);
            for m in c.all() {
                if m != self.me && !self.progress.contains_key(&m) {
                    self.progress.insert(m, Progress::new(now, next));
                }
            }
            self.progress.retain(|id, _| c.contains(id));
        }
        out.push(Action::MembershipChanged(c));
    }

    /// splitmix64: the engine's only randomness, seeded by its configuration.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Arms the election timer at a random point in [T, 2T) (§5.2).
    fn reset_election_timer(&mut self, now: Millis, out: &mut Vec<Action>) {
        let t = self.cfg.election_timeout_ms;
        let at = now + t + self.random() % t.max(1);
        out.push(Action::SetTimer { id: TimerId::Election, at });
    }

    fn persist(&self, out: &mut Vec<Action>) {
        out.push(Action::PersistSafety(SafetyState::Raft(self.hs.clone())));
    }

    fn send(&self, to: ValidatorId, msg: RaftMsg, out: &mut Vec<Action>) {
        out.push(Action::Send { to, msg: ConsensusMsg::Raft(msg) });
    }

    fn broadcast(&self, msg: RaftMsg, out: &mut Vec<Action>) {
        out.push(Action::Broadcast(ConsensusMsg::Raft(msg)));
    }

    fn invalid(&self, from: ValidatorId, reason: String, out: &mut Vec<Action>) {
        out.push(Action::Invalid { from, reason });
    }

    // ----- recovery -----

    fn on_restored(&mut self, now: Millis, r: Recovery, out: &mut Vec<Action>) {
        self.restored = true;
        let committed = r.committed.block;
        self.commit = committed.height();
        self.executed = r.executed.into_iter().collect();
        self.log = RaftLog::new(&committed);
        let hs = match r.safety {
            Some(SafetyState::Raft(hs)) => hs,
            _ => HardState { term: committed.round(), ..HardState::default() },
        };
        // The log: walk back from the persisted last entry to the committed
        // block through parent ids.
        if hs.last_index > self.commit {
            let by_id: BTreeMap<BlockId, &Block> = r.blocks.iter().map(|b| (b.id(), b)).collect();
            let mut chain = Vec::new();
            let mut id = hs.last_id;
            while let Some(b) = by_id.get(&id) {
                if b.height() <= self.commit {
                    break;
                }
                chain.push((*b).clone());
                id = b.parent();
            }
            if id == committed.id() && chain.last().is_some_and(|b| b.height() == self.commit + 1) {
                for b in chain.into_iter().rev() {
                    self.log.append(b);
                }
            } else {
                // Blocks are flushed together with the hard state that names
                // them, so this means the store lost entries this node may
                // have acknowledged: say so loudly and go on from the
                // committed block (the leader re-sends what is missing).
                tracing::error!(
                    last = hs.last_index,
                    commit = self.commit,
                    "raft log entries named by the persisted hard state are missing from the store"
                );
            }
        }
        self.hs = HardState { last_index: self.log.last_index(), last_id: self.log.last().id, ..hs };
        // The committed configuration is the one recorded in the committed
        // state (it survives a crash between a snapshot install and the
        // next hard state); later ones come from the log, and those of
        // entries lost with the log tail are gone.
        let last = self.log.last_index();
        let commit = self.commit;
        self.hs.configs.retain(|(at, _)| *at > commit && *at <= last);
        if let Some(c) = r.membership {
            self.hs.configs.insert(0, (commit, c));
        }
        out.push(Action::MembershipChanged(self.config().clone()));
        self.become_follower(now, self.hs.term, None, out);
    }

    // ----- roles -----

    fn become_follower(&mut self, now: Millis, term: Term, leader: Option<ValidatorId>, out: &mut Vec<Action>) {
        if term > self.hs.term {
            self.hs.term = term;
            self.hs.voted_for = None;
            self.persist(out);
        }
        if self.role != Role::Follower {
            debug!(term, "raft: follower");
        }
        if self.role == Role::Leader {
            self.fail_leader_reads("leadership changed; retry", out);
            for (_, origin) in std::mem::take(&mut self.pending_changes) {
                let reason =
                    "leadership changed before the change completed; check `status` to see whether it took effect";
                self.finish_change(origin, Err(reason.into()), out);
            }
        }
        if self.leader != leader {
            for id in std::mem::take(&mut self.forwarded_reads) {
                out.push(Action::ReadFailed { id, reason: "the leader changed; retry".into() });
            }
            for id in std::mem::take(&mut self.forwarded_changes) {
                let reason =
                    "the leader changed before answering; check `status` to see whether the change took effect";
                out.push(Action::ChangeDone { id, result: Err(reason.into()) });
            }
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.proposing = None;
        self.reset_election_timer(now, out);
    }

    /// Election timeout: ask for pre-votes at term + 1 without changing
    /// anything (§9.6), so a node that was cut off cannot disrupt a working
    /// leader when it returns.
    fn start_pre_vote(&mut self, now: Millis, out: &mut Vec<Action>) {
        if !self.config().is_voter(&self.me) {
            return; // learners and removed members never campaign
        }
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = BTreeSet::from([self.me]);
        self.reset_election_timer(now, out);
        if self.has_quorum(&self.votes) {
            return self.start_election(now, out);
        }
        let msg = RaftMsg::VoteRequest {
            pre: true,
            term: self.hs.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.broadcast(msg, out);
    }

    /// A majority would vote for us: a real election at term + 1 (§5.2).
    fn start_election(&mut self, now: Millis, out: &mut Vec<Action>) {
        self.role = Role::Candidate;
        self.hs.term += 1;
        self.hs.voted_for = Some(self.me);
        self.votes = BTreeSet::from([self.me]);
        self.persist(out);
        info!(term = self.hs.term, "raft: starting election");
        self.reset_election_timer(now, out);
        if self.has_quorum(&self.votes) {
            return self.become_leader(now, out);
        }
        let msg = RaftMsg::VoteRequest {
            pre: false,
            term: self.hs.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        self.broadcast(msg, out);
    }

    fn become_leader(&mut self, now: Millis, out: &mut Vec<Action>) {
        info!(term = self.hs.term, last = self.log.last_index(), "raft: leader");
        self.role = Role::Leader;
        self.leader = Some(self.me);
        self.votes.clear();
        let next = self.log.last_index() + 1;
        self.progress =
            self.config().all().into_iter().filter(|m| *m != self.me).map(|m| (m, Progress::new(now, next))).collect();
        // A no-op entry of the new term, so entries of earlier terms commit
        // with it (§5.4.2, §8). The first block does not wait for it.
        self.append_entry(now, Vec::new(), out);
        self.last_block_txs = usize::MAX;
        out.push(Action::SetTimer { id: TimerId::Election, at: now + self.cfg.election_timeout_ms });
        out.push(Action::SetTimer { id: TimerId::Heartbeat, at: now + self.cfg.heartbeat_ms });
        self.maybe_propose(out);
    }

    // ----- timers -----

    fn on_timer(&mut self, now: Millis, id: TimerId, out: &mut Vec<Action>) {
        match id {
            TimerId::Election => match self.role {
                Role::Leader => self.check_quorum(now, out),
                _ => self.start_pre_vote(now, out),
            },
            TimerId::Heartbeat if self.role == Role::Leader => {
                self.heartbeat_all(now, out);
                out.push(Action::SetTimer { id: TimerId::Heartbeat, at: now + self.cfg.heartbeat_ms });
            }
            TimerId::Propose if self.role == Role::Leader => self.maybe_propose(out),
            TimerId::Sync => {
                if let Some(c) = &self.catch_up
                    && now >= c.asked_at + self.snapshot_timeout()
                {
                    // Not installed in time: ask again (the leader may
                    // have changed).
                    let from = self.leader.unwrap_or(c.from);
                    self.request_snapshot(now, from, out);
                }
            }
            _ => {}
        }
    }

    /// The transport lost its connection to `peer`. If that is the leader
    /// this follower follows, its lease ends now (vote requests are no
    /// longer refused on its behalf) and the election timer is cut to a
    /// tenth to three tenths of a timeout, so a crashed leader is replaced
    /// in a few hundred milliseconds rather than one to two timeouts. If
    /// the leader is in fact alive, the pre-vote this starts fails (the
    /// other members still hear it) and nothing changes.
    fn on_peer_disconnected(&mut self, now: Millis, peer: ValidatorId, out: &mut Vec<Action>) {
        if self.role != Role::Follower || self.leader != Some(peer) {
            return;
        }
        info!(term = self.hs.term, leader = %peer.short(), "raft: lost the connection to the leader; campaigning early");
        self.leader_contact = None;
        let t = (self.cfg.election_timeout_ms / 10).max(1);
        let at = now + t + self.random() % (2 * t);
        out.push(Action::SetTimer { id: TimerId::Election, at });
    }

    /// Check-quorum (§9.6): a leader that has not heard from a majority
    /// within an election timeout steps down, so a partitioned leader stops
    /// accepting work it cannot commit.
    fn check_quorum(&mut self, now: Millis, out: &mut Vec<Action>) {
        let t = self.cfg.election_timeout_ms;
        let mut heard: BTreeSet<ValidatorId> =
            self.progress.iter().filter(|(_, p)| p.last_heard + t >= now).map(|(id, _)| *id).collect();
        heard.insert(self.me);
        if !self.has_quorum(&heard) {
            let heard = heard.len();
            info!(term = self.hs.term, heard, "raft: leader lost contact with a majority; stepping down");
            self.become_follower(now, self.hs.term, None, out);
        } else {
            out.push(Action::SetTimer { id: TimerId::Election, at: now + t });
        }
    }

    // ----- elections -----

    fn log_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        // §5.4.1: later last term wins; equal terms, the longer log.
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    /// Within an election timeout of hearing from the leader, vote requests
    /// are refused (§9.6 and §4.2.3), so a returning node cannot depose it.
    fn in_lease(&self, now: Millis) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some() && self.leader_contact.is_some_and(|t| now < t + self.cfg.election_timeout_ms))
    }

    // The fields of one message, taken apart by `on_message`.
    #[allow(clippy::too_many_arguments)]
    fn on_vote_request(
        &mut self,
        now: Millis,
        from: ValidatorId,
        pre: bool,
        term: Term,
        last_index: Index,
        last_term: Term,
        out: &mut Vec<Action>,
    ) {
        if pre {
            let granted = term > self.hs.term && !self.in_lease(now) && self.log_up_to_date(last_index, last_term);
            let term = if granted { term } else { self.hs.term };
            return self.send(from, RaftMsg::VoteResponse { pre: true, term, granted }, out);
        }
        if term > self.hs.term && self.in_lease(now) {
            return; // ignored, not answered: the leader is alive
        }
        if term > self.hs.term {
            self.become_follower(now, term, None, out);
        }
        let granted = term == self.hs.term
            && (self.hs.voted_for.is_none_or(|v| v == from) || !self.one_vote_per_term)
            && self.log_up_to_date(last_index, last_term);
        if granted && self.hs.voted_for.is_none() {
            self.hs.voted_for = Some(from);
            self.persist(out);
        }
        if granted {
            self.reset_election_timer(now, out);
        }
        self.send(from, RaftMsg::VoteResponse { pre: false, term: self.hs.term, granted }, out);
    }

    fn on_vote_response(
        &mut self,
        now: Millis,
        from: ValidatorId,
        pre: bool,
        term: Term,
        granted: bool,
        out: &mut Vec<Action>,
    ) {
        if term > self.hs.term && !(pre && granted) {
            return self.become_follower(now, term, None, out);
        }
        if !granted {
            return;
        }
        match (pre, self.role) {
            (true, Role::PreCandidate) if term == self.hs.term + 1 => {
                self.votes.insert(from);
                if self.has_quorum(&self.votes) {
                    self.start_election(now, out);
                }
            }
            (false, Role::Candidate) if term == self.hs.term => {
                self.votes.insert(from);
                if self.has_quorum(&self.votes) {
                    self.become_leader(now, out);
                }
            }
            _ => {}
        }
    }

    // ----- leader: proposing and replicating -----

    fn executed_point(&self) -> (Height, Hash) {
        self.executed.last_key_value().map(|(h, a)| (*h, *a)).unwrap_or((0, self.cfg.genesis.header.app_hash))
    }

    /// Appends a new entry of this term carrying `txs`, persists it and
    /// sends it on.
    fn append_entry(&mut self, now: Millis, txs: Vec<Tx>, out: &mut Vec<Action>) {
        let last = self.log.last();
        let (app_height, app_hash) = self.executed_point();
        let (payload_root, hashes) = TxHashes::root_of(&txs);
        let header = BlockHeader {
            chain_id: self.cfg.chain_id.clone(),
            height: last.index + 1,
            round: self.hs.term,
            parent: last.id,
            parent_round: last.term,
            payload_root,
            app_height,
            app_hash,
            proposer: self.me,
            time_ms: now,
        };
        let block = Block::sign(header, Certificate::Raft { term: last.term, index: last.index }, txs, &self.key);
        let block = Block { hashes, ..block };
        out.push(Action::PersistBlock(block.clone()));
        let config_changed = self.log_append(block);
        self.hs.last_index = self.log.last_index();
        self.hs.last_id = self.log.last().id;
        self.persist(out);
        if config_changed {
            self.config_changed(now, out);
        }
        let peers: Vec<ValidatorId> = self.progress.keys().copied().collect();
        for p in peers {
            self.send_appends(now, p, out);
        }
        self.maybe_commit(now, out);
    }

    /// Asks the mempool for the next batch while the pipeline has room.
    fn maybe_propose(&mut self, out: &mut Vec<Action>) {
        if self.role != Role::Leader || self.proposing.is_some() {
            return;
        }
        let uncommitted = (self.log.last_index() - self.commit) as usize;
        if uncommitted >= self.cfg.max_uncommitted {
            return; // resumes when commits free the pipeline
        }
        if uncommitted > 0 && self.last_block_txs < self.cfg.pipeline_min_txs {
            return; // a small block: the next one waits for its commit
        }
        self.next_ticket += 1;
        self.proposing = Some(self.next_ticket);
        let applied = self.executed_point().0;
        out.push(Action::RequestPayload {
            ticket: self.next_ticket,
            max_bytes: self.cfg.block_max_bytes,
            max_txs: self.cfg.block_max_txs,
            exclude: self.log.ids_above(applied),
        });
    }

    fn on_payload(&mut self, now: Millis, ticket: u64, txs: Vec<Tx>, out: &mut Vec<Action>) {
        if self.proposing != Some(ticket) {
            return;
        }
        self.proposing = None;
        if self.role != Role::Leader {
            return;
        }
        if txs.is_empty() {
            out.push(Action::SetTimer { id: TimerId::Propose, at: now + PROPOSE_POLL_MS });
            return;
        }
        self.last_block_txs = txs.len();
        self.append_entry(now, txs, out);
        self.maybe_propose(out);
    }

    /// Sends `peer` as many appends as its window allows.
    fn send_appends(&mut self, now: Millis, peer: ValidatorId, out: &mut Vec<Action>) {
        let Some(mut p) = self.progress.remove(&peer) else { return };
        let window = if p.probing { 1 } else { self.cfg.max_inflight };
        while p.catching_up.is_none() && p.inflight.len() < window && p.next_index <= self.log.last_index() {
            let prev_index = p.next_index - 1;
            let Some(prev_term) = self.log.term_at(prev_index) else {
                // Below the compaction point: the follower fetches the
                // committed chain first.
                p.catching_up = Some(now);
                self.send(peer, RaftMsg::CatchUp { term: self.hs.term, commit: self.commit }, out);
                break;
            };
            let entries = self.log.slice(p.next_index, self.cfg.max_append_entries, self.cfg.block_max_bytes);
            let last = prev_index + entries.len() as Index;
            let msg = RaftMsg::Append { term: self.hs.term, prev_index, prev_term, entries, commit: self.commit };
            self.send(peer, msg, out);
            p.inflight.push_back((prev_index, last));
            p.next_index = last + 1;
        }
        self.progress.insert(peer, p);
    }

    /// Heartbeats to every follower; a follower that did not finish catching
    /// up within an election timeout is probed with appends again.
    fn heartbeat_all(&mut self, now: Millis, out: &mut Vec<Action>) {
        let peers: Vec<ValidatorId> = self.progress.keys().copied().collect();
        for peer in peers {
            let p = self.progress.get_mut(&peer).expect("listed");
            if p.catching_up.is_some_and(|sent| now >= sent + self.cfg.election_timeout_ms) {
                p.catching_up = None;
                p.next_index = p.match_index + 1;
                p.inflight.clear();
                p.probing = true;
                self.send_appends(now, peer, out);
            }
            let commit = self.commit.min(self.progress[&peer].match_index);
            self.send(peer, RaftMsg::Heartbeat { term: self.hs.term, commit, ctx: 0 }, out);
        }
    }

    /// §5.3/§5.4.2: the highest index stored by a majority commits if its
    /// entry is of the current term; earlier entries commit with it. While
    /// the configuration is joint, by a majority of each half (§6).
    fn maybe_commit(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let n = self
            .config()
            .quorum_index(|id| if *id == self.me { last } else { self.progress.get(id).map_or(0, |p| p.match_index) });
        if n > self.commit && self.log.term_at(n) == Some(self.hs.term) {
            let old = self.commit;
            self.commit_to(n, out);
            for origin in std::mem::take(&mut self.reads_before_commit) {
                self.start_read(origin, out);
            }
            // Tell followers at once rather than at the next heartbeat.
            let peers: Vec<ValidatorId> = self.progress.keys().copied().collect();
            for peer in peers {
                let p = &self.progress[&peer];
                if p.match_index > old && p.inflight.is_empty() {
                    let commit = self.commit.min(p.match_index);
                    self.send(peer, RaftMsg::Heartbeat { term: self.hs.term, commit, ctx: 0 }, out);
                }
            }
            self.advance_config(now, out);
        }
    }

    /// Leader, after its commit index moved: a committed joint configuration
    /// is followed by the final one (§6); a committed final configuration
    /// completes waiting changes, and a leader it no longer counts as a
    /// voter steps down (dissertation §4.2.2).
    fn advance_config(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.role != Role::Leader || self.config_index() > self.commit {
            return;
        }
        if self.config().is_joint() {
            let fin = self.config().leave_joint();
            return self.append_entry(now, vec![fin.to_entry_tx()], out);
        }
        let done = self.config_index();
        let (finished, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending_changes).into_iter().partition(|(i, _)| *i <= done);
        self.pending_changes = waiting;
        for (_, origin) in finished {
            self.finish_change(origin, Ok(done), out);
        }
        if !self.config().is_voter(&self.me) {
            info!(term = self.hs.term, "raft: this leader is no longer a voter; stepping down");
            self.become_follower(now, self.hs.term, None, out);
        }
    }

    fn commit_to(&mut self, index: Index, out: &mut Vec<Action>) {
        let index = index.min(self.log.last_index());
        if index <= self.commit {
            return;
        }
        let mut blocks = Vec::with_capacity((index - self.commit) as usize);
        for i in self.commit + 1..=index {
            let b = self.log.get(i).expect("uncommitted entries are held").clone();
            let cert = Certificate::Raft { term: b.round(), index: b.height() };
            blocks.push(CertifiedBlock { block: b, cert });
        }
        self.commit = index;
        out.push(Action::Commit(blocks));
        // Keep the latest committed configuration and every later one.
        if let Some(k) = self.hs.configs.iter().rposition(|(at, _)| *at <= index) {
            self.hs.configs.drain(..k);
        }
    }

    // The fields of one message, taken apart by `on_message`.
    #[allow(clippy::too_many_arguments)]
    fn on_append_response(
        &mut self,
        now: Millis,
        from: ValidatorId,
        success: bool,
        match_index: Index,
        rejected: Index,
        hint: Index,
        out: &mut Vec<Action>,
    ) {
        let last = self.log.last_index();
        let Some(p) = self.progress.get_mut(&from) else { return };
        p.last_heard = now;
        if success {
            if match_index > last {
                return self.invalid(
                    from,
                    format!("append response matches index {match_index} beyond the log end {last}"),
                    out,
                );
            }
            if match_index > p.match_index {
                p.match_index = match_index;
                p.last_progress = now;
            }
            p.next_index = p.next_index.max(p.match_index + 1);
            while p.inflight.front().is_some_and(|(_, l)| *l <= match_index) {
                p.inflight.pop_front();
            }
            p.probing = false;
            p.catching_up = None;
            self.maybe_commit(now, out);
        } else {
            // A rejection of an append no longer in flight is stale.
            if rejected < p.match_index || !p.inflight.iter().any(|(prev, _)| *prev == rejected) {
                return;
            }
            p.next_index = hint.max(p.match_index + 1).min(last.max(p.match_index + 1));
            p.inflight.clear();
            p.probing = true;
            p.last_progress = now;
        }
        self.send_appends(now, from, out);
        self.maybe_propose(out);
    }

    fn on_heartbeat_response(&mut self, now: Millis, from: ValidatorId, ctx: u64, out: &mut Vec<Action>) {
        self.ack_reads(from, ctx, out);
        let last = self.log.last_index();
        let stall = 2 * self.cfg.heartbeat_ms;
        let Some(p) = self.progress.get_mut(&from) else { return };
        p.last_heard = now;
        if p.match_index < last && p.catching_up.is_none() && now >= p.last_progress + stall {
            // Appends in flight were lost or refused silently: resend from
            // what is known to match.
            p.next_index = p.match_index + 1;
            p.inflight.clear();
            p.probing = true;
            p.last_progress = now;
        }
        self.send_appends(now, from, out);
    }

    // ----- follower -----

    /// A message of a term at least ours from a leader: follow it.
    fn heard_leader(&mut self, now: Millis, from: ValidatorId, term: Term, out: &mut Vec<Action>) {
        if term > self.hs.term || self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(now, term, Some(from), out);
        } else {
            self.reset_election_timer(now, out);
        }
        self.leader_contact = Some(now);
    }

    // The fields of one message, taken apart by `on_message`.
    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        now: Millis,
        from: ValidatorId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Block>,
        leader_commit: Index,
        out: &mut Vec<Action>,
    ) {
        let reject = |s: &Raft, hint: Index, out: &mut Vec<Action>| {
            let msg =
                RaftMsg::AppendResponse { term: s.hs.term, success: false, match_index: 0, rejected: prev_index, hint };
            s.send(from, msg, out);
        };
        if term < self.hs.term {
            return reject(self, 0, out);
        }
        if let Err(e) = self.check_entries(term, prev_index, &entries) {
            return self.invalid(from, e, out);
        }
        self.heard_leader(now, from, term, out);
        // Entries at or below our commit index are committed, hence equal to
        // the leader's (Leader Completeness, §5.4): skip them.
        let mut prev_index = prev_index;
        let mut prev_term = prev_term;
        let mut entries = entries;
        if prev_index < self.commit {
            let skip = ((self.commit - prev_index) as usize).min(entries.len());
            if skip > 0 {
                prev_term = entries[skip - 1].round();
            }
            entries.drain(..skip);
            prev_index += skip as Index;
            if prev_index < self.commit {
                // Everything sent is already committed here.
                let msg = RaftMsg::AppendResponse {
                    term: self.hs.term,
                    success: true,
                    match_index: prev_index,
                    rejected: 0,
                    hint: 0,
                };
                return self.send(from, msg, out);
            }
        }
        // §5.3 consistency check, with the hint for fast back-off.
        if prev_index > self.log.last_index() {
            return reject(self, self.log.last_index() + 1, out);
        }
        match self.log.term_at(prev_index) {
            Some(t) if t == prev_term => {}
            Some(t) => {
                let hint = self.log.first_index_of_term(t, prev_index).max(self.commit + 1);
                return reject(self, hint, out);
            }
            None => return reject(self, self.commit + 1, out),
        }
        if let Some(first) = entries.first()
            && Some(first.parent()) != self.log.id_at(prev_index)
        {
            return self.invalid(from, format!("entry {} does not extend entry {prev_index}", first.height()), out);
        }
        let mut changed = false;
        let mut config_changed = false;
        for b in entries.iter() {
            let i = b.height();
            if self.log.id_at(i) == Some(b.id()) {
                continue;
            }
            if i <= self.log.last_index() {
                // A conflicting suffix: drop it (never a committed entry).
                debug_assert!(i > self.commit, "conflict at committed index {i}");
                config_changed |= self.log_truncate_after(i - 1);
            }
            out.push(Action::PersistBlock(b.clone()));
            config_changed |= self.log_append(b.clone());
            changed = true;
        }
        let last_new = prev_index + entries.len() as Index;
        if changed {
            self.hs.last_index = self.log.last_index();
            self.hs.last_id = self.log.last().id;
            self.persist(out);
        }
        if config_changed {
            self.config_changed(now, out);
        }
        if leader_commit > self.commit {
            self.commit_to(leader_commit.min(last_new), out);
        }
        // Caught up by appends: a snapshot still being fetched is not needed.
        self.catch_up = None;
        let msg =
            RaftMsg::AppendResponse { term: self.hs.term, success: true, match_index: last_new, rejected: 0, hint: 0 };
        self.send(from, msg, out);
    }

    /// Entries must be a chain of this chain's blocks following `prev_index`,
    /// of terms no later than the leader's.
    fn check_entries(&self, term: Term, prev_index: Index, entries: &[Block]) -> Result<(), String> {
        let mut parent: Option<BlockId> = None;
        let mut parent_term = 0;
        for (expect, b) in (prev_index + 1..).zip(entries) {
            if b.height() != expect {
                return Err(format!("append entries are not consecutive: {} where {expect} was expected", b.height()));
            }
            if b.header.chain_id != self.cfg.chain_id {
                return Err(format!("entry {} is for chain {:?}", b.height(), b.header.chain_id));
            }
            if b.round() > term || b.round() < parent_term {
                return Err(format!("entry {} has term {} (leader term {term})", b.height(), b.round()));
            }
            if parent.is_some_and(|p| p != b.parent()) {
                return Err(format!("entry {} does not extend entry {}", b.height(), b.height() - 1));
            }
            if b.header.payload_root != b.computed_payload_root() {
                return Err(format!("entry {} carries transactions that do not match its payload root", b.height()));
            }
            parent = Some(b.id());
            parent_term = b.round();
        }
        Ok(())
    }

    fn on_heartbeat(
        &mut self,
        now: Millis,
        from: ValidatorId,
        term: Term,
        commit: Index,
        ctx: u64,
        out: &mut Vec<Action>,
    ) {
        if term < self.hs.term {
            return self.send(from, RaftMsg::HeartbeatResponse { term: self.hs.term, ctx }, out);
        }
        self.heard_leader(now, from, term, out);
        // The leader sends at most what it knows we match.
        if commit > self.commit {
            self.commit_to(commit, out);
        }
        self.send(from, RaftMsg::HeartbeatResponse { term: self.hs.term, ctx }, out);
    }

    fn on_catch_up(&mut self, now: Millis, from: ValidatorId, term: Term, commit: Index, out: &mut Vec<Action>) {
        if term < self.hs.term {
            return;
        }
        self.heard_leader(now, from, term, out);
        if commit <= self.commit {
            let msg = RaftMsg::AppendResponse {
                term: self.hs.term,
                success: true,
                match_index: self.commit,
                rejected: 0,
                hint: 0,
            };
            return self.send(from, msg, out);
        }
        if self.catch_up.is_none() {
            self.request_snapshot(now, from, out);
        }
    }

    /// How long before an uninstalled snapshot is asked for again (the
    /// request or its answer may be lost; the driver ignores a request
    /// while a fetch runs, so asking again costs nothing then).
    fn snapshot_timeout(&self) -> Millis {
        2 * self.cfg.election_timeout_ms
    }

    /// Asks the driver for `from`'s state snapshot (InstallSnapshot, §7,
    /// pulled by the follower in chunks rather than pushed by the leader).
    fn request_snapshot(&mut self, now: Millis, from: ValidatorId, out: &mut Vec<Action>) {
        info!(term = self.hs.term, commit = self.commit, from = %from.short(), "raft: behind the leader's log; fetching a snapshot");
        self.catch_up = Some(CatchUp { from, asked_at: now });
        out.push(Action::RequestSnapshot { from });
        out.push(Action::SetTimer { id: TimerId::Sync, at: now + self.snapshot_timeout() });
    }

    /// The driver installed a state snapshot whose last entry is `block`:
    /// the log restarts from it (§7: everything up to it is committed, so
    /// any entries held here are discarded), and the leader is told where
    /// this follower's log now ends.
    fn on_snapshot_installed(
        &mut self,
        now: Millis,
        block: Block,
        app_hash: Hash,
        config: Option<Membership>,
        out: &mut Vec<Action>,
    ) {
        let index = block.height();
        self.catch_up = None;
        if index <= self.commit || self.role != Role::Follower {
            return; // stale (already past it), or no longer following
        }
        info!(index, term = block.round(), "raft: state snapshot installed");
        self.commit = index;
        self.executed = BTreeMap::from([(index, app_hash)]);
        let committed = config.map(|c| (index, c));
        if self.log.id_at(index) == Some(block.id()) {
            // §7: the log holds the snapshot's last entry: keep what follows
            // it (possibly acknowledged already); drop only what it covers.
            self.log.compact(index);
            self.hs.configs.retain(|(at, _)| *at > index);
        } else {
            self.log = RaftLog::new(&block);
            self.hs.last_index = index;
            self.hs.last_id = block.id();
            self.hs.configs.clear();
        }
        if let Some(c) = committed {
            self.hs.configs.insert(0, c);
        }
        self.persist(out);
        self.config_changed(now, out);
        let index = self.log.last_index();
        let msg =
            RaftMsg::AppendResponse { term: self.hs.term, success: true, match_index: index, rejected: 0, hint: 0 };
        if let Some(l) = self.leader {
            self.send(l, msg, out);
        }
    }

    fn on_message(&mut self, now: Millis, from: ValidatorId, msg: RaftMsg, out: &mut Vec<Action>) {
        // A leader may be a member this node has not heard of yet (added
        // while it was away), or one that has just removed itself: its
        // appends, heartbeats and catch-up notices, and its answers to this
        // node's own requests (matched by their ctx), are taken from any
        // peer the network authenticated; everything else must come from a
        // known member.
        let any_peer = matches!(
            msg,
            RaftMsg::Append { .. }
                | RaftMsg::Heartbeat { .. }
                | RaftMsg::CatchUp { .. }
                | RaftMsg::ChangeResponse { .. }
                | RaftMsg::ReadIndexResponse { .. }
        );
        if from == self.me || (!any_peer && !self.knows(&from)) {
            return self.invalid(from, "raft message from a non-member".into(), out);
        }
        // Any message of a later term moves us to it (§5.1), except
        // pre-votes (which change nothing) and vote requests, which decide
        // for themselves under the leader lease.
        let term = msg.term();
        match msg {
            RaftMsg::VoteRequest { pre, term, last_index, last_term } => {
                self.on_vote_request(now, from, pre, term, last_index, last_term, out)
            }
            RaftMsg::VoteResponse { pre, term, granted } => self.on_vote_response(now, from, pre, term, granted, out),
            RaftMsg::Append { term, prev_index, prev_term, entries, commit } => {
                self.on_append(now, from, term, prev_index, prev_term, entries, commit, out)
            }
            RaftMsg::Heartbeat { term, commit, ctx } => self.on_heartbeat(now, from, term, commit, ctx, out),
            RaftMsg::CatchUp { term, commit, .. } => self.on_catch_up(now, from, term, commit, out),
            RaftMsg::ReadIndex { term, ctx } => {
                if term == self.hs.term && self.role == Role::Leader {
                    self.read(Origin::Remote(from, ctx), out);
                } else {
                    let msg = RaftMsg::ReadIndexResponse { term: self.hs.term, ctx, index: None };
                    self.send(from, msg, out);
                }
            }
            RaftMsg::ReadIndexResponse { ctx, index, .. } => {
                if self.leader == Some(from) && self.forwarded_reads.remove(&ctx) {
                    out.push(match index {
                        Some(index) => Action::ReadReady { id: ctx, index },
                        None => {
                            Action::ReadFailed { id: ctx, reason: "the leader could not serve the read; retry".into() }
                        }
                    });
                }
            }
            RaftMsg::ChangeRequest { term, ctx, change } => {
                if term == self.hs.term && self.role == Role::Leader {
                    self.propose_change(now, Origin::Remote(from, ctx), change, out);
                } else {
                    let result = Err("the node asked is not the leader any more; retry".into());
                    self.send(from, RaftMsg::ChangeResponse { term: self.hs.term, ctx, result }, out);
                }
            }
            RaftMsg::ChangeResponse { ctx, result, .. } => {
                if self.forwarded_changes.remove(&ctx) {
                    out.push(Action::ChangeDone { id: ctx, result });
                }
            }
            RaftMsg::AppendResponse { success, match_index, rejected, hint, .. } => {
                if term > self.hs.term {
                    return self.become_follower(now, term, None, out);
                }
                if term == self.hs.term && self.role == Role::Leader {
                    self.on_append_response(now, from, success, match_index, rejected, hint, out);
                }
            }
            RaftMsg::HeartbeatResponse { ctx, .. } => {
                if term > self.hs.term {
                    return self.become_follower(now, term, None, out);
                }
                if term == self.hs.term && self.role == Role::Leader {
                    self.on_heartbeat_response(now, from, ctx, out);
                }
            }
        }
    }

    // ----- linearizable reads (dissertation §6.4, ReadIndex) -----

    /// A client read at this node: the leader serves it; a follower asks the
    /// leader for the read index.
    fn on_read(&mut self, id: u64, out: &mut Vec<Action>) {
        match (self.role, self.leader) {
            (Role::Leader, _) => self.read(Origin::Local(id), out),
            (Role::Follower, Some(leader)) => {
                self.forwarded_reads.insert(id);
                self.send(leader, RaftMsg::ReadIndex { term: self.hs.term, ctx: id }, out);
            }
            _ => out.push(Action::ReadFailed { id, reason: "no leader is known; retry".into() }),
        }
    }

    /// Leader: a read index is the commit index, usable only once an entry
    /// of this term has committed (before that the commit index may be
    /// behind entries earlier leaders committed).
    fn read(&mut self, origin: Origin, out: &mut Vec<Action>) {
        if self.log.term_at(self.commit) != Some(self.hs.term) {
            self.reads_before_commit.push(origin);
        } else {
            self.start_read(origin, out);
        }
    }

    /// Records the commit index and confirms leadership with a heartbeat
    /// round: once a majority answers it, no other leader can have
    /// committed anything newer.
    fn start_read(&mut self, origin: Origin, out: &mut Vec<Action>) {
        self.read_seq += 1;
        let read = PendingRead { seq: self.read_seq, index: self.commit, acks: BTreeSet::new(), origin };
        self.reads.push_back(read);
        if !self.has_quorum(&BTreeSet::from([self.me])) {
            let peers: Vec<(ValidatorId, Index)> = self.progress.iter().map(|(p, pr)| (*p, pr.match_index)).collect();
            for (peer, matched) in peers {
                let msg =
                    RaftMsg::Heartbeat { term: self.hs.term, commit: self.commit.min(matched), ctx: self.read_seq };
                self.send(peer, msg, out);
            }
        }
        self.complete_reads(out);
    }

    fn ack_reads(&mut self, from: ValidatorId, ctx: u64, out: &mut Vec<Action>) {
        if ctx == 0 {
            return;
        }
        for r in self.reads.iter_mut().filter(|r| r.seq <= ctx) {
            r.acks.insert(from);
        }
        self.complete_reads(out);
    }

    /// Answers, in order, every read a majority has confirmed.
    fn complete_reads(&mut self, out: &mut Vec<Action>) {
        while self.reads.front().is_some_and(|r| {
            let mut acks = r.acks.clone();
            acks.insert(self.me);
            self.config().has_quorum(&acks)
        }) {
            let r = self.reads.pop_front().expect("checked");
            match r.origin {
                Origin::Local(id) => out.push(Action::ReadReady { id, index: r.index }),
                Origin::Remote(peer, ctx) => {
                    let msg = RaftMsg::ReadIndexResponse { term: self.hs.term, ctx, index: Some(r.index) };
                    self.send(peer, msg, out);
                }
            }
        }
    }

    fn fail_leader_reads(&mut self, reason: &str, out: &mut Vec<Action>) {
        let origins: Vec<Origin> = std::mem::take(&mut self.reads)
            .into_iter()
            .map(|r| r.origin)
            .chain(std::mem::take(&mut self.reads_before_commit))
            .collect();
        for origin in origins {
            match origin {
                Origin::Local(id) => out.push(Action::ReadFailed { id, reason: reason.into() }),
                Origin::Remote(peer, ctx) => {
                    let msg = RaftMsg::ReadIndexResponse { term: self.hs.term, ctx, index: None };
                    self.send(peer, msg, out);
                }
            }
        }
    }

    // ----- membership changes (§6, dissertation §4.3) -----

    /// An operator's change at this node: the leader makes it; a follower
    /// forwards it to the leader.
    fn on_change(&mut self, now: Millis, id: u64, change: MembershipChange, out: &mut Vec<Action>) {
        match (self.role, self.leader) {
            (Role::Leader, _) => self.propose_change(now, Origin::Local(id), change, out),
            (Role::Follower, Some(leader)) => {
                self.forwarded_changes.insert(id);
                self.send(leader, RaftMsg::ChangeRequest { term: self.hs.term, ctx: id, change }, out);
            }
            _ => out.push(Action::ChangeDone { id, result: Err("no leader is known; retry".into()) }),
        }
    }

    /// Leader: appends the configuration entry a change leads to, one
    /// change at a time; the answer waits until the change is complete.
    fn propose_change(&mut self, now: Millis, origin: Origin, change: MembershipChange, out: &mut Vec<Action>) {
        match self.check_change(&change) {
            Err(reason) => self.finish_change(origin, Err(reason), out),
            Ok(next) => {
                info!(term = self.hs.term, ?change, "raft: membership change");
                self.pending_changes.push((self.log.last_index() + 1, origin));
                self.append_entry(now, vec![next.to_entry_tx()], out);
            }
        }
    }

    fn check_change(&self, change: &MembershipChange) -> Result<Membership, String> {
        if self.config_index() > self.commit || self.config().is_joint() {
            return Err(format!(
                "a membership change is in progress (configuration entry {} is not complete); retry when it completes",
                self.config_index()
            ));
        }
        if self.log.term_at(self.commit) != Some(self.hs.term) {
            return Err("the leader has not committed an entry of its term yet; retry".into());
        }
        if let MembershipChange::Promote { id } = change
            && let Some(p) = self.progress.get(id)
        {
            let behind = self.log.last_index().saturating_sub(p.match_index);
            if behind > self.cfg.max_append_entries as Index {
                return Err(format!(
                    "learner {} is {behind} entries behind the leader; promote it once it has caught up",
                    id.short()
                ));
            }
        }
        self.config().apply(change)
    }

    fn finish_change(&mut self, origin: Origin, result: Result<Index, String>, out: &mut Vec<Action>) {
        match origin {
            Origin::Local(id) => out.push(Action::ChangeDone { id, result }),
            Origin::Remote(peer, ctx) => {
                self.send(peer, RaftMsg::ChangeResponse { term: self.hs.term, ctx, result }, out)
            }
        }
    }

    fn on_executed(&mut self, height: Height, app_hash: Hash) {
        self.executed.insert(height, app_hash);
        while self.executed.len() > 64 {
            self.executed.pop_first();
        }
        let applied = height.min(self.commit);
        if self.progress.values().any(|p| p.catching_up.is_some()) {
            return; // keep the log while a follower installs a snapshot of it
        }
        let keep = self.cfg.log_keep as Index;
        if applied > self.log.base().index + 2 * keep {
            self.log.compact(applied - keep);
        }
    }
}

impl Engine for Raft {
    fn step(&mut self, now: Millis, input: Input, out: &mut Vec<Action>) {
        if !self.restored {
            if let Input::Restored(r) = input {
                self.on_restored(now, *r, out);
            }
            return;
        }
        match input {
            Input::Restored(_) => {}
            Input::Message { from, msg: ConsensusMsg::Raft(m) } => self.on_message(now, from, m, out),
            Input::Message { from, msg } => {
                self.invalid(from, format!("not a raft message: {}", msg.kind()), out);
            }
            Input::Timer(id) => self.on_timer(now, id, out),
            Input::Payload { ticket, txs } => self.on_payload(now, ticket, txs, out),
            // Raft catches up by snapshot, not by block sync.
            Input::Synced { .. } => {}
            Input::SnapshotInstalled { block, app_hash, config } => {
                self.on_snapshot_installed(now, *block, app_hash, config, out)
            }
            Input::Executed { height, app_hash } => self.on_executed(height, app_hash),
            Input::Read { id } => self.on_read(id, out),
            Input::ChangeMembership { id, change } => self.on_change(now, id, change, out),
            Input::PeerDisconnected(peer) => self.on_peer_disconnected(now, peer, out),
        }
        debug_assert!(self.commit <= self.log.last_index());
        debug_assert!(self.log.base().index <= self.commit);
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            protocol: "raft".into(),
            round: self.hs.term,
            committed_height: self.commit,
            executed_height: self.executed.last_key_value().map_or(0, |(h, _)| *h),
            high_qc_round: 0,
            leader: self.leader,
            role: self.role.name().into(),
            membership: Some(self.config().clone()),
            excluded_leaders: Vec::new(),
        }
    }
}
