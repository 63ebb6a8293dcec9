//! The HotStuff engine: 2-chain HotStuff (Jolteon / DiemBFT v4) with a
//! pacemaker, as specified in PROTOCOLS.md and docs/hotstuff.md.
//!
//! Owns the block tree, pacemaker, vote collection, block sync and the
//! proposer's state; delegates every signature to [`SafetyRules`]. Handlers
//! take only verified messages (see `verify.rs`).
//!
//! Flow of one round r (happy path): the leader of r extends its highest QC
//! with a block and broadcasts it; each validator checks the block, votes
//! (persisting its safety state first) and sends the vote to the leader of
//! r + 1; that leader forms QC(r), enters r + 1 and proposes. A QC for a
//! block whose parent is from the previous round commits the parent and its
//! ancestors. If the timer of round r expires, validators broadcast signed
//! timeouts; a quorum of them forms TC(r) and everyone enters r + 1.
//!
//! Invariants checked after every step in debug builds: the block tree's
//! own (see `block_tree.rs`), and `round > high_qc.round`.
//!
//! This module never does I/O, reads a clock or draws randomness.

use super::block_tree::BlockTree;
use super::leader::LeaderSchedule;
use super::pacemaker::Pacemaker;
use super::reputation::{self, Choice};
use super::safety::{SafetyData, SafetyRules};
use super::sync::SyncState;
use super::votes::{VoteCollector, VoteOutcome};
use crate::engine::{
    Action, ConsensusMsg, Engine, EngineStatus, HotStuffMsg, Input, Recovery, SafetyState, SyncRequest, SyncResponse,
    TimerId,
};
use crate::smr::PayloadVerifier;
use crate::types::{
    Block, BlockHeader, BlockId, Certificate, CertifiedBlock, Height, Millis, Proposal, QuorumCert, Round,
    SignerBitmap, SyncInfo, Timeout, TimeoutCert, Tx, TxHashes, ValidatorId, ValidatorSet, Vote,
};
use crate::verify::{Verified, Verifier, genesis_qc, justify_qc};
use phalanx_crypto::{Hash, Keypair, Signature};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{debug, info, warn};

/// How often a leader with nothing to propose asks the mempool again.
pub const PROPOSE_POLL_MS: Millis = 5;
/// How far ahead of a validator's clock a block's time may be.
pub const MAX_FUTURE_MS: Millis = 30_000;
/// Executed heights whose app hash is remembered.
pub const EXECUTED_KEEP: usize = 1024;
/// Rounds of proposals remembered for equivocation evidence.
pub const PROPOSALS_KEEP: Round = 16;

/// Parameters of a HotStuff engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub chain_id: String,
    pub validators: ValidatorSet,
    /// The chain's genesis block (height 0).
    pub genesis: Block,
    /// First round timeout; doubles per consecutive round without a QC.
    pub timeout_ms_base: Millis,
    /// Cap on the round timeout.
    pub timeout_ms_max: Millis,
    pub block_max_bytes: usize,
    pub block_max_txs: usize,
    /// How long a leader with an empty mempool waits before proposing an
    /// empty block (must be well below `timeout_ms_base`).
    pub empty_block_interval_ms: Millis,
    /// How long to wait for a sync answer before asking another peer.
    pub sync_timeout_ms: Millis,
    /// Most blocks asked for in one sync request.
    pub sync_max_blocks: u32,
    /// Leader reputation: how many rounds back a failure to lead keeps a
    /// validator out of the schedule (see `reputation.rs`); 0 turns it off.
    pub reputation_window: Round,
}

struct Proposing {
    round: Round,
    ticket: u64,
    started_at: Millis,
    /// The block the outstanding payload request was made for: the payload
    /// skips that block's uncommitted ancestors' transactions, so it only
    /// fits a proposal on that same parent.
    parent: BlockId,
}

/// A HotStuff validator's consensus state.
pub struct HotStuff {
    cfg: EngineConfig,
    me: ValidatorId,
    safety: SafetyRules,
    verifier: Verifier,
    payload_check: Arc<dyn PayloadVerifier>,
    leaders: LeaderSchedule,
    tree: BlockTree,
    pacemaker: Pacemaker,
    votes: VoteCollector,
    sync: SyncState,
    executed: BTreeMap<Height, Hash>,
    proposing: Option<Proposing>,
    next_ticket: u64,
    pending_vote: Option<Verified<Proposal>>,
    /// The first proposal seen from each proposer, per round.
    seen_proposals: BTreeMap<Round, Vec<(BlockHeader, Signature)>>,
    /// (round, proposer) pairs caught equivocating: that proposer's further
    /// proposals in that round are ignored.
    equivocated: BTreeSet<(Round, ValidatorId)>,
    /// The round up to which each peer was last sent our certificates.
    helped: BTreeMap<ValidatorId, Round>,
    /// Leader reputation's sizes.
    reputation: reputation::Params,
    /// Committed blocks below the root: round -> signers of its justify;
    /// those of the reputation window and the last `absent_blocks`.
    history: BTreeMap<Round, SignerBitmap>,
    /// The lowest round `history` is complete from (0 unless the store's
    /// history starts at a snapshot).
    known_from: Round,
    /// The validators the schedule skipped when last logged.
    excluded_logged: Vec<ValidatorId>,
    /// Validators whose connection closed (`Input::PeerDisconnected`) and
    /// that have sent nothing since: a round that needs one of them is
    /// given up at once (see `timeout_if_unreachable`).
    unreachable: BTreeSet<ValidatorId>,
    /// The round of our last vote and the leader it went to.
    vote_sent_to: Option<(Round, ValidatorId)>,
    /// Always true in a validator; false only in the simulator's
    /// deliberately broken engines (feature `unsafe-test-hooks`).
    consecutive_rounds_to_commit: bool,
    restored: bool,
}

