//! The one face every consensus engine shows its drivers.
//!
//! An engine is a pure state machine: [`Engine::step`] takes the current
//! logical time and one [`Input`] and appends [`Action`]s. It does no I/O,
//! reads no clock and draws no randomness of its own. Two drivers run the
//! same engines: the validator node (`node/src/driver.rs`) and the
//! deterministic simulator (`testnet/src/sim`).
//!
//! Drivers must execute actions in order, and in particular:
//! - a [`Action::PersistSafety`] is durable (flushed to disk) before any
//!   message emitted after it leaves the process;
//! - a [`Action::Commit`] is applied and durable before clients are told.

use crate::types::{
    Block, BlockId, CertifiedBlock, Evidence, Height, Millis, Proposal, Round, SyncInfo, Timeout, Tx, ValidatorId, Vote,
};
use phalanx_crypto::Hash;
use serde::{Deserialize, Serialize};

/// A consensus engine.
pub trait Engine: Send {
    /// Feeds one input at logical time `now`; appends what must happen.
    fn step(&mut self, now: Millis, input: Input, out: &mut Vec<Action>);

    /// A read-only summary for status reports.
    fn status(&self) -> EngineStatus;
}

/// Everything an engine can be told.
#[derive(Clone, Debug)]
pub enum Input {
    /// At start: what the store holds. Must be the first input.
    Restored(Box<Recovery>),
    /// A message from another validator (not yet verified).
    Message { from: ValidatorId, msg: ConsensusMsg },
    /// A timer set with [`Action::SetTimer`] fired.
    Timer(TimerId),
    /// The mempool's answer to [`Action::RequestPayload`].
    Payload { ticket: u64, txs: Vec<Tx> },
    /// A peer's answer to [`Action::RequestSync`] (not yet verified).
    Synced { from: ValidatorId, response: SyncResponse },
    /// The driver applied committed block `height`; the application state
    /// hash after it is `app_hash`.
    Executed { height: Height, app_hash: Hash },
    /// A client wants a linearizable read: answer with
    /// [`Action::ReadReady`] (serve the read once the node has applied that
    /// height) or [`Action::ReadFailed`], with the same `id`.
    Read { id: u64 },
    /// An operator asks for a membership change (Raft mode): answer with
    /// [`Action::ChangeDone`] with the same `id` once the change is complete
    /// or refused.
    ChangeMembership { id: u64, change: crate::raft::MembershipChange },
    /// The driver installed the state snapshot asked for with
    /// [`Action::RequestSnapshot`]: the committed state up to `block`
    /// (inclusive), whose application hash is `app_hash`, and the Raft
    /// configuration recorded in that state (`None`: genesis).
    SnapshotInstalled { block: Box<Block>, app_hash: Hash, config: Option<crate::raft::Membership> },
    /// The transport lost its last connection to this validator. A hint,
    /// not a verdict: a killed or crashed process's connections close at
    /// once (a failed host's or a partition's do not, and are found by
    /// timeouts), and a live peer may reconnect a moment later. Raft uses it to campaign
    /// before a full election timeout when it is its leader's (pre-vote
    /// keeps that harmless if the leader is alive); HotStuff gives up at
    /// once a round that needs the validator, until it sends again.
    PeerDisconnected(ValidatorId),
}

/// Everything an engine can ask of its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make this safety state durable before sending anything that follows.
    PersistSafety(SafetyState),
    /// Store a block the engine accepted (not necessarily committed).
    PersistBlock(Block),
    Send {
        to: ValidatorId,
        msg: ConsensusMsg,
    },
    /// Send to every other validator.
    Broadcast(ConsensusMsg),
    /// Deliver `Input::Timer(id)` at time `at`; replaces an earlier timer
    /// with the same id.
    SetTimer {
        id: TimerId,
        at: Millis,
    },
    /// Answer with `Input::Payload { ticket, .. }`: transactions for a new
    /// block, at most `max_txs` and `max_bytes`, skipping those already in
    /// the uncommitted blocks `exclude`.
    RequestPayload {
        ticket: u64,
        max_bytes: usize,
        max_txs: usize,
        exclude: Vec<BlockId>,
    },
    /// These blocks are final, in height order: apply, store durably, then
    /// answer with `Input::Executed` for each.
    Commit(Vec<CertifiedBlock>),
    /// Fetch `from`'s state snapshot (application state at its committed
    /// tip), install it, then answer with `Input::SnapshotInstalled`. A
    /// request while a fetch runs may be ignored; the engine asks again if
    /// nothing is installed in time.
    RequestSnapshot {
        from: ValidatorId,
    },
    /// Ask a peer for blocks; its answer comes back as `Input::Synced`.
    RequestSync {
        from: ValidatorId,
        request: SyncRequest,
    },
    /// Proof of misbehaviour to record.
    Evidence(Evidence),
    /// A message from `from` was refused; the driver counts it per peer.
    Invalid {
        from: ValidatorId,
        reason: String,
    },
    /// Read `id` is linearizable once the node has applied `index`.
    ReadReady {
        id: u64,
        index: Height,
    },
    /// Read `id` cannot be served (no leader, leadership changed, or the
    /// protocol does not offer it).
    ReadFailed {
        id: u64,
        reason: String,
    },
    /// The configuration in effect changed (Raft mode): the driver lets the
    /// members it names connect and sends to them.
    MembershipChanged(crate::raft::Membership),
    /// Membership change `id` is complete (`Ok`: the index of the
    /// configuration entry that completed it) or was refused, and why.
    ChangeDone {
        id: u64,
        result: Result<Height, String>,
    },
}

