//! The data every protocol shares: blocks, certificates, validator sets,
//! evidence.
//!
//! A block is protocol-agnostic: its header names its height, round (a Raft
//! term in Raft mode), parent, payload digest and the application hash the
//! proposer had executed to; `justify` is the certificate of its parent.
//! Transactions are opaque bytes: consensus never decodes them.
//!
//! Block ids are the digest of the canonical encoding of the header, so the
//! id does not depend on which quorum of signatures certified the parent.

use bytes::Bytes;
use phalanx_crypto::{Domain, Hash, Hasher, Keypair, PublicKey, Signature, codec, merkle_root};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Blocks on a chain, counted from genesis (height 0).
pub type Height = u64;
/// A consensus round (HotStuff) or term (Raft).
pub type Round = u64;
/// Logical time in milliseconds, supplied to engines by their driver.
pub type Millis = u64;
/// The digest of a block header.
pub type BlockId = Hash;
/// A validator is named by its consensus public key.
pub type ValidatorId = PublicKey;
/// An opaque client transaction.
pub type Tx = Bytes;

/// Digest of a transaction's bytes; the key of the mempool and the tx index.
pub fn tx_hash(tx: &[u8]) -> Hash {
    Hash::digest(tx)
}

/// The RFC 6962 root over the hashes of `txs`.
pub fn payload_root(txs: &[Tx]) -> Hash {
    let hashes: Vec<Hash> = txs.iter().map(|t| tx_hash(t)).collect();
    merkle_root(&hashes)
}

/// The digests of a block's transactions, computed at most once per block
/// value and shared by its clones: verification fills it, and the driver's
/// index of uncommitted blocks, the committer (root check, tx index,
/// mempool clean-up, notifications) and execution read it.
///
/// Not part of the block's encoding, equality or id. It keeps the
/// transactions it was computed from (reference-counted buffers) and
/// answers only while the block's `txs` are those same buffers, so a block
/// whose `txs` were replaced or edited is hashed afresh rather than
/// answered from a stale cache.
#[derive(Clone, Default)]
pub struct TxHashes(Arc<OnceLock<HashedTxs>>);

/// The transactions a [`TxHashes`] was computed from, and their digests.
type HashedTxs = (Vec<Tx>, Arc<[Hash]>);

impl TxHashes {
    /// The payload root of `txs` and a cache already holding their
    /// digests, for a block about to be assembled from these same
    /// transactions (a leader's proposal), so they are hashed once.
    pub fn root_of(txs: &[Tx]) -> (Hash, TxHashes) {
        let cache = TxHashes::default();
        let root = merkle_root(&cache.get_or_compute(txs));
        (root, cache)
    }

    /// A cache holding `hashes` as the digests of `txs`, for transactions
    /// whose digests are already known: a proposal rebuilt from the
    /// mempool (whose entries are keyed by their digest) and from fetched
    /// transactions checked against the digests asked for. The caller
    /// vouches that `hashes[i]` is `tx_hash(&txs[i])`: verification trusts
    /// the cache, so anything else would let a wrong payload pass.
    pub fn known(txs: &[Tx], hashes: Arc<[Hash]>) -> TxHashes {
        assert_eq!(txs.len(), hashes.len(), "one digest per transaction");
        debug_assert!(
            txs.iter().zip(hashes.iter()).all(|(t, h)| tx_hash(t) == *h),
            "the digests are the transactions'"
        );
        let cache = TxHashes::default();
        let _ = cache.0.set((txs.to_vec(), hashes));
        cache
    }

    /// The digests, if computed from exactly these transactions.
    pub fn get(&self, txs: &[Tx]) -> Option<Arc<[Hash]>> {
        let (seen, hashes) = self.0.get()?;
        let same = seen.len() == txs.len()
            && seen.iter().zip(txs).all(|(a, b)| a.as_ptr() == b.as_ptr() && a.len() == b.len());
        same.then(|| hashes.clone())
    }

