//! The sled chain store: committing one block (one transaction across the
//! trees, then one flush = fsync) at block sizes, on the real disk.
//!
//! Two groups:
//! - `sled commit of one block`: into a fresh store (only genesis), the
//!   block not saved before;
//! - `sled commit on a grown chain`: into a store that already indexes
//!   `GROWN_TXS` transactions, the block saved first with `save_block` as a
//!   HotStuff replica does before voting: what a validator pays per block
//!   once its chain has grown past the page cache.
//!
//! `cargo bench -p phalanx-node --bench store`

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phalanx_consensus::smr::TxOutcome;
use phalanx_consensus::types::{Block, BlockHeader, Certificate, CertifiedBlock, Tx, payload_root, tx_hash};
use phalanx_crypto::{Hash, Keypair};
use phalanx_node::store::{ChainStore, CommitRecord, SledStore};
use std::collections::BTreeMap;

const CHAIN: &str = "bench";
/// Transactions indexed before the measured commit in the grown-chain group.
const GROWN_TXS: usize = 262_144;
/// Transactions per block while growing the chain.
const GROWN_BLOCK: usize = 4096;

/// `n` distinct 512-byte payloads, numbered from `first`.
fn payloads(first: usize, n: usize) -> Vec<Tx> {
    (first..first + n)
        .map(|i| {
            let mut t = vec![0u8; 512];
            t[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Bytes::from(t)
        })
        .collect()
}

/// The record committing `txs` on top of `parent`.
fn record(parent: &BlockHeader, txs: Vec<Tx>, key: &Keypair) -> CommitRecord {
    let mut header = parent.clone();
    header.height = parent.height + 1;
    header.parent = parent.id();
    header.payload_root = payload_root(&txs);
    let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
        (0..txs.len()).map(|i| (format!("k/{}/{i}", header.height).into_bytes(), Some(vec![1u8; 64]))).collect();
    let outcomes = txs.iter().map(|_| TxOutcome::ok()).collect();
    let tx_hashes = txs.iter().map(|t| tx_hash(t)).collect();
    let block = Block::sign(header, Certificate::Genesis, txs, key);
    let cert = Certificate::Raft { term: 0, index: block.height() };
    CommitRecord { block: CertifiedBlock { block, cert }, outcomes, writes, app_hash: Hash::digest(b"app"), tx_hashes }
}

/// A fresh store holding genesis, and its header.
fn fresh(dir: &tempfile::TempDir, key: &Keypair) -> (SledStore, BlockHeader) {
    let genesis = Block::genesis(CHAIN, 0, Hash::digest(b"app"), key.public());
    let store = SledStore::open(&dir.path().join("data")).unwrap();
    store.init_genesis(&genesis, &BTreeMap::new(), genesis.header.app_hash).unwrap();
    (store, genesis.header)
}

fn commit(c: &mut Criterion) {
    let key = Keypair::from_seed(&[3; 32]);
    let mut group = c.benchmark_group("sled commit of one block (with fsync)");
    group.sample_size(20);
    for n in [1usize, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("transactions", n), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let (store, genesis) = fresh(&dir, &key);
                    let record = record(&genesis, payloads(0, n), &key);
                    (dir, store, record)
                },
                |(dir, store, record)| {
                    store.commit(std::slice::from_ref(&record)).unwrap();
                    (dir, store)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn grown(c: &mut Criterion) {
    let key = Keypair::from_seed(&[3; 32]);
    let dir = tempfile::tempdir().unwrap();
    let (store, mut tip) = fresh(&dir, &key);
    let mut next_tx = 0;
    while next_tx < GROWN_TXS {
        let r = record(&tip, payloads(next_tx, GROWN_BLOCK), &key);
        store.commit(std::slice::from_ref(&r)).unwrap();
        tip = r.block.block.header.clone();
        next_tx += GROWN_BLOCK;
    }
    let mut group = c.benchmark_group("sled commit on a grown chain (with fsync)");
    group.sample_size(10);
    group.throughput(Throughput::Elements(GROWN_BLOCK as u64));
    group.bench_function(BenchmarkId::new("saved block of transactions", GROWN_BLOCK), |b| {
        b.iter_batched(
            || {
                let r = record(&tip, payloads(next_tx, GROWN_BLOCK), &key);
                store.save_block(&r.block.block).unwrap();
                store.flush().unwrap();
                next_tx += GROWN_BLOCK;
                tip = r.block.block.header.clone();
                r
            },
            |r| store.commit(std::slice::from_ref(&r)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, commit, grown);
criterion_main!(benches);
