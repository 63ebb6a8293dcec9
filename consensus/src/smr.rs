//! The interface between consensus and the application it replicates.
//!
//! Consensus orders transactions as opaque bytes and never decodes them.
//! It asks the application one question, through [`PayloadVerifier`]: is
//! every transaction in this proposed block well-formed (decodable, correctly
//! signed, for this chain, within size limits)? Honest validators vote only
//! for blocks whose payload passes. The check must be stateless and
//! deterministic: it may not depend on the state, which differs between
//! replicas until they commit.
//!
//! Execution happens after commit, in the driver, through [`StateMachine`]:
//! it reads the committed state through a [`StateView`], returns the writes
//! and per-transaction outcomes, and chains the application hash.

use crate::types::{Block, Tx};
use phalanx_crypto::Hash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stateless checks of a proposed block's transactions.
pub trait PayloadVerifier: Send + Sync {
    /// `Ok` if every transaction is well-formed; otherwise why not, naming
    /// the first bad transaction. `hashes[i]` is [`crate::types::tx_hash`]
    /// of `txs[i]`, computed once per block (see [`Block::tx_hashes`]).
    fn verify_payload(&self, txs: &[Tx], hashes: &[Hash]) -> Result<(), String>;
}

/// Accepts every payload (simulator and tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl PayloadVerifier for AcceptAll {
    fn verify_payload(&self, _txs: &[Tx], _hashes: &[Hash]) -> Result<(), String> {
        Ok(())
    }
}

/// Read access to committed application state.
pub trait StateView {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

impl StateView for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        BTreeMap::get(self, key).cloned()
    }
}

/// What happened to one transaction of a committed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// 0 when the transaction applied; otherwise a stable error code.
    pub code: u32,
    /// A human-readable explanation (empty on success).
    pub log: String,
}

impl TxOutcome {
    pub fn ok() -> TxOutcome {
        TxOutcome { code: 0, log: String::new() }
    }
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }
}

/// The result of executing one block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Execution {
    /// Final value of every key the block changed (`None` = deleted).
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// One outcome per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// The application hash after this block.
    pub app_hash: Hash,
}

/// A deterministic application.
pub trait StateMachine: PayloadVerifier {
    /// Short name, shown in `status` (for example `kv`).
    fn name(&self) -> &'static str;
    /// Executes a committed block against the state after its predecessor.
    fn execute(&self, state: &dyn StateView, prev_app_hash: &Hash, block: &Block) -> Execution;
}