    fn get_or_compute(&self, txs: &[Tx]) -> Arc<[Hash]> {
        if let Some(h) = self.get(txs) {
            return h;
        }
        let hashes: Arc<[Hash]> = txs.iter().map(|t| tx_hash(t)).collect();
        // Fills the cache only if it was empty; a cache filled from other
        // buffers keeps answering its own block.
        let _ = self.0.set((txs.to_vec(), hashes.clone()));
        hashes
    }
}

impl PartialEq for TxHashes {
    /// A cache: equal whatever it holds.
    fn eq(&self, _: &TxHashes) -> bool {
        true
    }
}

impl Eq for TxHashes {}

impl std::fmt::Debug for TxHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "TxHashes(computed)" } else { "TxHashes(empty)" })
    }
}

/// Signed, hashed header of a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: String,
    pub height: Height,
    pub round: Round,
    pub parent: BlockId,
    /// Round of the parent, as certified by `Block::justify`.
    pub parent_round: Round,
    /// Merkle root of the transactions' hashes.
    pub payload_root: Hash,
    /// The application state hash after executing the committed chain up to
    /// and including `app_height`: the latest height the proposer had
    /// executed, never less than the parent's `app_height`. Replicas vote only
    /// if they computed the same hash, so divergent state halts the chain.
    pub app_height: Height,
    pub app_hash: Hash,
    pub proposer: ValidatorId,
    /// The proposer's clock when proposing, milliseconds since the Unix epoch.
    pub time_ms: Millis,
}

impl BlockHeader {
    /// The block id: SHA-256 of the canonical encoding of the header.
    pub fn id(&self) -> BlockId {
        let mut h = Hasher::with_domain(b"phalanx/block/v1\0");
        h.update(&codec::encode(self));
        h.finish()
    }
}

/// A block: header, the certificate of its parent, transactions, and the
/// proposer's signature over the block id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub justify: Certificate,
    pub txs: Vec<Tx>,
    pub signature: Signature,
    /// The transactions' digests once computed; see [`Block::tx_hashes`].
    #[serde(skip)]
    pub hashes: TxHashes,
}

impl Block {
    pub fn id(&self) -> BlockId {
        self.header.id()
    }
    pub fn height(&self) -> Height {
        self.header.height
    }
    pub fn round(&self) -> Round {
        self.header.round
    }
    pub fn parent(&self) -> BlockId {
        self.header.parent
    }
    /// Total bytes of transactions carried.
    pub fn payload_bytes(&self) -> usize {
        self.txs.iter().map(|t| t.len()).sum()
    }

    /// [`tx_hash`] of each transaction, in order: computed on the first call
    /// on this block or any clone of it, then shared (see [`TxHashes`]).
    pub fn tx_hashes(&self) -> Arc<[Hash]> {
        self.hashes.get_or_compute(&self.txs)
    }

    /// The RFC 6962 root over [`Block::tx_hashes`]: what `payload_root` in
    /// the header must be.
    pub fn computed_payload_root(&self) -> Hash {
        merkle_root(&self.tx_hashes())
    }

    /// Signs `header` as its proposer and assembles the block.
    pub fn sign(header: BlockHeader, justify: Certificate, txs: Vec<Tx>, key: &Keypair) -> Block {
        let signature = key.sign(Domain::Proposal, &header.chain_id, header.id().as_bytes());
        Block { header, justify, txs, signature, hashes: TxHashes::default() }
    }

    /// Checks the proposer's signature over the block id.
    pub fn verify_signature(&self) -> bool {
        self.header
            .proposer
            .verify(Domain::Proposal, &self.header.chain_id, self.id().as_bytes(), &self.signature)
            .is_ok()
    }

    /// The genesis block of a chain: height 0, round 0, no transactions, its
    /// `app_hash` the hash of the genesis application state.
    pub fn genesis(chain_id: &str, time_ms: Millis, app_hash: Hash, first_validator: ValidatorId) -> Block {
        Block {
            header: BlockHeader {
                chain_id: chain_id.to_owned(),
                height: 0,
                round: 0,
                parent: Hash::ZERO,
                parent_round: 0,
                payload_root: merkle_root(&[]),
                app_height: 0,
                app_hash,
                proposer: first_validator,
                time_ms,
            },
            justify: Certificate::Genesis,
            txs: Vec::new(),
            signature: Signature([0; 64]),
            hashes: TxHashes::default(),
        }
    }
}

