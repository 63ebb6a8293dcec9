//! The Raft rules, asserted on the exact actions the engine emits. Section
//! numbers cite the Raft paper (Ongaro & Ousterhout 2014) and, for §9.6,
//! Ongaro's dissertation.

use super::*;
use crate::engine::{Action, ConsensusMsg, Engine, Input, Recovery, SafetyState, TimerId};
use crate::types::{Block, BlockHeader, Certificate, CertifiedBlock, Tx, ValidatorId, ValidatorSet, payload_root};
use phalanx_crypto::{Hash, Keypair};

const T: u64 = 1000;

fn keys(n: u8) -> Vec<Keypair> {
    (1..=n).map(|i| Keypair::from_seed(&[i; 32])).collect()
}

fn genesis(keys: &[Keypair]) -> Block {
    Block::genesis("raft-test", 0, Hash::digest(b"app"), keys[0].public())
}

fn config(keys: &[Keypair], seed: u64) -> RaftConfig {
    let set = ValidatorSet::equal(&keys.iter().map(|k| k.public()).collect::<Vec<_>>());
    let mut cfg = RaftConfig::new("raft-test".into(), set, genesis(keys), T, seed);
    cfg.log_keep = 4;
    cfg
}

fn recovery(keys: &[Keypair]) -> Recovery {
    let g = genesis(keys);
    Recovery {
        history: Vec::new(),
        membership: None,
        safety: None,
        committed: CertifiedBlock { block: g, cert: Certificate::Genesis },
        blocks: vec![],
        executed: vec![(0, Hash::digest(b"app"))],
    }
}

fn start(keys: &[Keypair], i: usize) -> Raft {
    let mut e = Raft::new(config(keys, i as u64), keys[i].clone());
    step(&mut e, 0, Input::Restored(Box::new(recovery(keys))));
    e
}

fn step(e: &mut Raft, now: u64, input: Input) -> Vec<Action> {
    let mut out = Vec::new();
    e.step(now, input, &mut out);
    out
}

fn msg(from: &Keypair, m: RaftMsg) -> Input {
    Input::Message { from: from.public(), msg: ConsensusMsg::Raft(m) }
}

/// Raft messages sent, with their destination (None: broadcast).
fn sent(actions: &[Action]) -> Vec<(Option<ValidatorId>, RaftMsg)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, msg: ConsensusMsg::Raft(m) } => Some((Some(*to), m.clone())),
            Action::Broadcast(ConsensusMsg::Raft(m)) => Some((None, m.clone())),
            _ => None,
        })
        .collect()
}

fn persisted(actions: &[Action]) -> Option<HardState> {
    actions.iter().rev().find_map(|a| match a {
        Action::PersistSafety(SafetyState::Raft(hs)) => Some(hs.clone()),
        _ => None,
    })
}

fn position(actions: &[Action], f: impl Fn(&Action) -> bool) -> usize {
    actions.iter().position(f).expect("action present")
}

fn is_send(a: &Action) -> bool {
    matches!(a, Action::Send { .. } | Action::Broadcast(_))
}

/// A successful append response of `term` matching up to `index`.
fn ack(term: u64, index: u64) -> RaftMsg {
    RaftMsg::AppendResponse { term, success: true, match_index: index, rejected: 0, hint: 0 }
}

/// The ticket of a payload request.
fn payload_ticket(a: &Action) -> Option<u64> {
    if let Action::RequestPayload { ticket, .. } = a { Some(*ticket) } else { None }
}

/// A block persisted by `a`.
fn persisted_block(a: &Action) -> Option<Block> {
    if let Action::PersistBlock(b) = a { Some(b.clone()) } else { None }
}

/// Makes node 0 of `keys` leader of term 1 with node 1's votes.
fn leader(keys: &[Keypair]) -> (Raft, Vec<Action>) {
    let mut e = start(keys, 0);
    step(&mut e, 2 * T, Input::Timer(TimerId::Election));
    step(&mut e, 2 * T, msg(&keys[1], RaftMsg::VoteResponse { pre: true, term: 1, granted: true }));
    let out = step(&mut e, 2 * T, msg(&keys[1], RaftMsg::VoteResponse { pre: false, term: 1, granted: true }));
    assert!(e.is_leader());
    (e, out)
}

/// An entry as a leader of `term` would create it.
fn entry(leader: &Keypair, parent: &Block, term: u64, txs: Vec<Tx>) -> Block {
    let header = BlockHeader {
        chain_id: "raft-test".into(),
        height: parent.height() + 1,
        round: term,
        parent: parent.id(),
        parent_round: parent.round(),
        payload_root: payload_root(&txs),
        app_height: 0,
        app_hash: Hash::digest(b"app"),
        proposer: leader.public(),
        time_ms: 0,
    };
    Block::sign(header, Certificate::Raft { term: parent.round(), index: parent.height() }, txs, leader)
}

fn tx(s: &str) -> Tx {
    Tx::from(s.as_bytes().to_vec())
}

/// §9.6 pre-vote: an election timeout asks "would you vote for me at term
/// + 1?" and changes nothing: no term bump, nothing persisted.
#[test]
fn election_timeout_starts_a_pre_vote_that_changes_nothing() {
    let k = keys(3);
    let mut e = start(&k, 0);
    let out = step(&mut e, 2 * T, Input::Timer(TimerId::Election));
    assert_eq!(e.term(), 0);
    assert!(persisted(&out).is_none());
    assert_eq!(sent(&out), vec![(None, RaftMsg::VoteRequest { pre: true, term: 1, last_index: 0, last_term: 0 })]);
}