impl HotStuff {
    /// An engine for the validator holding `key`. It does nothing until it
    /// receives `Input::Restored`.
    pub fn new(cfg: EngineConfig, key: Keypair, payload_check: Arc<dyn PayloadVerifier>) -> HotStuff {
        let gqc = genesis_qc(&cfg.genesis);
        let me = key.public();
        HotStuff {
            me,
            safety: SafetyRules::new(key, cfg.chain_id.clone(), SafetyData::default()),
            verifier: Verifier::new(cfg.chain_id.clone(), cfg.validators.clone(), gqc.clone()),
            payload_check,
            leaders: LeaderSchedule::new(&cfg.validators),
            tree: BlockTree::new(cfg.genesis.clone(), gqc),
            pacemaker: Pacemaker::new(cfg.timeout_ms_base, cfg.timeout_ms_max),
            votes: VoteCollector::default(),
            sync: SyncState::default(),
            executed: BTreeMap::new(),
            proposing: None,
            next_ticket: 0,
            pending_vote: None,
            seen_proposals: BTreeMap::new(),
            equivocated: BTreeSet::new(),
            helped: BTreeMap::new(),
            unreachable: BTreeSet::new(),
            vote_sent_to: None,
            reputation: reputation::Params::new(cfg.reputation_window, cfg.validators.len()),
            history: BTreeMap::new(),
            known_from: 0,
            excluded_logged: Vec::new(),
            consecutive_rounds_to_commit: true,
            restored: false,
            cfg,
        }
    }