/// What a validator signs when it votes for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteData {
    pub block_id: BlockId,
    pub round: Round,
    pub height: Height,
    pub parent_id: BlockId,
    pub parent_round: Round,
}

impl VoteData {
    pub fn for_block(block: &Block) -> VoteData {
        VoteData {
            block_id: block.id(),
            round: block.round(),
            height: block.height(),
            parent_id: block.parent(),
            parent_round: block.header.parent_round,
        }
    }
    /// The bytes covered by a vote signature (before domain separation).
    pub fn signing_body(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// A set of validators, as positions in the validator set, one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignerBitmap(Vec<u8>);

impl SignerBitmap {
    pub fn with_len(n: usize) -> SignerBitmap {
        SignerBitmap(vec![0; n.div_ceil(8)])
    }
    pub fn set(&mut self, i: usize) {
        if i / 8 >= self.0.len() {
            self.0.resize(i / 8 + 1, 0);
        }
        self.0[i / 8] |= 1 << (i % 8);
    }
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    /// Positions set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.0.len() * 8).filter(|&i| self.get(i))
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }
    /// Bytes used (for bounds checks against the validator set size).
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }
}

/// A quorum certificate: more than 2/3 of voting power signed `vote`.
/// Signatures are listed in the order of the signer positions in `signers`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuorumCert {
    pub vote: VoteData,
    pub signers: SignerBitmap,
    pub signatures: Vec<Signature>,
}

impl QuorumCert {
    pub fn block_id(&self) -> BlockId {
        self.vote.block_id
    }
    pub fn round(&self) -> Round {
        self.vote.round
    }
    pub fn height(&self) -> Height {
        self.vote.height
    }
    /// Digest of the whole certificate (used to cache verification).
    pub fn digest(&self) -> Hash {
        Hash::digest(&codec::encode(self))
    }
}

/// The certificate that justifies a block (or proves a block committed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Certificate {
    /// The genesis block certifies itself.
    Genesis,
    /// A HotStuff quorum certificate.
    Quorum(QuorumCert),
    /// A Raft entry, committed by a majority of the configuration that
    /// stored it at `term` and `index`.
    Raft { term: u64, index: u64 },
}

impl Certificate {
    pub fn as_quorum(&self) -> Option<&QuorumCert> {
        match self {
            Certificate::Quorum(qc) => Some(qc),
            _ => None,
        }
    }
}

/// A block together with the certificate that certifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedBlock {
    pub block: Block,
    pub cert: Certificate,
}

/// One validator and its voting power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    pub id: ValidatorId,
    pub power: u64,
}

/// The validators of a chain, in genesis order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    index: BTreeMap<ValidatorId, usize>,
    total_power: u64,
    /// Always false in a validator; true only in the simulator's
    /// deliberately broken engines (feature `unsafe-test-hooks`).
    majority_quorum: bool,
}

/// Why a validator set could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("the validator set is empty")]
    Empty,
    #[error("validator {0} is listed twice")]
    Duplicate(ValidatorId),
    #[error("validator {0} has zero voting power")]
    ZeroPower(ValidatorId),
    #[error("total voting power overflows")]
    Overflow,
}

