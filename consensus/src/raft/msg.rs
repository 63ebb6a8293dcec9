//! Raft messages and persisted state.
//!
//! Messages are not signed: Raft tolerates crashes, not lies, and the
//! network layer authenticates which validator a message came from (noise
//! handshakes bound to the genesis node keys). Blocks inside appends are
//! still signed by their leader, so the chain they form can be checked by
//! anyone later.

use super::log::{Index, Term};
use super::membership::{ConfigHistory, MembershipChange};
use crate::types::{Block, BlockId, ValidatorId};
use serde::{Deserialize, Serialize};

/// Messages between Raft engines (Figure 2 of the Raft paper, plus pre-vote,
/// heartbeats and the catch-up notice).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RaftMsg {
    /// RequestVote (§5.2), or with `pre` the pre-vote question "would you
    /// vote for me at `term`?" (dissertation §9.6), which changes no state.
    VoteRequest {
        pre: bool,
        term: Term,
        last_index: Index,
        last_term: Term,
    },
    /// The answer to a [`RaftMsg::VoteRequest`]. A granted pre-vote carries
    /// the term asked about; anything else the voter's current term.
    VoteResponse {
        pre: bool,
        term: Term,
        granted: bool,
    },
    /// AppendEntries (§5.3): entries following `prev_index`, whose term must
    /// be `prev_term`, and the leader's commit index.
    Append {
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Block>,
        commit: Index,
    },
    /// The answer to an [`RaftMsg::Append`]. On success `match_index` is the
    /// last index known to match the leader's log. On failure `rejected` is
    /// the refused `prev_index` and the hint says where to retry: the first
    /// index of the conflicting term, or just past the follower's log.
    AppendResponse {
        term: Term,
        success: bool,
        match_index: Index,
        rejected: Index,
        hint: Index,
    },
    /// Leader liveness and commit index (at most the follower's known match),
    /// without log consistency checks; `ctx` ties a response to a read index
    /// round.
    Heartbeat {
        term: Term,
        commit: Index,
        ctx: u64,
    },
    HeartbeatResponse {
        term: Term,
        ctx: u64,
    },
    /// The follower's log ends below the leader's compaction point: fetch
    /// and install the leader's state snapshot (in chunks), then continue
    /// with appends (InstallSnapshot, §7, pulled by the follower).
    CatchUp {
        term: Term,
        commit: Index,
    },
    /// A follower asks the leader for a read index on behalf of a client
    /// (dissertation §6.4); `ctx` identifies the read at the follower.
    ReadIndex {
        term: Term,
        ctx: u64,
    },
    /// The leader's answer: the index to wait for, or `None` if it cannot
    /// serve reads (not leader any more).
    ReadIndexResponse {
        term: Term,
        ctx: u64,
        index: Option<Index>,
    },
    /// A follower forwards an operator's membership change to the leader;
    /// `ctx` identifies it at the follower.
    ChangeRequest {
        term: Term,
        ctx: u64,
        change: MembershipChange,
    },
    /// The leader's answer once the change completed or was refused.
    ChangeResponse {
        term: Term,
        ctx: u64,
        result: Result<Index, String>,
    },
}

impl RaftMsg {
    /// The sender's term.
    pub fn term(&self) -> Term {
        match self {
            RaftMsg::VoteRequest { term, .. }
            | RaftMsg::VoteResponse { term, .. }
            | RaftMsg::Append { term, .. }
            | RaftMsg::AppendResponse { term, .. }
            | RaftMsg::Heartbeat { term, .. }
            | RaftMsg::HeartbeatResponse { term, .. }
            | RaftMsg::CatchUp { term, .. }
            | RaftMsg::ReadIndex { term, .. }
            | RaftMsg::ReadIndexResponse { term, .. }
            | RaftMsg::ChangeRequest { term, .. }
            | RaftMsg::ChangeResponse { term, .. } => *term,
        }
    }
}

/// What a Raft node persists before answering anything that depends on it:
/// its term, its vote in that term, and the last entry of its log (the
/// entries themselves are persisted as blocks, chained by parent id, so the
/// whole log is recovered by walking back from `last_id`), and the
/// configurations set by entries of that log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<ValidatorId>,
    pub last_index: Index,
    pub last_id: BlockId,
    /// The latest configuration at or below the commit index, then every
    /// later one, oldest first (empty: the genesis validators vote).
    pub configs: ConfigHistory,
}
