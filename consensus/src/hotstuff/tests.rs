//! The engine's rules, one test each, asserting the exact actions emitted.
//!
//! Setup: four validators of equal power, keys from seeds 1..=4, so the
//! leader of round r is validator `r mod 4`. The engine under test is
//! validator 0 unless a test says otherwise.

use super::*;
use crate::engine::{
    Action, ConsensusMsg, Engine, HistoryEntry, HotStuffMsg, Input, Recovery, SafetyState, SyncRequest, SyncResponse,
    TimerId,
};
use crate::smr::AcceptAll;
use crate::types::{
    Block, BlockHeader, Certificate, CertifiedBlock, Evidence, Proposal, QuorumCert, Round, SignerBitmap, Timeout,
    TimeoutCert, TimeoutData, Tx, ValidatorSet, Vote, VoteData, payload_root,
};
use crate::verify::{genesis_qc, justify_qc};
use phalanx_crypto::{Domain, Hash, Keypair};
use std::sync::Arc;

const CHAIN: &str = "rules";
const BASE: u64 = 1000;

struct Net {
    keys: Vec<Keypair>,
    genesis: Block,
    validators: ValidatorSet,
}

impl Net {
    fn new() -> Net {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let validators = ValidatorSet::equal(&keys.iter().map(|k| k.public()).collect::<Vec<_>>());
        let genesis = Block::genesis(CHAIN, 0, Hash::ZERO, keys[0].public());
        Net { keys, genesis, validators }
    }

    /// An engine for validator `i` with leader reputation on (window 20).
    fn engine_with_reputation(&self, i: usize) -> HotStuff {
        let cfg = EngineConfig { reputation_window: 20, ..self.config() };
        let mut e = HotStuff::new(cfg, self.keys[i].clone(), Arc::new(AcceptAll));
        e.step(0, Input::Restored(Box::new(self.recovery())), &mut vec![]);
        e
    }

    /// b1 (round 1), and b2 (round 2, certified b1) claiming the state
    /// hash `H("state after 1")` at height 1, which a fresh engine has not
    /// executed yet: its vote for b2 waits for `Executed`.
    fn b1_and_b2_claiming_height_1(&self) -> (Block, Block) {
        let b1 = self.block(&self.genesis, &self.gqc(), 1, vec![]);
        let q1 = self.qc(&b1, &[0, 1, 2]);
        let mut b2 = self.block(&b1, &q1, 2, vec![]);
        b2.header.app_height = 1;
        b2.header.app_hash = Hash::digest(b"state after 1");
        let b2 = Block::sign(b2.header, b2.justify, vec![], &self.keys[2]);
        (b1, b2)
    }

    /// A block like [`Net::block`] but proposed by validator `by`.
    fn block_by(&self, by: usize, parent: &Block, qc: &QuorumCert, round: Round) -> Block {
        let b = self.block(parent, qc, round, vec![]);
        let header = BlockHeader { proposer: self.id(by), ..b.header };
        Block::sign(header, b.justify, vec![], &self.keys[by])
    }

    /// Rounds 1..=5 on validators 1, (2 fails), 3, 0, 1: b1, b3 (through
    /// TC(2)), b4, b5, each with its QC in the next. Returns b5 and QC(b5).
    fn chain_with_round_2_failed(&self) -> (Vec<(Block, Option<TimeoutCert>)>, QuorumCert) {
        let b1 = self.block(&self.genesis, &self.gqc(), 1, vec![]);
        let q1 = self.qc(&b1, &[0, 1, 3]);
        let b3 = self.block(&b1, &q1, 3, vec![]);
        let tc2 = self.tc(2, &q1, &[0, 1, 3]);
        let q3 = self.qc(&b3, &[0, 1, 3]);
        let b4 = self.block(&b3, &q3, 4, vec![]);
        let q4 = self.qc(&b4, &[0, 1, 3]);
        let b5 = self.block(&b4, &q4, 5, vec![]);
        let q5 = self.qc(&b5, &[0, 1, 3]);
        (vec![(b1, None), (b3, Some(tc2)), (b4, None), (b5, None)], q5)
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            chain_id: CHAIN.into(),
            validators: self.validators.clone(),
            genesis: self.genesis.clone(),
            timeout_ms_base: BASE,
            timeout_ms_max: 60_000,
            block_max_bytes: 1 << 20,
            block_max_txs: 1000,
            empty_block_interval_ms: 100,
            sync_timeout_ms: 500,
            sync_max_blocks: 64,
            reputation_window: 0,
        }
    }

    fn recovery(&self) -> Recovery {
        Recovery {
            history: Vec::new(),
            membership: None,
            safety: None,
            committed: CertifiedBlock { block: self.genesis.clone(), cert: Certificate::Genesis },
            blocks: vec![],
            executed: vec![(0, Hash::ZERO)],
        }
    }

    /// Engine for validator `i`, restored at time 0; returns its start actions.
    fn engine_with(&self, i: usize, recovery: Recovery) -> (HotStuff, Vec<Action>) {
        let mut e = HotStuff::new(self.config(), self.keys[i].clone(), Arc::new(AcceptAll));
        let mut out = vec![];
        e.step(0, Input::Restored(Box::new(recovery)), &mut out);
        (e, out)
    }

    fn engine(&self, i: usize) -> HotStuff {
        self.engine_with(i, self.recovery()).0
    }

    fn id(&self, i: usize) -> crate::types::ValidatorId {
        self.keys[i].public()
    }

    fn gqc(&self) -> QuorumCert {
        genesis_qc(&self.genesis)
    }

    /// A block of `round` on `parent` (certified by `qc`), signed by `round`'s leader.
    fn block(&self, parent: &Block, qc: &QuorumCert, round: Round, txs: Vec<Tx>) -> Block {
        let leader = (round % 4) as usize;
        let header = BlockHeader {
            chain_id: CHAIN.into(),
            height: parent.height() + 1,
            round,
            parent: parent.id(),
            parent_round: qc.round(),
            payload_root: payload_root(&txs),
            app_height: parent.header.app_height,
            app_hash: parent.header.app_hash,
            proposer: self.id(leader),
            time_ms: round,
        };
        Block::sign(header, Certificate::Quorum(qc.clone()), txs, &self.keys[leader])
    }

    fn vote(&self, i: usize, block: &Block) -> Vote {
        let data = VoteData::for_block(block);
        Vote { data, author: self.id(i), signature: self.keys[i].sign(Domain::Vote, CHAIN, &data.signing_body()) }
    }

    /// A QC for `block` signed by validators `signers`.
    fn qc(&self, block: &Block, signers: &[usize]) -> QuorumCert {
        let data = VoteData::for_block(block);
        let mut bitmap = SignerBitmap::with_len(4);
        let mut sigs = vec![];
        for &i in signers {
            bitmap.set(i);
            sigs.push(self.keys[i].sign(Domain::Vote, CHAIN, &data.signing_body()));
        }
        QuorumCert { vote: data, signers: bitmap, signatures: sigs }
    }

    fn timeout(&self, i: usize, round: Round, high_qc: &QuorumCert) -> Timeout {
        let body = TimeoutData { round, high_qc_round: high_qc.round() }.signing_body();
        Timeout {
            round,
            high_qc: high_qc.clone(),
            author: self.id(i),
            signature: self.keys[i].sign(Domain::Timeout, CHAIN, &body),
            last_tc: None,
        }
    }

    fn tc(&self, round: Round, high_qc: &QuorumCert, signers: &[usize]) -> TimeoutCert {
        let mut bitmap = SignerBitmap::with_len(4);
        let mut sigs = vec![];
        let mut rounds = vec![];
        for &i in signers {
            bitmap.set(i);
            let body = TimeoutData { round, high_qc_round: high_qc.round() }.signing_body();
            sigs.push(self.keys[i].sign(Domain::Timeout, CHAIN, &body));
            rounds.push(high_qc.round());
        }
        TimeoutCert { round, signers: bitmap, high_qc_rounds: rounds, signatures: sigs, high_qc: high_qc.clone() }
    }
}