/// §5.2: with a majority of pre-votes the node becomes a candidate: term +
/// 1, a vote for itself, persisted before its vote requests leave.
#[test]
fn pre_vote_majority_starts_an_election_persisting_term_and_vote_first() {
    let k = keys(3);
    let mut e = start(&k, 0);
    step(&mut e, 2 * T, Input::Timer(TimerId::Election));
    let out = step(&mut e, 2 * T, msg(&k[1], RaftMsg::VoteResponse { pre: true, term: 1, granted: true }));
    let hs = persisted(&out).expect("hard state persisted");
    assert_eq!((hs.term, hs.voted_for), (1, Some(k[0].public())));
    let p = position(&out, |a| matches!(a, Action::PersistSafety(_)));
    let s = position(&out, is_send);
    assert!(p < s, "persist before sending: {out:?}");
    assert_eq!(sent(&out), vec![(None, RaftMsg::VoteRequest { pre: false, term: 1, last_index: 0, last_term: 0 })]);
}

/// §5.4.1 election restriction: a vote goes only to a candidate whose log
/// is at least as up-to-date (later last term, or same term and at least as
/// long).
#[test]
fn votes_go_only_to_candidates_with_up_to_date_logs() {
    let k = keys(3);
    let mut f = start(&k, 2);
    let g = genesis(&k);
    let e1 = entry(&k[0], &g, 2, vec![tx("a")]);
    let append = RaftMsg::Append { term: 2, prev_index: 0, prev_term: 0, entries: vec![e1], commit: 0 };
    step(&mut f, 10, msg(&k[0], append));
    // Candidate with an older last term but a longer log: refused.
    let late = 10 + 3 * T;
    let out = step(&mut f, late, msg(&k[1], RaftMsg::VoteRequest { pre: false, term: 3, last_index: 5, last_term: 1 }));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), RaftMsg::VoteResponse { pre: false, term: 3, granted: false })]);
    // Same last term, shorter log: refused; same term and as long: granted.
    let out = step(&mut f, late, msg(&k[1], RaftMsg::VoteRequest { pre: false, term: 4, last_index: 0, last_term: 2 }));
    assert!(matches!(sent(&out)[0].1, RaftMsg::VoteResponse { granted: false, .. }));
    let out = step(&mut f, late, msg(&k[1], RaftMsg::VoteRequest { pre: false, term: 5, last_index: 1, last_term: 2 }));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), RaftMsg::VoteResponse { pre: false, term: 5, granted: true })]);
    assert_eq!(persisted(&out).map(|h| h.voted_for), Some(Some(k[1].public())));
}

/// §5.2 and Figure 2: at most one vote per term, and the vote is persisted
/// before it is sent, so a restart cannot vote again.
#[test]
fn one_vote_per_term_survives_a_restart() {
    let k = keys(3);
    let mut f = start(&k, 2);
    let req = RaftMsg::VoteRequest { pre: false, term: 1, last_index: 0, last_term: 0 };
    let out = step(&mut f, 10, msg(&k[0], req.clone()));
    let hs = persisted(&out).expect("vote persisted");
    let p = position(&out, |a| matches!(a, Action::PersistSafety(_)));
    assert!(p < position(&out, is_send));
    // Restart from what was persisted.
    let mut again = Raft::new(config(&k, 2), k[2].clone());
    let mut r = recovery(&k);
    r.safety = Some(SafetyState::Raft(hs));
    step(&mut again, 20, Input::Restored(Box::new(r)));
    let req_b = RaftMsg::VoteRequest { pre: false, term: 1, last_index: 0, last_term: 0 };
    let out = step(&mut again, 20, msg(&k[1], req_b));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), RaftMsg::VoteResponse { pre: false, term: 1, granted: false })]);
    // The same candidate asking again gets the same answer.
    let out = step(&mut again, 20, msg(&k[0], req));
    assert!(matches!(sent(&out)[0].1, RaftMsg::VoteResponse { granted: true, .. }));
}

/// §9.6: a node that heard from its leader within an election timeout
/// refuses pre-votes, and ignores vote requests of later terms, so a node
/// returning from a partition cannot depose a working leader.
#[test]
fn pre_votes_and_votes_are_refused_while_the_leader_is_heard() {
    let k = keys(3);
    let mut f = start(&k, 2);
    step(&mut f, 100, msg(&k[0], RaftMsg::Heartbeat { term: 1, commit: 0, ctx: 0 }));
    let out = step(&mut f, 200, msg(&k[1], RaftMsg::VoteRequest { pre: true, term: 2, last_index: 9, last_term: 1 }));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), RaftMsg::VoteResponse { pre: true, term: 1, granted: false })]);
    let out = step(&mut f, 200, msg(&k[1], RaftMsg::VoteRequest { pre: false, term: 2, last_index: 9, last_term: 1 }));
    assert!(sent(&out).is_empty() && persisted(&out).is_none(), "{out:?}");
    assert_eq!(f.term(), 1);
    // Once the leader has been silent for an election timeout, it is granted.
    let later = 100 + T + 1;
    let out = step(&mut f, later, msg(&k[1], RaftMsg::VoteRequest { pre: true, term: 2, last_index: 9, last_term: 1 }));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), RaftMsg::VoteResponse { pre: true, term: 2, granted: true })]);
    assert_eq!(f.term(), 1, "a pre-vote changes nothing");
}

/// A follower whose connection to its leader closes stops counting the
/// leader as heard and campaigns within a fraction of a timeout instead of
/// one to two; a closed connection to any other member, or one seen by the
/// leader, changes nothing. (If the leader is alive, the members that
/// still hear it refuse the pre-vote: the test above.)
#[test]
fn losing_the_connection_to_the_leader_campaigns_early() {
    let k = keys(3);
    let mut f = start(&k, 2);
    step(&mut f, 100, msg(&k[0], RaftMsg::Heartbeat { term: 1, commit: 0, ctx: 0 }));
    assert!(step(&mut f, 150, Input::PeerDisconnected(k[1].public())).is_empty());
    let out = step(&mut f, 200, Input::PeerDisconnected(k[0].public()));
    let at = out
        .iter()
        .find_map(|a| match a {
            Action::SetTimer { id: TimerId::Election, at } => Some(*at),
            _ => None,
        })
        .expect("the election timer is cut");
    assert!((200 + T / 10..200 + 3 * T / 10).contains(&at), "{at}");
    assert!(sent(&out).is_empty() && persisted(&out).is_none(), "{out:?}");
    // Out of the leader's lease at once: the other member's pre-vote is granted.
    let request = RaftMsg::VoteRequest { pre: true, term: 2, last_index: 9, last_term: 1 };
    let out = step(&mut f, 210, msg(&k[1], request));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), RaftMsg::VoteResponse { pre: true, term: 2, granted: true })]);
    let out = step(&mut f, at, Input::Timer(TimerId::Election));
    assert!(
        sent(&out).iter().any(|(to, m)| to.is_none() && matches!(m, RaftMsg::VoteRequest { pre: true, term: 2, .. })),
        "{out:?}"
    );
    assert_eq!(f.term(), 1, "pre-votes change nothing");

    let (mut leader, _) = leader(&k);
    let out = step(&mut leader, 3 * T, Input::PeerDisconnected(k[1].public()));
    assert!(out.is_empty() && leader.is_leader(), "{out:?}");
}

