//! The conformance suite every [`ChainStore`] passes, in the manner of
//! openraft's log-store suite: each `suite_*` function states one property
//! and takes a factory of fresh, empty stores; `conformance!` turns the whole
//! list into `#[test]`s for one implementation. The two modules at the end
//! run it against [`MemStore`] and [`SledStore`].
//!
//! Blocks are real: signed by their proposer and certified by QCs with real
//! signatures from three of four validators (keys from seeds 1..=4), as in
//! `consensus/src/hotstuff/tests.rs`.

use super::{ChainStore, CommitRecord, StateSnapshot, StoreError, TxRecord};
use phalanx_consensus::SafetyState;
use phalanx_consensus::engine::SyncRequest;
use phalanx_consensus::hotstuff::{BlockSource, SafetyData, serve_sync};
use phalanx_consensus::smr::{StateView, TxOutcome};
use phalanx_consensus::types::{
    Block, BlockHeader, Certificate, CertifiedBlock, Evidence, Height, QuorumCert, Round, SignerBitmap, Tx, Vote,
    VoteData, payload_root, tx_hash,
};
use phalanx_consensus::verify::genesis_qc;
use phalanx_crypto::{Domain, Hash, Keypair};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

// ---- fixtures ------------------------------------------------------------

/// The chain id of every fixture unless a test says otherwise.
pub(super) const CHAIN: &str = "store-suite";

/// Four validators and a genesis block; builds signed blocks and QCs.
pub(super) struct Fixture {
    keys: Vec<Keypair>,
    pub(super) genesis: Block,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        Fixture::on_chain(CHAIN, 0)
    }

    /// A fixture whose genesis has this chain id and time.
    pub(super) fn on_chain(chain_id: &str, time_ms: u64) -> Fixture {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let genesis = Block::genesis(chain_id, time_ms, app_hash(0), keys[0].public());
        Fixture { keys, genesis }
    }

    /// The application state genesis starts from.
    pub(super) fn genesis_state() -> BTreeMap<Vec<u8>, Vec<u8>> {
        BTreeMap::from([(b"genesis-key".to_vec(), b"genesis-value".to_vec()), (b"a".to_vec(), b"0".to_vec())])
    }

    /// Writes genesis into `store`.
    pub(super) fn init(&self, store: &impl ChainStore) {
        store.init_genesis(&self.genesis, &Fixture::genesis_state(), app_hash(0)).expect("init genesis");
    }

    /// A block of `round` on `parent`, justified by a QC for `parent` (the
    /// genesis QC on genesis), signed by the round's leader.
    pub(super) fn child(&self, parent: &Block, round: Round, txs: Vec<Tx>) -> Block {
        let justify = if parent.height() == 0 { genesis_qc(parent) } else { self.qc(parent) };
        let leader = &self.keys[(round % 4) as usize];
        let header = BlockHeader {
            chain_id: parent.header.chain_id.clone(),
            height: parent.height() + 1,
            round,
            parent: parent.id(),
            parent_round: justify.round(),
            payload_root: payload_root(&txs),
            app_height: parent.header.app_height,
            app_hash: parent.header.app_hash,
            proposer: leader.public(),
            time_ms: round,
        };
        Block::sign(header, Certificate::Quorum(justify), txs, leader)
    }

    /// The block after `parent` in the next round, carrying `n` distinct
    /// transactions.
    pub(super) fn next(&self, parent: &Block, n: usize) -> Block {
        let height = parent.height() + 1;
        self.child(parent, parent.round() + 1, txs(height, n))
    }

    /// `n` consecutive blocks on genesis, two transactions each.
    pub(super) fn chain(&self, n: usize) -> Vec<Block> {
        let mut blocks: Vec<Block> = Vec::with_capacity(n);
        for _ in 0..n {
            let parent = blocks.last().unwrap_or(&self.genesis);
            blocks.push(self.next(parent, 2));
        }
        blocks
    }

    /// A QC for `block` signed by validators 0, 1 and 2.
    pub(super) fn qc(&self, block: &Block) -> QuorumCert {
        let vote = VoteData::for_block(block);
        let mut signers = SignerBitmap::with_len(4);
        let mut signatures = Vec::new();
        for i in 0..3 {
            signers.set(i);
            signatures.push(self.keys[i].sign(Domain::Vote, &block.header.chain_id, &vote.signing_body()));
        }
        QuorumCert { vote, signers, signatures }
    }

    /// The record committing `block`: its QC, every transaction applied,
    /// `writes`, and the app hash [`app_hash`] of its height.
    pub(super) fn record(&self, block: &Block, writes: &[(&str, Option<&str>)]) -> CommitRecord {
        CommitRecord {
            block: CertifiedBlock { block: block.clone(), cert: Certificate::Quorum(self.qc(block)) },
            outcomes: vec![TxOutcome::ok(); block.txs.len()],
            writes: writes.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))).collect(),
            app_hash: app_hash(block.height()),
            tx_hashes: block.txs.iter().map(|t| tx_hash(t)).collect(),
        }
    }

    /// Commits `blocks` one record per call, with no state writes.
    pub(super) fn commit_each(&self, store: &impl ChainStore, blocks: &[Block]) {
        for b in blocks {
            store.commit(&[self.record(b, &[])]).expect("commit");
        }
    }

    /// Evidence of a double vote by validator `i` in `round`.
    pub(super) fn double_vote(&self, i: usize, round: Round) -> Evidence {
        let vote = |salt: u8| VoteData {
            block_id: Hash::digest(&[salt, i as u8]),
            round,
            height: round,
            parent_id: Hash::ZERO,
            parent_round: round - 1,
        };
        let (a, b) = (vote(1), vote(2));
        let sign = |v: &VoteData| self.keys[i].sign(Domain::Vote, CHAIN, &v.signing_body());
        Evidence::DoubleVote { author: self.keys[i].public(), a, sig_a: sign(&a), b, sig_b: sign(&b) }
    }

    /// A safety state whose last vote is for `block`.
    pub(super) fn safety(&self, block: &Block) -> SafetyState {
        let data = VoteData::for_block(block);
        let vote = Vote {
            data,
            author: self.keys[0].public(),
            signature: self.keys[0].sign(Domain::Vote, CHAIN, &data.signing_body()),
        };
        SafetyState::HotStuff(SafetyData {
            last_voted_round: block.round(),
            one_chain_round: block.header.parent_round,
            highest_timeout_round: 0,
            last_proposed_round: 0,
            last_vote: Some(vote),
            high_qc: block.justify.as_quorum().cloned(),
            highest_tc: None,
        })
    }
}

