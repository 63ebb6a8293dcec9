//! Local testnets for Phalanx.
//!
//! - [`sim`]: a deterministic simulator over the real consensus engines.
//! - [`cluster`]: real `phalanx` processes on loopback, for end-to-end tests.
//! - [`scenario`]: the scenario runner: a process testnet, a workload, a
//!   timeline of faults, and checks of safety, durability, the bank
//!   invariant, linearizability, liveness and evidence.

pub mod cluster;
pub mod scenario;
pub mod sim;
