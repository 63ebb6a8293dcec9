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
//! A validator that double-signs in every round would otherwise make every
//! leader submit a piece of evidence per round, each commit of which starts
//! another round: the chain would fill with evidence. So the reporter
//! submits at most one piece per culprit and kind every
//! [`REPORT_EVERY_ROUNDS`] rounds. Every piece is still stored locally and
//! served by `evidence` under `detected` on the node that saw it.
//!
//! Evidence travels as an ordinary transaction rather than in a block field
//! of its own, so the block format, the consensus engines and the simulator
//! are untouched and evidence inherits gossip, admission checks and replay
//! protection (the reporter's nonce) from the transaction path.

use crate::app::{Application, Op, Transaction, account};
use crate::network::{NetMsg, NetworkHandle};
use crate::store::ChainStore;
use bytes::Bytes;
use phalanx_consensus::types::{Evidence, Round, ValidatorId};
use phalanx_crypto::Keypair;
use phalanx_mempool::SharedMempool;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{info, warn};

/// Rounds between two submissions of evidence against one culprit, per kind.
pub const REPORT_EVERY_ROUNDS: u64 = 16;

/// Submits detected evidence as this validator's transactions.
pub struct EvidenceReporter {
    pub key: Keypair,
    pub chain_id: String,
    pub app: Arc<dyn Application>,
    pub store: Arc<dyn ChainStore>,
    pub mempool: SharedMempool,
    pub net: NetworkHandle,
    /// The nonce after the last evidence transaction submitted.
    next_nonce: u64,
    schedule: ReportSchedule,
}

/// Which evidence is worth a transaction: at most one per culprit and kind
/// every [`REPORT_EVERY_ROUNDS`] rounds.
#[derive(Default)]
pub struct ReportSchedule {
    last: HashMap<(ValidatorId, &'static str), Round>,
}

impl ReportSchedule {
    /// Whether `e` is due for submission.
    pub fn due(&self, e: &Evidence) -> bool {
        match self.last.get(&(e.culprit(), e.kind())) {
            Some(&last) => e.round() < last || e.round() >= last.saturating_add(REPORT_EVERY_ROUNDS),
            None => true,
        }
    }

    /// Notes that `e` was submitted.
    pub fn submitted(&mut self, e: &Evidence) {
        self.last.insert((e.culprit(), e.kind()), e.round());
    }
}

impl EvidenceReporter {
    pub fn new(
        key: Keypair,
        chain_id: String,
        app: Arc<dyn Application>,
        store: Arc<dyn ChainStore>,
        mempool: SharedMempool,
        net: NetworkHandle,
    ) -> EvidenceReporter {
        EvidenceReporter { key, chain_id, app, store, mempool, net, next_nonce: 0, schedule: ReportSchedule::default() }
    }

    /// Signs `e` into a transaction, admits it locally and gossips it.
    pub fn report(&mut self, e: &Evidence) {
        if !self.schedule.due(e) {
            return;
        }
        let committed = account(self.store.as_state(), &self.key.public()).nonce;
        let nonce = committed.max(self.next_nonce);
        let tx = Transaction {
            chain_id: self.chain_id.clone(),
            sender: self.key.public(),
            nonce,
            op: Op::Evidence(Box::new(e.clone())),
        };
        let bytes = Bytes::from(tx.sign(&self.key).encode());
        match self.mempool.add(bytes.clone(), &crate::app::checker(&*self.app, self.store.as_state())) {
            Ok(hash) => {
                self.next_nonce = nonce + 1;
                self.schedule.submitted(e);
                info!(culprit = %e.culprit().short(), round = e.round(), kind = e.kind(), tx = %hash, "evidence submitted for inclusion in a block");
                self.net.broadcast(&NetMsg::Txs(vec![bytes]));
            }
            Err(r) => warn!(reason = %r, culprit = %e.culprit().short(), "evidence transaction not admitted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_consensus::types::VoteData;
    use phalanx_crypto::{Hash, Signature};

    fn double_vote(culprit: u8, round: Round) -> Evidence {
        let author = Keypair::from_seed(&[culprit; 32]).public();
        let data =
            |t: &[u8]| VoteData { block_id: Hash::digest(t), round, height: 1, parent_id: Hash::ZERO, parent_round: 0 };
        let sig = Signature([0; 64]);
        Evidence::DoubleVote { author, a: data(b"a"), sig_a: sig, b: data(b"b"), sig_b: sig }
    }

    #[test]
    fn one_submission_per_culprit_and_kind_every_16_rounds() {
        let mut s = ReportSchedule::default();
        assert!(s.due(&double_vote(1, 10)));
        s.submitted(&double_vote(1, 10));
        assert!(!s.due(&double_vote(1, 11)));
        assert!(!s.due(&double_vote(1, 25)));
        assert!(s.due(&double_vote(1, 26)));
        assert!(s.due(&double_vote(2, 11)), "another culprit is due");
        assert!(s.due(&double_vote(1, 3)), "an older round than the last is due");
    }
}
