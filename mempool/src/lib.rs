//! The Phalanx mempool: transactions between admission and commit.
//!
//! What this crate owns:
//! - the pending transactions, as opaque bytes keyed by their SHA-256
//!   ([`phalanx_crypto::Hash::digest`], the same digest as the tx index);
//! - the admission rules that need the pool's own state: size, duplicates,
//!   per-sender nonce windows and conflicts, and the pool's bounds
//!   ([`Mempool::admit`]);
//! - the choice of what goes into the next block ([`Mempool::reap`]): senders
//!   served first-in first-out by their oldest pending transaction, each
//!   sender's transactions in consecutive nonce order, skipping what is
//!   already in uncommitted blocks;
//! - the clean-up after a commit ([`Mempool::update`]);
//! - a thread-safe handle that runs the application's check without holding
//!   the pool's lock and counts what it admits and refuses ([`SharedMempool`]).
//!
//! What it must never do:
//! - decode a transaction: the application does, through [`TxChecker`], and
//!   hands back a [`TxInfo`] (sender, nonce, committed next nonce);
//! - grow past its bounds: at most [`MempoolConfig::max_txs`] transactions and
//!   [`MempoolConfig::max_bytes`] bytes, none larger than
//!   [`MempoolConfig::max_tx_bytes`], nonces at most
//!   [`MempoolConfig::max_nonce_gap`] ahead, and a memory of committed nonces
//!   of at most `max_txs` senders;
//! - call the application's checker while holding its lock;
//! - return, in one reap, a transaction twice, or a transaction whose
//!   predecessor nonce is neither committed, in flight, nor earlier in the
//!   same reap.

mod checker;
mod pool;
mod rejection;
mod senders;
mod shared;

#[cfg(test)]
mod tests;

pub use checker::{TxChecker, TxInfo};
pub use pool::{Mempool, MempoolConfig, Origin};
pub use rejection::Rejection;
pub use shared::{MempoolStats, SharedMempool};

/// Who sent a transaction, as 32 bytes (an ed25519 public key for the
/// key-value application): its nonces are counted per sender.
pub type Sender = [u8; 32];
