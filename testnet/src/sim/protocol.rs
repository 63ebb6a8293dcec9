//! Which engine the simulator drives, and its fault model.
//!
//! The simulator is engine-agnostic: it only needs to build an engine for a
//! validator and to know how many validators may be faulty, and whether
//! faults may be Byzantine (HotStuff) or only crashes (Raft).

use phalanx_consensus::engine::{ConsensusMsg, Engine, EngineStatus, HotStuffMsg, Input};
use phalanx_consensus::hotstuff::{EngineConfig, HotStuff};
use phalanx_consensus::raft::{MemberAddr, MembershipChange, Raft, RaftConfig, RaftMsg};
use phalanx_consensus::smr::AcceptAll;
use phalanx_consensus::types::{Block, Millis, ValidatorId, ValidatorSet};
use phalanx_crypto::Keypair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// What kinds of faults a protocol tolerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultModel {
    /// Up to f of 3f+1 validators may behave arbitrarily.
    Byzantine,
    /// Up to f of 2f+1 validators may crash; none lie.
    Crash,
}

/// Timing parameters every engine gets.
#[derive(Clone, Debug)]
pub struct Timing {
    pub timeout_ms_base: Millis,
    pub timeout_ms_max: Millis,
    /// The run's seed: engines that draw randomness (Raft's election
    /// jitter) seed it from this and their key, so runs stay deterministic.
    pub seed: u64,
}

/// A protocol the simulator can run.
pub trait Protocol: Send + Sync {
    fn name(&self) -> &'static str;
    fn fault_model(&self) -> FaultModel;
    /// How many of `n` validators may be faulty.
    fn max_faulty(&self, n: usize) -> usize {
        match self.fault_model() {
            FaultModel::Byzantine => (n - 1) / 3,
            FaultModel::Crash => (n - 1) / 2,
        }
    }
    /// An engine for the validator holding `key`.
    fn build(&self, key: Keypair, validators: &ValidatorSet, genesis: &Block, timing: &Timing) -> Box<dyn Engine>;
    /// A short description of a message, for traces.
    fn describe(&self, msg: &ConsensusMsg) -> String;
    /// Extra `phalanx-sim` flags that rebuild this protocol (for replay
    /// commands).
    fn replay_flags(&self) -> String {
        String::new()
    }
    /// Operator requests to inject, as (time, instance, input), given the
    /// instances' ids, the run's GST and seed. None by default.
    fn operator_inputs(&self, _ids: &[ValidatorId], _gst: Millis, _seed: u64) -> Vec<(Millis, usize, Input)> {
        Vec::new()
    }
    /// An operator input as it is delivered, given the receiving engine's
    /// status (an operator looks before acting). Unchanged by default.
    fn adapt_operator_input(&self, _status: &EngineStatus, input: Input) -> Input {
        input
    }
}

/// Chained HotStuff, 2-chain (the default protocol).
#[derive(Clone, Copy, Debug, Default)]
pub struct HotStuffProtocol {
    /// Build engines with a safety rule disabled (only for showing that the
    /// checkers catch a broken engine; the consensus crate's
    /// `unsafe-test-hooks` feature, which the simulator enables).
    pub broken: Option<Broken>,
}

/// A deliberately broken safety rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// Vote regardless of the lock (voting rule 2, timeout rule 2).
    LockCheck,
    /// Vote for more than one block in a round (voting rule 1).
    OneVotePerRound,
    /// Vote in a round after timing out in it (so TCs can miss the lock).
    VoteAfterTimeout,
    /// Commit a block once its child is certified, even when their rounds
    /// are not consecutive (the 2-chain rule without its condition).
    CommitRule,
    /// Quorums of a bare majority instead of more than 2/3 of the power.
    MajorityQuorum,
}