/// The fixture application's hash after `height`.
pub(super) fn app_hash(height: Height) -> Hash {
    Hash::digest(format!("app-hash-{height}").as_bytes())
}

/// `n` transactions unique to `height`.
pub(super) fn txs(height: Height, n: usize) -> Vec<Tx> {
    (0..n).map(|i| Tx::from(format!("tx-{height}-{i}").into_bytes())).collect()
}

fn heights(blocks: &[Block]) -> Vec<Height> {
    blocks.iter().map(|b| b.height()).collect()
}

fn ids(blocks: &[Block]) -> BTreeSet<Hash> {
    blocks.iter().map(|b| b.id()).collect()
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

// ---- the suite -----------------------------------------------------------

/// A fresh store is uninitialized and refuses what needs a chain; after
/// genesis, recovery yields genesis as committed with its own certificate,
/// no safety state, no blocks, and the app hash at height 0.
pub(super) fn suite_genesis_then_recovery<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    let b1 = fx.next(&fx.genesis, 1);
    assert!(!s.is_initialized());
    assert_eq!(s.committed_tip(), Err(StoreError::NotInitialized));
    assert_eq!(s.recovery(8).unwrap_err(), StoreError::NotInitialized);
    assert_eq!(s.commit(&[fx.record(&b1, &[])]), Err(StoreError::NotInitialized));
    assert_eq!(s.block_at(0), Ok(None));

    fx.init(&s);
    assert!(s.is_initialized());
    let gid = fx.genesis.id();
    assert_eq!(s.committed_tip(), Ok((0, gid)));
    let r = s.recovery(8).unwrap();
    assert_eq!(r.safety, None);
    assert_eq!(r.committed, CertifiedBlock { block: fx.genesis.clone(), cert: Certificate::Genesis });
    assert!(r.blocks.is_empty());
    assert_eq!(r.executed, vec![(0, app_hash(0))]);
    assert_eq!(s.block_at(0), Ok(Some(fx.genesis.clone())));
    assert_eq!(s.block_by_id(&gid), Ok(Some(fx.genesis.clone())));
    assert_eq!(s.cert_at(0), Ok(Some(Certificate::Genesis)));
    assert_eq!(s.app_hash_at(0), Ok(Some(app_hash(0))));
    assert_eq!(s.state_get(b"genesis-key"), Ok(bytes("genesis-value")));
    assert_eq!(s.state_get(b"missing"), Ok(None));
}

/// Writing the same genesis twice is harmless; a different chain id or a
/// different genesis block is refused and changes nothing.
pub(super) fn suite_init_twice<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    fx.init(&s);
    let other_state = BTreeMap::from([(b"genesis-key".to_vec(), b"other".to_vec())]);
    for other in [Fixture::on_chain("another-chain", 0), Fixture::on_chain(CHAIN, 99)] {
        match s.init_genesis(&other.genesis, &other_state, app_hash(0)) {
            Err(StoreError::WrongChain { found, expected, .. }) => {
                assert!(found.contains(CHAIN) && found.contains(&fx.genesis.id().to_hex()), "{found}");
                assert!(expected.contains(&other.genesis.id().to_hex()), "{expected}");
            }
            other => panic!("expected WrongChain, got {other:?}"),
        }
    }
    assert_eq!(s.committed_tip(), Ok((0, fx.genesis.id())));
    assert_eq!(s.state_get(b"genesis-key"), Ok(bytes("genesis-value")));
}