fn proposal(block: &Block, tc: Option<TimeoutCert>) -> ConsensusMsg {
    ConsensusMsg::HotStuff(HotStuffMsg::Proposal(Box::new(Proposal { block: block.clone(), tc })))
}

fn vote_msg(v: Vote) -> ConsensusMsg {
    ConsensusMsg::HotStuff(HotStuffMsg::Vote(v))
}

fn timeout_msg(t: Timeout) -> ConsensusMsg {
    ConsensusMsg::HotStuff(HotStuffMsg::Timeout(Box::new(t)))
}

fn step(e: &mut HotStuff, now: u64, input: Input) -> Vec<Action> {
    let mut out = vec![];
    e.step(now, input, &mut out);
    out
}

fn deliver(e: &mut HotStuff, now: u64, from: crate::types::ValidatorId, msg: ConsensusMsg) -> Vec<Action> {
    step(e, now, Input::Message { from, msg })
}

fn safety_of(a: &Action) -> &SafetyData {
    match a {
        Action::PersistSafety(SafetyState::HotStuff(d)) => d,
        other => panic!("expected PersistSafety, got {other:?}"),
    }
}

/// At start, a validator that is not round 1's leader only arms its round
/// timer (base timeout, since round 1 is entered through the genesis QC).
#[test]
fn start_arms_the_round_timer() {
    let net = Net::new();
    let (e, out) = net.engine_with(0, net.recovery());
    assert_eq!(out, vec![Action::SetTimer { id: TimerId::Round, at: BASE }]);
    assert_eq!(e.round(), 1);
}

/// Voting rule, first case (PROTOCOLS.md): a valid proposal whose QC is from
/// the previous round is stored, the vote persisted, then sent to the next
/// round's leader, in exactly that order.
#[test]
fn vote_is_persisted_then_sent_to_next_leader() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let out = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    let expected_vote = Vote {
        data: VoteData::for_block(&b1),
        author: net.id(0),
        signature: net.keys[0].sign(Domain::Vote, CHAIN, &VoteData::for_block(&b1).signing_body()),
    };
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0], Action::PersistBlock(b1.clone()));
    let d = safety_of(&out[1]);
    assert_eq!((d.last_voted_round, d.one_chain_round), (1, 0));
    assert_eq!(out[2], Action::Send { to: net.id(2), msg: vote_msg(expected_vote) });
}

/// A proposal must come from the round's leader.
#[test]
fn proposal_from_wrong_leader_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let mut b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    b1.header.proposer = net.id(3);
    let b1 = Block::sign(b1.header, b1.justify, vec![], &net.keys[3]);
    let out = deliver(&mut e, 10, net.id(3), proposal(&b1, None));
    assert!(
        matches!(&out[..], [Action::Invalid { from, reason }] if *from == net.id(3) && reason.contains("leader")),
        "{out:?}"
    );
}

/// A proposal with a corrupted signature is refused and changes nothing.
#[test]
fn proposal_with_bad_signature_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let mut b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    b1.signature.0[0] ^= 1;
    let out = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    assert!(matches!(&out[..], [Action::Invalid { reason, .. }] if reason.contains("bad signature")), "{out:?}");
    assert_eq!(e.safety_data().last_voted_round, 0);
}

/// Asked again for the same block, the validator resends its identical vote
/// without persisting or signing anything new.
#[test]
fn repeated_proposal_gets_the_identical_vote() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let first = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    let again = deliver(&mut e, 11, net.id(1), proposal(&b1, None));
    assert_eq!(again, vec![first[2].clone()]);
}

