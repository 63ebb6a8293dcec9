//! The transactions of one measured run, made before the clock starts.
//!
//! - `kv`: `Op::Put` of a unique key (`bench/<run id>/<index>`) to a 32-byte
//!   value, signed by one of K fresh accounts. Transaction `i` belongs to
//!   account `i % K` with nonce `i / K`, so each account's nonces are
//!   consecutive in schedule order. A `Put` needs no balance, so fresh keys
//!   work on any chain, including one the benchmark attaches to. Every
//!   transaction is signed and base64-encoded in advance (on every core).
//! - `noop`: payload `i` is an 18-byte header (a random 10-byte run id and
//!   `i`, big-endian) followed by filler up to the payload size, so every
//!   payload is unique. The filler's base64 is computed once; since 18 is a
//!   multiple of 3, a payload's base64 is its header's base64 followed by
//!   the filler's, which the sender joins while writing the request.
//!
//! Each transaction's hash (SHA-256 of its bytes, as the node computes it) is
//! computed in advance and indexed by its first 8 bytes, so a commit
//! notification is matched with one map lookup.

use base64::Engine as _;
use phalanx_crypto::{Hash, Keypair};
use phalanx_node::app::{Op, Transaction};
use rand::RngCore as _;
use std::collections::HashMap;

/// Bytes of a `noop` payload's unique header.
pub const NOOP_HEADER_BYTES: usize = 18;

enum Kind {
    /// Base64 of each signed transaction.
    Signed { b64: Vec<Box<str>>, accounts: usize },
    /// Payloads made from a header and shared filler.
    Payload { run_id: [u8; 10], filler_b64: String },
}

/// The pre-made transactions of one run.
pub struct Workload {
    kind: Kind,
    hashes: Vec<[u8; 32]>,
    index: HashMap<u64, u32>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn prefix_u64(h: &[u8; 32]) -> u64 {
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// Runs `f(i)` for `i` in `0..n` on every core, in order.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n.max(1));
    let chunk = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                s.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Vec<T>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a workload thread panicked")).collect()
    })
}

impl Workload {
    /// `n` signed `Put`s for `chain_id` from `accounts` fresh accounts.
    pub fn kv(chain_id: &str, n: usize, accounts: usize) -> Workload {
        let keys: Vec<Keypair> = (0..accounts).map(|_| Keypair::generate()).collect();
        let mut run = [0u8; 4];
        rand::thread_rng().fill_bytes(&mut run);
        let run = hex::encode(run);
        let made = par_map(n, |i| {
            let key = &keys[i % accounts];
            let op = Op::Put { key: format!("bench/{run}/{i}").into_bytes(), value: [0x5a; 32].to_vec() };
            let tx =
                Transaction { chain_id: chain_id.to_owned(), sender: key.public(), nonce: (i / accounts) as u64, op };
            let bytes = tx.sign(key).encode();
            (b64(&bytes).into_boxed_str(), *Hash::digest(&bytes).as_bytes())
        });
        let (b64, hashes): (Vec<_>, Vec<_>) = made.into_iter().unzip();
        Workload::indexed(Kind::Signed { b64, accounts }, hashes)
    }

    /// `n` unique payloads of `payload_bytes` (at least
    /// [`NOOP_HEADER_BYTES`]).
    pub fn noop(n: usize, payload_bytes: usize) -> Workload {
        assert!(payload_bytes >= NOOP_HEADER_BYTES, "noop payloads hold an {NOOP_HEADER_BYTES}-byte header");
        let mut run_id = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut run_id);
        let filler: Vec<u8> = (0..payload_bytes - NOOP_HEADER_BYTES).map(|j| (j % 251) as u8 ^ 0xa5).collect();
        let hashes = par_map(n, |i| {
            let mut payload = Self::header(&run_id, i).to_vec();
            payload.extend_from_slice(&filler);
            *Hash::digest(&payload).as_bytes()
        });
        Workload::indexed(Kind::Payload { run_id, filler_b64: b64(&filler) }, hashes)
    }

    fn header(run_id: &[u8; 10], i: usize) -> [u8; NOOP_HEADER_BYTES] {
        let mut h = [0u8; NOOP_HEADER_BYTES];
        h[..10].copy_from_slice(run_id);
        h[10..].copy_from_slice(&(i as u64).to_be_bytes());
        h
    }

    fn indexed(kind: Kind, hashes: Vec<[u8; 32]>) -> Workload {
        let mut index = HashMap::with_capacity(hashes.len());
        for (i, h) in hashes.iter().enumerate() {
            index.insert(prefix_u64(h), i as u32);
        }
        Workload { kind, hashes, index }
    }

    /// How many transactions there are.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The number of signing accounts (`kv`), or `None` (`noop`: every
    /// payload stands alone).
    pub fn accounts(&self) -> Option<usize> {
        match &self.kind {
            Kind::Signed { accounts, .. } => Some(*accounts),
            Kind::Payload { .. } => None,
        }
    }

    /// Appends transaction `i`'s base64 to `out`.
    pub fn write_b64(&self, i: usize, out: &mut String) {
        match &self.kind {
            Kind::Signed { b64, .. } => out.push_str(&b64[i]),
            Kind::Payload { run_id, filler_b64 } => {
                base64::engine::general_purpose::STANDARD.encode_string(Self::header(run_id, i), out);
                out.push_str(filler_b64);
            }
        }
    }

    /// The hash of transaction `i`, in hex.
    pub fn hash_hex(&self, i: usize) -> String {
        hex::encode(self.hashes[i])
    }

    /// The transaction whose hash is `hash_hex` (64 hex digits), if it is one
    /// of ours.
    pub fn find(&self, hash_hex: &str) -> Option<usize> {
        let mut h = [0u8; 32];
        hex::decode_to_slice(hash_hex, &mut h).ok()?;
        let i = *self.index.get(&prefix_u64(&h))? as usize;
        (self.hashes[i] == h).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_node::app::SignedTx;

    fn bytes_of(w: &Workload, i: usize) -> Vec<u8> {
        let mut s = String::new();
        w.write_b64(i, &mut s);
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn kv_transactions_are_signed_with_consecutive_nonces_per_account() {
        let w = Workload::kv("chain", 10, 3);
        assert_eq!(w.accounts(), Some(3));
        let txs: Vec<SignedTx> = (0..10).map(|i| SignedTx::decode(&bytes_of(&w, i)).unwrap()).collect();
        for (i, t) in txs.iter().enumerate() {
            assert!(t.verify_signature());
            assert_eq!(t.tx.nonce, (i / 3) as u64);
            assert_eq!(t.tx.sender, txs[i % 3].tx.sender);
            assert_eq!(w.find(&t.hash().to_hex()), Some(i));
        }
        assert_ne!(txs[0].tx.sender, txs[1].tx.sender);
    }

    #[test]
    fn noop_payloads_are_unique_have_the_size_and_are_found_by_hash() {
        let w = Workload::noop(100, 512);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..100 {
            let b = bytes_of(&w, i);
            assert_eq!(b.len(), 512);
            assert!(seen.insert(b.clone()));
            assert_eq!(w.find(&Hash::digest(&b).to_hex()), Some(i));
        }
        assert_eq!(w.find(&Hash::digest(b"other").to_hex()), None);
        assert_eq!(w.find("not hex"), None);
    }
}
