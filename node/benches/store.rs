//! The sled chain store: committing one block (one transaction across the
//! trees, then one flush = fsync) at block sizes, on the real disk.
//!
//! `cargo bench -p phalanx-node --bench store`

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phalanx_consensus::smr::TxOutcome;
use phalanx_consensus::types::{Block, Certificate, CertifiedBlock, Tx, payload_root};
use phalanx_crypto::{Hash, Keypair};
use phalanx_node::store::{ChainStore, CommitRecord, SledStore};
use std::collections::BTreeMap;

const CHAIN: &str = "bench";

/// A fresh store holding genesis, and the record that commits height 1.
fn setup(txs: usize, dir: &tempfile::TempDir) -> (SledStore, CommitRecord) {
    let key = Keypair::from_seed(&[3; 32]);
    let genesis = Block::genesis(CHAIN, 0, Hash::digest(b"app"), key.public());
    let store = SledStore::open(&dir.path().join("data")).unwrap();
    store.init_genesis(&genesis, &BTreeMap::new(), genesis.header.app_hash).unwrap();
    let txs: Vec<Tx> = (0..txs)
        .map(|i| {
            let mut t = vec![0u8; 512];
            t[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Bytes::from(t)
        })
        .collect();
    let mut header = genesis.header.clone();
    header.height = 1;
    header.parent = genesis.id();
    header.payload_root = payload_root(&txs);
    let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
        (0..txs.len()).map(|i| (format!("k/key{i}").into_bytes(), Some(vec![1u8; 64]))).collect();
    let outcomes = txs.iter().map(|_| TxOutcome::ok()).collect();
    let block = Block::sign(header, Certificate::Genesis, txs, &key);
    let cert = Certificate::Raft { term: 0, index: 1 };
    let record = CommitRecord { block: CertifiedBlock { block, cert }, outcomes, writes, app_hash: Hash::digest(b"1") };
    (store, record)
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("sled commit of one block (with fsync)");
    group.sample_size(20);
    for n in [1usize, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("transactions", n), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let (store, record) = setup(n, &dir);
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

criterion_group!(benches, commit);
criterion_main!(benches);