/// Two different proposals by one leader for one round: the second is
/// evidence, and the validator does not vote twice.
#[test]
fn equivocating_leader_yields_evidence_and_one_vote() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let b1x = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"x")]);
    deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    let out = deliver(&mut e, 11, net.id(1), proposal(&b1x, None));
    assert!(
        matches!(&out[0], Action::Evidence(Evidence::DoubleProposal { a, b, .. }) if a.id() == b1.id() && b.id() == b1x.id())
    );
    assert_eq!(out[1], Action::PersistBlock(b1x));
    assert_eq!(out.len(), 2, "no second vote: {out:?}");
}

/// Commit rule (2-chain): a QC for a block whose parent is from the round
/// just before commits that parent, with its QC, in one Commit action.
#[test]
fn two_chain_with_consecutive_rounds_commits_the_parent() {
    let net = Net::new();
    let mut e = net.engine(1); // validator 1: leader of round 1, votes go elsewhere
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    let q2 = net.qc(&b2, &[0, 1, 2]);
    let b3 = net.block(&b2, &q2, 3, vec![]);
    deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    deliver(&mut e, 20, net.id(2), proposal(&b2, None));
    let out = deliver(&mut e, 30, net.id(3), proposal(&b3, None));
    assert_eq!(out[0], Action::Commit(vec![CertifiedBlock { block: b1.clone(), cert: Certificate::Quorum(q1) }]));
    assert_eq!(out[1], Action::SetTimer { id: TimerId::Round, at: 30 + BASE });
    assert_eq!(out[2], Action::PersistBlock(b3));
    assert_eq!(safety_of(&out[3]).last_voted_round, 3);
    assert!(matches!(&out[4], Action::Send { to, .. } if *to == net.id(0)));
    assert_eq!(out.len(), 5);
    assert_eq!(e.committed().id(), b1.id());
}

/// Commit rule: when rounds are not consecutive (a round was skipped by a
/// TC), the QC does not commit the parent.
#[test]
fn two_chain_with_a_gap_does_not_commit() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let tc2 = net.tc(2, &q1, &[0, 1, 2]);
    let b3 = net.block(&b1, &q1, 3, vec![]); // round 3 after TC(2), QC round 1
    let q3 = net.qc(&b3, &[0, 1, 2]);
    let b4 = net.block(&b3, &q3, 4, vec![]);
    deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    deliver(&mut e, 20, net.id(3), proposal(&b3, Some(tc2)));
    let out = deliver(&mut e, 30, net.id(0), proposal(&b4, None));
    // b4's QC certifies b3 (round 3) whose parent b1 is round 1: no commit of b1.
    // But it is b3 <- b4 that matters later; for now nothing commits.
    assert!(!out.iter().any(|a| matches!(a, Action::Commit(_))), "{out:?}");
    assert_eq!(e.committed().height(), 0);
}

/// The leader of round r+1 turns a quorum of votes for round r into a QC,
/// enters round r+1 and asks the mempool for a payload, excluding the
/// uncommitted blocks it extends.
#[test]
fn quorum_of_votes_forms_qc_and_next_leader_requests_payload() {
    let net = Net::new();
    let mut e = net.engine(2); // leader of round 2
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let own = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    assert!(own.iter().all(|a| !matches!(a, Action::Send { .. })), "own vote is kept locally");
    assert!(deliver(&mut e, 11, net.id(0), vote_msg(net.vote(0, &b1))).is_empty());
    let out = deliver(&mut e, 12, net.id(1), vote_msg(net.vote(1, &b1)));
    assert_eq!(
        out,
        vec![
            Action::SetTimer { id: TimerId::Round, at: 12 + BASE },
            Action::RequestPayload { ticket: 1, max_bytes: 1 << 20, max_txs: 1000, exclude: vec![b1.id()] },
        ]
    );
    assert_eq!(e.round(), 2);
    assert_eq!(e.high_qc().block_id(), b1.id());
}

/// A leader proposes as soon as the payload arrives; every persist comes
/// before the broadcast, and its own vote goes to the next leader.
#[test]
fn leader_proposes_with_persists_before_broadcast() {
    let net = Net::new();
    let (mut e, out) = net.engine_with(1, net.recovery()); // leader of round 1
    assert!(matches!(out[1], Action::RequestPayload { ticket: 1, .. }));
    let tx = Tx::from_static(b"tx-1");
    let out = step(&mut e, 5, Input::Payload { ticket: 1, txs: vec![tx.clone()] });
    let kinds: Vec<&str> = out
        .iter()
        .map(|a| match a {
            Action::PersistSafety(_) => "persist-safety",
            Action::PersistBlock(_) => "persist-block",
            Action::Broadcast(_) => "broadcast",
            Action::Send { .. } => "send",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["persist-safety", "persist-block", "persist-safety", "broadcast", "send"]);
    let Action::Broadcast(ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p))) = &out[3] else { panic!() };
    assert_eq!(p.block.txs, vec![tx]);
    assert_eq!(p.block.header.proposer, net.id(1));
    assert!(matches!(&out[4], Action::Send { to, .. } if *to == net.id(2)));
}

/// A leader with an empty mempool and nothing pending polls again instead
/// of proposing an empty block at once.
#[test]
fn leader_with_nothing_to_propose_polls_again() {
    let net = Net::new();
    let (mut e, _) = net.engine_with(1, net.recovery());
    let out = step(&mut e, 5, Input::Payload { ticket: 1, txs: vec![] });
    assert_eq!(out, vec![Action::SetTimer { id: TimerId::Propose, at: 5 + PROPOSE_POLL_MS }]);
    // After the empty-block interval it proposes anyway (a heartbeat block).
    let out = step(&mut e, 200, Input::Timer(TimerId::Propose));
    assert!(matches!(out[..], [Action::RequestPayload { ticket: 2, .. }]));
    let out = step(&mut e, 200, Input::Payload { ticket: 2, txs: vec![] });
    assert!(out.iter().any(|a| matches!(a, Action::Broadcast(_))));
}

