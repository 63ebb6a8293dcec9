//! Raft (crash faults): a majority of 2f + 1 members orders the chain.
//!
//! - `log.rs`: the in-memory log above its compaction point; entries are
//!   blocks chained by parent id.
//! - `msg.rs`: messages and the persisted [`HardState`].
//! - `membership.rs`: configurations (voters, learners, joint consensus).
//! - `core.rs`: the engine (election with pre-vote and check-quorum,
//!   replication with batching and pipelining, commitment, catch-up).
//!
//! The rules, with their sources, are in `docs/raft.md`.

mod core;
mod log;
mod membership;
mod msg;

pub use core::{PROPOSE_POLL_MS, Raft, RaftConfig};
pub use log::{Index, LogPoint, RaftLog, Term};
pub use membership::{CONFIG_TX_PREFIX, ConfigHistory, MemberAddr, Membership, MembershipChange, is_config_tx};
pub use msg::{HardState, RaftMsg};

#[cfg(test)]
mod tests;
