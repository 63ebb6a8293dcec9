//! The built-in application replicated by the chain.
//!
//! - `tx.rs`: the transaction format clients sign and submit.
//! - `kv.rs`: the key-value and accounts state machine (admission checks for
//!   the mempool, stateless proposal checks for consensus, execution).
//! - `sigcache.rs`: remembers verified signatures so each transaction's
//!   signature is checked once per node.

pub mod kv;
pub mod sigcache;
pub mod tx;

pub use kv::{
    Account, KvApp, KvChecker, RecordedEvidence, account, account_nonces, codes, committed_evidence, evidence_against,
    evidence_count, evidence_recorded, raft_config, value,
};
pub use tx::{Op, SignedTx, Transaction};
