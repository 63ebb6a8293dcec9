//! Local testnets for Phalanx.
//!
//! - [`sim`]: a deterministic simulator over the real consensus engines.
//! - [`bench`]: end-to-end throughput and latency against a real testnet (`phalanx-bench`).
//! - [`cluster`]: real `phalanx` processes on loopback, for end-to-end tests.
//! - [`linearizability`]: judges a recorded key-value client history (Wing & Gong with Lowe's cache, per key).
//! - [`timeline`]: an SVG chart of committed transactions per second, with fault markers and spans.
//! - [`scenario`]: the scenario runner: a process testnet, a workload, a
//!   timeline of faults, and checks of safety, durability, the bank
//!   invariant, linearizability, liveness and evidence.

pub mod bench;
pub mod cluster;
pub mod linearizability;
pub mod scenario;
pub mod sim;
pub mod timeline;