    /// Builds this engine with its lock checks switched off: for the
    /// simulator's test that its checkers catch an unsafe engine.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn disable_lock_check_for_tests(&mut self) {
        self.safety.disable_lock_check_for_tests();
    }

    /// Builds this engine with a 1-chain commit rule (commit a block when its
    /// child is certified, whatever their rounds): for the simulator's test
    /// that its checkers catch it.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn commit_without_consecutive_rounds_for_tests(&mut self) {
        self.consecutive_rounds_to_commit = false;
    }

    /// Builds this engine so that it votes in rounds it timed out in: for the
    /// simulator's test that its checkers catch it.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn allow_vote_after_timeout_for_tests(&mut self) {
        self.safety.allow_vote_after_timeout_for_tests();
    }

    /// Builds this engine with voting rule 1 (one vote per round) switched
    /// off: for the simulator's test that its checkers catch it.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn disable_one_vote_per_round_for_tests(&mut self) {
        self.safety.disable_one_vote_per_round_for_tests();
    }

    /// The validator this engine signs for.
    pub fn id(&self) -> ValidatorId {
        self.me
    }

    /// The persisted safety state (tests and the simulator's checkers).
    pub fn safety_data(&self) -> &SafetyData {
        self.safety.data()
    }

    /// The leader of `round` on the chain of the highest QC.
    pub fn leader(&self, round: Round) -> ValidatorId {
        self.choose_leader(&self.tree.high_qc().block_id(), round).leader
    }

    /// Who leads `round` on the chain ending at `parent`, after leader
    /// reputation (see `reputation.rs`). An unknown `parent` gives the base
    /// schedule's leader, marked uncertain.
    fn choose_leader(&self, parent: &BlockId, round: Round) -> Choice {
        let params = self.reputation;
        let Some(mut block) = self.tree.get(parent) else {
            let leader = self.leaders.leader(round);
            return Choice { leader, excluded: Vec::new(), certain: params.window == 0 };
        };
        if params.window == 0 {
            return reputation::choose(&self.leaders, &self.cfg.validators, params, round, &[], 0);
        }
        let lo = round.saturating_sub(params.window);
        let enough =
            |entries: &Vec<reputation::ChainEntry<'_>>, r: Round| r < lo && entries.len() >= params.absent_blocks;
        let none = SignerBitmap::default();
        let mut entries: Vec<reputation::ChainEntry<'_>> = Vec::new();
        // Up the tree to the root, then on through the committed history.
        loop {
            if enough(&entries, block.round()) {
                break;
            }
            entries.push((block.round(), block.justify.as_quorum().map_or(&none, |qc| &qc.signers)));
            match self.tree.get(&block.parent()) {
                Some(p) if block.height() > self.tree.root_height() => block = p,
                _ => {
                    for (r, voters) in self.history.range(..block.round()).rev() {
                        if enough(&entries, *r) {
                            break;
                        }
                        entries.push((*r, voters));
                    }
                    break;
                }
            }
        }
        entries.reverse();
        reputation::choose(&self.leaders, &self.cfg.validators, params, round, &entries, self.known_from)
    }

    /// Logs when the set of validators the schedule skips changes.
    fn log_reputation(&mut self, choice: &Choice) {
        let now: Vec<ValidatorId> = choice.excluded.iter().map(|e| e.id).collect();
        if now == self.excluded_logged {
            return;
        }
        for e in &choice.excluded {
            if !self.excluded_logged.contains(&e.id) {
                warn!(
                    validator = %e.id.short(),
                    absent_from_recent_qcs = e.absent,
                    failed_rounds = e.failed,
                    last_failed_round = e.last_failed,
                    window = self.cfg.reputation_window,
                    "leader reputation: this validator failed to lead or stopped voting; its turns go to others"
                );
            }
        }
        for id in &self.excluded_logged {
            if !now.contains(id) {
                info!(validator = %id.short(), "leader reputation: this validator leads again");
            }
        }
        self.excluded_logged = now;
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.pacemaker.round()
    }

    /// The highest QC known.
    pub fn high_qc(&self) -> &QuorumCert {
        self.tree.high_qc()
    }

    /// The last committed block.
    pub fn committed(&self) -> &Block {
        self.tree.root()
    }

    fn validators(&self) -> &ValidatorSet {
        &self.cfg.validators
    }

    fn last_executed(&self) -> Height {
        self.executed.last_key_value().map_or(0, |(h, _)| *h)
    }

    // ---- start -------------------------------------------------------

    fn restore(&mut self, now: Millis, r: Recovery, out: &mut Vec<Action>) {
        let mut certs = (None, None);
        if let Some(SafetyState::HotStuff(d)) = r.safety {
            certs = (d.high_qc.clone(), d.highest_tc.clone());
            self.safety.restore(d);
        }
        let root_qc = match &r.committed.cert {
            Certificate::Quorum(qc) => qc.clone(),
            _ => genesis_qc(&r.committed.block),
        };
        // Complete from genesis if the history reaches height 1 (or the root
        // is genesis); otherwise from its oldest known round.
        self.known_from = match r.history.first() {
            _ if r.committed.block.height() == 0 => 0,
            Some(e) if e.height == 1 => 0,
            Some(e) => e.round,
            None => r.committed.block.round(),
        };
        self.history = r.history.into_iter().map(|e| (e.round, e.voters)).collect();
        self.tree = BlockTree::new(r.committed.block, root_qc);
        self.executed.extend(r.executed);
        let mut blocks = r.blocks;
        blocks.sort_by_key(|b| b.height());
        for b in blocks {
            let Ok(qc) = justify_qc(&b).cloned() else { continue };
            if self.tree.insert(b).unwrap_or(false) {
                self.try_commit(&qc, out);
            }
        }
        self.restored = true;
        let (qc, tc) = certs;
        let tc_round = tc.as_ref().map(|t| t.round);
        if let Some(tc) = tc {
            self.pacemaker.record_tc(tc);
        }
        if let Some(qc) = qc.filter(|q| q.round() > self.tree.high_qc().round()) {
            self.tree.insert_qc(qc);
        }
        let hqc = self.tree.high_qc().clone();
        info!(
            committed = self.tree.root_height(),
            high_qc_round = hqc.round(),
            tc_round,
            last_voted_round = self.safety.data().last_voted_round,
            "hotstuff engine restored"
        );
        if hqc.height() > self.tree.root_height() && !self.tree.contains(&hqc.block_id()) {
            self.start_sync(now, hqc.clone(), None, out);
        }
        match tc_round {
            Some(t) if t > hqc.round() => self.enter_round(now, t + 1, false, out),
            _ => self.enter_round(now, hqc.round() + 1, true, out),
        }
    }

    // ---- certificates and rounds ---------------------------------------

    /// Takes in a verified QC from any source: records it, commits what
    /// the 2-chain rule allows, fetches its block if unknown, and advances
    /// the round.
    fn process_qc(&mut self, now: Millis, qc: QuorumCert, source: Option<ValidatorId>, out: &mut Vec<Action>) {
        let round = qc.round();
        self.tree.insert_qc(qc.clone());
        if qc.height() > self.tree.root_height() {
            if self.tree.contains(&qc.block_id()) {
                self.try_commit(&qc, out);
            } else {
                self.start_sync(now, qc, source, out);
            }
        }
        self.enter_round(now, round + 1, true, out);
    }

    fn process_tc(&mut self, now: Millis, tc: TimeoutCert, source: Option<ValidatorId>, out: &mut Vec<Action>) {
        self.process_qc(now, tc.high_qc.clone(), source, out);
        let round = tc.round;
        self.pacemaker.record_tc(tc);
        self.enter_round(now, round + 1, false, out);
    }

    /// The 2-chain commit rule: a QC for B1 whose parent B0 is from the
    /// round just before commits B0 and its uncommitted ancestors.
    fn try_commit(&mut self, qc: &QuorumCert, out: &mut Vec<Action>) {
        let Some(b1) = self.tree.get(&qc.block_id()) else { return };
        if b1.header.parent_round + 1 != b1.round() && self.consecutive_rounds_to_commit {
            return;
        }
        let b0 = b1.parent();
        if self.tree.get(&b0).is_none_or(|b| b.height() <= self.tree.root_height()) {
            return;
        }
        let committed = self.tree.commit(&b0);
        self.remember_committed(&committed);
        if let Some(last) = committed.last() {
            debug!(height = last.block.height(), round = last.block.round(), "committed");
            out.push(Action::Commit(committed));
        }
    }

    /// Keeps what leader reputation reads of newly committed blocks.
    fn remember_committed(&mut self, committed: &[CertifiedBlock]) {
        if self.reputation.window == 0 {
            return;
        }
        for c in committed {
            let voters = c.block.justify.as_quorum().map(|qc| qc.signers.clone()).unwrap_or_default();
            self.history.insert(c.block.round(), voters);
        }
        let floor = self.tree.root().round().saturating_sub(self.reputation.window);
        while self.history.len() > self.reputation.absent_blocks
            && self.history.first_key_value().is_some_and(|(r, _)| *r < floor)
        {
            self.history.pop_first();
        }
    }

    fn enter_round(&mut self, now: Millis, round: Round, via_qc: bool, out: &mut Vec<Action>) {
        let Some(deadline) = self.pacemaker.enter(round, via_qc, now) else { return };
        debug!(round, via_qc, "entered round");
        out.push(Action::SetTimer { id: TimerId::Round, at: deadline });
        self.votes.prune_below(round.saturating_sub(1));
        self.pending_vote = None;
        self.proposing = None;
        self.seen_proposals = self.seen_proposals.split_off(&round.saturating_sub(PROPOSALS_KEEP));
        self.equivocated.retain(|(r, _)| *r >= round.saturating_sub(PROPOSALS_KEEP));
        self.maybe_propose(now, out);
        self.timeout_if_unreachable(now, out);
    }

    /// Starts proposing if this validator leads the current round on the
    /// chain of its highest QC. Waits for that QC's block if it is still
    /// being fetched (`after_insert` calls again).
    fn maybe_propose(&mut self, now: Millis, out: &mut Vec<Action>) {
        let round = self.pacemaker.round();
        let parent = self.tree.high_qc().block_id();
        if self.proposing.is_some() || self.safety.data().last_proposed_round >= round || !self.tree.contains(&parent) {
            return;
        }
        let choice = self.choose_leader(&parent, round);
        self.log_reputation(&choice);
        if choice.leader == self.me {
            self.proposing = Some(Proposing { round, ticket: 0, started_at: now, parent: BlockId::ZERO });
            self.request_payload(out);
        }
    }

    // ---- proposing ---------------------------------------------------

    fn request_payload(&mut self, out: &mut Vec<Action>) {
        let round = self.pacemaker.round();
        let parent = self.tree.high_qc().block_id();
        let Some(path) = self.tree.path_from_root(&parent) else { return };
        let Some(p) = self.proposing.as_mut().filter(|p| p.round == round) else { return };
        self.next_ticket += 1;
        p.ticket = self.next_ticket;
        p.parent = parent;
        out.push(Action::RequestPayload {
            ticket: p.ticket,
            max_bytes: self.cfg.block_max_bytes,
            max_txs: self.cfg.block_max_txs,
            exclude: path,
        });
    }

    fn on_payload(&mut self, now: Millis, ticket: u64, mut txs: Vec<Tx>, out: &mut Vec<Action>) {
        let round = self.pacemaker.round();
        let Some(p) = self.proposing.as_ref().filter(|p| p.ticket == ticket && p.round == round) else { return };
        let started_at = p.started_at;
        let high = self.tree.high_qc().block_id();
        if p.parent != high {
            // A higher QC arrived since the request: this payload may repeat
            // transactions of the new parent's chain. Ask again.
            self.request_payload(out);
            return;
        }
        let Some(path) = self.tree.path_from_root(&high) else { return };
        let pending_payload = path.iter().any(|id| self.tree.get(id).is_some_and(|b| !b.txs.is_empty()));
        if txs.is_empty() && !pending_payload && now < started_at + self.cfg.empty_block_interval_ms {
            out.push(Action::SetTimer { id: TimerId::Propose, at: now + PROPOSE_POLL_MS });
            return;
        }
        self.trim_payload(&mut txs);
        self.propose(now, txs, out);
    }

    fn trim_payload(&self, txs: &mut Vec<Tx>) {
        txs.truncate(self.cfg.block_max_txs);
        let mut bytes = 0;
        let keep = txs
            .iter()
            .take_while(|t| {
                bytes += t.len();
                bytes <= self.cfg.block_max_bytes
            })
            .count();
        txs.truncate(keep);
    }

    /// The application hash a new block on `parent` claims: ours if we
    /// executed further than the parent's claim, else the parent's.
    fn app_claim(&self, parent: &Block) -> (Height, Hash) {
        match self.executed.last_key_value() {
            Some((&h, &hash)) if h > parent.header.app_height => (h, hash),
            _ => (parent.header.app_height, parent.header.app_hash),
        }
    }

    fn propose(&mut self, now: Millis, txs: Vec<Tx>, out: &mut Vec<Action>) {
        let round = self.pacemaker.round();
        let high_qc = self.tree.high_qc().clone();
        let tc = if high_qc.round() + 1 == round {
            None
        } else {
            match self.pacemaker.last_tc() {
                Some(tc) if tc.round + 1 == round => Some(tc.clone()),
                _ => return,
            }
        };
        let Some(parent) = self.tree.get(&high_qc.block_id()) else { return };
        let (app_height, app_hash) = self.app_claim(parent);
        // Each transaction is hashed once: for the root here, and (through
        // the block's cache) for the driver and the committer.
        let (payload_root, hashes) = TxHashes::root_of(&txs);
        let header = BlockHeader {
            chain_id: self.cfg.chain_id.clone(),
            height: parent.height() + 1,
            round,
            parent: parent.id(),
            parent_round: high_qc.round(),
            payload_root,
            app_height,
            app_hash,
            proposer: self.me,
            time_ms: now.max(parent.header.time_ms),
        };
        let mut signed = Vec::new();
        self.safety.remember(&high_qc, self.pacemaker.last_tc());
        let block = match self.safety.propose(header, Certificate::Quorum(high_qc), txs, &mut signed) {
            Ok(b) => Block { hashes, ..b },
            Err(e) => {
                warn!(round, error = %e, "safety rules refused to propose");
                return;
            }
        };
        self.proposing = None;
        debug!(round, height = block.height(), txs = block.txs.len(), "proposing");
        let proposal = Proposal { block, tc };
        // Handle our own proposal (store it, vote for it) before sending it,
        // but put every persist first so one flush covers them all.
        let mut local = Vec::new();
        self.on_verified_proposal(now, self.me, Verified::own(proposal.clone()), &mut local);
        let (persists, rest): (Vec<Action>, Vec<Action>) =
            local.into_iter().partition(|a| matches!(a, Action::PersistSafety(_) | Action::PersistBlock(_)));
        out.extend(signed);
        out.extend(persists);
        out.push(Action::Broadcast(ConsensusMsg::HotStuff(HotStuffMsg::Proposal(Box::new(proposal)))));
        out.extend(rest);
    }

    // ---- receiving proposals -------------------------------------------

    fn on_proposal(&mut self, now: Millis, from: ValidatorId, p: Proposal, out: &mut Vec<Action>) {
        let round = p.block.round();
        if round < self.pacemaker.round() {
            return;
        }
        match self.verifier.verify_proposal(p) {
            Ok(vp) => self.on_verified_proposal(now, from, vp, out),
            Err(e) => out.push(Action::Invalid { from, reason: format!("proposal for round {round}: {e}") }),
        }
    }

    fn on_verified_proposal(&mut self, now: Millis, from: ValidatorId, vp: Verified<Proposal>, out: &mut Vec<Action>) {
        let round = vp.block.round();
        if self.equivocated.contains(&(round, vp.block.header.proposer)) && !self.tree.contains(&vp.block.id()) {
            // Its leader already proposed two blocks this round: keep those,
            // ignore any more (a Byzantine leader could sign any number).
            return;
        }
        self.note_proposal(&vp.block, out);
        if let Some(tc) = &vp.tc {
            self.process_tc(now, tc.clone(), Some(from), out);
        }
        let qc = justify_qc(&vp.block).expect("verified").clone();
        self.process_qc(now, qc, Some(from), out);
        if !self.tree.contains(&vp.block.parent()) {
            self.sync.buffer(from, vp);
            return;
        }
        self.accept_block(now, from, vp, out);
    }

    /// Keeps the first proposal of each proposer in each round; a second,
    /// different one signed by the same proposer is evidence of equivocation.
    fn note_proposal(&mut self, block: &Block, out: &mut Vec<Action>) {
        let round = block.round();
        let proposer = block.header.proposer;
        let seen = self.seen_proposals.entry(round).or_default();
        match seen.iter().find(|(h, _)| h.proposer == proposer) {
            None => seen.push((block.header.clone(), block.signature)),
            Some((first, sig)) if first.id() != block.id() => {
                warn!(round, proposer = %proposer.short(), "equivocating proposals");
                let evidence = crate::types::Evidence::DoubleProposal {
                    a: first.clone(),
                    sig_a: *sig,
                    b: block.header.clone(),
                    sig_b: block.signature,
                };
                self.equivocated.insert((round, proposer));
                out.push(Action::Evidence(evidence));
            }
            Some(_) => {}
        }
    }

    /// The chain's block size limits.
    fn check_limits(&self, block: &Block) -> Result<(), String> {
        if block.txs.len() > self.cfg.block_max_txs {
            return Err(format!("{} transactions exceed the limit of {}", block.txs.len(), self.cfg.block_max_txs));
        }
        if block.payload_bytes() > self.cfg.block_max_bytes {
            return Err(format!(
                "{} payload bytes exceed the limit of {}",
                block.payload_bytes(),
                self.cfg.block_max_bytes
            ));
        }
        Ok(())
    }

    /// Checks a block against its parent and the application's rules.
    fn check_block(&self, now: Millis, block: &Block, parent: &Block) -> Result<(), String> {
        let h = &block.header;
        self.check_limits(block)?;
        // The payload root was checked with the signature when the proposal
        // was verified (`Verifier::verify_block`): hashing every transaction
        // again here cost the consensus thread a second pass per block.
        if h.time_ms < parent.header.time_ms {
            return Err(format!("time {} is before the parent's {}", h.time_ms, parent.header.time_ms));
        }
        if h.time_ms > now + MAX_FUTURE_MS {
            return Err(format!("time {} is more than {MAX_FUTURE_MS} ms ahead of ours ({now})", h.time_ms));
        }
        if h.app_height < parent.header.app_height || h.app_height >= h.height {
            return Err(format!("app_height {} outside [{}, {})", h.app_height, parent.header.app_height, h.height));
        }
        if h.app_height == parent.header.app_height && h.app_hash != parent.header.app_hash {
            return Err("app_hash differs from the parent's for the same app_height".into());
        }
        self.payload_check.verify_payload(&block.txs, &block.tx_hashes())
    }

    fn accept_block(&mut self, now: Millis, from: ValidatorId, vp: Verified<Proposal>, out: &mut Vec<Action>) {
        let round = vp.block.round();
        let proposer = vp.block.header.proposer;
        let choice = self.choose_leader(&vp.block.parent(), round);
        if choice.leader != proposer && choice.certain {
            let e = crate::verify::VerifyError::WrongProposer { round, got: proposer, want: choice.leader };
            out.push(Action::Invalid { from, reason: format!("proposal for round {round}: {e}") });
            return;
        }
        let parent = self.tree.get(&vp.block.parent()).expect("parent known");
        if let Err(reason) = self.check_block(now, &vp.block, parent) {
            out.push(Action::Invalid { from, reason: format!("block of round {round}: {reason}") });
            return;
        }
        match self.tree.insert(vp.block.clone()) {
            Ok(true) => out.push(Action::PersistBlock(vp.block.clone())),
            Ok(false) => {}
            Err(e) => {
                debug!(error = %e, "block not added");
                return;
            }
        }
        self.after_insert(now, vp.block.id(), out);
        if vp.block.round() == self.pacemaker.round() {
            self.try_vote(now, vp, out);
        }
    }

    /// A block just became known: its QC may now commit, a sync may be
    /// done, a leader may now be able to propose.
    fn after_insert(&mut self, now: Millis, id: BlockId, out: &mut Vec<Action>) {
        if let Some(qc) = self.tree.qc_for(&id).cloned() {
            self.try_commit(&qc, out);
        }
        if self.sync.pending().is_some_and(|p| p.target.block_id() == id) {
            self.sync.finish();
            self.replay_buffered(now, out);
        }
        if self.tree.high_qc().block_id() == id {
            match &self.proposing {
                Some(p) if p.ticket == 0 => self.request_payload(out),
                Some(_) => {}
                None => self.maybe_propose(now, out),
            }
        }
    }

    // ---- voting --------------------------------------------------------

    fn try_vote(&mut self, now: Millis, vp: Verified<Proposal>, out: &mut Vec<Action>) {
        let b = &vp.block;
        let parent_app_height = self.tree.get(&b.parent()).map_or(0, |p| p.header.app_height);
        if b.header.app_height > parent_app_height {
            match self.executed.get(&b.header.app_height) {
                Some(ours) if *ours == b.header.app_hash => {}
                Some(ours) => {
                    warn!(height = b.header.app_height, ours = %ours, theirs = %b.header.app_hash, "app hash mismatch");
                    out.push(Action::Invalid {
                        from: b.header.proposer,
                        reason: format!(
                            "app hash at height {} is {}, ours is {}",
                            b.header.app_height, b.header.app_hash, ours
                        ),
                    });
                    return;
                }
                None if b.header.app_height > self.last_executed() => {
                    self.pending_vote = Some(vp);
                    return;
                }
                None => {
                    debug!(height = b.header.app_height, "app hash too old to check; not voting");
                    return;
                }
            }
        }
        self.safety.remember(self.tree.high_qc(), self.pacemaker.last_tc());
        match self.safety.vote(b, vp.tc.as_ref(), out) {
            Ok(vote) => self.send_vote(now, vote, out),
            Err(e) => debug!(round = b.round(), error = %e, "not voting"),
        }
    }

    fn send_vote(&mut self, now: Millis, vote: Vote, out: &mut Vec<Action>) {
        let next = self.choose_leader(&vote.data.block_id, vote.data.round + 1).leader;
        self.vote_sent_to = Some((vote.data.round, next));
        if next == self.me {
            self.on_verified_vote(now, Verified::own(vote), out);
        } else {
            out.push(Action::Send { to: next, msg: ConsensusMsg::HotStuff(HotStuffMsg::Vote(vote)) });
            self.timeout_if_unreachable(now, out);
        }
    }

    fn on_vote(&mut self, now: Millis, from: ValidatorId, vote: Vote, out: &mut Vec<Action>) {
        match self.verifier.verify_vote(vote) {
            Ok(v) => self.on_verified_vote(now, v, out),
            Err(e) => out.push(Action::Invalid { from, reason: format!("vote: {e}") }),
        }
    }

    fn on_verified_vote(&mut self, now: Millis, vote: Verified<Vote>, out: &mut Vec<Action>) {
        match self.votes.add(vote, self.pacemaker.round(), &self.cfg.validators) {
            VoteOutcome::Quorum(qc) => self.process_qc(now, qc, None, out),
            VoteOutcome::Equivocation(ev) => {
                warn!(culprit = %ev.culprit().short(), round = ev.round(), "double vote");
                out.push(Action::Evidence(*ev));
            }
            _ => {}
        }
    }

    fn on_executed(&mut self, now: Millis, height: Height, app_hash: Hash, out: &mut Vec<Action>) {
        self.executed.insert(height, app_hash);
        while self.executed.len() > EXECUTED_KEEP {
            self.executed.pop_first();
        }
        if let Some(vp) = self.pending_vote.take()
            && vp.block.round() == self.pacemaker.round()
        {
            self.try_vote(now, vp, out);
        }
    }

    // ---- timeouts ------------------------------------------------------

    /// A validator's connection closed: until it sends something again, a
    /// round that needs it is given up at once.
    fn on_peer_disconnected(&mut self, now: Millis, peer: ValidatorId, out: &mut Vec<Action>) {
        if peer == self.me || !self.cfg.validators.contains(&peer) {
            return;
        }
        self.unreachable.insert(peer);
        self.timeout_if_unreachable(now, out);
    }

    /// Times the current round out now, without waiting for its timer, if
    /// it cannot succeed because it needs a validator known to be down (its
    /// connection closed and it has sent nothing since): the round's leader,
    /// while its proposal has not arrived, or the next leader, which our
    /// vote went to and which would form the round's QC. A timeout is
    /// always safe to sign; this only saves the wait (the round's timeout,
    /// 1 s and doubling). After a leader's crash the round it leads and the
    /// round whose votes it collects are both given up at once, instead of
    /// one timeout each (about 3 s together at the default base).
    fn timeout_if_unreachable(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.unreachable.is_empty() || self.pacemaker.own_timeout().is_some() {
            return;
        }
        let round = self.pacemaker.round();
        let needed = if self.safety.data().last_voted_round >= round {
            self.vote_sent_to.filter(|(r, _)| *r == round).map(|(_, to)| to)
        } else if self.seen_proposals.get(&round).is_some_and(|seen| !seen.is_empty()) {
            // The proposal is here (waiting for execution, for its parent,
            // or being handled right now, as when its TC moved us into its
            // round): the round may still succeed without its leader.
            None
        } else {
            // Only a leader known for sure: a schedule guessed while our
            // highest QC's block is still being fetched may name a
            // validator leader reputation skips.
            let choice = self.choose_leader(&self.tree.high_qc().block_id(), round);
            choice.certain.then_some(choice.leader)
        };
        let Some(down) = needed.filter(|v| self.unreachable.contains(v)) else { return };
        info!(round, validator = %down.short(), "the round needs a validator whose connection closed; timing out at once");
        self.local_timeout(now, out);
    }

    fn on_round_timer(&mut self, now: Millis, out: &mut Vec<Action>) {
        if now < self.pacemaker.deadline() {
            // Early (a clock read differently than the driver's): re-arm,
            // so the round cannot be left without a timer.
            out.push(Action::SetTimer { id: TimerId::Round, at: self.pacemaker.deadline() });
            return;
        }
        self.local_timeout(now, out);
    }

    /// Gives up on the current round: signs (once) and broadcasts a
    /// timeout, re-arming the timer to rebroadcast it.
    fn local_timeout(&mut self, now: Millis, out: &mut Vec<Action>) {
        let round = self.pacemaker.round();
        let timeout = match self.pacemaker.own_timeout() {
            Some(t) => t.clone(),
            None => {
                let tc = self.pacemaker.last_tc().filter(|tc| tc.round + 1 == round).cloned();
                self.safety.remember(self.tree.high_qc(), self.pacemaker.last_tc());
                match self.safety.timeout(round, self.tree.high_qc(), tc.as_ref(), out) {
                    Ok(t) => {
                        info!(round, high_qc_round = t.high_qc.round(), "round timed out");
                        self.pacemaker.set_own_timeout(t.clone());
                        t
                    }
                    Err(e) => {
                        warn!(round, error = %e, "cannot sign a timeout yet; waiting for a higher certificate");
                        let at = self.pacemaker.backoff(now);
                        out.push(Action::SetTimer { id: TimerId::Round, at });
                        return;
                    }
                }
            }
        };
        let msg = Timeout { last_tc: self.pacemaker.last_tc().cloned(), ..timeout.clone() };
        out.push(Action::Broadcast(ConsensusMsg::HotStuff(HotStuffMsg::Timeout(Box::new(msg)))));
        let at = self.pacemaker.backoff(now);
        out.push(Action::SetTimer { id: TimerId::Round, at });
        if let Some(tc) = self.pacemaker.add_timeout(Verified::own(timeout), &self.cfg.validators) {
            self.process_tc(now, tc, None, out);
        }
    }

    /// A peer sent its certificates because we looked behind: verify and
    /// take them in.
    fn on_sync_info(&mut self, now: Millis, from: ValidatorId, si: SyncInfo, out: &mut Vec<Action>) {
        if let Err(e) = self.verifier.verify_qc(&si.high_qc) {
            out.push(Action::Invalid { from, reason: format!("sync info: {e}") });
            return;
        }
        if let Some(tc) = &si.last_tc
            && let Err(e) = self.verifier.verify_tc(tc)
        {
            out.push(Action::Invalid { from, reason: format!("sync info: {e}") });
            return;
        }
        if let Some(tc) = si.last_tc {
            self.process_tc(now, tc, Some(from), out);
        }
        self.process_qc(now, si.high_qc, Some(from), out);
    }

    /// Answers a peer stuck in an older round with our certificates, at
    /// most once per peer per round (it would otherwise learn them only when
    /// someone rebroadcasts a timeout, up to a full round timeout later).
    fn help_laggard(&mut self, peer: ValidatorId, their_round: Round, out: &mut Vec<Action>) {
        let round = self.pacemaker.round();
        if their_round >= round || peer == self.me || self.helped.get(&peer).is_some_and(|r| *r >= round) {
            return;
        }
        self.helped.insert(peer, round);
        let si = SyncInfo { high_qc: self.tree.high_qc().clone(), last_tc: self.pacemaker.last_tc().cloned() };
        out.push(Action::Send { to: peer, msg: ConsensusMsg::HotStuff(HotStuffMsg::SyncInfo(Box::new(si))) });
    }

    fn on_timeout_msg(&mut self, now: Millis, from: ValidatorId, t: Timeout, out: &mut Vec<Action>) {
        let round = t.round;
        let vt = match self.verifier.verify_timeout(t) {
            Ok(vt) => vt,
            Err(e) => {
                out.push(Action::Invalid { from, reason: format!("timeout for round {round}: {e}") });
                return;
            }
        };
        if let Some(tc) = vt.last_tc.clone() {
            self.process_tc(now, tc, Some(vt.author), out);
        }
        self.process_qc(now, vt.high_qc.clone(), Some(vt.author), out);
        self.help_laggard(vt.author, round, out);
        if let Some(tc) = self.pacemaker.add_timeout(vt, &self.cfg.validators) {
            self.process_tc(now, tc, Some(from), out);
            return;
        }
        // More than 1/3 of power gave up on our round: at least one honest
        // validator did, so join them now rather than wait for our timer.
        let current = self.pacemaker.round();
        if round == current
            && self.pacemaker.own_timeout().is_none()
            && self.pacemaker.timeout_power(current) >= self.validators().validity_power()
        {
            self.local_timeout(now, out);
        }
    }

    // ---- block sync ----------------------------------------------------

    fn start_sync(&mut self, now: Millis, qc: QuorumCert, source: Option<ValidatorId>, out: &mut Vec<Action>) {
        let me = self.me;
        let signer = qc.signers.iter().filter_map(|i| self.validators().get(i)).map(|v| v.id).find(|id| *id != me);
        let any = self.validators().iter().map(|v| v.id).find(|id| *id != me);
        let Some(peer) = source.filter(|p| *p != me).or(signer).or(any) else { return };
        let from_height = self.tree.root_height() + 1;
        debug!(target_round = qc.round(), peer = %peer.short(), from_height, "block sync");
        if self.sync.start(qc, peer, from_height) {
            self.send_sync_request(now, out);
        }
    }

    fn send_sync_request(&mut self, now: Millis, out: &mut Vec<Action>) {
        let Some(p) = self.sync.pending() else { return };
        out.push(Action::RequestSync {
            from: p.peer,
            request: SyncRequest {
                from_height: p.from_height,
                target: p.target.block_id(),
                max_blocks: self.cfg.sync_max_blocks,
            },
        });
        out.push(Action::SetTimer { id: TimerId::Sync, at: now + self.cfg.sync_timeout_ms });
    }

    fn on_sync_timer(&mut self, now: Millis, out: &mut Vec<Action>) {
        let from = self.tree.root_height() + 1;
        if self.sync.rotate(&self.cfg.validators, &self.me, from).is_some() {
            self.send_sync_request(now, out);
        }
    }

    fn on_synced(&mut self, now: Millis, from: ValidatorId, resp: SyncResponse, out: &mut Vec<Action>) {
        let Some(target) = self.sync.pending().map(|p| p.target.clone()) else { return };
        let blocks = self.verified_sync_blocks(from, &target, resp, out);
        let mut last_height = None;
        for b in blocks {
            if b.round() + PROPOSALS_KEEP >= self.pacemaker.round() {
                // A fetched block is a signed proposal too: one that differs
                // from the proposal we received for its round exposes an
                // equivocating leader that showed us only one of its blocks.
                self.note_proposal(&b, out);
            }
            if b.height() <= self.tree.root_height() {
                continue;
            }
            let (id, height) = (b.id(), b.height());
            if !self.tree.contains(&id) {
                let qc = justify_qc(&b).expect("verified").clone();
                if let Err(e) = self.tree.insert(b.clone()) {
                    out.push(Action::Invalid { from, reason: format!("synced block: {e}") });
                    break;
                }
                out.push(Action::PersistBlock(b));
                self.try_commit(&qc, out);
                self.after_insert(now, id, out);
            }
            last_height = Some(height);
        }
        // The synced blocks' QCs may be above our round: enter the round after
        // the highest (the pacemaker's rule for any QC).
        let hqc_round = self.tree.high_qc().round();
        self.enter_round(now, hqc_round + 1, true, out);
        self.continue_sync(now, target, last_height, out);
    }

    /// The blocks of a sync answer that verify and are certified (by the
    /// next block's justify, by the answer's `last_cert`, or, for the target,
    /// by the QC we hold), in order; stops at the first that is not.
    fn verified_sync_blocks(
        &mut self,
        from: ValidatorId,
        target: &QuorumCert,
        resp: SyncResponse,
        out: &mut Vec<Action>,
    ) -> Vec<Block> {
        let last_qc = match resp.last_cert {
            Some(Certificate::Quorum(qc)) => match self.verifier.verify_qc(&qc) {
                Ok(()) => Some(qc),
                Err(e) => {
                    out.push(Action::Invalid { from, reason: format!("synced certificate: {e}") });
                    None
                }
            },
            _ => None,
        };
        let n = resp.blocks.len();
        let mut verified = Vec::with_capacity(n);
        for b in resp.blocks {
            let check = self.verifier.verify_block(&b).map_err(|e| e.to_string()).and_then(|()| self.check_limits(&b));
            if let Err(e) = check {
                out.push(Action::Invalid { from, reason: format!("synced block at height {}: {e}", b.height()) });
                break;
            }
            verified.push(b);
        }
        let complete = verified.len() == n;
        let mut good = Vec::with_capacity(verified.len());
        for i in 0..verified.len() {
            let id = verified[i].id();
            let certified = match verified.get(i + 1) {
                Some(next) => next.parent() == id,
                None => complete && (id == target.block_id() || last_qc.as_ref().is_some_and(|q| q.block_id() == id)),
            };
            if !certified {
                // The last block of an answer cut short by the responder's
                // budget is certified by a block it did not send: drop it
                // quietly (we ask again). Anywhere else, the answer is not a
                // chain.
                if i + 1 < verified.len() {
                    let h = verified[i].height();
                    out.push(Action::Invalid { from, reason: format!("synced blocks are not a chain at height {h}") });
                }
                break;
            }
            good.push(verified[i].clone());
        }
        if let Some(qc) = last_qc.filter(|q| good.last().is_some_and(|b| b.id() == q.block_id())) {
            self.tree.insert_qc(qc);
        }
        good
    }

    fn continue_sync(&mut self, now: Millis, target: QuorumCert, last_height: Option<Height>, out: &mut Vec<Action>) {
        let done = self.tree.contains(&target.block_id()) || target.height() <= self.tree.root_height();
        if done {
            self.sync.finish();
            self.process_qc(now, target, None, out);
            self.replay_buffered(now, out);
            return;
        }
        let Some(from_height) = self.sync.pending().map(|p| p.from_height) else { return };
        match last_height {
            Some(h) if h >= from_height => {
                // Progress: ask the same peer for the next part at once.
                self.sync.advance(h + 1);
                self.send_sync_request(now, out);
            }
            // No progress: the Sync timer moves on to the next peer; asking
            // again at once would spin against peers that cannot help.
            _ => {}
        }
    }

    fn replay_buffered(&mut self, now: Millis, out: &mut Vec<Action>) {
        let mut missing: Option<(ValidatorId, QuorumCert)> = None;
        for (from, vp) in self.sync.take_buffered() {
            if vp.block.round() < self.pacemaker.round() {
                continue;
            }
            if self.tree.contains(&vp.block.parent()) {
                self.accept_block(now, from, vp, out);
            } else {
                let qc = justify_qc(&vp.block).expect("verified").clone();
                if missing.as_ref().is_none_or(|(_, q)| qc.round() > q.round()) {
                    missing = Some((from, qc));
                }
                self.sync.buffer(from, vp);
            }
        }
        // A leftover proposal extends a block we still lack: fetch it.
        if let Some((from, qc)) = missing
            && self.sync.pending().is_none()
        {
            self.start_sync(now, qc, Some(from), out);
        }
    }

    fn check_invariants(&self) {
        if !self.restored {
            return;
        }
        self.tree.check_invariants();
        assert!(self.pacemaker.round() > self.tree.high_qc().round(), "round is above the high QC's round");
    }
}

