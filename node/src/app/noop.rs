//! The benchmark application: orders opaque payloads and applies nothing.
//!
//! Chosen with `"app": {"kind": "noop"}` in genesis, it lets consensus
//! throughput be compared with systems that order unsigned payloads. It
//! accepts any payload up to `consensus.tx_max_bytes` (except the prefix
//! reserved for Raft configuration entries, which it records as the key-value
//! application does, so Raft snapshots carry their membership), changes no
//! state, and chains the application hash over the block's payload root
//! (the Merkle root of the payload hashes, in order, which the committer
//! checks against the payloads before executing):
//! `H(domain || previous hash || height || payload root)`.
//!
//! There are no senders, nonces or signatures: each payload is its own
//! "sender" with nonce 0, so the mempool never orders two of them. The only
//! replay protection is the mempool's memory of its last `mempool.max_txs`
//! committed hashes (it refuses those with code 1010, so a payload that
//! reaches a node again by late gossip does not commit twice); the same
//! payload submitted after that commits again. Clients that need each
//! payload once must make them unique.

use super::Application;
use super::kv::RAFT_CONFIG_KEY;
use phalanx_consensus::raft::{CONFIG_TX_PREFIX, is_config_tx};
use phalanx_consensus::smr::{Execution, PayloadVerifier, StateMachine, StateView, TxOutcome};
use phalanx_consensus::types::{Block, Tx};
use phalanx_crypto::{Hash, Hasher};
use phalanx_mempool::{Rejection, Sender, TxInfo};
use std::collections::BTreeMap;

/// The no-op application.
pub struct NoopApp {
    tx_max_bytes: usize,
}

impl NoopApp {
    pub fn new(tx_max_bytes: usize) -> NoopApp {
        NoopApp { tx_max_bytes }
    }

    /// The empty initial state and its hash.
    pub fn genesis_state() -> (BTreeMap<Vec<u8>, Vec<u8>>, Hash) {
        (BTreeMap::new(), Hasher::with_domain(b"phalanx/noop-genesis/v1\0").finish())
    }

    fn check(&self, tx: &[u8]) -> Result<(), Rejection> {
        if tx.len() > self.tx_max_bytes {
            return Err(Rejection::TooLarge { size: tx.len(), max: self.tx_max_bytes });
        }
        if tx.is_empty() {
            return Err(Rejection::Malformed("an empty payload".into()));
        }
        if is_config_tx(tx) {
            return Err(Rejection::Malformed(
                "the bytes begin with the prefix reserved for raft configuration entries".into(),
            ));
        }
        Ok(())
    }
}

impl PayloadVerifier for NoopApp {
    fn verify_payload(&self, txs: &[Tx], _hashes: &[Hash]) -> Result<(), String> {
        for (i, tx) in txs.iter().enumerate() {
            self.check(tx).map_err(|e| format!("transaction {i}: {e}"))?;
        }
        Ok(())
    }
}

impl StateMachine for NoopApp {
    fn name(&self) -> &'static str {
        "noop"
    }

    fn execute(&self, _state: &dyn StateView, prev_app_hash: &Hash, block: &Block) -> Execution {
        let mut writes = BTreeMap::new();
        for tx in &block.txs {
            if let Some(config) = tx.strip_prefix(CONFIG_TX_PREFIX) {
                writes.insert(RAFT_CONFIG_KEY.to_vec(), Some(config.to_vec()));
            }
        }
        // The payload root covers every payload, in order: the committer
        // checks it against the transactions before anything executes, so
        // the payloads need not be hashed again here.
        let mut h = Hasher::with_domain(b"phalanx/noop-app/v2\0");
        h.update(prev_app_hash.as_bytes())
            .update(&block.height().to_be_bytes())
            .update(block.header.payload_root.as_bytes());
        let outcomes = vec![TxOutcome::ok(); block.txs.len()];
        Execution { writes, outcomes, app_hash: h.finish() }
    }
}

impl Application for NoopApp {
    fn check_tx(&self, _state: &dyn StateView, tx: &[u8]) -> Result<TxInfo, Rejection> {
        self.check(tx)?;
        Ok(unordered(&Hash::digest(tx)))
    }

    fn check_tx_batch(&self, _state: &dyn StateView, txs: &[&[u8]], hashes: &[Hash]) -> Vec<Result<TxInfo, Rejection>> {
        txs.iter().zip(hashes).map(|(tx, hash)| self.check(tx).map(|()| unordered(hash))).collect()
    }

