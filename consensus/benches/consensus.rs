//! Consensus hot paths: quorum certificate verification, and block
//! encoding, decoding and hashing at realistic sizes.
//!
//! `cargo bench -p phalanx-consensus`

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phalanx_consensus::types::{Block, QuorumCert, SignerBitmap, Tx, ValidatorSet, VoteData, payload_root};
use phalanx_consensus::verify::{Verifier, genesis_qc};
use phalanx_crypto::{Domain, Hash, Keypair, codec};
use std::hint::black_box;

const CHAIN: &str = "bench";

fn qc_verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_qc");
    for n in [4usize, 31, 100] {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(&[(i + 1) as u8; 32])).collect();
        let set = ValidatorSet::equal(&keys.iter().map(|k| k.public()).collect::<Vec<_>>());
        let genesis = Block::genesis(CHAIN, 0, Hash::digest(b"app"), keys[0].public());
        let data = VoteData::for_block(&block_of(1, 8));
        let quorum = n - (n - 1) / 3;
        let mut signers = SignerBitmap::with_len(n);
        let mut signatures = Vec::new();
        for (i, k) in keys.iter().enumerate().take(quorum) {
            signers.set(i);
            signatures.push(k.sign(Domain::Vote, CHAIN, &data.signing_body()));
        }
        let qc = QuorumCert { vote: data, signers, signatures };
        group.throughput(Throughput::Elements(quorum as u64));
        group.bench_with_input(BenchmarkId::new("validators", n), &qc, |b, qc| {
            // A fresh verifier each time: it caches certificates it checked.
            b.iter_batched(
                || Verifier::new(CHAIN.into(), set.clone(), genesis_qc(&genesis)),
                |mut v| v.verify_qc(black_box(qc)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn block_of(txs: usize, tx_bytes: usize) -> Block {
    let key = Keypair::from_seed(&[9; 32]);
    let genesis = Block::genesis(CHAIN, 0, Hash::digest(b"app"), key.public());
    let txs: Vec<Tx> = (0..txs)
        .map(|i| {
            let mut t = vec![0u8; tx_bytes];
            t[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Bytes::from(t)
        })
        .collect();
    let mut header = genesis.header.clone();
    header.height = 1;
    header.round = 1;
    header.parent = genesis.id();
    header.payload_root = payload_root(&txs);
    Block::sign(header, phalanx_consensus::types::Certificate::Genesis, txs, &key)
}

fn blocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("block, 512-byte transactions");
    for n in [100usize, 2000] {
        let block = block_of(n, 512);
        let bytes = codec::encode(&block);
        group.throughput(Throughput::Elements(n as u64));
        group
            .bench_with_input(BenchmarkId::new("encode", n), &block, |b, blk| b.iter(|| codec::encode(black_box(blk))));
        group.bench_with_input(BenchmarkId::new("decode", n), &bytes, |b, bytes| {
            b.iter(|| codec::decode::<Block>(black_box(bytes)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("payload_root", n), &block, |b, blk| {
            b.iter(|| payload_root(black_box(&blk.txs)))
        });
        group.bench_with_input(BenchmarkId::new("id and signature check", n), &block, |b, blk| {
            b.iter(|| black_box(blk).verify_signature())
        });
    }
    group.finish();
}

criterion_group!(benches, qc_verification, blocks);
criterion_main!(benches);