impl ValidatorSet {
    pub fn new(validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let mut index = BTreeMap::new();
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower(v.id));
            }
            if index.insert(v.id, i).is_some() {
                return Err(ValidatorSetError::Duplicate(v.id));
            }
            total = total.checked_add(v.power).ok_or(ValidatorSetError::Overflow)?;
        }
        if total > u64::MAX / 4 {
            return Err(ValidatorSetError::Overflow);
        }
        Ok(ValidatorSet { validators, index, total_power: total, majority_quorum: false })
    }

    /// A set of `keys` with equal power 1 (tests and the simulator).
    pub fn equal(keys: &[PublicKey]) -> ValidatorSet {
        ValidatorSet::new(keys.iter().map(|&id| Validator { id, power: 1 }).collect()).expect("distinct keys")
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Validator> {
        self.validators.iter()
    }
    pub fn get(&self, position: usize) -> Option<&Validator> {
        self.validators.get(position)
    }
    pub fn position(&self, id: &ValidatorId) -> Option<usize> {
        self.index.get(id).copied()
    }
    pub fn contains(&self, id: &ValidatorId) -> bool {
        self.index.contains_key(id)
    }
    pub fn power(&self, id: &ValidatorId) -> u64 {
        self.position(id).map_or(0, |i| self.validators[i].power)
    }
    pub fn total_power(&self) -> u64 {
        self.total_power
    }
    /// The least power that is more than 2/3 of the total.
    pub fn quorum_power(&self) -> u64 {
        if self.majority_quorum {
            return self.majority_power();
        }
        self.total_power * 2 / 3 + 1
    }

    /// The same set with quorums of a bare majority instead of more than 2/3
    /// (unsafe against Byzantine validators). Exists only to show the
    /// simulator's checkers catch a broken engine.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn with_majority_quorum_for_tests(mut self) -> ValidatorSet {
        self.majority_quorum = true;
        self
    }
    /// The least power that is more than 1/3 of the total (at least one
    /// honest validator among any set with this much power).
    pub fn validity_power(&self) -> u64 {
        self.total_power / 3 + 1
    }
    /// The least power that is more than half of the total (Raft majority).
    pub fn majority_power(&self) -> u64 {
        self.total_power / 2 + 1
    }
}

/// Proof that a validator signed two conflicting messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two proposals for one round by one proposer with different blocks.
    DoubleProposal { a: BlockHeader, sig_a: Signature, b: BlockHeader, sig_b: Signature },
    /// Two votes in one round by one validator for different blocks.
    DoubleVote { author: ValidatorId, a: VoteData, sig_a: Signature, b: VoteData, sig_b: Signature },
}

impl Evidence {
    /// The validator the evidence accuses.
    pub fn culprit(&self) -> ValidatorId {
        match self {
            Evidence::DoubleProposal { a, .. } => a.proposer,
            Evidence::DoubleVote { author, .. } => *author,
        }
    }
    /// The round in which the conflicting messages were signed.
    pub fn round(&self) -> Round {
        match self {
            Evidence::DoubleProposal { a, .. } => a.round,
            Evidence::DoubleVote { a, .. } => a.round,
        }
    }