/// §5.4.2 and §8: a new leader appends a no-op entry of its own term at
/// once, persisted before it is sent.
#[test]
fn a_new_leader_appends_a_no_op_entry_of_its_term() {
    let k = keys(3);
    let (e, out) = leader(&k);
    let block = out.iter().find_map(persisted_block).expect("no-op persisted");
    assert_eq!((block.height(), block.round(), block.txs.len()), (1, 1, 0));
    assert_eq!(persisted(&out).map(|h| (h.last_index, h.last_id)), Some((1, block.id())));
    let p = position(&out, |a| matches!(a, Action::PersistBlock(_)));
    assert!(p < position(&out, is_send));
    let appends: Vec<_> = sent(&out).into_iter().filter(|(_, m)| matches!(m, RaftMsg::Append { .. })).collect();
    assert_eq!(appends.len(), 2);
    assert_eq!(e.last_index(), 1);
}

/// §9.6 check-quorum: a leader that heard from no majority within an
/// election timeout steps down.
#[test]
fn a_leader_cut_off_from_the_majority_steps_down() {
    let k = keys(3);
    let (mut e, _) = leader(&k);
    // Followers answered at 2T (when it became leader); nothing since.
    step(&mut e, 2 * T + 500, Input::Timer(TimerId::Election));
    assert!(e.is_leader(), "still within the timeout");
    step(&mut e, 3 * T + 1, Input::Timer(TimerId::Election));
    assert!(!e.is_leader());
    assert_eq!(e.status().role, "follower");
    // A leader hearing from one follower (a majority with itself) stays.
    let (mut e, _) = leader(&k);
    step(&mut e, 2 * T + 900, msg(&k[1], RaftMsg::HeartbeatResponse { term: 1, ctx: 0 }));
    step(&mut e, 3 * T + 1, Input::Timer(TimerId::Election));
    assert!(e.is_leader());
}

/// §5.3: a follower refuses an append whose previous entry it lacks or
/// whose term differs, with a hint: past its log's end, or the first index
/// of the conflicting term.
#[test]
fn appends_that_do_not_match_are_refused_with_a_hint() {
    let k = keys(3);
    let g = genesis(&k);
    let mut f = start(&k, 2);
    let a1 = entry(&k[0], &g, 1, vec![tx("a")]);
    let a2 = entry(&k[0], &a1, 1, vec![tx("b")]);
    step(
        &mut f,
        10,
        msg(&k[0], RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![a1, a2], commit: 0 }),
    );
    // Gap: previous index 5 is beyond the log (ends at 2).
    let out = step(
        &mut f,
        20,
        msg(&k[1], RaftMsg::Append { term: 2, prev_index: 5, prev_term: 2, entries: vec![], commit: 0 }),
    );
    assert_eq!(
        sent(&out),
        vec![(
            Some(k[1].public()),
            RaftMsg::AppendResponse { term: 2, success: false, match_index: 0, rejected: 5, hint: 3 }
        )]
    );
    // Term mismatch at index 2 (ours is term 1): retry from the first
    // index of term 1.
    let out = step(
        &mut f,
        30,
        msg(&k[1], RaftMsg::Append { term: 2, prev_index: 2, prev_term: 2, entries: vec![], commit: 0 }),
    );
    assert_eq!(
        sent(&out),
        vec![(
            Some(k[1].public()),
            RaftMsg::AppendResponse { term: 2, success: false, match_index: 0, rejected: 2, hint: 1 }
        )]
    );
}

/// §5.3: a conflicting suffix is dropped and replaced; entries are
/// persisted, with the new last entry, before the append is acknowledged.
#[test]
fn a_conflicting_suffix_is_replaced_and_persisted_before_the_ack() {
    let k = keys(3);
    let g = genesis(&k);
    let mut f = start(&k, 2);
    let a1 = entry(&k[0], &g, 1, vec![tx("a")]);
    let a2 = entry(&k[0], &a1, 1, vec![tx("b")]);
    step(
        &mut f,
        10,
        msg(&k[0], RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![a1.clone(), a2], commit: 0 }),
    );
    let b2 = entry(&k[1], &a1, 2, vec![tx("c")]);
    let out = step(
        &mut f,
        20,
        msg(&k[1], RaftMsg::Append { term: 2, prev_index: 1, prev_term: 1, entries: vec![b2.clone()], commit: 0 }),
    );
    assert!(
        matches!(&out[..], [.., Action::PersistBlock(b), Action::PersistSafety(_), Action::Send { .. }] if b.id() == b2.id()),
        "{out:?}"
    );
    assert_eq!(persisted(&out).map(|h| (h.last_index, h.last_id)), Some((2, b2.id())));
    assert_eq!(sent(&out), vec![(Some(k[1].public()), ack(2, 2))]);
}

