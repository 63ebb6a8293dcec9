//! Mempool admission and reaping at block sizes (the application's
//! signature check is left out: a checker that decodes sender and nonce
//! from the bytes stands in, so this measures the pool itself).
//!
//! `cargo bench -p phalanx-mempool`

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use phalanx_crypto::{Keypair, PublicKey};
use phalanx_mempool::{MempoolConfig, Rejection, SharedMempool, TxChecker, TxInfo};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;

/// Transactions are `sender index (1 byte) || nonce (8 bytes LE) || padding`.
struct Decode(Vec<PublicKey>);

impl TxChecker for Decode {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection> {
        let sender = self.0[tx[0] as usize];
        let nonce = u64::from_le_bytes(tx[1..9].try_into().expect("9 bytes at least"));
        Ok(TxInfo { sender: *sender.as_bytes(), nonce, next_nonce: 0 })
    }
}

const SENDERS: usize = 64;
const PER_SENDER: u64 = 64;

fn txs() -> Vec<Bytes> {
    let mut out = Vec::new();
    for nonce in 0..PER_SENDER {
        for s in 0..SENDERS {
            let mut t = vec![0u8; 512];
            t[0] = s as u8;
            t[1..9].copy_from_slice(&nonce.to_le_bytes());
            out.push(Bytes::from(t));
        }
    }
    out
}

fn pool() -> SharedMempool {
    SharedMempool::new(MempoolConfig { max_txs: 100_000, max_bytes: 1 << 30, max_tx_bytes: 1024, max_nonce_gap: 1024 })
}

fn mempool(c: &mut Criterion) {
    let checker = Decode((0..SENDERS).map(|i| Keypair::from_seed(&[i as u8 + 1; 32]).public()).collect());
    let txs = txs();
    let mut group = c.benchmark_group("mempool, 512-byte transactions");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.bench_function("admit 4096", |b| {
        b.iter_batched(
            pool,
            |p| {
                for t in &txs {
                    p.add(t.clone(), &checker).unwrap();
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("reap 4096 of 4096", |b| {
        b.iter_batched(
            || {
                let p = pool();
                for t in &txs {
                    p.add(t.clone(), &checker).unwrap();
                }
                p
            },
            |p| black_box(p.reap(usize::MAX, txs.len(), &HashSet::new(), &HashMap::new())),
            BatchSize::LargeInput,
        )
    });
    // Noop-style payloads: each is its own sender (its hash), at nonce 0.
    let lone = Unordered;
    let hashes: Vec<phalanx_crypto::Hash> = txs.iter().map(|t| phalanx_crypto::Hash::digest(t)).collect();
    group.bench_function("admit then commit 4096, one sender each", |b| {
        b.iter_batched(
            pool,
            |p| {
                for t in &txs {
                    p.add(t.clone(), &lone).unwrap();
                }
                p.update(&hashes, &[]);
                p
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Each transaction is its own sender, at nonce 0 (as the noop application).
struct Unordered;

impl TxChecker for Unordered {
    fn check(&self, tx: &[u8]) -> Result<TxInfo, Rejection> {
        Ok(TxInfo { sender: *phalanx_crypto::Hash::digest(tx).as_bytes(), nonce: 0, next_nonce: 0 })
    }
}

criterion_group!(benches, mempool);
criterion_main!(benches);
