//! The built-in application: a key-value store plus accounts with balances.
//!
//! State layout (keys of the store's `state` tree):
//! - `k/<key>`: the value of a user key;
//! - `a/<32-byte public key>`: an [`Account`] (balance and next nonce);
//! - `c/raft`: the latest committed Raft configuration entry, so that a
//!   state snapshot carries the membership it was taken under;
//! - `e/n`: how many pieces of evidence are recorded; `e/#<8-byte index>`:
//!   each one, a [`RecordedEvidence`], in commit order; `e/k/<culprit,
//!   round, kind>`: marks misbehaviour already recorded, so a second report
//!   of it fails; `e/c/<culprit>`: how many name that validator.
//!
//! Rules:
//! - admission (mempool) and proposal checks are stateless except for the
//!   nonce: decodable, at most `tx_max_bytes`, this chain, key length, valid
//!   signature; admission also refuses a nonce below the account's next;
//! - execution applies transactions in block order; a transaction whose
//!   nonce is not the account's next nonce fails without effect; any other
//!   well-formed transaction consumes its nonce, even if it then fails
//!   (insufficient funds), like Ethereum;
//! - the application hash chains: `H(domain || previous hash || height ||
//!   encoded writes || encoded outcomes)`, so any divergence between replicas
//!   persists in every later hash.
//!
//! Everything here is deterministic and does no I/O.

use super::sigcache::SigCache;
use super::tx::{MAX_KEY_BYTES, Op, SignedTx};
use phalanx_consensus::raft::{CONFIG_TX_PREFIX, Membership, is_config_tx};
use phalanx_consensus::smr::{Execution, PayloadVerifier, StateMachine, StateView, TxOutcome};
use phalanx_consensus::types::{Block, Evidence, Height, Tx, ValidatorSet};
use phalanx_crypto::{Hash, Hasher, PublicKey, SignedMessage, codec, verify_batch};
use phalanx_mempool::{Rejection, Sender, TxInfo};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Stable result codes of executed transactions (0 = applied). Codes 1 to 5
/// mean the same as the mempool's rejection codes.
pub mod codes {
    pub const OK: u32 = 0;
    pub const MALFORMED: u32 = 1;
    pub const BAD_SIGNATURE: u32 = 2;
    pub const WRONG_CHAIN: u32 = 3;
    pub const BAD_NONCE: u32 = 4;
    pub const TOO_LARGE: u32 = 5;
    pub const INSUFFICIENT_FUNDS: u32 = 10;
    /// The evidence does not prove misbehaviour, or is already recorded.
    pub const BAD_EVIDENCE: u32 = 11;
}

const KEY_PREFIX: &[u8] = b"k/";
/// The state key holding the latest committed Raft configuration.
pub const RAFT_CONFIG_KEY: &[u8] = b"c/raft";
const ACCOUNT_PREFIX: &[u8] = b"a/";
const EVIDENCE_COUNT_KEY: &[u8] = b"e/n";
const EVIDENCE_ITEM_PREFIX: &[u8] = b"e/#";
const EVIDENCE_SEEN_PREFIX: &[u8] = b"e/k/";
const EVIDENCE_CULPRIT_PREFIX: &[u8] = b"e/c/";
const SIG_CACHE_CAPACITY: usize = 262_144;
/// Signatures verified together at admission ([`KvApp::check_tx_batch`]).
pub const VERIFY_BATCH: usize = 64;

/// An account's balance and the nonce its next transaction must carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub nonce: u64,
}

/// The state key of a user key.
pub fn value_key(key: &[u8]) -> Vec<u8> {
    [KEY_PREFIX, key].concat()
}

/// The state key of an account.
pub fn account_key(pk: &PublicKey) -> Vec<u8> {
    [ACCOUNT_PREFIX, pk.as_bytes()].concat()
}

/// Reads an account (absent accounts have balance 0 and nonce 0).
pub fn account(state: &dyn StateView, pk: &PublicKey) -> Account {
    account_of(state, pk.as_bytes())
}

fn account_of(state: &dyn StateView, pk: &[u8; 32]) -> Account {
    state.get(&[ACCOUNT_PREFIX, pk].concat()).and_then(|b| codec::decode(&b).ok()).unwrap_or_default()
}

/// The latest committed Raft configuration (`None`: the genesis validators).
pub fn raft_config(state: &dyn StateView) -> Option<Membership> {
    state.get(RAFT_CONFIG_KEY).and_then(|b| codec::decode(&b).ok())
}

/// Every account's next nonce among state `entries` (a snapshot's).
pub fn account_nonces(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<(PublicKey, u64)> {
    entries
        .iter()
        .filter_map(|(k, v)| {
            let raw: [u8; 32] = k.strip_prefix(ACCOUNT_PREFIX)?.try_into().ok()?;
            let acct: Account = codec::decode(v).ok()?;
            Some((PublicKey::from_bytes(raw).ok()?, acct.nonce))
        })
        .collect()
}

/// Evidence of misbehaviour as the chain recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvidence {
    /// The height of the block that carried it.
    pub height: Height,
    /// The account that submitted it (the validator that detected it).
    pub reporter: PublicKey,
    pub evidence: Evidence,
}