/// §5.4.2 (Figure 8): a leader never commits an entry of an earlier term by
/// counting replicas; it commits once an entry of its own term is stored by
/// a majority, and the earlier entries with it.
#[test]
fn only_current_term_entries_commit_by_counting_replicas() {
    let k = keys(3);
    let g = genesis(&k);
    // Node 0 holds an entry of term 1 from an earlier leader, then leads term 2.
    let mut e = start(&k, 0);
    let old = entry(&k[1], &g, 1, vec![tx("old")]);
    step(
        &mut e,
        10,
        msg(&k[1], RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![old.clone()], commit: 0 }),
    );
    let t = 10 + 3 * T;
    step(&mut e, t, Input::Timer(TimerId::Election));
    step(&mut e, t, msg(&k[2], RaftMsg::VoteResponse { pre: true, term: 2, granted: true }));
    let out = step(&mut e, t, msg(&k[2], RaftMsg::VoteResponse { pre: false, term: 2, granted: true }));
    assert!(e.is_leader());
    assert_eq!(e.last_index(), 2, "the old entry and the new no-op");
    // Node 2 acknowledges only the old entry: a majority holds it, but it is
    // of term 1, so nothing commits.
    let rejected_prev = match &sent(&out)[..] {
        [(_, RaftMsg::Append { prev_index, .. }), ..] => *prev_index,
        other => panic!("{other:?}"),
    };
    assert_eq!(rejected_prev, 1);
    let out = step(
        &mut e,
        t + 1,
        msg(&k[2], RaftMsg::AppendResponse { term: 2, success: false, match_index: 0, rejected: 1, hint: 1 }),
    );
    let out2 = step(&mut e, t + 2, msg(&k[2], ack(2, 1)));
    assert!(!out.iter().chain(&out2).any(|a| matches!(a, Action::Commit(_))), "term-1 entry committed by counting");
    assert_eq!(e.commit_index(), 0);
    // Once it stores the term-2 no-op too, both commit, in order.
    let out = step(&mut e, t + 3, msg(&k[2], ack(2, 2)));
    let commits: Vec<_> =
        out.iter().filter_map(|a| if let Action::Commit(b) = a { Some(b.clone()) } else { None }).collect();
    assert_eq!(commits.len(), 1);
    let heights: Vec<_> = commits[0].iter().map(|c| (c.block.height(), c.cert.clone())).collect();
    assert_eq!(
        heights,
        vec![(1, Certificate::Raft { term: 1, index: 1 }), (2, Certificate::Raft { term: 2, index: 2 })]
    );
    assert_eq!(commits[0][0].block.id(), old.id());
}

/// Figure 2: a follower commits up to the leader's commit index, but never
/// past the last entry it knows matches the leader's log.
#[test]
fn a_follower_commits_up_to_the_leaders_commit_within_what_it_matched() {
    let k = keys(3);
    let g = genesis(&k);
    let mut f = start(&k, 2);
    let a1 = entry(&k[0], &g, 1, vec![tx("a")]);
    let a2 = entry(&k[0], &a1, 1, vec![tx("b")]);
    let out = step(
        &mut f,
        10,
        msg(&k[0], RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![a1], commit: 5 }),
    );
    let c: Vec<_> = out.iter().filter_map(|a| if let Action::Commit(b) = a { Some(b.len()) } else { None }).collect();
    assert_eq!(c, vec![1]);
    assert_eq!(f.commit_index(), 1);
    let out = step(
        &mut f,
        20,
        msg(&k[0], RaftMsg::Append { term: 1, prev_index: 1, prev_term: 1, entries: vec![a2], commit: 1 }),
    );
    assert!(!out.iter().any(|a| matches!(a, Action::Commit(_))));
    step(&mut f, 30, msg(&k[0], RaftMsg::Heartbeat { term: 1, commit: 2, ctx: 0 }));
    assert_eq!(f.commit_index(), 2);
}

/// Figure 2: a message of a later term turns a leader into a follower of
/// that term, persisted.
#[test]
fn a_later_term_deposes_the_leader() {
    let k = keys(3);
    let (mut e, _) = leader(&k);
    let out = step(
        &mut e,
        2 * T + 5,
        msg(&k[1], RaftMsg::AppendResponse { term: 7, success: false, match_index: 0, rejected: 0, hint: 0 }),
    );
    assert!(!e.is_leader());
    assert_eq!(persisted(&out).map(|h| (h.term, h.voted_for)), Some((7, None)));
}

/// A restart recovers exactly: term, vote, and the log rebuilt from the
/// persisted blocks by walking back from the persisted last entry (stale
/// blocks of a replaced suffix are ignored).
#[test]
fn a_restart_recovers_term_vote_and_log() {
    let k = keys(3);
    let g = genesis(&k);
    let mut f = start(&k, 2);
    let a1 = entry(&k[0], &g, 1, vec![tx("a")]);
    let a2 = entry(&k[0], &a1, 1, vec![tx("b")]);
    let b2 = entry(&k[1], &a1, 2, vec![tx("c")]);
    let mut blocks = vec![];
    let mut hs = None;
    for (term, prev, e) in [(1, 0, vec![a1.clone(), a2.clone()]), (2, 1, vec![b2.clone()])] {
        let prev_term = if prev == 0 { 0 } else { 1 };
        let out = step(
            &mut f,
            10,
            msg(&k[term as usize - 1], RaftMsg::Append { term, prev_index: prev, prev_term, entries: e, commit: 0 }),
        );
        for a in out {
            match a {
                Action::PersistBlock(b) => blocks.push(b),
                Action::PersistSafety(SafetyState::Raft(h)) => hs = Some(h),
                _ => {}
            }
        }
    }
    let mut r = recovery(&k);
    r.safety = hs.clone().map(SafetyState::Raft);
    r.blocks = blocks;
    let mut again = Raft::new(config(&k, 2), k[2].clone());
    step(&mut again, 50, Input::Restored(Box::new(r)));
    assert_eq!(again.term(), 2);
    assert_eq!(again.last_index(), 2);
    // It still matches b2 at index 2 (not a2).
    let out = step(
        &mut again,
        60,
        msg(&k[1], RaftMsg::Append { term: 2, prev_index: 2, prev_term: 2, entries: vec![], commit: 2 }),
    );
    assert!(matches!(sent(&out)[0].1, RaftMsg::AppendResponse { success: true, match_index: 2, .. }));
    let committed: Vec<_> = out
        .iter()
        .filter_map(|a| {
            if let Action::Commit(b) = a { Some(b.iter().map(|c| c.block.id()).collect::<Vec<_>>()) } else { None }
        })
        .collect();
    assert_eq!(committed, vec![vec![a1.id(), b2.id()]]);
}

