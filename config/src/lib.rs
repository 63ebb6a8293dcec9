//! The Phalanx node home: its layout, its files, and the validation of all of them.
//!
//! This crate owns everything a node reads before it starts:
//!
//! ```text
//! <home>/config/node.toml           node settings (TOML)             -> NodeConfig
//! <home>/config/genesis.json        chain definition (JSON), the
//!                                   same on every validator          -> Genesis
//! <home>/config/validator_key.json  consensus key (phalanx_crypto::keyfile format)
//! <home>/config/node_key.json       network (libp2p) key, same format
//! <home>/data/                      database (node.toml `data_dir`)
//! ```
//!
//! The validation promise: whatever [`Home::load`], [`NodeConfig::load`] or
//! [`Genesis::load`] returns has been fully checked, so the rest of the node never
//! meets a malformed address, an empty validator set or an overflowing sum. Every
//! refusal is a [`ConfigError`] that names the file and the field, e.g.
//! `genesis.json: validators[2].power must be > 0` or
//! `node.toml: rpc.listen_addr: "abc" is not an IP:port address`; syntax errors give
//! the line and column; unknown fields are refused so typos are caught. Nothing here
//! panics on bad input, and [`Home::init`] changes nothing when it refuses.

pub mod error;
pub mod faults;
mod files;
pub mod genesis;
pub mod home;
pub mod node;

pub use error::ConfigError;
pub use faults::{Fault, parse_faults};
pub use genesis::{AppGenesis, AppKind, ConsensusParams, Genesis, GenesisAccount, GenesisValidator, Protocol};
pub use home::{Home, Loaded};
pub use node::{
    ConsensusConfig, FaultsConfig, LogConfig, LogFormat, MempoolConfig, MetricsConfig, NodeConfig, P2pConfig, RpcConfig,
};