/// How many pieces of evidence the chain recorded.
pub fn evidence_count(state: &dyn StateView) -> u64 {
    state.get(EVIDENCE_COUNT_KEY).and_then(|b| codec::decode(&b).ok()).unwrap_or(0)
}

/// How many pieces of recorded evidence name `culprit`.
pub fn evidence_against(state: &dyn StateView, culprit: &PublicKey) -> u64 {
    state.get(&evidence_culprit_key(culprit)).and_then(|b| codec::decode(&b).ok()).unwrap_or(0)
}

/// Recorded evidence number `from` onwards (commit order), at most `limit`.
pub fn committed_evidence(state: &dyn StateView, from: u64, limit: u64) -> Vec<RecordedEvidence> {
    let end = evidence_count(state).min(from.saturating_add(limit));
    (from..end).filter_map(|i| state.get(&evidence_item_key(i)).and_then(|b| codec::decode(&b).ok())).collect()
}

/// Whether the chain recorded this misbehaviour (by anyone's report).
pub fn evidence_recorded(state: &dyn StateView, e: &Evidence) -> bool {
    state.get(&evidence_seen_key(e)).is_some()
}

fn evidence_culprit_key(culprit: &PublicKey) -> Vec<u8> {
    [EVIDENCE_CULPRIT_PREFIX, culprit.as_bytes()].concat()
}

fn evidence_item_key(i: u64) -> Vec<u8> {
    [EVIDENCE_ITEM_PREFIX, &i.to_be_bytes()].concat()
}

/// One misbehaviour, whoever reports it: culprit, round and kind.
fn evidence_seen_key(e: &Evidence) -> Vec<u8> {
    let kind: u8 = match e {
        Evidence::DoubleProposal { .. } => 0,
        Evidence::DoubleVote { .. } => 1,
    };
    [EVIDENCE_SEEN_PREFIX, e.culprit().as_bytes(), &e.round().to_be_bytes(), &[kind]].concat()
}

/// Reads a user key.
pub fn value(state: &dyn StateView, key: &[u8]) -> Option<Vec<u8>> {
    state.get(&value_key(key))
}

/// The key-value and accounts application.
pub struct KvApp {
    chain_id: String,
    tx_max_bytes: usize,
    verified: SigCache,
    /// Whose misbehaviour evidence may accuse (`None`: evidence is refused).
    validators: Option<ValidatorSet>,
}

impl KvApp {
    pub fn new(chain_id: String, tx_max_bytes: usize) -> KvApp {
        KvApp { chain_id, tx_max_bytes, verified: SigCache::new(SIG_CACHE_CAPACITY), validators: None }
    }

    /// Accepts evidence against members of `validators`.
    pub fn with_validators(mut self, validators: ValidatorSet) -> KvApp {
        self.validators = Some(validators);
        self
    }

    /// The initial state for `accounts` and its application hash.
    pub fn genesis_state(accounts: &[(PublicKey, u64)]) -> (BTreeMap<Vec<u8>, Vec<u8>>, Hash) {
        let writes: BTreeMap<Vec<u8>, Vec<u8>> = accounts
            .iter()
            .map(|(pk, balance)| (account_key(pk), codec::encode(&Account { balance: *balance, nonce: 0 })))
            .collect();
        let mut h = Hasher::with_domain(b"phalanx/kv-genesis/v1\0");
        h.update(&codec::encode(&writes.iter().collect::<Vec<_>>()));
        (writes, h.finish())
    }

    /// Decodes and checks everything that does not depend on state.
    pub fn check_stateless(&self, bytes: &[u8]) -> Result<SignedTx, Rejection> {
        self.check_stateless_hashed(bytes, Hash::digest(bytes))
    }

    /// [`KvApp::check_stateless`] for a transaction whose digest `hash`
    /// the caller already holds.
    fn check_stateless_hashed(&self, bytes: &[u8], hash: Hash) -> Result<SignedTx, Rejection> {
        debug_assert_eq!(hash, Hash::digest(bytes));
        let stx = self.check_unsigned(bytes)?;
        if !self.verified.contains(&hash) {
            if !stx.verify_signature() {
                return Err(Rejection::BadSignature);
            }
            self.verified.insert(hash);
        }
        Ok(stx)
    }