/// Pipelining: a leader keeps several appends in flight to a follower that
/// keeps up, and batches a payload per entry.
#[test]
fn the_leader_pipelines_appends_and_batches_transactions() {
    let k = keys(3);
    let (mut e, out) = leader(&k);
    let ticket = out.iter().find_map(payload_ticket).expect("asks the mempool");
    // Follower 1 acknowledges the no-op: it leaves probing.
    step(&mut e, 2 * T + 1, msg(&k[1], ack(1, 1)));
    let mut next = ticket;
    let mut appends_to_1 = 0;
    for i in 0..3 {
        let txs: Vec<Tx> = (0..100).map(|j| tx(&format!("{i}-{j}"))).collect();
        let out = step(&mut e, 2 * T + 2, Input::Payload { ticket: next, txs });
        appends_to_1 += sent(&out)
            .iter()
            .filter(|(to, m)| {
                *to == Some(k[1].public())
                    && matches!(m, RaftMsg::Append { entries, .. } if entries.len() == 1 && entries[0].txs.len() == 100)
            })
            .count();
        next = out.iter().find_map(payload_ticket).expect("asks again at once");
    }
    assert_eq!(appends_to_1, 3, "three appends in flight without waiting for acknowledgements");
    assert_eq!(e.last_index(), 4);
}

/// Batching: after a small block the leader asks the mempool again only
/// once that block commits, so the next block gathers what arrived during
/// the round trip; after a large one it pipelines at once.
#[test]
fn after_a_small_block_the_leader_waits_for_its_commit() {
    let k = keys(3);
    let (mut e, out) = leader(&k);
    let ticket = out.iter().find_map(payload_ticket).expect("the first block does not wait for the no-op");
    step(&mut e, 2 * T + 1, msg(&k[1], ack(1, 1)));
    // A block of 3 transactions: no new payload request while it is
    // uncommitted.
    let small: Vec<Tx> = (0..3).map(|j| tx(&format!("s{j}"))).collect();
    let out = step(&mut e, 2 * T + 2, Input::Payload { ticket, txs: small });
    assert_eq!(e.last_index(), 2);
    assert!(out.iter().find_map(payload_ticket).is_none(), "waits for the small block's commit");
    // Its commit (follower 1 acknowledges index 2) asks for the next block.
    let out = step(&mut e, 2 * T + 3, msg(&k[1], ack(1, 2)));
    let ticket = out.iter().find_map(payload_ticket).expect("asks once the block committed");
    // A block of pipeline_min_txs transactions pipelines at once.
    let large: Vec<Tx> = (0..100).map(|j| tx(&format!("l{j}"))).collect();
    let out = step(&mut e, 2 * T + 4, Input::Payload { ticket, txs: large });
    assert_eq!(e.last_index(), 3);
    assert!(out.iter().find_map(payload_ticket).is_some(), "a large block does not wait");
}

/// §7: a follower behind the leader's compaction point is told to catch
/// up, fetches and installs a state snapshot (one fetch at a time), restarts
/// its log at the snapshot's last entry, persisted before it reports its
/// match, and continues with ordinary appends.
#[test]
fn a_follower_behind_the_compaction_point_catches_up_by_a_snapshot() {
    let k = keys(3);
    let (mut e, out) = leader(&k);
    let mut chain: Vec<Block> = out.iter().filter_map(persisted_block).collect();
    step(&mut e, 2 * T + 1, msg(&k[1], ack(1, 1)));
    // Grow and commit 20 entries with follower 1; executed, the log compacts.
    for (i, ticket) in (0..20).zip(1..) {
        let out = step(&mut e, 2 * T + 10 + i, Input::Payload { ticket, txs: vec![tx(&format!("t{i}"))] });
        for a in &out {
            if let Action::PersistBlock(b) = a {
                chain.push(b.clone());
            }
        }
        let last = e.last_index();
        step(&mut e, 2 * T + 10 + i, msg(&k[1], ack(1, last)));
        let height = e.commit_index();
        step(&mut e, 2 * T + 10 + i, Input::Executed { height, app_hash: Hash::ZERO });
    }
    assert_eq!(e.commit_index(), 21);
    // Follower 2 was down and now answers a heartbeat: the leader resends
    // from its match index (0), which is below the compaction point.
    let out = step(&mut e, 3 * T, msg(&k[2], RaftMsg::HeartbeatResponse { term: 1, ctx: 0 }));
    assert!(
        sent(&out).iter().any(|(to, m)| *to == Some(k[2].public()) && matches!(m, RaftMsg::CatchUp { commit: 21, .. })),
        "{:?}",
        sent(&out)
    );
    // The follower side: asks for the leader's snapshot, and once it is
    // installed restarts its log there and tells the leader (§7).
    let mut f = start(&k, 2);
    let out = step(&mut f, 3 * T, msg(&k[0], RaftMsg::CatchUp { term: 1, commit: 21 }));
    assert!(out.contains(&Action::RequestSnapshot { from: k[0].public() }), "{out:?}");
    let again = step(&mut f, 3 * T, msg(&k[0], RaftMsg::CatchUp { term: 1, commit: 21 }));
    assert!(!again.iter().any(|a| matches!(a, Action::RequestSnapshot { .. })), "one fetch at a time");
    let tip = chain[20].clone();
    let installed = Input::SnapshotInstalled { block: Box::new(tip.clone()), app_hash: Hash::ZERO, config: None };
    let out = step(&mut f, 3 * T + 1, installed);
    assert_eq!(f.commit_index(), 21);
    assert_eq!(f.last_index(), 21);
    let hs = persisted(&out).expect("the new log end is persisted before the ack");
    assert_eq!((hs.last_index, hs.last_id), (21, tip.id()));
    assert!(position(&out, |a| matches!(a, Action::PersistSafety(_))) < position(&out, is_send));
    assert!(sent(&out).contains(&(Some(k[0].public()), ack(1, 21))));
    // The leader then continues with ordinary appends after 21.
    let next = entry(&k[0], &tip, 1, vec![tx("after")]);
    let append = RaftMsg::Append { term: 1, prev_index: 21, prev_term: 1, entries: vec![next], commit: 22 };
    let out = step(&mut f, 3 * T + 2, msg(&k[0], append));
    assert!(sent(&out).contains(&(Some(k[0].public()), ack(1, 22))));
    assert_eq!(f.commit_index(), 22);
}

