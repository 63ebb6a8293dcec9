//! Phalanx consensus engines: pure, deterministic state machines.
//!
//! Every protocol implements [`engine::Engine`]: inputs in, actions out, no
//! I/O, no clock, no randomness of its own. The node's driver and the
//! simulator are two drivers of the same engines.
//!
//! - [`types`]: blocks, certificates, validator sets, evidence.
//! - [`engine`]: the `Engine` trait, `Input`, `Action`.
//! - [`verify`]: unverified messages become verified ones here.
//! - [`smr`]: the application interface (payload checks, execution).
//! - [`hotstuff`]: 2-chain HotStuff with a pacemaker.
//! - [`raft`]: Raft with pre-vote and check-quorum (crash faults).

pub mod engine;
pub mod hotstuff;
pub mod raft;
pub mod smr;
pub mod types;
pub mod verify;

pub use engine::{
    Action, ConsensusMsg, Engine, EngineStatus, HistoryEntry, HotStuffMsg, Input, Recovery, SafetyState, TimerId,
};

/// True when built with `unsafe-test-hooks` (the simulator's broken engines).
/// A validator built this way says so loudly at start.
pub const UNSAFE_TEST_HOOKS: bool = cfg!(feature = "unsafe-test-hooks");