    /// The kind's name, as shown over RPC.
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::DoubleProposal { .. } => "double_proposal",
            Evidence::DoubleVote { .. } => "double_vote",
        }
    }

    /// Checks that this is proof: two different messages of one kind, for
    /// one round of chain `chain_id`, both validly signed by the same member
    /// of `validators`. Needs no state, so any replica reaches the same answer.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), String> {
        let culprit = self.culprit();
        if !validators.contains(&culprit) {
            return Err(format!("{} is not a validator", culprit.short()));
        }
        match self {
            Evidence::DoubleProposal { a, sig_a, b, sig_b } => {
                if a.proposer != b.proposer || a.round != b.round {
                    return Err("the two proposals differ in proposer or round".into());
                }
                if a.chain_id != chain_id || b.chain_id != chain_id {
                    return Err(format!("a proposal is not for chain {chain_id:?}"));
                }
                if a.id() == b.id() {
                    return Err("the two proposals are the same block".into());
                }
                for (h, sig) in [(a, sig_a), (b, sig_b)] {
                    h.proposer
                        .verify(Domain::Proposal, chain_id, h.id().as_bytes(), sig)
                        .map_err(|_| format!("the proposal signature over block {} is invalid", h.id()))?;
                }
            }
            Evidence::DoubleVote { author, a, sig_a, b, sig_b } => {
                if a.round != b.round {
                    return Err("the two votes are for different rounds".into());
                }
                if a == b {
                    return Err("the two votes are the same".into());
                }
                for (v, sig) in [(a, sig_a), (b, sig_b)] {
                    author
                        .verify(Domain::Vote, chain_id, &v.signing_body(), sig)
                        .map_err(|_| format!("the vote signature for block {} is invalid", v.block_id))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<PublicKey> {
        (1..=n).map(|i| Keypair::from_seed(&[i; 32]).public()).collect()
    }

    #[test]
    fn quorum_is_more_than_two_thirds() {
        assert_eq!(ValidatorSet::equal(&keys(4)).quorum_power(), 3);
        assert_eq!(ValidatorSet::equal(&keys(7)).quorum_power(), 5);
        assert_eq!(ValidatorSet::equal(&keys(3)).quorum_power(), 3);
        assert_eq!(ValidatorSet::equal(&keys(4)).validity_power(), 2);
        assert_eq!(ValidatorSet::equal(&keys(3)).majority_power(), 2);
    }

    #[test]
    fn validator_set_rejects_bad_input() {
        let k = keys(2);
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let dup = vec![Validator { id: k[0], power: 1 }, Validator { id: k[0], power: 1 }];
        assert_eq!(ValidatorSet::new(dup), Err(ValidatorSetError::Duplicate(k[0])));
        let zero = vec![Validator { id: k[1], power: 0 }];
        assert_eq!(ValidatorSet::new(zero), Err(ValidatorSetError::ZeroPower(k[1])));
    }

    #[test]
    fn bitmap_sets_and_iterates() {
        let mut b = SignerBitmap::with_len(10);
        b.set(0);
        b.set(9);
        assert!(b.get(9) && !b.get(8));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 9]);
        assert_eq!(b.count(), 2);
    }

    fn block_with(txs: Vec<Tx>) -> Block {
        let key = Keypair::from_seed(&[1; 32]);
        let g = Block::genesis("c", 0, Hash::ZERO, key.public());
        let mut header = g.header.clone();
        header.height = 1;
        header.parent = g.id();
        header.payload_root = payload_root(&txs);
        Block::sign(header, Certificate::Genesis, txs, &key)
    }

    /// The digests are each transaction's `tx_hash`, computed once and
    /// shared by clones; the cache is not part of the encoding or equality.
    #[test]
    fn tx_hashes_are_computed_once_and_shared_by_clones() {
        let txs: Vec<Tx> = (0..5u8).map(|i| Tx::from(vec![i; 10 + i as usize])).collect();
        let b = block_with(txs.clone());
        let encoded = codec::encode(&b);
        let early_clone = b.clone();
        assert!(b.hashes.get(&b.txs).is_none());
        let want: Vec<Hash> = txs.iter().map(|t| tx_hash(t)).collect();
        assert_eq!(&b.tx_hashes()[..], &want[..]);
        assert_eq!(b.computed_payload_root(), b.header.payload_root);
        assert!(early_clone.hashes.get(&early_clone.txs).is_some(), "clones share the cache");
        assert!(b.clone().hashes.get(&b.txs).is_some());
        assert_eq!(codec::encode(&b), encoded, "the cache is not encoded");
        let decoded: Block = codec::decode(&encoded).unwrap();
        assert_eq!(decoded, b, "equality ignores the cache");
        assert!(decoded.hashes.get(&decoded.txs).is_none());
        assert_eq!(decoded.computed_payload_root(), b.header.payload_root);
        let (root, cache) = TxHashes::root_of(&txs);
        assert_eq!(root, b.header.payload_root);
        assert_eq!(cache.get(&txs).as_deref(), Some(&want[..]));
    }

    /// A clone whose transactions were replaced, reordered, cut or extended
    /// after the cache was filled is hashed afresh: its root no longer
    /// matches the header, as verification must see.
    #[test]
    fn tx_hashes_never_answer_for_edited_transactions() {
        let txs: Vec<Tx> = (0..4u8).map(|i| Tx::from(vec![i; 8])).collect();
        let b = block_with(txs.clone());
        assert_eq!(b.computed_payload_root(), b.header.payload_root);
        type Edit = Box<dyn Fn(&mut Vec<Tx>)>;
        let edits: Vec<Edit> = vec![
            Box::new(|t| t[1] = Tx::from(vec![9; 8])),
            Box::new(|t| t[1] = Tx::from(t[1].to_vec())), // same bytes, new buffer: same digests
            Box::new(|t| t.swap(0, 3)),
            Box::new(|t| t.truncate(3)),
            Box::new(|t| t.push(Tx::from_static(b"extra"))),
            Box::new(|t| t[2] = t[2].slice(1..)),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut forged = b.clone();
            edit(&mut forged.txs);
            let want: Vec<Hash> = forged.txs.iter().map(|t| tx_hash(t)).collect();
            assert_eq!(&forged.tx_hashes()[..], &want[..], "edit {i}");
            assert_eq!(forged.computed_payload_root() == b.header.payload_root, i == 1, "edit {i}");
        }
        assert_eq!(&b.tx_hashes()[..], &txs.iter().map(|t| tx_hash(t)).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn block_id_covers_the_header_and_signature_verifies() {
        let key = Keypair::from_seed(&[1; 32]);
        let g = Block::genesis("c", 0, Hash::ZERO, key.public());
        let mut header = g.header.clone();
        header.height = 1;
        header.round = 1;
        header.parent = g.id();
        let b = Block::sign(header.clone(), Certificate::Genesis, vec![], &key);
        assert!(b.verify_signature());
        let mut other = header;
        other.time_ms = 1;
        assert_ne!(other.id(), b.id());
        let forged = Block { header: other, ..b };
        assert!(!forged.verify_signature());
    }

    fn two_proposals(key: &Keypair) -> (Block, Block) {
        let g = Block::genesis("c", 0, Hash::ZERO, key.public());
        let mut header = g.header.clone();
        header.height = 1;
        header.round = 1;
        header.parent = g.id();
        header.proposer = key.public();
        let a = Block::sign(header.clone(), Certificate::Genesis, vec![], key);
        header.time_ms = 7;
        let b = Block::sign(header, Certificate::Genesis, vec![], key);
        (a, b)
    }

    #[test]
    fn evidence_verifies_only_when_it_proves_misbehaviour() {
        let key = Keypair::from_seed(&[1; 32]);
        let set = ValidatorSet::equal(&[key.public()]);
        let (a, b) = two_proposals(&key);
        let ev = |a: &Block, b: &Block| Evidence::DoubleProposal {
            a: a.header.clone(),
            sig_a: a.signature,
            b: b.header.clone(),
            sig_b: b.signature,
        };
        assert_eq!(ev(&a, &b).verify("c", &set), Ok(()));
        assert_eq!(ev(&a, &b).kind(), "double_proposal");
        assert!(ev(&a, &a).verify("c", &set).unwrap_err().contains("same block"));
        assert!(ev(&a, &b).verify("other", &set).unwrap_err().contains("not for chain"));
        let mut forged = b.clone();
        forged.signature.0[0] ^= 1;
        assert!(ev(&a, &forged).verify("c", &set).unwrap_err().contains("signature"));
        let stranger = ValidatorSet::equal(&[Keypair::from_seed(&[9; 32]).public()]);
        assert!(ev(&a, &b).verify("c", &stranger).unwrap_err().contains("not a validator"));

        let vote = |blk: &Block| {
            let d = VoteData::for_block(blk);
            (d, key.sign(Domain::Vote, "c", &d.signing_body()))
        };
        let ((va, sa), (vb, sb)) = (vote(&a), vote(&b));
        let dv = Evidence::DoubleVote { author: key.public(), a: va, sig_a: sa, b: vb, sig_b: sb };
        assert_eq!(dv.verify("c", &set), Ok(()));
        let same = Evidence::DoubleVote { author: key.public(), a: va, sig_a: sa, b: va, sig_b: sa };
        assert!(same.verify("c", &set).unwrap_err().contains("same"));
        let bad = Evidence::DoubleVote { author: key.public(), a: va, sig_a: sa, b: vb, sig_b: sa };
        assert!(bad.verify("c", &set).unwrap_err().contains("signature"));
    }
}

/// A validator's vote for a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub data: VoteData,
    pub author: ValidatorId,
    pub signature: Signature,
}

/// What a validator signs when it gives up on a round: the round and the
/// round of its highest QC (Jolteon's timeout message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutData {
    pub round: Round,
    pub high_qc_round: Round,
}

