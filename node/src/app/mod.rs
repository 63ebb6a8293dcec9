//! The built-in application replicated by the chain.
//!
//! - `tx.rs`: the transaction format clients sign and submit.
//! - `kv.rs`: the key-value and accounts state machine (admission checks for
//!   the mempool, stateless proposal checks for consensus, execution).
//! - `noop.rs`: the benchmark application (`app.kind = "noop"`): orders
//!   opaque payloads and applies nothing.
//! - `sigcache.rs`: remembers verified signatures so each transaction's
//!   signature is checked once per node.
//!
//! The node sees an application through [`Application`]; genesis chooses
//! which one runs (`app.kind`).

pub mod kv;
pub mod noop;
pub mod sigcache;
pub mod tx;

use phalanx_config::AppKind;
use phalanx_consensus::smr::{StateMachine, StateView};
use phalanx_consensus::types::ValidatorSet;
use phalanx_crypto::{Hash, PublicKey};
use phalanx_mempool::{Rejection, Sender, TxChecker, TxInfo};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the node needs of a replicated application besides execution and
/// the proposal check ([`StateMachine`]): admission and nonce ordering for
/// the mempool.
pub trait Application: StateMachine + Send + Sync {
    /// The mempool's admission check against committed `state` (CheckTx).
    fn check_tx(&self, state: &dyn StateView, tx: &[u8]) -> Result<TxInfo, Rejection>;
    /// [`Application::check_tx`] for many transactions (answer `i` for
    /// `txs[i]`, whose digest is `hashes[i]`); the default checks them one
    /// by one.
    fn check_tx_batch(&self, state: &dyn StateView, txs: &[&[u8]], hashes: &[Hash]) -> Vec<Result<TxInfo, Rejection>> {
        debug_assert_eq!(txs.len(), hashes.len());
        txs.iter().map(|tx| self.check_tx(state, tx)).collect()
    }
    /// A transaction's sender and nonce, without checking it, to continue
    /// nonces past uncommitted blocks; `None` for transactions with no order.
    fn sender_and_nonce(&self, tx: &[u8]) -> Option<(Sender, u64)>;
    /// `sender`'s next nonce in committed `state`.
    fn next_nonce(&self, state: &dyn StateView, sender: &Sender) -> u64;
    /// Every sender's next nonce in a state snapshot's `entries`.
    fn snapshot_nonces(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Sender, u64)>;
}

/// The mempool's checker for `app` against committed `state`.
pub struct AppChecker<'a> {
    app: &'a dyn Application,
    state: &'a (dyn StateView + Sync),
}

impl TxChecker for AppChecker<'_> {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection> {
        self.app.check_tx(self.state, tx)
    }

    fn check_batch(&self, txs: &[&[u8]], hashes: &[Hash]) -> Vec<Result<TxInfo, Rejection>> {
        self.app.check_tx_batch(self.state, txs, hashes)
    }
}

/// A mempool checker for `app` reading nonces from `state`.
pub fn checker<'a>(app: &'a dyn Application, state: &'a (dyn StateView + Sync)) -> AppChecker<'a> {
    AppChecker { app, state }
}

/// The application genesis names, for chain `chain_id`.
pub fn build(kind: AppKind, chain_id: &str, tx_max_bytes: usize, validators: ValidatorSet) -> Arc<dyn Application> {
    match kind {
        AppKind::Kv => Arc::new(KvApp::new(chain_id.to_owned(), tx_max_bytes).with_validators(validators)),
        AppKind::Noop => Arc::new(noop::NoopApp::new(tx_max_bytes)),
    }
}

/// A block at `height` carrying `txs`, signed by a fixed key, for the
/// applications' unit tests (execution reads nothing else of it).
#[cfg(test)]
pub(crate) fn test_block(
    chain_id: &str,
    height: u64,
    txs: Vec<phalanx_consensus::types::Tx>,
) -> phalanx_consensus::types::Block {
    use phalanx_consensus::types::{Block, BlockHeader, Certificate, payload_root};
    let k = phalanx_crypto::Keypair::from_seed(&[99; 32]);
    let header = BlockHeader {
        chain_id: chain_id.into(),
        height,
        round: height,
        parent: Hash::ZERO,
        parent_round: 0,
        payload_root: payload_root(&txs),
        app_height: 0,
        app_hash: Hash::ZERO,
        proposer: k.public(),
        time_ms: 0,
    };
    Block::sign(header, Certificate::Genesis, txs, &k)
}

/// The initial state of application `kind` and its application hash.
pub fn genesis_state(kind: AppKind, accounts: &[(PublicKey, u64)]) -> (BTreeMap<Vec<u8>, Vec<u8>>, Hash) {
    match kind {
        AppKind::Kv => KvApp::genesis_state(accounts),
        AppKind::Noop => noop::NoopApp::genesis_state(),
    }
}

pub use kv::{
    Account, KvApp, RecordedEvidence, account, account_nonces, codes, committed_evidence, evidence_against,
    evidence_count, evidence_recorded, raft_config, value,
};
pub use tx::{Op, SignedTx, Transaction};