fn read_results(actions: &[Action]) -> Vec<Action> {
    actions.iter().filter(|a| matches!(a, Action::ReadReady { .. } | Action::ReadFailed { .. })).cloned().collect()
}

/// Dissertation §6.4 (ReadIndex): a leader answers a read with its commit
/// index only after a majority answers a heartbeat round sent after the
/// read arrived, and only once an entry of its own term has committed.
#[test]
fn a_read_index_waits_for_an_own_term_commit_and_a_confirming_heartbeat_round() {
    let k = keys(3);
    let (mut e, _) = leader(&k);
    // The no-op of term 1 is not committed yet: the read waits, silently.
    let out = step(&mut e, 2 * T + 1, Input::Read { id: 7 });
    assert!(read_results(&out).is_empty() && sent(&out).is_empty(), "{out:?}");
    // Follower 1 stores the no-op: it commits, and the read's heartbeat
    // round starts (ctx 1).
    let out = step(&mut e, 2 * T + 2, msg(&k[1], ack(1, 1)));
    assert_eq!(e.commit_index(), 1);
    let rounds: Vec<_> =
        sent(&out).into_iter().filter(|(_, m)| matches!(m, RaftMsg::Heartbeat { ctx: 1, .. })).collect();
    assert_eq!(rounds.len(), 2, "{out:?}");
    assert!(read_results(&out).is_empty());
    // An answer to an older round (ctx 0) does not confirm it; ctx 1 does.
    let out = step(&mut e, 2 * T + 3, msg(&k[2], RaftMsg::HeartbeatResponse { term: 1, ctx: 0 }));
    assert!(read_results(&out).is_empty());
    let out = step(&mut e, 2 * T + 4, msg(&k[2], RaftMsg::HeartbeatResponse { term: 1, ctx: 1 }));
    assert_eq!(read_results(&out), vec![Action::ReadReady { id: 7, index: 1 }]);
}

/// A follower forwards a read to its leader and serves the index it gets
/// back; a leader that steps down fails its pending reads.
#[test]
fn followers_forward_reads_and_a_deposed_leader_fails_them() {
    let k = keys(3);
    let mut f = start(&k, 2);
    step(&mut f, 10, msg(&k[0], RaftMsg::Heartbeat { term: 1, commit: 0, ctx: 0 }));
    let out = step(&mut f, 20, Input::Read { id: 3 });
    assert_eq!(sent(&out), vec![(Some(k[0].public()), RaftMsg::ReadIndex { term: 1, ctx: 3 })]);
    let out = step(&mut f, 30, msg(&k[0], RaftMsg::ReadIndexResponse { term: 1, ctx: 3, index: Some(5) }));
    assert_eq!(read_results(&out), vec![Action::ReadReady { id: 3, index: 5 }]);
    // No leader known: refused at once.
    let mut lone = start(&k, 1);
    let out = step(&mut lone, 10, Input::Read { id: 4 });
    assert!(matches!(&read_results(&out)[..], [Action::ReadFailed { id: 4, .. }]));
    // A leader with a pending read learns of a later term: the read fails.
    let (mut e, _) = leader(&k);
    step(&mut e, 2 * T + 1, msg(&k[1], ack(1, 1)));
    step(&mut e, 2 * T + 2, Input::Read { id: 9 });
    let out = step(&mut e, 2 * T + 3, msg(&k[1], RaftMsg::HeartbeatResponse { term: 2, ctx: 0 }));
    assert!(matches!(&read_results(&out)[..], [Action::ReadFailed { id: 9, .. }]), "{out:?}");
}

// ----- membership (paper §6, dissertation §4) -----

