//! The workload: concurrent clients doing key-value puts and reads and
//! account transfers through RPC, each operation recorded with its
//! invocation and response times.
//!
//! Each client owns one funded account and tracks its nonce. It submits to
//! an honest node that is up, round-robin, with `broadcast_tx_commit`, and
//! records what came back: committed (height and result code), rejected at
//! admission (it never takes effect), not sent (connection refused), or
//! unknown (a timeout or a dropped connection: it may still commit).
//!
//! **Nonces.** After a commit with code 0 or 10 (insufficient funds) the
//! nonce is used and the next one is known. After anything else the client
//! does not guess: before its next transaction it reads its account's next
//! nonce from the node it is about to use. A transaction that is still in
//! flight with that nonce then competes with the new one; at most one of
//! them executes (the other commits with code 4 or is refused), and the
//! history records each truthfully, so no outcome is ever assumed.
//!
//! **Puts** write unique values (`c<client>-<seq>`) to a few keys, so every
//! read names the write it saw.
//!
//! **Linearizable reads.** In Raft mode a read is `query` with
//! `"consistency": "linearizable"` (ReadIndex on the node). HotStuff's
//! `query` serves the node's local committed state, which may lag, so a
//! read is a *barrier read* on one node X: the client commits a barrier
//! transaction (a put to its private key `_barrier/c<client>`) through X
//! with `broadcast_tx_commit`, then reads the key from X (`"latest"`). The
//! read's invocation is the barrier's invocation, its response the
//! query's answer. This is linearizable: a write W acknowledged before the
//! read began was in a block committed before the barrier existed, so the
//! barrier's block is above W's; X acknowledged the barrier only after
//! committing it, and its committed state never goes back, so the state X
//! answers from includes W. That state was committed before the answer, so
//! any write the read sees was committed (took effect) before the read
//! ended. Placing each read at the height X answered from orders it after
//! every write below that height and before every write invoked after the
//! answer (such a write can only enter a later block).

use super::live::{CLIENT_MARGIN, COMMIT_TIMEOUT, QUICK, Shared, Submitted, classify, submit};
use super::spec::{Pacing, Protocol, Workload};
use base64::Engine as _;
use phalanx_crypto::{Hash, Keypair, PublicKey};
use phalanx_node::app::{Op, Transaction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a client with no node to talk to looks again.
const NO_NODE_WAIT: Duration = Duration::from_millis(50);

/// What an operation asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpKind {
    Put {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    Transfer {
        to: usize,
        amount: u64,
    },
    /// The barrier transaction of a HotStuff read (a put to a private key).
    Barrier {
        key: String,
    },
}

/// What an operation got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The transaction is in block `height`, with result `code`.
    Committed { height: u64, code: u64 },
    /// A read's answer, from the state after `height`.
    Read { value: Option<String>, height: u64 },
    /// Refused at admission: no effect.
    Rejected { code: i32, message: String },
    /// The node was not reachable: no effect.
    NotSent { reason: String },
    /// No definite answer: a transaction may still commit.
    Unknown { reason: String },
    /// A read not performed because its barrier did not commit.
    Aborted { reason: String },
}

/// One recorded operation. Times are microseconds since the workload began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpRecord {
    pub client: usize,
    pub seq: u64,
    pub node: usize,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub op: OpKind,
    pub outcome: Outcome,
    /// The transaction's hash (hex), for puts, transfers and barriers.
    pub tx_hash: Option<String>,
    pub nonce: Option<u64>,
}

impl OpRecord {
    /// The commit this operation was told of: (tx hash, height).
    pub fn acked(&self) -> Option<(&str, u64)> {
        match (&self.outcome, &self.tx_hash) {
            (Outcome::Committed { height, .. }, Some(h)) => Some((h.as_str(), *height)),
            _ => None,
        }
    }
}

/// The name of checked key `i`.
pub fn key_name(i: usize) -> String {
    format!("k{i}")
}

/// One client.
pub struct Client {
    pub id: usize,
    key: Keypair,
    /// Every client's account (transfer targets).
    accounts: Arc<Vec<PublicKey>>,
    shared: Arc<Shared>,
    workload: Workload,
    rng: ChaCha8Rng,
    nonce: Option<u64>,
    seq: u64,
    cursor: usize,
    records: Vec<OpRecord>,
}

/// Amount of the transfers that are meant to fail for lack of funds: more
/// than all genesis accounts hold together.
pub const OVERDRAFT: u64 = u64::MAX / 2;