/// Each commit moves the tip and fills every index: heights, certificates,
/// app hashes, the tx index (index and outcome), and the state (writes and
/// deletes); recovery reports the last `keep` app hashes.
pub(super) fn suite_commit_updates_every_index<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(3);
    let mut r2 = fx.record(&c[1], &[("a", Some("2")), ("b", None), ("c", Some("3"))]);
    r2.outcomes[1] = TxOutcome { code: 7, log: "insufficient funds".into() };
    let records =
        [fx.record(&c[0], &[("a", Some("1")), ("b", Some("1"))]), r2, fx.record(&c[2], &[("genesis-key", None)])];
    for r in &records {
        s.commit(std::slice::from_ref(r)).unwrap();
        assert_eq!(s.committed_tip(), Ok((r.block.block.height(), r.block.block.id())));
    }
    for (r, b) in records.iter().zip(&c) {
        let h = b.height();
        assert_eq!(s.block_at(h), Ok(Some(b.clone())));
        assert_eq!(s.block_by_id(&b.id()), Ok(Some(b.clone())));
        assert_eq!(s.cert_at(h), Ok(Some(r.block.cert.clone())));
        assert_eq!(s.app_hash_at(h), Ok(Some(app_hash(h))));
        for (i, (tx, outcome)) in b.txs.iter().zip(&r.outcomes).enumerate() {
            let expected = TxRecord { height: h, index: i as u32, code: outcome.code, log: outcome.log.clone() };
            assert_eq!(s.tx(&tx_hash(tx)), Ok(Some(expected)));
        }
    }
    assert_eq!(s.tx(&tx_hash(b"never sent")), Ok(None));
    assert_eq!(s.tx(&tx_hash(&c[1].txs[1])).unwrap().unwrap().code, 7);
    assert_eq!(s.state_get(b"a"), Ok(bytes("2")));
    assert_eq!(s.state_get(b"b"), Ok(None));
    assert_eq!(s.state_get(b"c"), Ok(bytes("3")));
    assert_eq!(s.state_get(b"genesis-key"), Ok(None));
    assert_eq!((s.block_at(4), s.cert_at(4), s.app_hash_at(4)), (Ok(None), Ok(None), Ok(None)));

    let r = s.recovery(2).unwrap();
    assert_eq!(r.committed, records[2].block);
    assert_eq!(r.executed, vec![(2, app_hash(2)), (3, app_hash(3))]);
    assert_eq!(s.recovery(100).unwrap().executed.len(), 4);
    assert!(s.recovery(0).unwrap().executed.is_empty());
}

/// `committed_history` lists height, round and justify signers below the
/// tip, back past `window` rounds below the tip's once `min_blocks` are
/// listed, or to height 1.
pub(super) fn suite_committed_history_reaches_back_a_window<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    assert_eq!(s.committed_history(100, 1), Ok(vec![]), "genesis alone");
    // Rounds 1, 2, 5, 6, 9, 10 at heights 1..=6.
    let mut blocks: Vec<Block> = Vec::new();
    for round in [1, 2, 5, 6, 9, 10] {
        let b = fx.child(blocks.last().unwrap_or(&fx.genesis), round, txs(blocks.len() as Height + 1, 1));
        blocks.push(b);
    }
    fx.commit_each(&s, &blocks);
    let listed = |window, min| -> Vec<(Height, Round)> {
        s.committed_history(window, min).unwrap().iter().map(|e| (e.height, e.round)).collect()
    };
    assert_eq!(listed(100, 1), vec![(1, 1), (2, 2), (3, 5), (4, 6), (5, 9)]);
    // The tip is round 10; window 5 reaches round 5 (height 3), included.
    assert_eq!(listed(5, 1), vec![(3, 5), (4, 6), (5, 9)]);
    assert_eq!(listed(0, 1), vec![(5, 9)]);
    assert_eq!(listed(0, 2), vec![(4, 6), (5, 9)], "at least min_blocks");
    // Voters: the signers of each block's justify (none for genesis's QC).
    let history = s.committed_history(100, 1).unwrap();
    assert_eq!(history[0].voters.count(), 0);
    for (e, b) in history.iter().zip(&blocks).skip(1) {
        assert_eq!(Some(&e.voters), b.justify.as_quorum().map(|q| &q.signers));
    }
}