impl Protocol for HotStuffProtocol {
    fn name(&self) -> &'static str {
        "hotstuff"
    }

    fn fault_model(&self) -> FaultModel {
        FaultModel::Byzantine
    }

    fn build(&self, key: Keypair, validators: &ValidatorSet, genesis: &Block, timing: &Timing) -> Box<dyn Engine> {
        let validators = match self.broken {
            Some(Broken::MajorityQuorum) => validators.clone().with_majority_quorum_for_tests(),
            _ => validators.clone(),
        };
        let cfg = EngineConfig {
            chain_id: genesis.header.chain_id.clone(),
            validators,
            genesis: genesis.clone(),
            timeout_ms_base: timing.timeout_ms_base,
            timeout_ms_max: timing.timeout_ms_max,
            block_max_bytes: 1 << 20,
            block_max_txs: 200,
            empty_block_interval_ms: timing.timeout_ms_base / 4,
            sync_timeout_ms: timing.timeout_ms_base,
            sync_max_blocks: 32,
            reputation_window: phalanx_config::genesis::DEFAULT_REPUTATION_WINDOW,
        };
        #[allow(unused_mut)]
        let mut engine = HotStuff::new(cfg, key, Arc::new(AcceptAll));
        if let Some(b) = self.broken.filter(|b| *b != Broken::MajorityQuorum) {
            break_engine(&mut engine, b);
        }
        Box::new(engine)
    }

    fn replay_flags(&self) -> String {
        match self.broken {
            Some(Broken::LockCheck) => " --broken lock".into(),
            Some(Broken::OneVotePerRound) => " --broken one-vote".into(),
            Some(Broken::VoteAfterTimeout) => " --broken vote-after-timeout".into(),
            Some(Broken::CommitRule) => " --broken commit-rule".into(),
            Some(Broken::MajorityQuorum) => " --broken majority-quorum".into(),
            None => String::new(),
        }
    }

    fn describe(&self, msg: &ConsensusMsg) -> String {
        match msg {
            ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p)) => {
                format!("proposal r{} h{} {}", p.block.round(), p.block.height(), p.block.id().short())
            }
            ConsensusMsg::HotStuff(HotStuffMsg::Vote(v)) => {
                format!("vote r{} {}", v.data.round, v.data.block_id.short())
            }
            ConsensusMsg::HotStuff(HotStuffMsg::Timeout(t)) => {
                format!("timeout r{} hqc r{}", t.round, t.high_qc.round())
            }
            ConsensusMsg::HotStuff(HotStuffMsg::SyncInfo(si)) => {
                format!("sync info qc r{} tc r{}", si.high_qc.round(), si.last_tc.as_ref().map_or(0, |t| t.round))
            }
            ConsensusMsg::Raft(m) => describe_raft(m),
        }
    }
}

/// Raft (crash faults only).
#[derive(Clone, Copy, Debug, Default)]
pub struct RaftProtocol {
    /// Grant more than one vote per term (only for showing that the
    /// election safety checker catches a broken engine).
    pub broken_vote: bool,
    /// Before GST, ask random members every few hundred milliseconds to
    /// remove the last validator, add it back as a learner, and promote it,
    /// over and over (joint consensus under crashes and partitions).
    pub membership: bool,
}

