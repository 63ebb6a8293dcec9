//! Leader reputation: the schedule skips validators that failed to lead
//! recently or that stopped voting.
//!
//! With plain round-robin a crashed validator still gets its turn every
//! cycle, and each turn costs round timeouts (and, as votes for the round
//! before go to it, that round's block too). Like Aptos' leader reputation
//! (proposer failures and voter participation), the schedule here reads the
//! chain's recent history and hands a failing validator's turns to others.
//!
//! **The rule.** Who leads round `r` extending block `P` is decided from
//! `P`'s chain alone (`P` and its ancestors):
//!
//! - *Failed.* A round `k` in the window `[r - window, r)` failed if no block
//!   of the chain has round `k`. Rounds after `P` up to `r - 1` count too:
//!   `r` extending `P` means they produced nothing on this chain. The failure
//!   is charged to the base schedule's leader of `k` ([`LeaderSchedule`]).
//!   *Cold start*: rounds before the chain's first block after genesis
//!   are charged to no one. Validators start and connect at different
//!   moments, so a failed first round says nothing of its leader (a
//!   validator still down when the chain starts is charged with its first
//!   turn after the chain's first block instead). The first block is the
//!   one whose `justify` certifies genesis, so its entry has no signers;
//!   whenever a start-up round lies in the window that block's round does
//!   too, so `chain` holds it and every validator draws the same line. A
//!   chain without a block yet charges nothing.
//! - *Absent.* A validator is absent if its signature is in none of the
//!   `justify` QCs of the chain's last `absent_blocks` blocks (blocks whose
//!   QC has real signers; a chain shorter than that judges no one absent).
//!   A crashed validator stops voting, so it stays absent, and skipped, for as
//!   long as it is down, without having to fail a turn again.
//! - Absent or failed validators are *excluded*, worst first (absent, then
//!   most failures, then the most recent failure, then set order), as long as
//!   the excluded power stays within what the chain tolerates
//!   (`total - quorum`: `f` of `3f + 1` equal validators).
//! - The leader of `r` is its base leader unless that one is excluded; then
//!   it is the `(r / cycle)`-th of the validators not excluded (in set order,
//!   modulo their number), so replacement turns rotate among them.
//!
//! **Why it is safe and deterministic.** The leader depends only on `P`'s
//! chain and `r`, both fixed by a proposal (its `justify` names `P`), so every
//! validator judges a proposal the same way. A proposer may think itself the
//! leader from a different high QC than others hold; then the round may see
//! two proposals, each checked against its own chain, and a validator votes
//! for at most one: voting safety never depends on who leads.
//!
//! **Coming back.** A restarted validator votes again; once its signature is
//! in a recent QC and its failure is out of the window, it leads again. A
//! validator that votes but cannot lead (it withholds proposals) fails its
//! turn once per `window` rounds.
//!
//! **Blame is approximate.** When a round fails because the *next* leader
//! (who collects its votes) is down, the round's own leader is charged too.
//! The most-recent-failure tie-break excludes the later (actually faulty)
//! one first, and the faulty one is also absent. A validator whose votes
//! always arrive after a quorum formed is judged absent: it leads less, which
//! costs nothing but fairness.
//!
//! **History.** The engine keeps recently committed blocks' rounds and QC
//! signers (from the store at restart). A validator whose known history is
//! shorter than the window (after installing a snapshot) treats unknown
//! rounds as not failed and accepts a proposal from any validator until it
//! knows enough (see [`Choice::certain`]).

use super::leader::LeaderSchedule;
use crate::types::{Round, SignerBitmap, ValidatorId, ValidatorSet};

/// How the rules are sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Rounds a failure to lead counts for; 0 turns reputation off.
    pub window: Round,
    /// Blocks whose QCs show who votes.
    pub absent_blocks: usize,
}

impl Params {
    /// The rules for a set of `n` validators: `window` rounds, and the QCs
    /// of the last `3n + 1` blocks.
    pub fn new(window: Round, n: usize) -> Params {
        Params { window, absent_blocks: 3 * n + 1 }
    }
}

/// A validator the schedule currently skips, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub id: ValidatorId,
    /// It signed none of the recent QCs.
    pub absent: bool,
    /// Rounds of the window it failed to lead.
    pub failed: u64,
    /// The latest of them (0: none).
    pub last_failed: Round,
}

