//! Tests of the mempool, one per behaviour. Test transactions are
//! `[sender index] ++ nonce (8 bytes, little endian) ++ pad`, so the tests can
//! read back what a reap returned; the mempool itself never decodes them.

mod admit;
mod props;
mod reap;
mod rejection;
mod shared;
mod update;

use crate::{Mempool, MempoolConfig, Sender, TxInfo};
use bytes::Bytes;
use phalanx_crypto::{Hash, Keypair};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// Size of a test transaction with no padding.
pub(crate) const BASE: usize = 9;

static SENDERS: LazyLock<Vec<Sender>> =
    LazyLock::new(|| (1..=8u8).map(|i| *Keypair::from_seed(&[i; 32]).public().as_bytes()).collect());

pub(crate) fn sender(index: u8) -> Sender {
    SENDERS[index as usize]
}

/// A test transaction from sender `index` with `nonce`, `BASE + pad` bytes long.
pub(crate) fn tx(index: u8, nonce: u64, pad: usize) -> Bytes {
    let mut bytes = vec![index];
    bytes.extend_from_slice(&nonce.to_le_bytes());
    bytes.extend(std::iter::repeat_n(0xAB, pad));
    Bytes::from(bytes)
}

/// Reads back `(sender index, nonce)` from a test transaction.
pub(crate) fn decode(tx: &[u8]) -> (u8, u64) {
    (tx[0], u64::from_le_bytes(tx[1..BASE].try_into().unwrap()))
}

pub(crate) fn info(index: u8, nonce: u64, next_nonce: u64) -> TxInfo {
    TxInfo { sender: sender(index), nonce, next_nonce }
}

/// 100 transactions, 10,000 bytes, 1,000 bytes each, nonces up to 16 ahead.
pub(crate) fn config() -> MempoolConfig {
    MempoolConfig { max_txs: 100, max_bytes: 10_000, max_tx_bytes: 1_000, max_nonce_gap: 16 }
}

/// Admits an unpadded transaction whose sender's committed next nonce is 0.
pub(crate) fn admit(pool: &mut Mempool, index: u8, nonce: u64) -> Hash {
    admit_padded(pool, index, nonce, 0)
}

pub(crate) fn admit_padded(pool: &mut Mempool, index: u8, nonce: u64, pad: usize) -> Hash {
    let hash = pool.admit(tx(index, nonce, pad), info(index, nonce, 0)).expect("admitted");
    pool.check_invariants();
    hash
}

/// What a reap with no limits, exclusions or in-flight blocks returns, decoded.
pub(crate) fn reap_all(pool: &Mempool) -> Vec<(u8, u64)> {
    reap_decoded(pool, usize::MAX, usize::MAX, &HashSet::new(), &HashMap::new())
}

pub(crate) fn reap_decoded(
    pool: &Mempool,
    max_bytes: usize,
    max_txs: usize,
    exclude: &HashSet<Hash>,
    in_flight: &HashMap<Sender, u64>,
) -> Vec<(u8, u64)> {
    pool.reap(max_bytes, max_txs, exclude, in_flight).iter().map(|t| decode(t)).collect()
}
