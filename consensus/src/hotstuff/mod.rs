//! Chained HotStuff with the 2-chain commit rule (Jolteon / DiemBFT v4).
//!
//! - `safety.rs`: the only signer; persists before signing.
//! - `block_tree.rs`: uncommitted blocks above the last committed one.
//! - `pacemaker.rs`: rounds, timers with exponential back-off, timeouts
//!   and timeout certificates.
//! - `votes.rs`: votes into quorum certificates, double votes into evidence.
//! - `leader.rs`: round-robin leader schedule weighted by voting power.
//! - `reputation.rs`: which validators that schedule skips (leader
//!   reputation), decided from the chain's recent rounds.
//! - `sync.rs`: fetching missing certified blocks; serving them.
//! - `core.rs`: the engine that ties them together.
//!
//! The rules and their safety argument are in `docs/hotstuff.md`.

mod block_tree;
mod core;
mod leader;
mod pacemaker;
pub mod reputation;
mod safety;
mod sync;
mod votes;

pub use block_tree::{BlockTree, TreeError};
pub use core::{EngineConfig, HotStuff, PROPOSE_POLL_MS};
pub use leader::LeaderSchedule;
pub use safety::{SafetyData, SafetyError, SafetyRules};
pub use sync::{BlockSource, serve as serve_sync};

#[cfg(test)]
mod tests;