/// The leader of one round extending one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub leader: ValidatorId,
    /// Validators skipped, worst first.
    pub excluded: Vec<Excluded>,
    /// False when the rules reach below the history this validator knows;
    /// the choice may then differ from other validators'.
    pub certain: bool,
}

/// One block of the chain: its round and the signers of its `justify`.
pub type ChainEntry<'a> = (Round, &'a SignerBitmap);

/// Chooses the leader of `round` on a chain given by `chain`: its blocks,
/// ascending by round, at least those of the window and the last
/// `absent_blocks` (extra older ones are ignored). `known_from`: the lowest
/// round the history is complete from (0: from genesis).
pub fn choose(
    schedule: &LeaderSchedule,
    validators: &ValidatorSet,
    params: Params,
    round: Round,
    chain: &[ChainEntry<'_>],
    known_from: Round,
) -> Choice {
    let base = schedule.leader(round);
    if params.window == 0 {
        return Choice { leader: base, excluded: Vec::new(), certain: true };
    }
    let lo = round.saturating_sub(params.window).max(1);
    let from = lo.max(known_from);
    let ids: Vec<ValidatorId> = validators.iter().map(|v| v.id).collect();
    // Per validator, indexed like the set: (absent, failures, last failure).
    let mut score = vec![(false, 0u64, 0 as Round); ids.len()];
    // Cold start: nothing before the chain's first block (the entry above
    // round 0 with no signers: its `justify` certifies genesis) counts. A
    // start-up round in the window means that block's round is in it too,
    // so `chain` holds it. No block at all yet: nothing counts.
    let first_block = chain.iter().find(|(r, s)| *r >= 1 && s.count() == 0).map(|(r, _)| *r);
    let started = chain.iter().any(|(r, _)| *r >= 1);
    let from = match first_block {
        Some(first) => from.max(first),
        None if !started => round,
        None => from,
    };
    let mut in_chain = chain.iter().map(|(r, _)| *r).filter(|k| *k >= from && *k < round).peekable();
    for k in from..round {
        while in_chain.next_if(|c| *c < k).is_some() {}
        if in_chain.next_if_eq(&k).is_some() {
            continue;
        }
        if let Some(i) = validators.position(&schedule.leader(k)) {
            score[i].1 += 1;
            score[i].2 = k;
        }
    }
    let recent: Vec<&SignerBitmap> =
        chain.iter().rev().filter(|(r, _)| *r < round).take(params.absent_blocks).map(|(_, s)| *s).collect();
    let voters_known =
        params.absent_blocks > 0 && recent.len() == params.absent_blocks && recent.iter().all(|s| s.count() > 0);
    if voters_known {
        for (i, sc) in score.iter_mut().enumerate() {
            sc.0 = !recent.iter().any(|s| s.get(i));
        }
    }
    let oldest_recent = chain.iter().rev().filter(|(r, _)| *r < round).nth(params.absent_blocks.saturating_sub(1));
    let certain = lo >= known_from && (known_from == 0 || oldest_recent.is_some_and(|(r, _)| *r >= known_from));
    let mut worst: Vec<usize> = (0..ids.len()).filter(|&i| score[i].0 || score[i].1 > 0).collect();
    worst.sort_by(|&a, &b| score[b].cmp(&score[a]).then(a.cmp(&b)));
    let budget = validators.total_power() - validators.quorum_power();
    let mut spent = 0;
    let mut excluded = Vec::new();
    for i in worst {
        let power = validators.power(&ids[i]);
        if spent + power > budget {
            continue;
        }
        spent += power;
        let (absent, failed, last_failed) = score[i];
        excluded.push(Excluded { id: ids[i], absent, failed, last_failed });
    }
    let is_excluded = |id: &ValidatorId| excluded.iter().any(|e| e.id == *id);
    let leader = if is_excluded(&base) {
        let others: Vec<ValidatorId> = ids.iter().copied().filter(|id| !is_excluded(id)).collect();
        let turn = round / schedule.cycle_len() as Round;
        others[(turn % others.len() as Round) as usize]
    } else {
        base
    };
    Choice { leader, excluded, certain }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::Keypair;

    fn validators(n: u8) -> (Vec<ValidatorId>, ValidatorSet, LeaderSchedule) {
        let ids: Vec<ValidatorId> = (1..=n).map(|i| Keypair::from_seed(&[i; 32]).public()).collect();
        let set = ValidatorSet::equal(&ids);
        let schedule = LeaderSchedule::new(&set);
        (ids, set, schedule)
    }

    /// Blocks of rounds 1..round without `missing`, each QC signed by every
    /// validator of `n` but `silent`.
    fn chain(n: usize, round: Round, missing: &[Round], silent: &[usize]) -> Vec<(Round, SignerBitmap)> {
        let mut signers = SignerBitmap::with_len(n);
        (0..n).filter(|i| !silent.contains(i)).for_each(|i| signers.set(i));
        (1..round).filter(|k| !missing.contains(k)).map(|k| (k, signers.clone())).collect()
    }

    fn run(n: u8, window: Round, round: Round, chain: &[(Round, SignerBitmap)], known_from: Round) -> Choice {
        let (_, set, s) = validators(n);
        let entries: Vec<ChainEntry<'_>> = chain.iter().map(|(r, b)| (*r, b)).collect();
        choose(&s, &set, Params { window, absent_blocks: 5 }, round, &entries, known_from)
    }

    fn ids_of(c: &Choice) -> Vec<ValidatorId> {
        c.excluded.iter().map(|e| e.id).collect()
    }

    #[test]
    fn a_full_chain_keeps_the_plain_schedule() {
        let (_, _, s) = validators(4);
        for r in 1..40 {
            let c = run(4, 20, r, &chain(4, r, &[], &[]), 0);
            assert_eq!(c.leader, s.leader(r));
            assert!(c.excluded.is_empty() && c.certain);
        }
    }

    #[test]
    fn a_validator_that_failed_its_round_is_skipped_until_the_window_passes() {
        let (ids, _, s) = validators(4);
        // Round 7 (validator index 3) produced nothing on this chain.
        let rounds = chain(4, 30, &[7], &[]);
        let c = run(4, 20, 11, &rounds, 0);
        assert_eq!(s.leader(11), ids[3]);
        assert_eq!(c.excluded, vec![Excluded { id: ids[3], absent: false, failed: 1, last_failed: 7 }]);
        assert_ne!(c.leader, ids[3], "its next turn goes to another validator");
        // Replacement turns rotate over the others.
        let subs: Vec<ValidatorId> = [11, 15, 19].iter().map(|&r| run(4, 20, r, &rounds, 0).leader).collect();
        assert_eq!(subs, vec![ids[2], ids[0], ids[1]]);
        // Round 27's window is [7, 27): still excluded; round 28's is [8, 28).
        assert_ne!(run(4, 20, 27, &rounds, 0).leader, ids[3]);
        assert_eq!(run(4, 20, 31, &chain(4, 40, &[7], &[]), 0).leader, ids[3], "back in the schedule");
    }

    #[test]
    fn rounds_between_the_parent_and_the_round_count_as_failed() {
        let (ids, _, _) = validators(4);
        // The chain ends at round 6; round 8 extends it, so round 7 failed.
        let c = run(4, 20, 8, &chain(4, 7, &[], &[]), 0);
        assert_eq!(ids_of(&c), vec![ids[3]]);
    }

    #[test]
    fn a_validator_missing_from_recent_qcs_is_skipped_while_it_stays_silent() {
        let (ids, _, s) = validators(4);
        // Validator 2 never failed a turn in the window but signs no QC.
        let c = run(4, 20, 30, &chain(4, 30, &[], &[2]), 0);
        assert_eq!(c.excluded, vec![Excluded { id: ids[2], absent: true, failed: 0, last_failed: 0 }]);
        assert_ne!(run(4, 20, 30, &chain(4, 30, &[], &[2]), 0).leader, s.leader(30), "round 30 is its turn");
        // One recent QC with its signature is enough.
        let mut c = chain(4, 30, &[], &[2]);
        c[27].1.set(2);
        assert!(run(4, 20, 30, &c, 0).excluded.is_empty());
        // Fewer blocks than the participation rule looks at: no one is absent.
        assert!(run(4, 20, 4, &chain(4, 4, &[], &[2]), 0).excluded.is_empty());
    }

    #[test]
    fn at_most_f_validators_are_excluded_worst_first() {
        let (ids, _, _) = validators(4);
        // Validator 1 failed once (round 5), validator 2 twice (rounds 2 and
        // 6), validator 3 once, later (round 7).
        let c = run(4, 20, 12, &chain(4, 12, &[2, 5, 6, 7], &[]), 0);
        assert_eq!(c.excluded, vec![Excluded { id: ids[2], absent: false, failed: 2, last_failed: 6 }]);
        // Equal counts: the most recent failure goes first.
        assert_eq!(ids_of(&run(4, 20, 12, &chain(4, 12, &[6, 7], &[]), 0)), vec![ids[3]]);
        // Absent goes before failed.
        assert_eq!(ids_of(&run(4, 20, 12, &chain(4, 12, &[6], &[0]), 0)), vec![ids[0]]);
        // Seven validators tolerate two.
        let (ids7, _, _) = validators(7);
        let c = run(7, 40, 30, &chain(7, 30, &[3, 4, 5], &[]), 0);
        assert_eq!(ids_of(&c), vec![ids7[5], ids7[4]]);
    }

    #[test]
    fn no_participation_blocks_judges_no_one_absent() {
        let (_, set, s) = validators(4);
        let rounds = chain(4, 30, &[], &[2]);
        let entries: Vec<ChainEntry<'_>> = rounds.iter().map(|(r, b)| (*r, b)).collect();
        let c = choose(&s, &set, Params { window: 20, absent_blocks: 0 }, 30, &entries, 0);
        assert!(c.excluded.is_empty(), "{c:?}");
    }

    #[test]
    fn rounds_before_the_chains_first_block_are_charged_to_no_one() {
        let (ids, _, s) = validators(4);
        // Rounds 1 and 2 failed while the validators were starting; the
        // chain's first block has round 3 (its justify certifies genesis:
        // no signers).
        let started_late = |round: Round, missing: &[Round]| {
            let mut c = chain(4, round, missing, &[]);
            c.iter_mut().find(|(r, _)| *r >= 1).expect("a first block").1 = SignerBitmap::with_len(4);
            c
        };
        let c = run(4, 20, 12, &started_late(12, &[1, 2]), 0);
        assert!(c.excluded.is_empty(), "{c:?}");
        assert_eq!(c.leader, s.leader(12));
        // No block yet: nothing is charged, whatever the round.
        assert!(run(4, 20, 9, &[], 0).excluded.is_empty());
        // A failure after the first block is charged as before.
        let c = run(4, 20, 12, &started_late(12, &[1, 2, 6]), 0);
        assert_eq!(c.excluded, vec![Excluded { id: ids[2], absent: false, failed: 1, last_failed: 6 }]);
        // Once the window has moved past round 1, round 2 is still in it
        // and still not charged (no jump when the window leaves round 1).
        let c = run(4, 20, 22, &started_late(22, &[1, 2]), 0);
        assert!(c.excluded.is_empty(), "{c:?}");
        // A chain whose first block is unseen (entries from round 1 on with
        // signers everywhere) is judged as before: round 2 is charged.
        assert_eq!(ids_of(&run(4, 20, 22, &chain(4, 22, &[2], &[]), 0)), vec![ids[2]]);
    }

    #[test]
    fn window_zero_is_the_plain_schedule() {
        let (_, _, s) = validators(4);
        let c = run(4, 0, 9, &chain(4, 9, &[3], &[1]), 0);
        assert_eq!(c.leader, s.leader(9));
        assert!(c.excluded.is_empty());
    }

    #[test]
    fn unknown_history_counts_as_not_failed_and_is_uncertain() {
        // Known only from round 50 (a snapshot): rounds before are not blamed.
        let known: Vec<_> = chain(4, 60, &[], &[]).into_iter().filter(|(k, _)| *k >= 50).collect();
        let c = run(4, 20, 60, &known, 50);
        assert!(c.excluded.is_empty());
        assert!(!c.certain);
        assert!(run(4, 20, 71, &chain(4, 71, &[], &[]), 50).certain);
    }
}