fn change_results(actions: &[Action]) -> Vec<(u64, Result<u64, String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ChangeDone { id, result } => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

fn config_announced(actions: &[Action]) -> Option<Membership> {
    actions.iter().rev().find_map(|a| match a {
        Action::MembershipChanged(m) => Some(m.clone()),
        _ => None,
    })
}

fn add_learner(k: &Keypair) -> MembershipChange {
    MembershipChange::AddLearner {
        id: k.public(),
        addr: MemberAddr { node_key: k.public(), p2p_addr: "127.0.0.1:9".into() },
    }
}

/// A leader of three (keys 0..3) whose no-op committed, and a fourth key.
fn committed_leader() -> (Vec<Keypair>, Raft) {
    let k = keys(4);
    let (mut e, _) = leader(&k[..3]);
    step(&mut e, 2 * T, msg(&k[1], ack(1, 1)));
    assert_eq!(e.commit_index(), 1);
    (k, e)
}

/// Adding a learner is one configuration entry that takes effect when
/// appended (§6: a server uses the latest configuration in its log); the
/// learner is replicated to at once but its acknowledgement never counts
/// toward a majority; the change completes when the entry commits.
#[test]
fn a_learner_is_replicated_to_but_never_counts() {
    let (k, mut e) = committed_leader();
    let out = step(&mut e, 2 * T, Input::ChangeMembership { id: 7, change: add_learner(&k[3]) });
    let cfg = config_announced(&out).expect("the new configuration is in effect on append");
    assert!(cfg.learners.contains(&k[3].public()) && cfg.voters.len() == 3);
    let entry = out.iter().find_map(persisted_block).expect("a configuration entry");
    assert_eq!((entry.height(), Membership::from_entry(&entry.txs)), (2, Some(cfg)));
    assert!(
        sent(&out).iter().any(|(to, m)| *to == Some(k[3].public()) && matches!(m, RaftMsg::Append { .. })),
        "the learner gets appends: {out:?}"
    );
    assert!(change_results(&out).is_empty(), "not complete before it commits");
    let out = step(&mut e, 2 * T, msg(&k[3], ack(1, 2)));
    assert_eq!(e.commit_index(), 1, "a learner's acknowledgement does not commit");
    assert!(change_results(&out).is_empty());
    let out = step(&mut e, 2 * T, msg(&k[1], ack(1, 2)));
    assert_eq!(e.commit_index(), 2);
    assert_eq!(change_results(&out), vec![(7, Ok(2))]);
}

/// §6 joint consensus: promoting a learner appends C_old,new; it commits
/// only with a majority of the old voters *and* of the new ones; then the
/// leader appends C_new on its own, and the change completes when C_new
/// commits.
#[test]
fn promotion_goes_through_a_joint_configuration_needing_both_majorities() {
    let (k, mut e) = committed_leader();
    step(&mut e, 2 * T, Input::ChangeMembership { id: 1, change: add_learner(&k[3]) });
    step(&mut e, 2 * T, msg(&k[1], ack(1, 2)));
    step(&mut e, 2 * T, msg(&k[3], ack(1, 2)));
    let out =
        step(&mut e, 2 * T, Input::ChangeMembership { id: 2, change: MembershipChange::Promote { id: k[3].public() } });
    let joint = config_announced(&out).expect("joint configuration");
    assert!(joint.is_joint() && joint.voters.len() == 4 && joint.outgoing.len() == 3, "{joint:?}");
    // {0, 3}: half of the new voters, a minority of the old: no commit.
    step(&mut e, 2 * T, msg(&k[3], ack(1, 3)));
    assert_eq!(e.commit_index(), 2);
    // {0, 1, 3}: majorities of both.
    let out = step(&mut e, 2 * T, msg(&k[1], ack(1, 3)));
    assert_eq!(e.commit_index(), 3);
    let fin = config_announced(&out).expect("C_new appended once C_old,new committed");
    assert!(!fin.is_joint() && fin.voters.contains(&k[3].public()) && fin.learners.is_empty());
    assert_eq!(out.iter().rev().find_map(persisted_block).map(|b| b.height()), Some(4));
    assert!(change_results(&out).is_empty(), "complete only when C_new commits");
    step(&mut e, 2 * T, msg(&k[3], ack(1, 4)));
    assert_eq!(e.commit_index(), 3, "new configuration of four: the leader and one more are not a majority");
    let out = step(&mut e, 2 * T, msg(&k[1], ack(1, 4)));
    assert_eq!(change_results(&out), vec![(2, Ok(4))]);
}

/// One change at a time: a change is refused with a reason while a
/// configuration entry is uncommitted.
#[test]
fn a_second_change_is_refused_while_one_is_in_progress() {
    let (k, mut e) = committed_leader();
    step(&mut e, 2 * T, Input::ChangeMembership { id: 1, change: add_learner(&k[3]) });
    let out =
        step(&mut e, 2 * T, Input::ChangeMembership { id: 2, change: MembershipChange::Remove { id: k[2].public() } });
    let results = change_results(&out);
    assert!(matches!(&results[..], [(2, Err(reason))] if reason.contains("in progress")), "{results:?}");
    assert!(out.iter().all(|a| persisted_block(a).is_none()), "nothing appended");
}

/// Dissertation §4.2.2: a leader that removes itself manages the cluster
/// until C_new commits (not counting itself in the new majority), then steps
/// down.
#[test]
fn a_leader_that_removes_itself_steps_down_once_the_final_configuration_commits() {
    let (k, mut e) = committed_leader();
    step(&mut e, 2 * T, Input::ChangeMembership { id: 5, change: MembershipChange::Remove { id: k[0].public() } });
    step(&mut e, 2 * T, msg(&k[1], ack(1, 2)));
    assert_eq!(e.commit_index(), 1, "the new voters {{1, 2}} both must store the joint entry");
    step(&mut e, 2 * T, msg(&k[2], ack(1, 2)));
    assert_eq!(e.commit_index(), 2);
    assert!(e.is_leader(), "still leading through the transition");
    step(&mut e, 2 * T, msg(&k[1], ack(1, 3)));
    let out = step(&mut e, 2 * T, msg(&k[2], ack(1, 3)));
    assert_eq!(e.commit_index(), 3);
    assert_eq!(change_results(&out), vec![(5, Ok(3))]);
    assert!(!e.is_leader(), "steps down once C_new, without it, is committed");
    let out = step(&mut e, 10 * T, Input::Timer(TimerId::Election));
    assert!(sent(&out).is_empty(), "a removed member never campaigns: {out:?}");
}

/// §6: a follower adopts a configuration as soon as the entry is in its
/// log, and falls back to the previous one if that entry is truncated by a
/// later leader.
#[test]
fn a_follower_uses_the_latest_configuration_in_its_log_even_uncommitted() {
    let k = keys(4);
    let mut f = start(&k[..3], 1);
    let g = genesis(&k[..3]);
    let mut learner = Membership::from_genesis(&config(&k[..3], 0).validators);
    learner.learners.insert(k[3].public());
    learner.directory.insert(k[3].public(), MemberAddr { node_key: k[3].public(), p2p_addr: "127.0.0.1:9".into() });
    let e1 = entry(&k[0], &g, 1, vec![learner.to_entry_tx()]);
    let append = RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![e1], commit: 0 };
    let out = step(&mut f, 2 * T, msg(&k[0], append));
    assert_eq!(config_announced(&out), Some(learner.clone()));
    assert_eq!(persisted(&out).map(|hs| hs.configs), Some(vec![(1, learner)]), "persisted with the entry");
    // A leader of term 2 replaces entry 1: the configuration goes with it.
    let other = entry(&k[2], &g, 2, vec![tx("x")]);
    let append = RaftMsg::Append { term: 2, prev_index: 0, prev_term: 0, entries: vec![other], commit: 0 };
    let out = step(&mut f, 3 * T, msg(&k[2], append));
    let back = config_announced(&out).expect("configuration changed back");
    assert!(back.learners.is_empty() && back.voters.len() == 3);
}