/// A commit that does not extend the tip (a skipped height, a repeated
/// height, another parent, a certificate for another block, outcomes that
/// do not match the transactions) is refused and writes nothing.
pub(super) fn suite_out_of_order_commit_writes_nothing<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(2);
    let r2 = fx.record(&c[1], &[("x", Some("2"))]);
    assert_eq!(s.commit(std::slice::from_ref(&r2)), Err(StoreError::OutOfOrder { expected: 1, got: 2 }));
    assert_eq!(s.committed_tip(), Ok((0, fx.genesis.id())));
    assert_eq!(s.block_by_id(&c[1].id()), Ok(None));
    assert_eq!(s.tx(&tx_hash(&c[1].txs[0])), Ok(None));
    assert_eq!(s.state_get(b"x"), Ok(None));

    s.commit(&[fx.record(&c[0], &[])]).unwrap();
    assert_eq!(s.commit(&[fx.record(&c[0], &[])]), Err(StoreError::OutOfOrder { expected: 2, got: 1 }));

    let fork1 = fx.next(&fx.genesis, 1);
    let fork2 = fx.next(&fork1, 1);
    let wrong_parent = fx.record(&fork2, &[("x", Some("fork"))]);
    let mut wrong_cert = r2.clone();
    wrong_cert.block.cert = Certificate::Quorum(fx.qc(&c[0]));
    let mut genesis_cert = r2.clone();
    genesis_cert.block.cert = Certificate::Genesis;
    let mut short_outcomes = r2.clone();
    short_outcomes.outcomes.pop();
    for bad in [wrong_parent, wrong_cert, genesis_cert, short_outcomes] {
        match s.commit(&[bad]) {
            Err(StoreError::InvalidRecord { height: 2, .. }) => {}
            other => panic!("expected InvalidRecord at height 2, got {other:?}"),
        }
    }
    assert_eq!(s.committed_tip(), Ok((1, c[0].id())));
    assert_eq!(s.block_at(2), Ok(None));
    assert_eq!(s.block_by_id(&fork2.id()), Ok(None));
    assert_eq!(s.state_get(b"x"), Ok(None));
    assert_eq!(s.tx(&tx_hash(&c[1].txs[0])), Ok(None));
}

/// A batch is all or nothing: when record 2 of 3 is out of order (or
/// record 3 of 3 is invalid), not even record 1 is written.
pub(super) fn suite_batch_is_atomic<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(3);
    let rs: Vec<CommitRecord> =
        c.iter().map(|b| fx.record(b, &[("k", Some(&format!("{}", b.height())))])).collect::<Vec<_>>();
    let swapped = [rs[0].clone(), rs[2].clone(), rs[1].clone()];
    assert_eq!(s.commit(&swapped), Err(StoreError::OutOfOrder { expected: 2, got: 3 }));
    let mut bad_last = rs.clone();
    bad_last[2].outcomes.clear();
    assert!(matches!(s.commit(&bad_last), Err(StoreError::InvalidRecord { height: 3, .. })));
    assert_eq!(s.committed_tip(), Ok((0, fx.genesis.id())));
    for b in &c {
        assert_eq!(s.block_by_id(&b.id()), Ok(None));
        assert_eq!(s.block_at(b.height()), Ok(None));
        assert_eq!(s.app_hash_at(b.height()), Ok(None));
        assert_eq!(s.tx(&tx_hash(&b.txs[0])), Ok(None));
    }
    assert_eq!(s.state_get(b"k"), Ok(None));

    s.commit(&rs).unwrap();
    assert_eq!(s.committed_tip(), Ok((3, c[2].id())));
    assert_eq!(heights(&(1..=3).map(|h| s.block_at(h).unwrap().unwrap()).collect::<Vec<_>>()), vec![1, 2, 3]);
    assert_eq!(s.state_get(b"k"), Ok(bytes("3")));
    assert_eq!(s.tx(&tx_hash(&c[1].txs[1])).unwrap().unwrap().height, 2);
}

/// A transaction hash already indexed keeps its first record, whether the
/// repeat is in the same block, a later record of the same batch, or a
/// later commit.
pub(super) fn suite_duplicate_tx_keeps_first_record<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let x = Tx::from(&b"replayed"[..]);
    let y = Tx::from(&b"fresh"[..]);
    let b1 = fx.child(&fx.genesis, 1, vec![x.clone(), x.clone()]);
    let mut r1 = fx.record(&b1, &[]);
    r1.outcomes[1] = TxOutcome { code: 3, log: "nonce already used".into() };
    s.commit(&[r1]).unwrap();
    let b2 = fx.child(&b1, 2, vec![y.clone(), x.clone()]);
    let b3 = fx.child(&b2, 3, vec![y.clone()]);
    s.commit(&[fx.record(&b2, &[]), fx.record(&b3, &[])]).unwrap();
    assert_eq!(s.tx(&tx_hash(&x)), Ok(Some(TxRecord { height: 1, index: 0, code: 0, log: String::new() })));
    assert_eq!(s.tx(&tx_hash(&y)), Ok(Some(TxRecord { height: 2, index: 0, code: 0, log: String::new() })));
}

/// Blocks saved but not committed are handed to the engine at start, and
/// stop being handed over once committed.
pub(super) fn suite_saved_blocks_recovered_until_committed<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(3);
    let fork = fx.child(&fx.genesis, 9, txs(1, 1));
    for b in c.iter().chain([&fork]) {
        s.save_block(b).unwrap();
    }
    let expected = ids(&[c[0].clone(), c[1].clone(), c[2].clone(), fork.clone()]);
    assert_eq!(ids(&s.recovery(4).unwrap().blocks), expected);
    assert_eq!(s.block_by_id(&c[2].id()), Ok(Some(c[2].clone())));
    assert_eq!(s.block_at(1), Ok(None), "saved is not committed");

    fx.commit_each(&s, &c[..2]);
    assert_eq!(s.recovery(4).unwrap().blocks, vec![c[2].clone()]);
    assert_eq!(s.block_by_id(&fork.id()), Ok(Some(fork.clone())), "kept until pruned");
}