impl Client {
    /// Client `id` signing with `key`; its choices are seeded by `seed` and
    /// `id`; its nonce is read from a node before its first transaction.
    pub fn new(
        id: usize,
        key: Keypair,
        accounts: Arc<Vec<PublicKey>>,
        shared: Arc<Shared>,
        workload: Workload,
        seed: u64,
    ) -> Client {
        let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(id as u64));
        Client { id, key, accounts, shared, workload, rng, nonce: None, seq: 0, cursor: id, records: Vec::new() }
    }

    /// Runs operations until `end`, then returns what happened.
    pub async fn run(mut self, end: Instant) -> Vec<OpRecord> {
        let mut next_at = Instant::now();
        while Instant::now() < end {
            if let Pacing::Rate(rate) = self.workload.pacing {
                tokio::time::sleep_until(next_at.into()).await;
                next_at = Instant::now().max(next_at + Duration::from_secs_f64(1.0 / rate));
                if Instant::now() >= end {
                    break;
                }
            }
            let Some(node) = self.shared.pick(&mut self.cursor) else {
                tokio::time::sleep(NO_NODE_WAIT).await;
                continue;
            };
            self.one_op(node).await;
            if let Pacing::ThinkMs(ms) = self.workload.pacing {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        self.records
    }

    async fn one_op(&mut self, node: usize) {
        let w = &self.workload;
        let total = w.put + w.get + w.transfer;
        let roll = self.rng.gen_range(0..total);
        let key = key_name(self.rng.gen_range(0..w.keys));
        if roll < w.put {
            let value = format!("c{}-{}", self.id, self.seq);
            let op = Op::Put { key: key.clone().into_bytes(), value: value.clone().into_bytes() };
            self.transaction(node, op, OpKind::Put { key, value }).await;
        } else if roll < w.put + w.get {
            self.read(node, key).await;
        } else {
            let others: Vec<usize> = (0..self.workload.clients).filter(|&j| j != self.id).collect();
            let to = others[self.rng.gen_range(0..others.len())];
            let amount = if self.rng.gen_ratio(1, 20) { OVERDRAFT } else { self.rng.gen_range(1..=1000) };
            let op = Op::Transfer { to: self.accounts[to], amount };
            self.transaction(node, op, OpKind::Transfer { to, amount }).await;
        }
    }

    /// Reads this account's next nonce from `node` unless it is known.
    async fn nonce(&mut self, node: usize) -> Option<u64> {
        if self.nonce.is_none() {
            let params = json!({ "account": self.key.public().to_hex() });
            let r = self.shared.call(node, "query", params, QUICK).await.ok()?;
            self.nonce = r["nonce"].as_u64();
        }
        self.nonce
    }

    /// Signs and submits `op` through `node`; records it. Returns the
    /// outcome.
    async fn transaction(&mut self, node: usize, op: Op, kind: OpKind) -> Outcome {
        let Some(nonce) = self.nonce(node).await else {
            // Not recorded: nothing was submitted.
            return Outcome::NotSent { reason: format!("node{node} did not say the account's nonce") };
        };
        let tx = Transaction { chain_id: self.shared.chain_id.clone(), sender: self.key.public(), nonce, op };
        let bytes = tx.sign(&self.key).encode();
        let hash = Hash::digest(&bytes).to_hex();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let seq = self.next_seq();
        let invoke_us = self.shared.now_us();
        let answer = submit(&self.shared, node, &b64).await;
        let complete_us = self.shared.now_us();
        self.nonce = match &answer {
            Submitted::Committed { code: 0 | 10, .. } => Some(nonce + 1),
            Submitted::NotSent(_) => Some(nonce),
            _ => None,
        };
        let outcome = match answer {
            Submitted::Committed { height, code } => Outcome::Committed { height, code },
            Submitted::Rejected { code, message } => Outcome::Rejected { code, message },
            Submitted::NotSent(reason) => Outcome::NotSent { reason },
            Submitted::Unknown(reason) => Outcome::Unknown { reason },
        };
        self.records.push(OpRecord {
            client: self.id,
            seq,
            node,
            invoke_us,
            complete_us,
            op: kind,
            outcome: outcome.clone(),
            tx_hash: Some(hash),
            nonce: Some(nonce),
        });
        outcome
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    /// A linearizable read of `key` through `node` (see the module doc).
    async fn read(&mut self, node: usize, key: String) {
        let invoke_us = self.shared.now_us();
        let mut params = json!({ "key": key });
        let mut barrier_height = 0;
        let timeout = match self.shared.protocol {
            Protocol::Raft => {
                params["consistency"] = json!("linearizable");
                COMMIT_TIMEOUT + CLIENT_MARGIN
            }
            Protocol::HotStuff => {
                let bkey = format!("_barrier/c{}", self.id);
                let op = Op::Put { key: bkey.clone().into_bytes(), value: self.seq.to_string().into_bytes() };
                match self.transaction(node, op, OpKind::Barrier { key: bkey }).await {
                    Outcome::Committed { height, .. } => barrier_height = height,
                    other => return self.aborted(node, key, invoke_us, other),
                }
                params["consistency"] = json!("latest");
                QUICK
            }
        };
        let answer = self.shared.call(node, "query", params, timeout).await;
        let complete_us = self.shared.now_us();
        let outcome = match answer {
            Ok(v) => {
                // An answer from below the barrier would be a node bug; it
                // is recorded as it is and judged by the checker.
                let height = v["height"].as_u64().unwrap_or(0);
                let value = v["value"]["utf8"].as_str().map(str::to_owned);
                if height < barrier_height {
                    eprintln!("node{node} answered a read from height {height}, below its barrier {barrier_height}");
                }
                Outcome::Read { value, height }
            }
            Err(e) => Outcome::Unknown { reason: format!("{:?}", classify(e)) },
        };
        self.record_read(node, key, invoke_us, complete_us, outcome);
    }

    fn aborted(&mut self, node: usize, key: String, invoke_us: u64, barrier: Outcome) {
        let outcome = Outcome::Aborted { reason: format!("the barrier did not commit: {barrier:?}") };
        self.record_read(node, key, invoke_us, self.shared.now_us(), outcome);
    }

    fn record_read(&mut self, node: usize, key: String, invoke_us: u64, complete_us: u64, outcome: Outcome) {
        let seq = self.next_seq();
        self.records.push(OpRecord {
            client: self.id,
            seq,
            node,
            invoke_us,
            complete_us,
            op: OpKind::Get { key },
            outcome,
            tx_hash: None,
            nonce: None,
        });
    }
}