/// Timeout rule: when the round timer fires, the timeout is persisted
/// (last_voted_round and highest_timeout_round = r), then broadcast, and the
/// timer re-armed with back-off.
#[test]
fn round_timer_persists_then_broadcasts_timeout() {
    let net = Net::new();
    let mut e = net.engine(0);
    let out = step(&mut e, BASE, Input::Timer(TimerId::Round));
    assert_eq!(out.len(), 3, "{out:?}");
    let d = safety_of(&out[0]);
    assert_eq!((d.last_voted_round, d.highest_timeout_round), (1, 1));
    assert_eq!(out[1], Action::Broadcast(timeout_msg(net.timeout(0, 1, &net.gqc()))));
    assert_eq!(out[2], Action::SetTimer { id: TimerId::Round, at: BASE + 2 * BASE });
}

/// A timer that fires before the current deadline does not time out the
/// round; it is re-armed for the deadline.
#[test]
fn early_round_timer_is_re_armed() {
    let net = Net::new();
    let mut e = net.engine(0);
    assert_eq!(
        step(&mut e, BASE - 1, Input::Timer(TimerId::Round)),
        vec![Action::SetTimer { id: TimerId::Round, at: BASE }]
    );
    assert_eq!(e.safety_data().last_voted_round, 0);
}

/// After timing out in a round, a validator does not vote in it.
#[test]
fn no_vote_after_timeout_in_the_same_round() {
    let net = Net::new();
    let mut e = net.engine(0);
    step(&mut e, BASE, Input::Timer(TimerId::Round));
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let out = deliver(&mut e, BASE + 1, net.id(1), proposal(&b1, None));
    assert_eq!(out, vec![Action::PersistBlock(b1)]);
}

/// Timeouts from more than 1/3 of power make a validator time out at once;
/// with its own, a quorum forms TC(r) and it enters r + 1 with back-off.
#[test]
fn timeouts_form_a_tc_and_advance_the_round() {
    let net = Net::new();
    let mut e = net.engine(0);
    let gqc = net.gqc();
    assert!(deliver(&mut e, 10, net.id(1), timeout_msg(net.timeout(1, 1, &gqc))).is_empty());
    let out = deliver(&mut e, 11, net.id(2), timeout_msg(net.timeout(2, 1, &gqc)));
    assert_eq!(safety_of(&out[0]).highest_timeout_round, 1);
    assert_eq!(out[1], Action::Broadcast(timeout_msg(net.timeout(0, 1, &gqc))));
    assert!(matches!(out[2], Action::SetTimer { id: TimerId::Round, .. }));
    // Our own timeout completes the quorum: TC(1), round 2, timer base * 2.
    assert_eq!(out[3], Action::SetTimer { id: TimerId::Round, at: 11 + 2 * BASE });
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(e.round(), 2);
}

/// Voting rule, second case: a block reached through TC(r-1) is voted for
/// when its QC is at least the highest QC in the TC.
#[test]
fn vote_for_block_justified_by_tc() {
    let net = Net::new();
    let mut e = net.engine(0);
    let tc1 = net.tc(1, &net.gqc(), &[1, 2, 3]);
    let b2 = net.block(&net.genesis, &net.gqc(), 2, vec![]);
    let out = deliver(&mut e, 10, net.id(2), proposal(&b2, Some(tc1)));
    assert!(matches!(out[0], Action::SetTimer { id: TimerId::Round, .. }), "the TC moves us to round 2");
    assert_eq!(out[1], Action::PersistBlock(b2.clone()));
    assert_eq!(safety_of(&out[2]).last_voted_round, 2);
    assert!(matches!(&out[3], Action::Send { to, .. } if *to == net.id(3)));
}

/// A proposal that skips rounds without a TC is refused as unjustified.
#[test]
fn proposal_skipping_rounds_without_tc_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b2 = net.block(&net.genesis, &net.gqc(), 2, vec![]);
    let out = deliver(&mut e, 10, net.id(2), proposal(&b2, None));
    assert!(matches!(&out[..], [Action::Invalid { reason, .. }] if reason.contains("neither QC round")), "{out:?}");
}

/// Two votes by one validator in one round for different blocks are kept
/// as evidence.
#[test]
fn double_vote_yields_evidence() {
    let net = Net::new();
    let mut e = net.engine(2);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let b1x = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"x")]);
    deliver(&mut e, 10, net.id(3), vote_msg(net.vote(3, &b1)));
    let out = deliver(&mut e, 11, net.id(3), vote_msg(net.vote(3, &b1x)));
    assert!(matches!(&out[..], [Action::Evidence(Evidence::DoubleVote { author, .. })] if *author == net.id(3)));
}

/// A forged vote (signature by someone else) is refused.
#[test]
fn vote_with_bad_signature_is_refused() {
    let net = Net::new();
    let mut e = net.engine(2);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let mut v = net.vote(3, &b1);
    v.author = net.id(1);
    let out = deliver(&mut e, 10, net.id(3), vote_msg(v));
    assert!(matches!(&out[..], [Action::Invalid { .. }]), "{out:?}");
}