    /// [`KvApp::check_stateless`] but for the signature: the decoded
    /// transaction.
    fn check_unsigned(&self, bytes: &[u8]) -> Result<SignedTx, Rejection> {
        if bytes.len() > self.tx_max_bytes {
            return Err(Rejection::TooLarge { size: bytes.len(), max: self.tx_max_bytes });
        }
        if is_config_tx(bytes) {
            return Err(Rejection::Malformed(
                "the bytes begin with the prefix reserved for raft configuration entries".into(),
            ));
        }
        let stx = SignedTx::decode(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
        self.check_fields(&stx)?;
        Ok(stx)
    }

    /// [`KvApp::check_tx`] for many transactions: the same answers, with
    /// the uncached signatures verified in batches of [`VERIFY_BATCH`]
    /// (about half the cost per signature of one by one) and each sender's
    /// account read once. `hashes[i]` is `Hash::digest(txs[i])`.
    pub fn check_tx_batch(
        &self,
        state: &dyn StateView,
        txs: &[&[u8]],
        hashes: &[Hash],
    ) -> Vec<Result<TxInfo, Rejection>> {
        assert_eq!(txs.len(), hashes.len(), "one hash per transaction");
        let mut checked: Vec<Result<(SignedTx, Hash), Rejection>> =
            txs.iter().zip(hashes).map(|(bytes, hash)| self.check_unsigned(bytes).map(|stx| (stx, *hash))).collect();
        self.verify_uncached(&mut checked);
        let mut next_nonces: HashMap<PublicKey, u64> = HashMap::new();
        checked
            .into_iter()
            .map(|c| {
                let (stx, _) = c?;
                let sender = stx.tx.sender;
                let next = *next_nonces.entry(sender).or_insert_with(|| account(state, &sender).nonce);
                if stx.tx.nonce < next {
                    return Err(Rejection::NonceTooLow { got: stx.tx.nonce, expected: next });
                }
                Ok(TxInfo { sender: *sender.as_bytes(), nonce: stx.tx.nonce, next_nonce: next })
            })
            .collect()
    }

    /// Verifies the signatures of the decoded transactions in `checked`
    /// that the cache does not know, in batches of [`VERIFY_BATCH`]: the
    /// good ones are cached, the bad ones become
    /// [`Rejection::BadSignature`].
    fn verify_uncached(&self, checked: &mut [Result<(SignedTx, Hash), Rejection>]) {
        let unverified: Vec<usize> = (0..checked.len())
            .filter(|&i| matches!(&checked[i], Ok((_, hash)) if !self.verified.contains(hash)))
            .collect();
        for chunk in unverified.chunks(VERIFY_BATCH) {
            let all_good = {
                let signed: Vec<(&SignedTx, Vec<u8>)> = chunk
                    .iter()
                    .filter_map(|&i| checked[i].as_ref().ok())
                    .map(|(stx, _)| (stx, stx.signing_message()))
                    .collect();
                let items: Vec<SignedMessage<'_>> = signed
                    .iter()
                    .map(|(stx, msg)| SignedMessage { message: msg, signature: &stx.signature, signer: &stx.tx.sender })
                    .collect();
                verify_batch(&items).is_ok()
            };
            for &i in chunk {
                // A failed batch names only its first bad signature: check
                // each one alone to find them all.
                let good = all_good || checked[i].as_ref().is_ok_and(|(stx, _)| stx.verify_signature());
                if good {
                    if let Ok((_, hash)) = &checked[i] {
                        self.verified.insert(*hash);
                    }
                } else {
                    checked[i] = Err(Rejection::BadSignature);
                }
            }
        }
    }

    fn check_fields(&self, stx: &SignedTx) -> Result<(), Rejection> {
        if stx.tx.chain_id != self.chain_id {
            return Err(Rejection::WrongChain { got: stx.tx.chain_id.clone(), want: self.chain_id.clone() });
        }
        match &stx.tx.op {
            Op::Put { key, .. } | Op::Delete { key } if key.is_empty() || key.len() > MAX_KEY_BYTES => {
                Err(Rejection::Malformed(format!("key must be 1 to {MAX_KEY_BYTES} bytes, got {}", key.len())))
            }
            Op::Evidence(e) => {
                let Some(validators) = &self.validators else {
                    return Err(Rejection::Malformed("this chain records no evidence".into()));
                };
                e.verify(&self.chain_id, validators).map_err(|why| Rejection::Malformed(format!("evidence: {why}")))
            }
            _ => Ok(()),
        }
    }

    /// The mempool's admission check against committed `state`.
    pub fn check_tx(&self, state: &dyn StateView, bytes: &[u8]) -> Result<TxInfo, Rejection> {
        let stx = self.check_stateless(bytes)?;
        let next = account(state, &stx.tx.sender).nonce;
        if stx.tx.nonce < next {
            return Err(Rejection::NonceTooLow { got: stx.tx.nonce, expected: next });
        }
        Ok(TxInfo { sender: *stx.tx.sender.as_bytes(), nonce: stx.tx.nonce, next_nonce: next })
    }

    /// Sender and nonce of a transaction, without checking it (for working
    /// out which nonces are already in flight in uncommitted blocks).
    pub fn sender_and_nonce(bytes: &[u8]) -> Option<(PublicKey, u64)> {
        SignedTx::decode(bytes).ok().map(|s| (s.tx.sender, s.tx.nonce))
    }

    /// Applies one transaction whose digest is `hash`.
    fn apply(&self, ov: &mut Overlay<'_>, height: Height, bytes: &[u8], hash: Hash) -> TxOutcome {
        if let Some(config) = bytes.strip_prefix(CONFIG_TX_PREFIX) {
            // A Raft configuration entry: consensus acted on it; the state
            // records it so that a state snapshot carries the configuration
            // it was taken under.
            ov.put(RAFT_CONFIG_KEY.to_vec(), Some(config.to_vec()));
            return TxOutcome { code: codes::OK, log: "raft configuration entry".into() };
        }
        let stx = match self.check_stateless_hashed(bytes, hash) {
            Ok(s) => s,
            Err(r) => return TxOutcome { code: r.code(), log: r.to_string() },
        };
        let sender = stx.tx.sender;
        let mut acct = ov.account(&sender);
        if stx.tx.nonce != acct.nonce {
            let log = format!("nonce {} is not the account's next nonce {}", stx.tx.nonce, acct.nonce);
            return TxOutcome { code: codes::BAD_NONCE, log };
        }
        acct.nonce += 1;
        let outcome = match stx.tx.op {
            Op::Put { key, value } => {
                ov.put(value_key(&key), Some(value));
                TxOutcome::ok()
            }
            Op::Delete { key } => {
                ov.put(value_key(&key), None);
                TxOutcome::ok()
            }
            Op::Transfer { to, amount } if acct.balance < amount => TxOutcome {
                code: codes::INSUFFICIENT_FUNDS,
                log: format!("balance {} is less than {amount} ({} to transfer)", acct.balance, to.short()),
            },
            Op::Transfer { to, amount } => {
                if to != sender {
                    acct.balance -= amount;
                    let mut dst = ov.account(&to);
                    dst.balance = dst.balance.saturating_add(amount);
                    ov.put(account_key(&to), Some(codec::encode(&dst)));
                }
                TxOutcome::ok()
            }
            Op::Evidence(evidence) => record_evidence(ov, height, sender, *evidence),
        };
        ov.put(account_key(&sender), Some(codec::encode(&acct)));
        outcome
    }

    fn app_hash(prev: &Hash, height: Height, exec: &Execution) -> Hash {
        let writes: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = exec.writes.iter().collect();
        let mut h = Hasher::with_domain(b"phalanx/kv-app/v1\0");
        h.update(prev.as_bytes()).update(&height.to_be_bytes());
        h.update(&codec::encode(&writes)).update(&codec::encode(&exec.outcomes));
        h.finish()
    }
}

impl PayloadVerifier for KvApp {
    /// Every transaction decodes, fits, names this chain and is signed by
    /// its sender. Uncached signatures are batch-verified.
    ///
    /// A batch verdict is final: the crypto crate's batch and single checks
    /// apply one rule, so which batch a transaction lands in (it differs
    /// between nodes) never changes whether it applies.
    fn verify_payload(&self, txs: &[Tx], hashes: &[Hash]) -> Result<(), String> {
        // A shorter `hashes` would leave transactions unchecked below.
        assert_eq!(txs.len(), hashes.len(), "one digest per transaction");
        let mut pending: Vec<(usize, SignedTx, Vec<u8>, Hash)> = Vec::new();
        for (i, (bytes, &hash)) in txs.iter().zip(hashes).enumerate() {
            if bytes.len() > self.tx_max_bytes {
                return Err(format!(
                    "transaction {i}: {}",
                    Rejection::TooLarge { size: bytes.len(), max: self.tx_max_bytes }
                ));
            }
            let stx = SignedTx::decode(bytes).map_err(|e| format!("transaction {i}: malformed: {e}"))?;
            self.check_fields(&stx).map_err(|e| format!("transaction {i}: {e}"))?;
            if !self.verified.contains(&hash) {
                let msg = stx.signing_message();
                pending.push((i, stx, msg, hash));
            }
        }
        let items: Vec<SignedMessage<'_>> = pending
            .iter()
            .map(|(_, stx, msg, _)| SignedMessage { message: msg, signature: &stx.signature, signer: &stx.tx.sender })
            .collect();
        if let Err(phalanx_crypto::CryptoError::BadSignatureInBatch { index }) = verify_batch(&items) {
            return Err(format!("transaction {}: invalid signature", pending[index].0));
        }
        for (_, _, _, hash) in pending {
            self.verified.insert(hash);
        }
        Ok(())
    }
}

impl StateMachine for KvApp {
    fn name(&self) -> &'static str {
        "kv"
    }