/// The safety state reads back as last written.
pub(super) fn suite_safety_round_trips<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    assert_eq!(s.load_safety(), Ok(None));
    let c = fx.chain(2);
    let (first, second) = (fx.safety(&c[0]), fx.safety(&c[1]));
    s.save_safety(&first).unwrap();
    assert_eq!(s.load_safety(), Ok(Some(first)));
    s.save_safety(&second).unwrap();
    s.flush().unwrap();
    assert_eq!(s.load_safety(), Ok(Some(second.clone())));
    fx.init(&s);
    assert_eq!(s.recovery(1).unwrap().safety, Some(second));
}

/// Identical evidence is stored once; evidence comes back ordered by round.
pub(super) fn suite_evidence_stored_once<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    let (late, early) = (fx.double_vote(1, 9), fx.double_vote(2, 4));
    s.save_evidence(&late).unwrap();
    s.save_evidence(&late).unwrap();
    s.save_evidence(&early).unwrap();
    s.save_evidence(&late).unwrap();
    assert_eq!(s.evidence(), Ok(vec![early, late]));
}

/// Pruning deletes exactly the saved blocks at or below the tip that are
/// not on the committed chain: never a committed block, never one above
/// the tip.
pub(super) fn suite_prune_forks_removes_only_abandoned<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(4);
    let fork1 = fx.child(&fx.genesis, 10, txs(1, 1));
    let fork2 = fx.child(&c[0], 11, txs(2, 1));
    for b in c.iter().chain([&fork1, &fork2]) {
        s.save_block(b).unwrap();
    }
    assert_eq!(s.prune_forks(), Ok(0), "nothing is abandoned before the commit");
    s.commit(&[fx.record(&c[0], &[])]).unwrap();
    s.commit(&[fx.record(&c[1], &[]), fx.record(&c[2], &[])]).unwrap();
    s.save_block(&c[1]).unwrap(); // saved again after its commit: still not a fork
    assert_eq!(s.prune_forks(), Ok(2));
    assert_eq!(s.block_by_id(&fork1.id()), Ok(None));
    assert_eq!(s.block_by_id(&fork2.id()), Ok(None));
    for b in &c {
        assert_eq!(s.block_by_id(&b.id()), Ok(Some(b.clone())));
    }
    assert_eq!(s.block_at(2), Ok(Some(c[1].clone())));
    assert_eq!(s.recovery(1).unwrap().blocks, vec![c[3].clone()]);
    assert_eq!(s.prune_forks(), Ok(0));
}

/// The store answers block sync through `BlockSource`: committed blocks
/// with their certificates, then the saved chain up to the target.
pub(super) fn suite_block_source_serves_sync<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(6);
    fx.commit_each(&s, &c[..4]);
    s.save_block(&c[4]).unwrap();
    s.save_block(&c[5]).unwrap();
    assert_eq!(s.committed_height(), 4);
    assert_eq!(s.committed_block(2), Some(c[1].clone()));
    assert_eq!(s.committed_block(5), None);
    assert_eq!(s.committed_cert(2), Some(Certificate::Quorum(fx.qc(&c[1]))));
    assert_eq!(BlockSource::block(&s, &c[5].id()), Some(c[5].clone()));

    let all = SyncRequest { from_height: 2, target: c[5].id(), max_blocks: 100 };
    let resp = serve_sync(&all, &s, 100, usize::MAX);
    assert_eq!(heights(&resp.blocks), vec![2, 3, 4, 5, 6]);
    assert_eq!(resp.blocks, c[1..].to_vec());
    assert_eq!(resp.last_cert, None);

    let two = SyncRequest { max_blocks: 2, ..all };
    let dyn_store: &dyn ChainStore = &s;
    let resp = serve_sync(&two, dyn_store.as_block_source(), 100, usize::MAX);
    assert_eq!(heights(&resp.blocks), vec![2, 3]);
    assert_eq!(resp.last_cert, Some(Certificate::Quorum(fx.qc(&c[2]))));
}

/// `StateView` (directly and through `as_state`) reads the committed
/// application state.
pub(super) fn suite_state_view_reads_committed_state<S: ChainStore + StateView>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(1);
    s.commit(&[fx.record(&c[0], &[("a", Some("1")), ("genesis-key", None)])]).unwrap();
    assert_eq!(StateView::get(&s, b"a"), bytes("1"));
    assert_eq!(StateView::get(&s, b"genesis-key"), None);
    let dyn_store: &dyn ChainStore = &s;
    assert_eq!(dyn_store.as_state().get(b"a"), bytes("1"));
}

/// An empty batch commits nothing and succeeds.
pub(super) fn suite_empty_commit_is_a_no_op<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    s.commit(&[]).unwrap();
    assert_eq!(s.committed_tip(), Ok((0, fx.genesis.id())));
}