impl TimeoutData {
    pub fn signing_body(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// A validator's signed timeout for `round`, carrying its highest QC, and
/// (unsigned, self-authenticating sync info) the highest TC it knows, so a
/// validator that missed that TC catches up to the sender's round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    pub round: Round,
    pub high_qc: QuorumCert,
    pub author: ValidatorId,
    pub signature: Signature,
    pub last_tc: Option<TimeoutCert>,
}

/// A timeout certificate: more than 2/3 of voting power timed out in
/// `round`. Each signer signed `(round, its high QC round)`; `high_qc` is the
/// highest of the QCs they reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutCert {
    pub round: Round,
    pub signers: SignerBitmap,
    pub high_qc_rounds: Vec<Round>,
    pub signatures: Vec<Signature>,
    pub high_qc: QuorumCert,
}

impl TimeoutCert {
    /// The highest QC round any signer reported.
    pub fn highest_hqc_round(&self) -> Round {
        self.high_qc_rounds.iter().copied().max().unwrap_or(0)
    }
}

/// A validator's highest certificates, sent (unsigned; each certificate
/// authenticates itself) to a peer that is behind, so it catches up at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncInfo {
    pub high_qc: QuorumCert,
    pub last_tc: Option<TimeoutCert>,
}

/// A leader's proposal: a block, and the TC that let the leader enter this
/// round when the block's QC is not from the previous round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub block: Block,
    pub tc: Option<TimeoutCert>,
}

