//! Raft (crash faults): a majority of 2f + 1 members orders the chain.
//!
//! - `log.rs`: the in-memory log above its compaction point; entries are
//!   blocks chained by parent id.
//! - `msg.rs`: messages and the persisted [`HardState`].
//! - `core.rs`: the engine (election with pre-vote and check-quorum,
//!   replication with batching and pipelining, commitment, catch-up).
//!
//! The rules, with their sources, are in `docs/raft.md`.

mod core;
mod log;
mod msg;

pub use core::{PROPOSE_POLL_MS, Raft, RaftConfig};
pub use log::{Index, LogPoint, RaftLog, Term};
pub use msg::{HardState, RaftMsg};

#[cfg(test)]
mod tests;