/// Block sync: a proposal whose parent is unknown triggers a request to
/// its sender for the chain from our committed height; the answer is
/// verified, stored, and the buffered proposal then voted on.
#[test]
fn missing_parent_is_synced_then_voted() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    let out = deliver(&mut e, 10, net.id(2), proposal(&b2, None));
    assert_eq!(
        out,
        vec![
            Action::RequestSync {
                from: net.id(2),
                request: SyncRequest { from_height: 1, target: b1.id(), max_blocks: 64 }
            },
            Action::SetTimer { id: TimerId::Sync, at: 10 + 500 },
            Action::SetTimer { id: TimerId::Round, at: 10 + BASE },
        ]
    );
    let resp = SyncResponse { blocks: vec![b1.clone()], last_cert: None };
    let out = step(&mut e, 20, Input::Synced { from: net.id(2), response: resp });
    assert_eq!(out[0], Action::PersistBlock(b1));
    assert_eq!(out[1], Action::PersistBlock(b2));
    assert_eq!(safety_of(&out[2]).last_voted_round, 2);
    assert!(matches!(&out[3], Action::Send { to, .. } if *to == net.id(3)));
}

/// A leader that shows each half of the validators a different block is
/// exposed when the block it hid from us arrives by sync: the block we
/// fetch is a second signed proposal for the round we voted in.
#[test]
fn equivocation_seen_only_through_sync_yields_evidence() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let b1x = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"x")]);
    deliver(&mut e, 10, net.id(1), proposal(&b1x, None));
    // The others certified b1 and built on it.
    let q1 = net.qc(&b1, &[1, 2, 3]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    deliver(&mut e, 20, net.id(2), proposal(&b2, None));
    let resp = SyncResponse { blocks: vec![b1.clone()], last_cert: None };
    let out = step(&mut e, 30, Input::Synced { from: net.id(2), response: resp });
    assert!(
        matches!(&out[0], Action::Evidence(Evidence::DoubleProposal { a, b, .. })
            if a.id() == b1x.id() && b.id() == b1.id() && a.proposer == net.id(1)),
        "{out:?}"
    );
    assert!(out.contains(&Action::PersistBlock(b1)), "the certified block is still taken: {out:?}");
}

/// Synced blocks with a forged certificate are refused and not stored.
#[test]
fn synced_block_with_forged_qc_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    deliver(&mut e, 10, net.id(2), proposal(&b2, None));
    let mut forged = b1.clone();
    forged.signature.0[5] ^= 1;
    let resp = SyncResponse { blocks: vec![forged], last_cert: None };
    let out = step(&mut e, 20, Input::Synced { from: net.id(2), response: resp });
    assert!(matches!(&out[0], Action::Invalid { reason, .. } if reason.contains("synced block")));
    assert!(!out.iter().any(|a| matches!(a, Action::PersistBlock(_))));
}

/// Restart: a validator restored from the safety state it persisted after
/// voting in round 1 does not vote for a different round-1 block.
#[test]
fn restored_validator_does_not_vote_twice_in_a_round() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let out = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    let persisted = safety_of(&out[1]).clone();
    let mut rec = net.recovery();
    rec.safety = Some(SafetyState::HotStuff(persisted));
    let (mut again, _) = net.engine_with(0, rec);
    let b1x = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"other")]);
    let out = deliver(&mut again, 20, net.id(1), proposal(&b1x, None));
    assert_eq!(out, vec![Action::PersistBlock(b1x)], "stored, but no second vote");
    // The original block still gets the identical vote back, with no new
    // persist (the two proposals are also evidence against the leader).
    let out = deliver(&mut again, 21, net.id(1), proposal(&b1, None));
    assert!(out.iter().any(|a| matches!(a, Action::Send { .. })), "{out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::PersistSafety(_))), "{out:?}");
}

/// Restart: persisted blocks are restored into the tree and commits the
/// engine had made but the store had not are emitted again.
#[test]
fn restore_replays_commits_from_persisted_blocks() {
    let net = Net::new();
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    let q2 = net.qc(&b2, &[0, 1, 2]);
    let b3 = net.block(&b2, &q2, 3, vec![]);
    let mut rec = net.recovery();
    rec.blocks = vec![b3.clone(), b1.clone(), b2.clone()];
    let (e, out) = net.engine_with(0, rec);
    assert_eq!(out[0], Action::Commit(vec![CertifiedBlock { block: b1.clone(), cert: Certificate::Quorum(q1) }]));
    assert_eq!(e.round(), 3, "entered the round after the highest QC (round 2)");
}

/// The app hash rule: a block claiming a newer executed height is voted
/// for only once this validator executed that height, and only if the hash
/// matches.
#[test]
fn vote_waits_for_execution_and_checks_the_app_hash() {
    let net = Net::new();
    let mut e = net.engine(0);
    let (b1, b2) = net.b1_and_b2_claiming_height_1();
    deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    let out = deliver(&mut e, 20, net.id(2), proposal(&b2, None));
    assert!(!out.iter().any(|a| matches!(a, Action::Send { .. })), "waits for height 1 to execute");
    let out = step(&mut e, 30, Input::Executed { height: 1, app_hash: Hash::digest(b"state after 1") });
    assert_eq!(safety_of(&out[0]).last_voted_round, 2);
    assert!(matches!(&out[1], Action::Send { .. }));

    // Another validator that computed a different hash refuses.
    let mut f = net.engine(0);
    deliver(&mut f, 10, net.id(1), proposal(&b1, None));
    step(&mut f, 15, Input::Executed { height: 1, app_hash: Hash::digest(b"diverged") });
    let out = deliver(&mut f, 20, net.id(2), proposal(&b2, None));
    assert!(out.iter().any(|a| matches!(a, Action::Invalid { reason, .. } if reason.contains("app hash"))));
    assert!(!out.iter().any(|a| matches!(a, Action::Send { .. })));
}

/// A block whose payload root does not match its transactions is refused.
#[test]
fn block_with_wrong_payload_root_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let mut b1 = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"a")]);
    b1.txs.push(Tx::from_static(b"smuggled"));
    let out = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    assert!(matches!(&out[..], [Action::Invalid { reason, .. }] if reason.contains("payload_root")), "{out:?}");
}