/// A learner (a node outside the voters) never starts an election.
#[test]
fn a_learner_never_campaigns() {
    let k = keys(4);
    let mut e = Raft::new(config(&k[..3], 9), k[3].clone());
    step(&mut e, 0, Input::Restored(Box::new(recovery(&k[..3]))));
    let out = step(&mut e, 10 * T, Input::Timer(TimerId::Election));
    assert!(sent(&out).is_empty(), "{out:?}");
    assert_eq!(e.term(), 0);
}

/// A change asked of a follower is forwarded to the leader, and the
/// leader's answer completes it.
#[test]
fn a_change_at_a_follower_is_forwarded_to_the_leader() {
    let k = keys(4);
    let mut f = start(&k[..3], 1);
    step(&mut f, 2 * T, msg(&k[0], RaftMsg::Heartbeat { term: 1, commit: 0, ctx: 0 }));
    let out = step(&mut f, 2 * T, Input::ChangeMembership { id: 3, change: add_learner(&k[3]) });
    assert_eq!(
        sent(&out),
        vec![(Some(k[0].public()), RaftMsg::ChangeRequest { term: 1, ctx: 3, change: add_learner(&k[3]) })]
    );
    let out = step(&mut f, 2 * T, msg(&k[0], RaftMsg::ChangeResponse { term: 1, ctx: 3, result: Ok(2) }));
    assert_eq!(change_results(&out), vec![(3, Ok(2))]);
}

/// Restart: the configurations come back from the persisted hard state.
#[test]
fn the_configuration_survives_a_restart() {
    let k = keys(4);
    let (mut e, out) = leader(&k[..3]);
    let mut blocks: Vec<Block> = out.iter().filter_map(persisted_block).collect();
    step(&mut e, 2 * T, msg(&k[1], ack(1, 1)));
    let out = step(&mut e, 2 * T, Input::ChangeMembership { id: 1, change: add_learner(&k[3]) });
    blocks.extend(out.iter().filter_map(persisted_block));
    let hs = persisted(&out).expect("hard state");
    let mut r = recovery(&k[..3]);
    r.safety = Some(SafetyState::Raft(hs));
    r.blocks = blocks;
    let mut again = Raft::new(config(&k[..3], 0), k[0].clone());
    let out = step(&mut again, 0, Input::Restored(Box::new(r)));
    let cfg = config_announced(&out).expect("announced at restore");
    assert!(cfg.learners.contains(&k[3].public()));
    assert_eq!(again.config(), &cfg);
}

/// §7: a snapshot whose last entry is already in the follower's log keeps
/// the entries after it (they may be acknowledged already); only the covered
/// prefix is dropped.
#[test]
fn a_snapshot_of_a_prefix_of_the_log_keeps_the_rest() {
    let k = keys(3);
    let mut f = start(&k, 1);
    let g = genesis(&k);
    let e1 = entry(&k[0], &g, 1, vec![tx("a")]);
    let e2 = entry(&k[0], &e1, 1, vec![tx("b")]);
    let e3 = entry(&k[0], &e2, 1, vec![tx("c")]);
    let append = RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![e1, e2.clone(), e3], commit: 0 };
    step(&mut f, 2 * T, msg(&k[0], append));
    step(&mut f, 2 * T, msg(&k[0], RaftMsg::CatchUp { term: 1, commit: 2 }));
    let installed = Input::SnapshotInstalled { block: Box::new(e2), app_hash: Hash::ZERO, config: None };
    let out = step(&mut f, 2 * T + 1, installed);
    assert_eq!((f.commit_index(), f.last_index()), (2, 3), "entry 3 is kept");
    assert_eq!(persisted(&out).map(|hs| hs.last_index), Some(3));
    assert!(sent(&out).contains(&(Some(k[0].public()), ack(1, 3))));
}

/// The committed configuration comes back from the committed state at
/// restart (a crash between a snapshot install and the next hard state must
/// not revert the membership to an older one).
#[test]
fn a_restart_takes_the_committed_configuration_from_the_state() {
    let k = keys(4);
    let mut committed = Membership::from_genesis(&config(&k[..3], 0).validators);
    committed.voters.remove(&k[2].public());
    let mut r = recovery(&k[..3]);
    r.membership = Some(committed.clone());
    let mut e = Raft::new(config(&k[..3], 0), k[0].clone());
    let out = step(&mut e, 0, Input::Restored(Box::new(r)));
    assert_eq!(config_announced(&out), Some(committed.clone()));
    assert_eq!(e.config(), &committed);
}

/// A leader that removed itself answers a forwarded change after the
/// follower already committed the configuration without it: the answer is
/// still taken (it is matched to the follower's own request).
#[test]
fn a_removed_leaders_answer_to_a_forwarded_change_is_taken() {
    let k = keys(3);
    let mut f = start(&k, 1);
    let g = genesis(&k);
    step(&mut f, 2 * T, msg(&k[0], RaftMsg::Heartbeat { term: 1, commit: 0, ctx: 0 }));
    let remove = MembershipChange::Remove { id: k[0].public() };
    step(&mut f, 2 * T, Input::ChangeMembership { id: 4, change: remove.clone() });
    let genesis_config = Membership::from_genesis(&config(&k, 0).validators);
    let joint = genesis_config.apply(&remove).unwrap();
    let e1 = entry(&k[0], &g, 1, vec![joint.to_entry_tx()]);
    let e2 = entry(&k[0], &e1, 1, vec![joint.leave_joint().to_entry_tx()]);
    let append = RaftMsg::Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![e1, e2], commit: 2 };
    step(&mut f, 2 * T, msg(&k[0], append));
    assert!(!f.config().contains(&k[0].public()), "C_new without the leader is committed here");
    let out = step(&mut f, 2 * T, msg(&k[0], RaftMsg::ChangeResponse { term: 1, ctx: 4, result: Ok(2) }));
    assert_eq!(change_results(&out), vec![(4, Ok(2))]);
}
