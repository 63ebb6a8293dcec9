//! Signature verification (single and batched) and hashing: the per-
//! transaction and per-vote costs everything else is built on.
//!
//! `cargo bench -p phalanx-crypto`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use phalanx_crypto::{Domain, Hash, Keypair, SignedMessage, signing_message, verify_batch};
use std::hint::black_box;

fn signatures(c: &mut Criterion) {
    let keys: Vec<Keypair> = (0..1024u32)
        .map(|i| {
            let mut seed = [1u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            Keypair::from_seed(&seed)
        })
        .collect();
    let bodies: Vec<Vec<u8>> = (0..1024u32).map(|i| format!("transaction body {i:08}").into_bytes()).collect();
    let sigs: Vec<_> = keys.iter().zip(&bodies).map(|(k, b)| k.sign(Domain::Transaction, "bench", b)).collect();
    let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();

    c.bench_function("ed25519 verify, one signature", |b| {
        b.iter(|| pks[0].verify(Domain::Transaction, "bench", black_box(&bodies[0]), &sigs[0]).unwrap())
    });

    let messages: Vec<Vec<u8>> = bodies.iter().map(|b| signing_message(Domain::Transaction, "bench", b)).collect();
    let mut group = c.benchmark_group("ed25519 verify_batch");
    for n in [8usize, 64, 256, 1024] {
        let items: Vec<SignedMessage<'_>> =
            (0..n).map(|i| SignedMessage { message: &messages[i], signature: &sigs[i], signer: &pks[i] }).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &items, |b, items| {
            b.iter(|| verify_batch(black_box(items)).unwrap())
        });
    }
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("sha256");
    for size in [512usize, 1 << 20] {
        let data = vec![7u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, d| b.iter(|| Hash::digest(black_box(d))));
    }
    group.finish();
}

criterion_group!(benches, signatures, hashing);
criterion_main!(benches);