/// Sync info: a timeout carrying a TC the receiver missed moves it to the
/// round after that TC (a lagging validator catches up).
#[test]
fn timeout_carrying_a_tc_moves_a_lagging_validator_forward() {
    let net = Net::new();
    let mut e = net.engine(0);
    let gqc = net.gqc();
    let tc1 = net.tc(1, &gqc, &[1, 2, 3]);
    let body = TimeoutData { round: 2, high_qc_round: 0 }.signing_body();
    let t = Timeout {
        round: 2,
        high_qc: gqc.clone(),
        author: net.id(1),
        signature: net.keys[1].sign(Domain::Timeout, CHAIN, &body),
        last_tc: Some(tc1),
    };
    let out = deliver(&mut e, 10, net.id(1), timeout_msg(t));
    assert_eq!(out, vec![Action::SetTimer { id: TimerId::Round, at: 10 + 2 * BASE }]);
    assert_eq!(e.round(), 2);
}

/// A timeout whose attached TC is forged is refused whole.
#[test]
fn timeout_with_forged_tc_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let gqc = net.gqc();
    let mut tc1 = net.tc(1, &gqc, &[1, 2, 3]);
    tc1.signatures[0].0[1] ^= 1;
    let mut t = net.timeout(1, 2, &gqc);
    t.last_tc = Some(tc1);
    let out = deliver(&mut e, 10, net.id(1), timeout_msg(t));
    assert!(matches!(&out[..], [Action::Invalid { .. }]), "{out:?}");
    assert_eq!(e.round(), 1);
}

/// Restart after timing out: a validator whose last signed message was in a
/// round reached through a TC re-enters that round from its persisted TC
/// and can time out in it again (without the TC it would sit one round
/// below its last vote, unable to vote or time out: a stall).
#[test]
fn restore_re_enters_the_round_of_the_persisted_tc() {
    let net = Net::new();
    let tc1 = net.tc(1, &net.gqc(), &[1, 2, 3]);
    let data = SafetyData {
        last_voted_round: 2,
        highest_timeout_round: 2,
        high_qc: Some(net.gqc()),
        highest_tc: Some(tc1),
        ..SafetyData::default()
    };
    let mut rec = net.recovery();
    rec.safety = Some(SafetyState::HotStuff(data));
    let (mut e, out) = net.engine_with(0, rec);
    assert_eq!(e.round(), 2);
    assert_eq!(out, vec![Action::SetTimer { id: TimerId::Round, at: 2 * BASE }]);
    let out = step(&mut e, 2 * BASE, Input::Timer(TimerId::Round));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Broadcast(ConsensusMsg::HotStuff(HotStuffMsg::Timeout(t))) if t.round == 2))
    );
}

/// Every signature persists the highest QC and TC known, so a restart can
/// find its round again.
#[test]
fn persisted_safety_state_carries_the_highest_certificates() {
    let net = Net::new();
    let mut e = net.engine(0);
    let tc1 = net.tc(1, &net.gqc(), &[1, 2, 3]);
    let b2 = net.block(&net.genesis, &net.gqc(), 2, vec![]);
    let out = deliver(&mut e, 10, net.id(2), proposal(&b2, Some(tc1.clone())));
    let d = out.iter().find_map(|a| match a {
        Action::PersistSafety(SafetyState::HotStuff(d)) => Some(d.clone()),
        _ => None,
    });
    let d = d.expect("the vote persisted");
    assert_eq!(d.highest_tc, Some(tc1));
    assert_eq!(d.high_qc, Some(net.gqc()));
}

/// A synced block whose transactions do not match its header's payload root
/// (a sync peer swapping the certified block's content) is refused.
#[test]
fn synced_block_with_swapped_transactions_is_refused() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"real")]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    deliver(&mut e, 10, net.id(2), proposal(&b2, None));
    let mut forged = b1.clone();
    forged.txs = vec![Tx::from_static(b"forged")];
    let resp = SyncResponse { blocks: vec![forged], last_cert: None };
    let out = step(&mut e, 20, Input::Synced { from: net.id(2), response: resp });
    assert!(matches!(&out[0], Action::Invalid { reason, .. } if reason.contains("payload_root")), "{out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::PersistBlock(_))));
}

/// A sync answer may only carry certified blocks: a block that neither the
/// next block's justify, the answer's certificate nor our target certifies
/// is not stored.
#[test]
fn synced_uncertified_block_is_not_stored() {
    let net = Net::new();
    let mut e = net.engine(0);
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let q1 = net.qc(&b1, &[0, 1, 2]);
    let b2 = net.block(&b1, &q1, 2, vec![]);
    deliver(&mut e, 10, net.id(2), proposal(&b2, None)); // target: b1
    let sibling = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"sibling")]);
    let resp = SyncResponse { blocks: vec![sibling.clone()], last_cert: None };
    let out = step(&mut e, 20, Input::Synced { from: net.id(2), response: resp });
    assert!(!out.iter().any(|a| matches!(a, Action::PersistBlock(_))), "{out:?}");
    // Two unlinked blocks are not a chain: refused and reported.
    let other = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"other")]);
    let resp = SyncResponse { blocks: vec![sibling, other], last_cert: None };
    let out = step(&mut e, 30, Input::Synced { from: net.id(2), response: resp });
    assert!(matches!(&out[..], [Action::Invalid { reason, .. }] if reason.contains("not a chain")), "{out:?}");
}