/// While one thread commits, a reader never sees a tip whose block or app
/// hash is not yet readable.
pub(super) fn suite_tip_never_runs_ahead<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(12);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            fx.commit_each(&s, &c);
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        let mut last = 0;
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            let (h, id) = s.committed_tip().unwrap();
            assert!(h >= last, "the tip went back from {last} to {h}");
            assert_eq!(s.block_at(h).unwrap().map(|b| b.id()), Some(id));
            assert_eq!(s.app_hash_at(h), Ok(Some(app_hash(h))));
            last = h;
        }
    });
    assert_eq!(s.committed_tip(), Ok((12, c[11].id())));
}

/// Against a model (a map), any sequence of state writes and deletes,
/// committed in any split into batches, leaves the same state.
pub(super) fn suite_state_matches_model<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let chain = fx.chain(6);
    let write = (0u8..4, proptest::option::of(0u8..3));
    let blocks = proptest::collection::vec(proptest::collection::vec(write, 0..4), 1..=6);
    let cases = (blocks, proptest::collection::vec(1usize..=3, 6));
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&cases, |(per_block, batch_sizes)| {
        let s = make();
        fx.init(&s);
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = Fixture::genesis_state();
        let mut records = Vec::new();
        for (b, writes) in chain.iter().zip(&per_block) {
            let mut r = fx.record(b, &[]);
            for (k, v) in writes {
                let (key, value) = (vec![b'k', *k], v.map(|v| vec![v]));
                r.writes.insert(key.clone(), value.clone());
            }
            for (k, v) in &r.writes {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
            records.push(r);
        }
        let mut rest = records.as_slice();
        for n in batch_sizes {
            let (batch, tail) = rest.split_at(n.min(rest.len()));
            s.commit(batch).unwrap();
            rest = tail;
        }
        s.commit(rest).unwrap();
        prop_assert_eq!(s.committed_tip().unwrap().0, per_block.len() as Height);
        for k in 0u8..4 {
            prop_assert_eq!(s.state_get(&[b'k', k]).unwrap(), model.get(&[b'k', k][..]).cloned());
        }
        prop_assert_eq!(s.state_get(b"genesis-key").unwrap(), model.get(&b"genesis-key"[..]).cloned());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- state snapshots -----------------------------------------------------

/// A store of `fx`'s chain with blocks 1..=3 of `c` committed: `a` = 3,
/// `b` = 2, `genesis-key` deleted, `z` = 1.
pub(super) fn snapshot_source<S: ChainStore>(fx: &Fixture, make: impl Fn() -> S, c: &[Block]) -> S {
    let s = make();
    fx.init(&s);
    s.commit(&[fx.record(&c[0], &[("a", Some("1")), ("z", Some("1"))])]).unwrap();
    s.commit(&[
        fx.record(&c[1], &[("a", Some("2")), ("b", Some("2")), ("genesis-key", None)]),
        fx.record(&c[2], &[("a", Some("3"))]),
    ])
    .unwrap();
    s
}

/// Everything a store answers about a state snapshot's contents and its
/// chain position, for "changes nothing" checks.
fn observable<S: ChainStore>(s: &S) -> (Result<StateSnapshot, StoreError>, Height, Vec<Option<Block>>) {
    let blocks = (0..=5).map(|h| s.block_at(h).unwrap()).collect();
    (s.export_snapshot(), s.base_height(), blocks)
}

/// A snapshot exported from one store and installed into a fresh store of
/// the same chain gives identical state, tip, certificate, app hash and
/// base height; history below the base is gone; the next block commits on
/// top; recovery starts from the snapshot.
pub(super) fn suite_snapshot_export_then_install<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let c = fx.chain(5);
    let source = snapshot_source(&fx, &make, &c);
    let snap = source.export_snapshot().unwrap();
    let expected_entries: Vec<(Vec<u8>, Vec<u8>)> = [("a", "3"), ("b", "2"), ("z", "1")]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(
        snap,
        StateSnapshot {
            chain_id: CHAIN.into(),
            height: 3,
            block: c[2].clone(),
            cert: Certificate::Quorum(fx.qc(&c[2])),
            app_hash: app_hash(3),
            entries: expected_entries,
        }
    );
    assert_eq!(source.base_height(), 0);

    let s = make();
    fx.init(&s);
    assert_eq!(s.base_height(), 0);
    s.install_snapshot(&snap).unwrap();
    assert_eq!(s.committed_tip(), source.committed_tip());
    assert_eq!(s.base_height(), 3);
    for key in ["a", "b", "z", "genesis-key", "missing"] {
        assert_eq!(s.state_get(key.as_bytes()), source.state_get(key.as_bytes()), "key {key}");
    }
    assert_eq!(s.state_get(b"genesis-key"), Ok(None), "the genesis state is replaced, not merged");
    assert_eq!(s.block_at(3), Ok(Some(c[2].clone())));
    assert_eq!(s.cert_at(3), Ok(Some(snap.cert.clone())));
    assert_eq!(s.app_hash_at(3), Ok(Some(app_hash(3))));
    for h in 0..3 {
        assert_eq!((s.block_at(h), s.cert_at(h), s.app_hash_at(h)), (Ok(None), Ok(None), Ok(None)), "height {h}");
    }
    assert_eq!(s.block_by_id(&fx.genesis.id()), Ok(None), "blocks below the base are deleted");
    assert_eq!(s.export_snapshot(), Ok(snap.clone()), "export after install gives the snapshot back");
    assert_eq!(s.committed_height(), 3);
    assert_eq!(s.committed_block(2), None);
    assert!(s.is_initialized());
    fx.init(&s); // the node writes genesis at every start: still accepted

    let r = s.recovery(8).unwrap();
    assert_eq!(r.committed, CertifiedBlock { block: c[2].clone(), cert: snap.cert.clone() });
    assert!(r.blocks.is_empty());
    assert_eq!(r.executed, vec![(3, app_hash(3))]);

    s.commit(&[fx.record(&c[3], &[("a", Some("4"))])]).unwrap();
    assert_eq!(s.committed_tip(), Ok((4, c[3].id())));
    assert_eq!(s.state_get(b"a"), Ok(bytes("4")));
    assert_eq!(s.state_get(b"b"), Ok(bytes("2")));
    assert_eq!(s.tx(&tx_hash(&c[3].txs[0])).unwrap().map(|r| r.height), Some(4));
    assert_eq!(s.recovery(8).unwrap().executed, vec![(3, app_hash(3)), (4, app_hash(4))]);
    assert_eq!(s.base_height(), 3);
}

/// Installing over a store with history: its committed blocks and the
/// uncommitted ones at or below the snapshot's height are deleted, the
/// uncommitted ones above are kept (and recovered), the tx index keeps
/// what it had.
pub(super) fn suite_snapshot_install_replaces_history<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let c = fx.chain(5);
    let snap = snapshot_source(&fx, &make, &c).export_snapshot().unwrap();
    let s = make();
    fx.init(&s);
    s.commit(&[fx.record(&c[0], &[("old", Some("1"))])]).unwrap();
    let fork = fx.child(&c[0], 9, txs(2, 1));
    for b in [&fork, &c[2], &c[3], &c[4]] {
        s.save_block(b).unwrap();
    }
    s.install_snapshot(&snap).unwrap();
    assert_eq!(s.committed_tip(), Ok((3, c[2].id())));
    assert_eq!(s.state_get(b"old"), Ok(None));
    assert_eq!(s.block_by_id(&c[0].id()), Ok(None));
    assert_eq!(s.block_by_id(&fork.id()), Ok(None));
    assert_eq!(s.block_by_id(&c[2].id()), Ok(Some(c[2].clone())));
    assert_eq!(s.block_by_id(&c[3].id()), Ok(Some(c[3].clone())));
    assert_eq!(s.tx(&tx_hash(&c[0].txs[0])).unwrap().map(|r| r.height), Some(1), "the tx index is kept");
    assert_eq!(s.recovery(8).unwrap().blocks, vec![c[3].clone(), c[4].clone()]);
    assert_eq!(s.prune_forks(), Ok(0));
    fx.commit_each(&s, &c[3..]);
    assert_eq!(s.committed_tip(), Ok((5, c[4].id())));
    assert!(s.recovery(8).unwrap().blocks.is_empty());
}