impl Protocol for RaftProtocol {
    fn name(&self) -> &'static str {
        "raft"
    }

    fn fault_model(&self) -> FaultModel {
        FaultModel::Crash
    }

    fn build(&self, key: Keypair, validators: &ValidatorSet, genesis: &Block, timing: &Timing) -> Box<dyn Engine> {
        let key_bits = u64::from_le_bytes(key.public().as_bytes()[..8].try_into().expect("8 bytes"));
        let mut cfg = RaftConfig::new(
            genesis.header.chain_id.clone(),
            validators.clone(),
            genesis.clone(),
            timing.timeout_ms_base,
            timing.seed ^ key_bits,
        );
        // Small windows, so pipelining limits, probing and catch-up by
        // snapshot (behind the compaction point) happen often.
        cfg.block_max_txs = 20;
        cfg.max_inflight = 4;
        cfg.max_append_entries = 8;
        cfg.max_uncommitted = 16;
        cfg.log_keep = 16;
        let mut engine = Raft::new(cfg, key);
        if self.broken_vote {
            engine.allow_second_vote_in_term_for_tests();
        }
        Box::new(engine)
    }

    fn replay_flags(&self) -> String {
        let mut flags = String::new();
        if self.broken_vote {
            flags.push_str(" --broken double-vote");
        }
        if self.membership {
            flags.push_str(" --membership");
        }
        flags
    }

    /// Remove the validator while it votes, add it back as a learner once it
    /// is gone, promote it while it learns (as this node sees it).
    fn adapt_operator_input(&self, status: &EngineStatus, input: Input) -> Input {
        let (Input::ChangeMembership { id, change }, Some(m)) = (&input, &status.membership) else { return input };
        let x = change.member();
        let change = if m.learners.contains(&x) {
            MembershipChange::Promote { id: x }
        } else if m.is_voter(&x) {
            MembershipChange::Remove { id: x }
        } else {
            MembershipChange::AddLearner { id: x, addr: MemberAddr { node_key: x, p2p_addr: "127.0.0.1:1".into() } }
        };
        Input::ChangeMembership { id: *id, change }
    }

    fn operator_inputs(&self, ids: &[ValidatorId], gst: Millis, seed: u64) -> Vec<(Millis, usize, Input)> {
        if !self.membership || ids.len() < 2 {
            return Vec::new();
        }
        let x = *ids.last().expect("two or more");
        // Its own stream, so the run's other draws do not shift.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6d62_6572_7321);
        let mut out = Vec::new();
        let mut t = rng.gen_range(200..500);
        let mut id = 0u64;
        while t < gst {
            id += 1;
            // The next step of the cycle is chosen on delivery.
            let change = MembershipChange::Remove { id: x };
            out.push((t, rng.gen_range(0..ids.len()), Input::ChangeMembership { id, change }));
            t += rng.gen_range(150..650);
        }
        out
    }

    fn describe(&self, msg: &ConsensusMsg) -> String {
        match msg {
            ConsensusMsg::Raft(m) => describe_raft(m),
            other => format!("{} message", other.kind()),
        }
    }
}

fn describe_raft(m: &RaftMsg) -> String {
    match m {
        RaftMsg::VoteRequest { pre, term, last_index, last_term } => {
            format!("{}vote request t{term} last {last_index}/t{last_term}", if *pre { "pre-" } else { "" })
        }
        RaftMsg::VoteResponse { pre, term, granted } => {
            format!("{}vote t{term} {}", if *pre { "pre-" } else { "" }, if *granted { "granted" } else { "refused" })
        }
        RaftMsg::Append { term, prev_index, prev_term, entries, commit } => {
            format!("append t{term} after {prev_index}/t{prev_term} +{} commit {commit}", entries.len())
        }
        RaftMsg::AppendResponse { term, success, match_index, rejected, hint } => {
            if *success {
                format!("append ok t{term} match {match_index}")
            } else {
                format!("append refused t{term} at {rejected} hint {hint}")
            }
        }
        RaftMsg::Heartbeat { term, commit, .. } => format!("heartbeat t{term} commit {commit}"),
        RaftMsg::HeartbeatResponse { term, .. } => format!("heartbeat ok t{term}"),
        RaftMsg::CatchUp { term, commit, .. } => format!("catch up t{term} to {commit}"),
        RaftMsg::ReadIndex { term, ctx } => format!("read index t{term} #{ctx}"),
        RaftMsg::ReadIndexResponse { term, ctx, index } => format!("read index t{term} #{ctx} = {index:?}"),
        RaftMsg::ChangeRequest { term, ctx, change } => format!("change t{term} #{ctx} {change:?}"),
        RaftMsg::ChangeResponse { term, ctx, result } => format!("change t{term} #{ctx} = {result:?}"),
    }
}

fn break_engine(engine: &mut HotStuff, b: Broken) {
    match b {
        Broken::LockCheck => engine.disable_lock_check_for_tests(),
        Broken::OneVotePerRound => engine.disable_one_vote_per_round_for_tests(),
        Broken::VoteAfterTimeout => engine.allow_vote_after_timeout_for_tests(),
        Broken::CommitRule => engine.commit_without_consecutive_rounds_for_tests(),
        Broken::MajorityQuorum => unreachable!("applied to the validator set"),
    }
}