/// Timers an engine can set. Setting a timer replaces the one with the
/// same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimerId {
    /// The pacemaker's round timeout.
    Round,
    /// Poll the mempool again before proposing.
    Propose,
    /// A block sync request went unanswered.
    Sync,
    /// Raft: election timeout.
    Election,
    /// Raft: leader heartbeat.
    Heartbeat,
}

/// Messages between engines, by protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ConsensusMsg {
    HotStuff(HotStuffMsg),
    Raft(crate::raft::RaftMsg),
}

impl ConsensusMsg {
    /// The protocol a message belongs to, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsensusMsg::HotStuff(_) => "hotstuff",
            ConsensusMsg::Raft(_) => "raft",
        }
    }
}

/// HotStuff protocol messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HotStuffMsg {
    Proposal(Box<Proposal>),
    Vote(Vote),
    Timeout(Box<Timeout>),
    /// Certificates for a peer that is behind (answer to a stale timeout).
    SyncInfo(Box<SyncInfo>),
}

/// What an engine persists to stay safe across restarts.
// Moved once per persist; boxing the HotStuff variant would cost an
// allocation per vote for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SafetyState {
    HotStuff(crate::hotstuff::SafetyData),
    /// Raft's term, vote and last log entry.
    Raft(crate::raft::HardState),
}

/// A committed block as HotStuff's leader reputation reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub height: crate::types::Height,
    pub round: crate::types::Round,
    /// The signers of its `justify` (the validators that voted for its
    /// parent).
    pub voters: crate::types::SignerBitmap,
}

/// What the store gives an engine at start.
#[derive(Clone, Debug)]
pub struct Recovery {
    /// The last persisted safety state, if any.
    pub safety: Option<SafetyState>,
    /// The last committed block and its certificate (genesis at first).
    pub committed: CertifiedBlock,
    /// Blocks persisted above the committed one, in any order.
    pub blocks: Vec<Block>,
    /// Application hashes of recently executed heights, ascending.
    pub executed: Vec<(Height, Hash)>,
    /// HotStuff: committed blocks below `committed`, ascending, from the
    /// newest back past what leader reputation reads (or to the oldest
    /// block held).
    pub history: Vec<HistoryEntry>,
    /// Raft: the configuration recorded in the committed application state
    /// (`None`: none was ever committed, the genesis validators vote).
    pub membership: Option<crate::raft::Membership>,
}

/// A request for blocks: committed blocks from `from_height` up, then the
/// chain leading to `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub from_height: Height,
    pub target: BlockId,
    pub max_blocks: u32,
}

/// An answer to a [`SyncRequest`]: consecutive blocks in ascending height,
/// each certified by the next one's `justify`; the last one is certified by
/// `last_cert` if the responder has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub blocks: Vec<Block>,
    pub last_cert: Option<crate::types::Certificate>,
}

/// A summary of an engine's state, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    pub protocol: String,
    pub round: Round,
    pub committed_height: Height,
    pub executed_height: Height,
    pub high_qc_round: Round,
    pub leader: Option<ValidatorId>,
    pub role: String,
    /// Raft mode: the configuration in effect (voters, learners, joint).
    pub membership: Option<crate::raft::Membership>,
    /// HotStuff: validators the leader schedule currently skips because
    /// they failed to lead recently (leader reputation).
    pub excluded_leaders: Vec<crate::types::ValidatorId>,
}
