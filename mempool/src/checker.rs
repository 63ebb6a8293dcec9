//! The application's side of admission: the mempool never decodes a
//! transaction, it asks a [`TxChecker`] (like CometBFT's `CheckTx`).

use crate::{Rejection, Sender};
use phalanx_crypto::Hash;

/// What the application learned checking a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxInfo {
    /// Who signed the transaction.
    pub sender: Sender,
    /// The transaction's nonce; the application executes a sender's
    /// transactions only in exact nonce order.
    pub nonce: u64,
    /// The sender's next nonce in committed state when checked.
    pub next_nonce: u64,
}

/// The application's admission check (signature, chain id, decoding, nonce
/// against committed state).
///
/// [`crate::SharedMempool::add`] calls it without holding the mempool's lock,
/// so an implementation may be slow and may itself use the mempool.
pub trait TxChecker: Send + Sync {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection>;

    /// Checks many transactions; answer `i` is for `txs[i]`, and
    /// `hashes[i]` is `Hash::digest(txs[i])`, computed once by the mempool
    /// so the application need not hash the bytes again. The default checks
    /// them one by one; an application may share work between them (batch
    /// signature verification). Must answer exactly as [`TxChecker::check`]
    /// would for each.
    fn check_batch(&self, txs: &[&[u8]], hashes: &[Hash]) -> Vec<Result<TxInfo, Rejection>> {
        debug_assert_eq!(txs.len(), hashes.len());
        txs.iter().map(|tx| self.check(tx)).collect()
    }
}