/// A snapshot at or below the committed tip, of another chain, whose block
/// is not at its height or not named by its certificate, or whose entries
/// are unsorted is refused and changes nothing; so is any install or
/// export before genesis.
pub(super) fn suite_snapshot_refusals_change_nothing<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let c = fx.chain(5);
    let snap = snapshot_source(&fx, &make, &c).export_snapshot().unwrap();

    let fresh = make();
    assert_eq!(fresh.install_snapshot(&snap), Err(StoreError::NotInitialized));
    assert_eq!(fresh.export_snapshot(), Err(StoreError::NotInitialized));
    assert!(!fresh.is_initialized());

    let other = Fixture::on_chain("another-chain", 0);
    let other_chain = other.chain(5);
    let other_snap = snapshot_source(&other, &make, &other_chain).export_snapshot().unwrap();
    let mut renamed = other_snap.clone();
    renamed.chain_id = CHAIN.into();
    let mut wrong_height = snap.clone();
    wrong_height.height = 4;
    let mut wrong_cert = snap.clone();
    wrong_cert.cert = Certificate::Quorum(fx.qc(&c[1]));
    let mut genesis_cert = snap.clone();
    genesis_cert.cert = Certificate::Genesis;
    let mut raft_cert = snap.clone();
    raft_cert.cert = Certificate::Raft { term: c[2].round(), index: 2 };
    let mut unsorted = snap.clone();
    unsorted.entries.swap(0, 1);
    let mut repeated = snap.clone();
    repeated.entries.insert(1, repeated.entries[0].clone());

    let s = make();
    fx.init(&s);
    fx.commit_each(&s, &c[..1]);
    let before = observable(&s);
    let bad = [
        ("another chain", &other_snap, "chain `another-chain`"),
        ("a block of another chain", &renamed, "its block is of chain `another-chain`"),
        ("a block at another height", &wrong_height, "its block is at height 3, not 4"),
        ("a certificate for another block", &wrong_cert, "certificate is for block"),
        ("a genesis certificate", &genesis_cert, "certified by genesis"),
        ("a raft certificate for another index", &raft_cert, "index 2"),
        ("unsorted entries", &unsorted, "not sorted"),
        ("a repeated key", &repeated, "not sorted"),
    ];
    for (what, bad, says) in bad {
        match s.install_snapshot(bad) {
            Err(e @ StoreError::SnapshotRefused { .. }) => {
                let message = e.to_string();
                assert!(message.contains(says) && message.contains("nothing was written"), "{what}: {message}");
            }
            other => panic!("{what}: expected SnapshotRefused, got {other:?}"),
        }
        assert_eq!(observable(&s), before, "{what} changed the store");
    }

    fx.commit_each(&s, &c[1..3]);
    let at_tip = observable(&s);
    let err = s.install_snapshot(&snap).unwrap_err();
    assert_eq!(
        err,
        StoreError::SnapshotRefused {
            height: 3,
            reason: "it is not above this store's committed tip at height 3".into()
        }
    );
    assert_eq!(observable(&s), at_tip);
    fx.commit_each(&s, &c[3..4]);
    let above = observable(&s);
    assert!(matches!(s.install_snapshot(&snap), Err(StoreError::SnapshotRefused { height: 3, .. })));
    assert_eq!(observable(&s), above);
    assert_eq!(s.base_height(), 0);
}