    fn sender_and_nonce(&self, _tx: &[u8]) -> Option<(Sender, u64)> {
        None
    }

    fn next_nonce(&self, _state: &dyn StateView, _sender: &Sender) -> u64 {
        0
    }

    fn snapshot_nonces(&self, _entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Sender, u64)> {
        Vec::new()
    }
}

/// Payloads have no order: each is its own sender (its hash), at nonce 0.
fn unordered(hash: &Hash) -> TxInfo {
    TxInfo { sender: *hash.as_bytes(), nonce: 0, next_nonce: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::checker;
    use phalanx_mempool::{MempoolConfig, SharedMempool};

    fn block(height: u64, txs: Vec<Tx>) -> Block {
        crate::app::test_block("c", height, txs)
    }

    #[test]
    fn payloads_change_nothing_but_the_hash_covers_them() {
        let app = NoopApp::new(512);
        let (state, genesis) = NoopApp::genesis_state();
        let a = app.execute(&state, &genesis, &block(1, vec![Tx::from_static(b"x"), Tx::from_static(b"y")]));
        assert!(a.writes.is_empty());
        assert_eq!(a.outcomes, vec![TxOutcome::ok(); 2]);
        let b = app.execute(&state, &genesis, &block(1, vec![Tx::from_static(b"y"), Tx::from_static(b"x")]));
        assert_ne!(a.app_hash, b.app_hash, "order matters");
        let c = app.execute(&state, &a.app_hash, &block(2, vec![]));
        assert_ne!(c.app_hash, a.app_hash, "the hash chains");
    }

    #[test]
    fn admission_takes_any_payload_within_the_limit() {
        let app = NoopApp::new(4);
        let state = BTreeMap::new();
        let pool = SharedMempool::new(MempoolConfig { max_txs: 10, max_bytes: 100, max_tx_bytes: 4, max_nonce_gap: 0 });
        assert!(pool.add(Tx::from_static(b"abcd"), &checker(&app, &state)).is_ok());
        assert!(pool.add(Tx::from_static(b"wxyz"), &checker(&app, &state)).is_ok(), "no nonce order between payloads");
        assert_eq!(pool.add(Tx::from_static(b"abcd"), &checker(&app, &state)), Err(Rejection::Duplicate));
        assert!(matches!(app.check_tx(&state, b"abcde"), Err(Rejection::TooLarge { .. })));
        assert!(matches!(app.check_tx(&state, b""), Err(Rejection::Malformed(_))));
        assert!(
            app.verify_payload(&[Tx::from_static(b"abcde")], &[Hash::digest(b"abcde")])
                .unwrap_err()
                .contains("transaction 0")
        );
        assert_eq!(
            pool.reap(100, 10, &phalanx_crypto::DigestSet::default(), &std::collections::HashMap::new()).len(),
            2
        );
    }

    /// The batch check answers as the single one, taking each payload's
    /// sender from the hash the mempool computed.
    #[test]
    fn batch_admission_answers_as_single_admission() {
        let app = NoopApp::new(4);
        let state = BTreeMap::new();
        let txs: Vec<&[u8]> = vec![b"abcd", b"", b"abcde", b"xy"];
        let hashes: Vec<Hash> = txs.iter().map(|t| Hash::digest(t)).collect();
        let want: Vec<_> = txs.iter().map(|t| app.check_tx(&state, t)).collect();
        assert_eq!(app.check_tx_batch(&state, &txs, &hashes), want);
        assert_eq!(want[0].as_ref().unwrap().sender, *hashes[0].as_bytes());
    }

    /// The payload root stands for the payloads in the app hash: the same
    /// payloads give the same hash, and the root is what binds them.
    #[test]
    fn the_app_hash_chains_the_payload_root() {
        let app = NoopApp::new(512);
        let (state, genesis) = NoopApp::genesis_state();
        let txs = vec![Tx::from_static(b"x"), Tx::from_static(b"y")];
        let a = app.execute(&state, &genesis, &block(1, txs.clone()));
        assert_eq!(app.execute(&state, &genesis, &block(1, txs.clone())).app_hash, a.app_hash);
        let mut other_root = block(1, txs);
        other_root.header.payload_root = Hash::digest(b"another root");
        assert_ne!(app.execute(&state, &genesis, &other_root).app_hash, a.app_hash);
    }
}