/// After a leader is caught equivocating in a round, its further proposals
/// in that round are ignored (bounded work and storage against a Byzantine
/// leader signing many blocks).
#[test]
fn third_proposal_of_an_equivocating_leader_is_ignored() {
    let net = Net::new();
    let mut e = net.engine(0);
    for (i, tag) in [b"a".as_slice(), b"b", b"c"].into_iter().enumerate() {
        let b = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::copy_from_slice(tag)]);
        let out = deliver(&mut e, 10 + i as u64, net.id(1), proposal(&b, None));
        match i {
            0 => assert!(out.iter().any(|a| matches!(a, Action::PersistBlock(_)))),
            1 => assert!(matches!(out[0], Action::Evidence(_))),
            _ => assert!(out.is_empty(), "{out:?}"),
        }
    }
}

/// A Byzantine validator's repeated double votes in one round yield one
/// piece of evidence, not one per vote.
#[test]
fn repeated_double_votes_yield_one_evidence() {
    let net = Net::new();
    let mut e = net.engine(2);
    let mut evidence = 0;
    for tag in [b"a".as_slice(), b"b", b"c", b"d"] {
        let b = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::copy_from_slice(tag)]);
        let out = deliver(&mut e, 10, net.id(3), vote_msg(net.vote(3, &b)));
        evidence += out.iter().filter(|a| matches!(a, Action::Evidence(_))).count();
    }
    assert_eq!(evidence, 1);
}

/// A payload requested for one parent is not used on another: if a higher
/// QC arrives within the round between the request and the answer (possible
/// when the round was entered through a TC), the leader asks again, because
/// the payload skipped only the old parent's chain and could repeat
/// transactions of the new one.
#[test]
fn payload_for_an_outdated_parent_is_requested_again() {
    let net = Net::new();
    let mut e = net.engine(3); // leader of round 3
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![Tx::from_static(b"in-b1")]);
    deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    // TC(2) whose signers knew only the genesis QC brings us to round 3.
    let tc2 = net.tc(2, &net.gqc(), &[0, 1, 2]);
    let si = crate::types::SyncInfo { high_qc: net.gqc(), last_tc: Some(tc2) };
    let out = deliver(&mut e, 20, net.id(0), ConsensusMsg::HotStuff(HotStuffMsg::SyncInfo(Box::new(si))));
    assert!(
        matches!(out.last(), Some(Action::RequestPayload { ticket: 1, exclude, .. }) if exclude.is_empty()),
        "{out:?}"
    );
    // Within round 3, a timeout for round 2 brings the QC of b1.
    let q1 = net.qc(&b1, &[0, 1, 2]);
    deliver(&mut e, 30, net.id(0), timeout_msg(net.timeout(0, 2, &q1)));
    assert_eq!(e.round(), 3);
    let out = step(&mut e, 40, Input::Payload { ticket: 1, txs: vec![Tx::from_static(b"in-b1")] });
    assert_eq!(
        out,
        vec![Action::RequestPayload { ticket: 2, max_bytes: 1 << 20, max_txs: 1000, exclude: vec![b1.id()] }]
    );
}

/// Delivers each proposal of `chain` from its proposer; returns the actions
/// of the last.
fn feed(e: &mut HotStuff, chain: &[(Block, Option<TimeoutCert>)]) -> Vec<Action> {
    let mut last = vec![];
    for (b, tc) in chain {
        last = deliver(e, 10, b.header.proposer, proposal(b, tc.clone()));
    }
    last
}

/// Leader reputation: validator 2 failed to lead round 2, so its next turn
/// (round 6) goes to validator 1 (the second of the three others, as 6 / 4
/// = 1): votes for round 5 go there, its proposal is voted for, and one by
/// validator 2 itself is refused. Its QC still counts.
#[test]
fn a_validator_that_failed_to_lead_loses_its_next_turn() {
    let net = Net::new();
    let mut e = net.engine_with_reputation(0);
    let (chain, q5) = net.chain_with_round_2_failed();
    let last = feed(&mut e, &chain);
    assert!(
        last.iter().any(|a| matches!(a, Action::Send { to, msg: ConsensusMsg::HotStuff(HotStuffMsg::Vote(v)) }
            if *to == net.id(1) && v.data.round == 5)),
        "the vote for round 5 goes to round 6's replacement leader: {last:?}"
    );
    assert_eq!(e.status().excluded_leaders, vec![net.id(2)]);
    let b5 = &chain[3].0;
    let by_failed = net.block_by(2, b5, &q5, 6);
    let out = deliver(&mut e, 20, net.id(2), proposal(&by_failed, None));
    assert!(
        out.iter().any(|a| matches!(a, Action::Invalid { reason, .. } if reason.contains("the leader of round 6 is"))),
        "{out:?}"
    );
    assert!(!out.iter().any(|a| matches!(a, Action::PersistBlock(_))), "{out:?}");
    assert_eq!(e.round(), 6, "the refused proposal's QC still moved the round on");
    let by_replacement = net.block_by(1, b5, &q5, 6);
    let out = deliver(&mut e, 21, net.id(1), proposal(&by_replacement, None));
    assert!(
        out.iter().any(|a| matches!(a, Action::Send { msg: ConsensusMsg::HotStuff(HotStuffMsg::Vote(v)), .. }
            if v.data.round == 6)),
        "{out:?}"
    );
}

/// The replacement leader collects the votes of the round before its
/// replacement turn and proposes.
#[test]
fn the_replacement_leader_forms_the_qc_and_proposes() {
    let net = Net::new();
    let mut e = net.engine_with_reputation(1);
    let (chain, _) = net.chain_with_round_2_failed();
    feed(&mut e, &chain);
    let b5 = &chain[3].0;
    deliver(&mut e, 11, net.id(0), vote_msg(net.vote(0, b5)));
    let out = deliver(&mut e, 12, net.id(3), vote_msg(net.vote(3, b5)));
    assert_eq!(e.round(), 6);
    assert!(out.iter().any(|a| matches!(a, Action::RequestPayload { .. })), "{out:?}");
    assert_eq!(e.leader(6), net.id(1));
}