/// While one thread commits, every export is of one height: its block, app
/// hash and state all belong to the same committed tip.
pub(super) fn suite_snapshot_export_is_consistent<S: ChainStore>(make: impl Fn() -> S) {
    let fx = Fixture::new();
    let s = make();
    fx.init(&s);
    let c = fx.chain(12);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for b in &c {
                let h = b.height().to_string();
                s.commit(&[fx.record(b, &[("last", Some(&h)), (&format!("h{h}"), Some(&h))])]).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            let snap = s.export_snapshot().unwrap();
            let h = snap.height;
            assert_eq!(snap.block.height(), h);
            assert_eq!(snap.app_hash, app_hash(h));
            let get = |k: &str| snap.entries.iter().find(|(key, _)| key == k.as_bytes()).map(|(_, v)| v.clone());
            if h > 0 {
                assert_eq!(get("last"), bytes(&h.to_string()), "state of another height than the tip {h}");
            }
            assert_eq!(get(&format!("h{}", h + 1)), None, "state of a later height than the tip {h}");
        }
    });
    assert_eq!(s.export_snapshot().unwrap().height, 12);
}

/// One `#[test]` per suite function, for the store made by `$make`.
macro_rules! conformance {
    ($make:expr) => {
        use super::*;

        #[test]
        fn genesis_then_recovery() {
            suite_genesis_then_recovery($make)
        }
        #[test]
        fn init_twice() {
            suite_init_twice($make)
        }
        #[test]
        fn commit_updates_every_index() {
            suite_commit_updates_every_index($make)
        }
        #[test]
        fn committed_history_reaches_back_a_window() {
            suite_committed_history_reaches_back_a_window($make)
        }
        #[test]
        fn out_of_order_commit_writes_nothing() {
            suite_out_of_order_commit_writes_nothing($make)
        }
        #[test]
        fn batch_is_atomic() {
            suite_batch_is_atomic($make)
        }
        #[test]
        fn duplicate_tx_keeps_first_record() {
            suite_duplicate_tx_keeps_first_record($make)
        }
        #[test]
        fn saved_blocks_recovered_until_committed() {
            suite_saved_blocks_recovered_until_committed($make)
        }
        #[test]
        fn safety_round_trips() {
            suite_safety_round_trips($make)
        }
        #[test]
        fn evidence_stored_once() {
            suite_evidence_stored_once($make)
        }
        #[test]
        fn prune_forks_removes_only_abandoned() {
            suite_prune_forks_removes_only_abandoned($make)
        }
        #[test]
        fn block_source_serves_sync() {
            suite_block_source_serves_sync($make)
        }
        #[test]
        fn state_view_reads_committed_state() {
            suite_state_view_reads_committed_state($make)
        }
        #[test]
        fn empty_commit_is_a_no_op() {
            suite_empty_commit_is_a_no_op($make)
        }
        #[test]
        fn tip_never_runs_ahead() {
            suite_tip_never_runs_ahead($make)
        }
        #[test]
        fn state_matches_model() {
            suite_state_matches_model($make)
        }
        #[test]
        fn snapshot_export_then_install() {
            suite_snapshot_export_then_install($make)
        }
        #[test]
        fn snapshot_install_replaces_history() {
            suite_snapshot_install_replaces_history($make)
        }
        #[test]
        fn snapshot_refusals_change_nothing() {
            suite_snapshot_refusals_change_nothing($make)
        }
        #[test]
        fn snapshot_export_is_consistent() {
            suite_snapshot_export_is_consistent($make)
        }
    };
}

/// The suite against the in-memory store.
mod mem_store {
    conformance!(super::super::MemStore::new);
}

/// The suite against sled, each test in its own temporary directory.
mod sled_store {
    conformance!(super::super::SledStore::open_temporary);
}