    fn execute(&self, state: &dyn StateView, prev_app_hash: &Hash, block: &Block) -> Execution {
        let mut ov = Overlay { base: state, writes: BTreeMap::new() };
        let hashes = block.tx_hashes();
        // Signatures this node has not seen (a Raft entry can arrive before
        // the gossip of its transactions) are checked in batches first, at
        // about half the cost of one by one in `apply`. Only the cache
        // changes: batch and single checks apply one rule, so every
        // transaction's outcome is what `apply` alone would decide.
        let mut unseen: Vec<Result<(SignedTx, Hash), Rejection>> = block
            .txs
            .iter()
            .zip(hashes.iter())
            .filter(|(_, h)| !self.verified.contains(h))
            .filter_map(|(t, h)| self.check_unsigned(t).ok().map(|stx| Ok((stx, *h))))
            .collect();
        if unseen.len() > 1 {
            self.verify_uncached(&mut unseen);
        }
        let outcomes =
            block.txs.iter().zip(hashes.iter()).map(|(t, h)| self.apply(&mut ov, block.height(), t, *h)).collect();
        let mut exec = Execution { writes: ov.writes, outcomes, app_hash: Hash::ZERO };
        exec.app_hash = KvApp::app_hash(prev_app_hash, block.height(), &exec);
        exec
    }
}

