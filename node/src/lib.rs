//! The Phalanx validator node: everything that does I/O.
//!
//! - [`app`]: the built-in key-value and accounts application.
//! - [`store`]: the chain store on sled (and an in-memory one for tests).
//! - [`network`]: libp2p networking.
//! - [`driver`]: runs the consensus engine, executes its actions.
//! - [`committer`]: executes committed blocks and makes them durable.
//! - [`evidence`]: detected misbehaviour submitted to the chain.
//! - [`gossip`]: client transactions sent to every peer once.
//! - [`faults`]: Byzantine fault injection (`--fault`), between the engine
//!   and the network.
//! - [`snapshot`]: state snapshots cut into chunks for the network, and
//!   put back together.
//! - [`rpc`]: JSON-RPC over HTTP and WebSocket, and its client.
//! - [`metrics`]: Prometheus metrics.
//! - [`node`]: wires everything together and runs a validator.

pub mod app;
pub mod committer;
pub mod compact;
pub mod driver;
pub mod evidence;
pub mod faults;
pub mod gossip;
pub mod metrics;
pub mod network;
pub mod node;
pub mod rpc;
pub mod snapshot;
pub mod state_sync;
pub mod store;
pub mod testnet_gen;