impl Engine for HotStuff {
    fn step(&mut self, now: Millis, input: Input, out: &mut Vec<Action>) {
        if let Input::Message { from, .. } | Input::Synced { from, .. } = &input {
            // Whatever it says, a validator that sends is reachable again.
            self.unreachable.remove(from);
        }
        match input {
            Input::Restored(r) => self.restore(now, *r, out),
            _ if !self.restored => debug!("input before Restored ignored"),
            Input::Message { from, msg: ConsensusMsg::HotStuff(m) } => match m {
                HotStuffMsg::Proposal(p) => self.on_proposal(now, from, *p, out),
                HotStuffMsg::Vote(v) => self.on_vote(now, from, v, out),
                HotStuffMsg::Timeout(t) => self.on_timeout_msg(now, from, *t, out),
                HotStuffMsg::SyncInfo(si) => self.on_sync_info(now, from, *si, out),
            },
            Input::Message { from, msg } => {
                out.push(Action::Invalid { from, reason: format!("not a hotstuff message: {}", msg.kind()) })
            }
            Input::Timer(TimerId::Round) => self.on_round_timer(now, out),
            Input::Timer(TimerId::Propose) => self.request_payload(out),
            Input::Timer(TimerId::Sync) => self.on_sync_timer(now, out),
            Input::Timer(_) => {}
            Input::Payload { ticket, txs } => self.on_payload(now, ticket, txs, out),
            Input::Synced { from, response } => self.on_synced(now, from, response, out),
            Input::Executed { height, app_hash } => self.on_executed(now, height, app_hash, out),
            Input::Read { id } => out.push(Action::ReadFailed {
                id,
                reason: "linearizable reads are offered in raft mode only; use \"latest\"".into(),
            }),
            // HotStuff catches up by block sync; it never asks for snapshots.
            Input::PeerDisconnected(peer) => self.on_peer_disconnected(now, peer, out),
            Input::SnapshotInstalled { .. } => {}
            Input::ChangeMembership { id, .. } => out.push(Action::ChangeDone {
                id,
                result: Err(
                    "membership changes are offered in raft mode only; a hotstuff validator set is fixed in genesis"
                        .into(),
                ),
            }),
        }
        if cfg!(debug_assertions) {
            self.check_invariants();
        }
    }

    fn status(&self) -> EngineStatus {
        let round = self.pacemaker.round();
        let choice = self.choose_leader(&self.tree.high_qc().block_id(), round);
        let leader = choice.leader;
        EngineStatus {
            excluded_leaders: choice.excluded.iter().map(|e| e.id).collect(),
            protocol: "hotstuff".into(),
            round,
            committed_height: self.tree.root_height(),
            executed_height: self.last_executed(),
            high_qc_round: self.tree.high_qc().round(),
            leader: Some(leader),
            role: if leader == self.me { "leader".into() } else { "replica".into() },
            membership: None,
        }
    }
}