/// Records verified evidence once per misbehaviour (culprit, round, kind).
fn record_evidence(ov: &mut Overlay<'_>, height: Height, reporter: PublicKey, evidence: Evidence) -> TxOutcome {
    let seen = evidence_seen_key(&evidence);
    if ov.get(&seen).is_some() {
        let log = format!(
            "{} evidence against {} for round {} is already recorded",
            evidence.kind(),
            evidence.culprit().short(),
            evidence.round()
        );
        return TxOutcome { code: codes::BAD_EVIDENCE, log };
    }
    let n: u64 = ov.get(EVIDENCE_COUNT_KEY).and_then(|b| codec::decode(&b).ok()).unwrap_or(0);
    let by_culprit = evidence_culprit_key(&evidence.culprit());
    let against: u64 = ov.get(&by_culprit).and_then(|b| codec::decode(&b).ok()).unwrap_or(0);
    ov.put(by_culprit, Some(codec::encode(&(against + 1))));
    ov.put(seen, Some(codec::encode(&n)));
    ov.put(evidence_item_key(n), Some(codec::encode(&RecordedEvidence { height, reporter, evidence })));
    ov.put(EVIDENCE_COUNT_KEY.to_vec(), Some(codec::encode(&(n + 1))));
    TxOutcome::ok()
}

impl super::Application for KvApp {
    fn check_tx(&self, state: &dyn StateView, tx: &[u8]) -> Result<TxInfo, Rejection> {
        KvApp::check_tx(self, state, tx)
    }

    fn check_tx_batch(&self, state: &dyn StateView, txs: &[&[u8]], hashes: &[Hash]) -> Vec<Result<TxInfo, Rejection>> {
        KvApp::check_tx_batch(self, state, txs, hashes)
    }

    fn sender_and_nonce(&self, tx: &[u8]) -> Option<(Sender, u64)> {
        KvApp::sender_and_nonce(tx).map(|(s, n)| (*s.as_bytes(), n))
    }

    fn next_nonce(&self, state: &dyn StateView, sender: &Sender) -> u64 {
        account_of(state, sender).nonce
    }

    fn snapshot_nonces(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Sender, u64)> {
        account_nonces(entries).into_iter().map(|(pk, n)| (*pk.as_bytes(), n)).collect()
    }
}

