//! Evidence of misbehaviour, from detection to the chain.
//!
//! The HotStuff engine detects two validly signed conflicting messages from
//! one validator (two proposals, or two votes, for one round) and emits
//! `Action::Evidence`. The driver stores the pair locally and hands it to
//! the [`EvidenceReporter`], which submits it as a transaction signed by
//! this validator's key (`Op::Evidence`, like the Cosmos SDK's
//! `MsgSubmitEvidence`): admitted to the local mempool and gossiped, so the
//! next leader includes it in a block. Every replica then executes it: the
//! application verifies the proof against the validator set and records it
//! in the state once per misbehaviour, so all replicas hold the same
//! evidence under the same application hash, and later reports of the same
//! misbehaviour fail without effect.
//!
//! Evidence travels as an ordinary transaction rather than in a block field
//! of its own, so the block format, the consensus engines and the simulator
//! are untouched and evidence inherits gossip, admission checks and replay
//! protection (the reporter's nonce) from the transaction path.

use crate::app::{KvApp, Op, Transaction, account};
use crate::network::{NetMsg, NetworkHandle};
use crate::store::ChainStore;
use bytes::Bytes;
use phalanx_consensus::types::Evidence;
use phalanx_crypto::Keypair;
use phalanx_mempool::SharedMempool;
use std::sync::Arc;
use tracing::{info, warn};

/// Submits detected evidence as this validator's transactions.
pub struct EvidenceReporter {
    pub key: Keypair,
    pub chain_id: String,
    pub app: Arc<KvApp>,
    pub store: Arc<dyn ChainStore>,
    pub mempool: SharedMempool,
    pub net: NetworkHandle,
    /// The nonce after the last evidence transaction submitted.
    next_nonce: u64,
}

impl EvidenceReporter {
    pub fn new(
        key: Keypair,
        chain_id: String,
        app: Arc<KvApp>,
        store: Arc<dyn ChainStore>,
        mempool: SharedMempool,
        net: NetworkHandle,
    ) -> EvidenceReporter {
        EvidenceReporter { key, chain_id, app, store, mempool, net, next_nonce: 0 }
    }

    /// Signs `e` into a transaction, admits it locally and gossips it.
    pub fn report(&mut self, e: &Evidence) {
        let committed = account(self.store.as_state(), &self.key.public()).nonce;
        let nonce = committed.max(self.next_nonce);
        let tx = Transaction {
            chain_id: self.chain_id.clone(),
            sender: self.key.public(),
            nonce,
            op: Op::Evidence(Box::new(e.clone())),
        };
        let bytes = Bytes::from(tx.sign(&self.key).encode());
        match self.mempool.add(bytes.clone(), &self.app.checker(self.store.as_state())) {
            Ok(hash) => {
                self.next_nonce = nonce + 1;
                info!(culprit = %e.culprit().short(), round = e.round(), kind = e.kind(), tx = %hash, "evidence submitted for inclusion in a block");
                self.net.broadcast(&NetMsg::Txs(vec![bytes]));
            }
            Err(r) => warn!(reason = %r, culprit = %e.culprit().short(), "evidence transaction not admitted"),
        }
    }
}