/// With reputation off (window 0) the plain schedule holds whatever failed.
#[test]
fn without_reputation_the_failed_validator_keeps_its_turn() {
    let net = Net::new();
    let mut e = net.engine(0);
    let (chain, _) = net.chain_with_round_2_failed();
    feed(&mut e, &chain);
    assert_eq!(e.leader(6), net.id(2));
    assert!(e.status().excluded_leaders.is_empty());
}

/// Restarted with the committed rounds from the store, a validator judges
/// leaders as before; without them (a snapshot start) it cannot tell and
/// accepts any validator's proposal.
#[test]
fn restored_history_keeps_the_leader_choice() {
    let net = Net::new();
    let (chain, q5) = net.chain_with_round_2_failed();
    let b4 = &chain[2].0;
    let b5 = &chain[3].0;
    let q4 = justify_qc(b5).unwrap().clone();
    let recovery = |history: Vec<HistoryEntry>| Recovery {
        committed: CertifiedBlock { block: b4.clone(), cert: Certificate::Quorum(q4.clone()) },
        blocks: vec![b5.clone()],
        history,
        ..net.recovery()
    };
    let entry = |b: &Block| HistoryEntry {
        height: b.height(),
        round: b.round(),
        voters: b.justify.as_quorum().map(|q| q.signers.clone()).unwrap_or_default(),
    };
    let cfg = EngineConfig { reputation_window: 20, ..net.config() };
    let start = |r: Recovery| {
        let mut e = HotStuff::new(cfg.clone(), net.keys[0].clone(), Arc::new(AcceptAll));
        e.step(0, Input::Restored(Box::new(r)), &mut vec![]);
        e
    };
    let by_failed = net.block_by(2, b5, &q5, 6);
    let mut e = start(recovery(vec![entry(&chain[0].0), entry(&chain[1].0)]));
    let out = deliver(&mut e, 20, net.id(2), proposal(&by_failed, None));
    assert!(out.iter().any(|a| matches!(a, Action::Invalid { .. })), "{out:?}");
    let mut e = start(recovery(vec![]));
    let out = deliver(&mut e, 20, net.id(2), proposal(&by_failed, None));
    assert!(out.iter().any(|a| matches!(a, Action::PersistBlock(_))), "{out:?}");
}

/// A round whose leader's connection closed before its proposal arrived is
/// given up at once: the timeout is persisted and broadcast without waiting
/// for the round timer.
#[test]
fn a_round_whose_leader_disconnected_times_out_at_once() {
    let net = Net::new();
    let mut e = net.engine(0);
    // Another validator's connection closing changes nothing.
    assert!(step(&mut e, 5, Input::PeerDisconnected(net.id(3))).is_empty());
    let out = step(&mut e, 10, Input::PeerDisconnected(net.id(1)));
    assert_eq!(safety_of(&out[0]).highest_timeout_round, 1);
    assert_eq!(out[1], Action::Broadcast(timeout_msg(net.timeout(0, 1, &net.gqc()))));
    assert!(matches!(out[2], Action::SetTimer { id: TimerId::Round, .. }));
    assert_eq!(out.len(), 3, "{out:?}");
}

/// A vote sent to a next leader whose connection closed cannot form a QC:
/// the round is given up right after the vote.
#[test]
fn a_vote_for_a_disconnected_next_leader_is_followed_by_a_timeout() {
    let net = Net::new();
    let mut e = net.engine(0);
    assert!(step(&mut e, 5, Input::PeerDisconnected(net.id(2))).is_empty());
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let out = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    assert!(
        matches!(&out[2], Action::Send { to, msg: ConsensusMsg::HotStuff(HotStuffMsg::Vote(_)) } if *to == net.id(2))
    );
    assert_eq!(safety_of(&out[3]).highest_timeout_round, 1);
    assert_eq!(out[4], Action::Broadcast(timeout_msg(net.timeout(0, 1, &net.gqc()))));
}

/// A validator that sends anything after its connection closed is
/// reachable again: the round it serves waits for it as usual.
#[test]
fn a_validator_that_sends_again_is_reachable() {
    let net = Net::new();
    let mut e = net.engine(0);
    step(&mut e, 5, Input::PeerDisconnected(net.id(2)));
    // One timeout (a quarter of the power) moves nothing on its own.
    assert!(deliver(&mut e, 6, net.id(2), timeout_msg(net.timeout(2, 1, &net.gqc()))).is_empty());
    let b1 = net.block(&net.genesis, &net.gqc(), 1, vec![]);
    let out = deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    assert_eq!(out.len(), 3, "vote only, no timeout: {out:?}");
    assert!(matches!(&out[2], Action::Send { to, .. } if *to == net.id(2)));
}

/// A round whose proposal is already here (its vote waiting for execution)
/// is not given up when its leader's connection closes: the next leader
/// can still form the QC.
#[test]
fn a_round_whose_proposal_is_held_is_not_given_up() {
    let net = Net::new();
    let mut e = net.engine(0);
    let (b1, b2) = net.b1_and_b2_claiming_height_1();
    deliver(&mut e, 10, net.id(1), proposal(&b1, None));
    deliver(&mut e, 20, net.id(2), proposal(&b2, None));
    assert!(step(&mut e, 25, Input::PeerDisconnected(net.id(2))).is_empty(), "the proposal of round 2 is held");
    let out = step(&mut e, 30, Input::Executed { height: 1, app_hash: Hash::digest(b"state after 1") });
    assert_eq!(safety_of(&out[0]).last_voted_round, 2);
    assert!(matches!(&out[1], Action::Send { to, .. } if *to == net.id(3)));
}