/// Reads through pending writes to the committed state.
struct Overlay<'a> {
    base: &'a dyn StateView,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
    fn account(&self, pk: &PublicKey) -> Account {
        self.get(&account_key(pk)).and_then(|b| codec::decode(&b).ok()).unwrap_or_default()
    }
    fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tx::Transaction;
    use phalanx_crypto::Keypair;

    const CHAIN: &str = "kv-test";

    fn key(i: u8) -> Keypair {
        Keypair::from_seed(&[i; 32])
    }

    fn hashes_of(txs: &[Tx]) -> Vec<Hash> {
        txs.iter().map(|t| Hash::digest(t)).collect()
    }

    fn tx(k: &Keypair, nonce: u64, op: Op) -> Tx {
        Tx::from(Transaction { chain_id: CHAIN.into(), sender: k.public(), nonce, op }.sign(k).encode())
    }

    fn put(k: &Keypair, nonce: u64, key: &str, value: &str) -> Tx {
        tx(k, nonce, Op::Put { key: key.into(), value: value.into() })
    }

    fn block(txs: Vec<Tx>) -> Block {
        crate::app::test_block(CHAIN, 1, txs)
    }

    fn state_with(accounts: &[(PublicKey, u64)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        KvApp::genesis_state(accounts).0
    }

    fn apply_writes(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, exec: &Execution) {
        for (k, v) in &exec.writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }

    fn app() -> KvApp {
        KvApp::new(CHAIN.into(), 1024)
    }

    /// The batched admission check answers every transaction as the single
    /// check does, with bad signatures spread over several verification
    /// batches, and caches only the good signatures.
    #[test]
    fn check_tx_batch_answers_as_check_tx() {
        let (a, b) = (key(1), key(2));
        let mut state = state_with(&[]);
        // a has committed nonce 3: its nonces 0 to 2 are too low.
        state.insert(account_key(&a.public()), codec::encode(&Account { nonce: 3, balance: 0 }));
        let mut txs: Vec<Vec<u8>> = Vec::new();
        for n in 0..150u64 {
            let mut t = put(if n % 2 == 0 { &a } else { &b }, n, "k", "v").to_vec();
            if n % 37 == 5 {
                let len = t.len();
                t[len - 3] ^= 1; // bad signature
            }
            txs.push(t);
        }
        txs.push(
            Transaction {
                chain_id: "other".into(),
                sender: a.public(),
                nonce: 9,
                op: Op::Delete { key: b"k".to_vec() },
            }
            .sign(&a)
            .encode(),
        );
        txs.push(b"garbage".to_vec());
        txs.push(vec![0; 2000]);
        let slices: Vec<&[u8]> = txs.iter().map(|t| &t[..]).collect();
        let batched = app();
        let hashes: Vec<Hash> = slices.iter().map(|t| Hash::digest(t)).collect();
        let got = batched.check_tx_batch(&state, &slices, &hashes);
        let single = app();
        let want: Vec<_> = slices.iter().map(|t| single.check_tx(&state, t)).collect();
        assert_eq!(got, want);
        assert_eq!(got.iter().filter(|r| matches!(r, Err(Rejection::BadSignature))).count(), 4);
        assert!(matches!(got[0], Err(Rejection::NonceTooLow { got: 0, expected: 3 })));
        assert!(got[3].is_ok() && got[4].is_ok());
        for (t, r) in slices.iter().zip(&got) {
            if !matches!(r, Err(Rejection::Malformed(_) | Rejection::TooLarge { .. } | Rejection::WrongChain { .. })) {
                assert_eq!(batched.verified.contains(&Hash::digest(t)), !matches!(r, Err(Rejection::BadSignature)));
            }
        }
    }

    #[test]
    fn put_then_delete_then_transfer() {
        let (a, b) = (key(1), key(2));
        let mut state = state_with(&[(a.public(), 100)]);
        let exec = app().execute(
            &state,
            &Hash::ZERO,
            &block(vec![
                put(&a, 0, "x", "1"),
                tx(&a, 1, Op::Delete { key: b"x".to_vec() }),
                put(&a, 2, "y", "2"),
                tx(&a, 3, Op::Transfer { to: b.public(), amount: 30 }),
            ]),
        );
        assert!(exec.outcomes.iter().all(|o| o.is_ok()), "{:?}", exec.outcomes);
        apply_writes(&mut state, &exec);
        assert_eq!(value(&state, b"x"), None);
        assert_eq!(value(&state, b"y"), Some(b"2".to_vec()));
        assert_eq!(account(&state, &a.public()), Account { balance: 70, nonce: 4 });
        assert_eq!(account(&state, &b.public()), Account { balance: 30, nonce: 0 });
    }

    /// A double vote by validator `v` in `round`.
    fn double_vote(v: &Keypair, round: u64) -> Evidence {
        use phalanx_consensus::types::VoteData;
        use phalanx_crypto::Domain;
        let data = |tag: &[u8]| VoteData {
            block_id: Hash::digest(tag),
            round,
            height: 1,
            parent_id: Hash::ZERO,
            parent_round: 0,
        };
        let (a, b) = (data(b"a"), data(b"b"));
        let sign = |d: &VoteData| v.sign(Domain::Vote, CHAIN, &d.signing_body());
        Evidence::DoubleVote { author: v.public(), a, sig_a: sign(&a), b, sig_b: sign(&b) }
    }

    /// Evidence is checked on admission, recorded once per misbehaviour in
    /// commit order, and readable by every replica from the state.
    #[test]
    fn evidence_is_verified_and_recorded_once() {
        let (culprit, r1, r2) = (key(7), key(1), key(2));
        let app = app().with_validators(ValidatorSet::equal(&[culprit.public(), r1.public()]));
        let ev = double_vote(&culprit, 5);
        let mut state = BTreeMap::new();
        let exec = app.execute(
            &state,
            &Hash::ZERO,
            &block(vec![
                tx(&r1, 0, Op::Evidence(Box::new(ev.clone()))),
                tx(&r2, 0, Op::Evidence(Box::new(ev.clone()))),
            ]),
        );
        assert_eq!(exec.outcomes[0].code, codes::OK);
        assert_eq!(exec.outcomes[1].code, codes::BAD_EVIDENCE, "{:?}", exec.outcomes[1]);
        assert!(exec.outcomes[1].log.contains("already recorded"));
        apply_writes(&mut state, &exec);
        assert_eq!(
            committed_evidence(&state, 0, 10),
            vec![RecordedEvidence { height: 1, reporter: r1.public(), evidence: ev.clone() }]
        );
        assert_eq!((evidence_count(&state), evidence_against(&state, &culprit.public())), (1, 1));
        assert!(evidence_recorded(&state, &ev));
        assert_eq!(evidence_against(&state, &r1.public()), 0);

        // Admission refuses evidence that proves nothing, or accuses a non-validator.
        let stranger = double_vote(&key(9), 5);
        let err = app.check_tx(&state, &tx(&r1, 1, Op::Evidence(Box::new(stranger)))).unwrap_err();
        assert!(err.to_string().contains("not a validator"), "{err}");
        let Evidence::DoubleVote { author, a, sig_a, .. } = double_vote(&culprit, 6) else { unreachable!() };
        let same = Evidence::DoubleVote { author, a, sig_a, b: a, sig_b: sig_a };
        assert!(app.check_tx(&state, &tx(&r1, 1, Op::Evidence(Box::new(same)))).is_err());
        assert!(
            KvApp::new(CHAIN.into(), 1024)
                .check_tx(&state, &tx(&r1, 1, Op::Evidence(Box::new(double_vote(&culprit, 7)))))
                .is_err()
        );
    }

    /// Executing transactions this node never checked verifies and
    /// remembers their signatures; a forged one is refused alone, and the
    /// others apply.
    #[test]
    fn execution_checks_unseen_signatures_and_refuses_only_the_bad_one() {
        let a = key(1);
        let good: Vec<Tx> = (0..3).map(|n| put(&a, n, "k", "v")).collect();
        let first = app();
        let exec = first.execute(&BTreeMap::new(), &Hash::ZERO, &block(good.clone()));
        assert!(exec.outcomes.iter().all(|o| o.code == codes::OK));
        assert!(good.iter().all(|t| first.verified.contains(&Hash::digest(t))), "remembered");

        let mut forged = SignedTx::decode(&put(&a, 1, "k", "w")).unwrap();
        forged.signature.0[0] ^= 1;
        let txs = vec![good[0].clone(), forged.encode().into(), good[1].clone()];
        let exec = app().execute(&BTreeMap::new(), &Hash::ZERO, &block(txs));
        let codes: Vec<u32> = exec.outcomes.iter().map(|o| o.code).collect();
        assert_eq!(codes, vec![codes::OK, Rejection::BadSignature.code(), codes::OK]);
    }

    /// A block of unseen transactions spanning several verification
    /// batches, forged signatures among them, executes exactly as it does
    /// on a node that had checked every good signature before: the forged
    /// ones alone are refused, and only the good ones are remembered.
    #[test]
    fn batched_checks_at_execution_decide_as_single_checks() {
        let keys = [key(1), key(2), key(3)];
        let mut txs: Vec<Tx> = Vec::new();
        let mut forged_at = Vec::new();
        for n in 0..50u64 {
            for (j, k) in keys.iter().enumerate() {
                if (n * 3 + j as u64) % 41 == 7 {
                    let mut forged = SignedTx::decode(&put(k, n, "f", "x")).unwrap();
                    forged.signature.0[5] ^= 1;
                    forged_at.push(txs.len());
                    txs.push(forged.encode().into());
                }
                txs.push(put(k, n, &format!("k{n}"), "v"));
            }
        }
        assert!(txs.len() > 2 * VERIFY_BATCH && forged_at.len() >= 3, "several batches, several forgeries");
        let fresh = app();
        let exec = fresh.execute(&BTreeMap::new(), &Hash::ZERO, &block(txs.clone()));
        for (i, o) in exec.outcomes.iter().enumerate() {
            let want = if forged_at.contains(&i) { Rejection::BadSignature.code() } else { codes::OK };
            assert_eq!(o.code, want, "transaction {i}: {}", o.log);
            assert_eq!(fresh.verified.contains(&Hash::digest(&txs[i])), !forged_at.contains(&i), "transaction {i}");
        }
        let warmed = app();
        for (i, t) in txs.iter().enumerate() {
            assert_eq!(warmed.check_stateless(t).is_ok(), !forged_at.contains(&i));
        }
        assert_eq!(warmed.execute(&BTreeMap::new(), &Hash::ZERO, &block(txs)), exec);
    }

    /// A replayed transaction (same nonce again) fails and changes nothing.
    #[test]
    fn replayed_nonce_fails_without_effect() {
        let a = key(1);
        let t = put(&a, 0, "x", "1");
        let exec = app().execute(&BTreeMap::new(), &Hash::ZERO, &block(vec![t.clone(), t]));
        assert_eq!(exec.outcomes[0].code, codes::OK);
        assert_eq!(exec.outcomes[1].code, codes::BAD_NONCE);
        assert_eq!(exec.writes.len(), 2, "the value and the account, once");
    }

    /// Insufficient funds: the transfer fails but consumes its nonce.
    #[test]
    fn insufficient_funds_consumes_the_nonce() {
        let (a, b) = (key(1), key(2));
        let mut state = state_with(&[(a.public(), 10)]);
        let exec =
            app().execute(&state, &Hash::ZERO, &block(vec![tx(&a, 0, Op::Transfer { to: b.public(), amount: 11 })]));
        assert_eq!(exec.outcomes[0].code, codes::INSUFFICIENT_FUNDS);
        apply_writes(&mut state, &exec);
        assert_eq!(account(&state, &a.public()), Account { balance: 10, nonce: 1 });
        assert_eq!(account(&state, &b.public()).balance, 0);
    }

    /// The sum of balances never changes through transfers.
    #[test]
    fn transfers_conserve_the_total() {
        let keys: Vec<Keypair> = (1..=3).map(key).collect();
        let mut state = state_with(&keys.iter().map(|k| (k.public(), 1000)).collect::<Vec<_>>());
        let txs: Vec<Tx> = (0..30u64)
            .map(|i| {
                let from = &keys[(i % 3) as usize];
                tx(from, i / 3, Op::Transfer { to: keys[((i + 1) % 3) as usize].public(), amount: 7 * i + 1 })
            })
            .collect();
        let exec = app().execute(&state, &Hash::ZERO, &block(txs));
        apply_writes(&mut state, &exec);
        let total: u64 = keys.iter().map(|k| account(&state, &k.public()).balance).sum();
        assert_eq!(total, 3000);
    }

    #[test]
    fn admission_names_each_problem() {
        let a = key(1);
        let app = app();
        let mut state = BTreeMap::new();
        assert!(matches!(app.check_tx(&state, b"garbage"), Err(Rejection::Malformed(_))));
        let other_chain = Tx::from(
            Transaction {
                chain_id: "other".into(),
                sender: a.public(),
                nonce: 0,
                op: Op::Delete { key: b"k".to_vec() },
            }
            .sign(&a)
            .encode(),
        );
        assert!(matches!(app.check_tx(&state, &other_chain), Err(Rejection::WrongChain { .. })));
        let mut stx = SignedTx::decode(&put(&a, 0, "k", "v")).unwrap();
        stx.signature.0[0] ^= 1;
        assert_eq!(app.check_tx(&state, &stx.encode()), Err(Rejection::BadSignature));
        let big = put(&a, 0, "k", &"v".repeat(2000));
        assert!(matches!(app.check_tx(&state, &big), Err(Rejection::TooLarge { .. })));
        state.insert(account_key(&a.public()), codec::encode(&Account { balance: 0, nonce: 5 }));
        assert_eq!(app.check_tx(&state, &put(&a, 3, "k", "v")), Err(Rejection::NonceTooLow { got: 3, expected: 5 }));
        assert_eq!(
            app.check_tx(&state, &put(&a, 5, "k", "v")).unwrap(),
            TxInfo { sender: *a.public().as_bytes(), nonce: 5, next_nonce: 5 }
        );
        let empty_key = tx(&a, 5, Op::Put { key: vec![], value: vec![] });
        assert!(matches!(app.check_tx(&state, &empty_key), Err(Rejection::Malformed(m)) if m.contains("key")));
    }

    /// A block with a forged signature fails the proposal check, naming the
    /// transaction; a good block passes.
    #[test]
    fn payload_check_finds_the_bad_signature() {
        let a = key(1);
        let good: Vec<Tx> = (0..5).map(|i| put(&a, i, "k", "v")).collect();
        assert_eq!(app().verify_payload(&good, &hashes_of(&good)), Ok(()));
        let mut bad = good.clone();
        let mut stx = SignedTx::decode(&bad[3]).unwrap();
        stx.signature.0[7] ^= 1;
        bad[3] = Tx::from(stx.encode());
        assert_eq!(app().verify_payload(&bad, &hashes_of(&bad)), Err("transaction 3: invalid signature".into()));
    }

    /// Same state and block, same hash; a different history, a different hash.
    #[test]
    fn app_hash_is_deterministic_and_chained() {
        let a = key(1);
        let b = block(vec![put(&a, 0, "k", "v")]);
        let e1 = app().execute(&BTreeMap::new(), &Hash::ZERO, &b);
        let e2 = app().execute(&BTreeMap::new(), &Hash::ZERO, &b);
        assert_eq!(e1, e2);
        let e3 = app().execute(&BTreeMap::new(), &Hash::digest(b"other past"), &b);
        assert_ne!(e1.app_hash, e3.app_hash);
    }
}