#[cfg(test)]
mod wire_format {
    use super::*;

    fn key() -> Keypair {
        Keypair::from_seed(&[7; 32])
    }

    fn vote_data() -> VoteData {
        VoteData {
            block_id: Hash::digest(b"block"),
            round: 9,
            height: 8,
            parent_id: Hash::digest(b"parent"),
            parent_round: 7,
        }
    }

    /// The signed bytes of a vote are a stable format: a change here breaks
    /// every stored vote and every peer running the previous version.
    #[test]
    fn vote_signing_bytes_are_pinned() {
        let body = vote_data().signing_body();
        assert_eq!(
            hex::encode(&body),
            format!("{}0908{}07", Hash::digest(b"block").to_hex(), Hash::digest(b"parent").to_hex())
        );
    }

    /// A signed vote and a timeout encode to fixed, pinned layouts.
    #[test]
    fn vote_and_timeout_encodings_are_pinned() {
        let data = vote_data();
        let sig = key().sign(phalanx_crypto::Domain::Vote, "c", &data.signing_body());
        let vote = Vote { data, author: key().public(), signature: sig };
        let bytes = codec::encode(&vote);
        assert_eq!(bytes.len(), 32 + 1 + 1 + 32 + 1 + 32 + 64);
        assert_eq!(codec::decode::<Vote>(&bytes).unwrap(), vote);
        let td = TimeoutData { round: 300, high_qc_round: 299 };
        assert_eq!(hex::encode(td.signing_body()), "fb2c01fb2b01");
    }

    /// The block id is the digest of the domain-tagged header encoding.
    #[test]
    fn block_id_is_pinned() {
        let g = Block::genesis("pinned-chain", 1_700_000_000_000, Hash::ZERO, key().public());
        assert_eq!(g.id().to_hex(), PINNED_GENESIS_ID);
    }

    const PINNED_GENESIS_ID: &str = "602a0a2e4a90e29a632dd0ef3193e5b5a03e99faa06c65b23fde74e51ec9ab39";
}
