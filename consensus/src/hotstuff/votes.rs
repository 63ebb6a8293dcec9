//! Collecting votes into quorum certificates.
//!
//! Votes are counted per round and per vote data. A validator's first vote
//! in a round is the one that counts; a second vote for different data is
//! kept as [`Evidence::DoubleVote`]. A QC is formed once, when the signers
//! of one vote data hold a quorum of power. Only rounds inside a window
//! around the current round are kept, so memory is bounded.

use crate::types::{Evidence, QuorumCert, Round, SignerBitmap, ValidatorId, ValidatorSet, Vote, VoteData};
use crate::verify::Verified;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How many rounds ahead of the current one votes are kept.
pub const FUTURE_ROUNDS: Round = 64;

#[derive(Default)]
struct RoundVotes {
    by_author: HashMap<ValidatorId, Vote>,
    by_data: HashMap<VoteData, u64>,
    qc_formed: bool,
    /// Authors already caught double voting in this round (one evidence each).
    equivocated: HashSet<ValidatorId>,
}

/// What adding a vote produced.
#[derive(Debug, PartialEq)]
pub enum VoteOutcome {
    /// Counted, no quorum yet (or already formed).
    Counted,
    /// Already had this exact vote (or already have evidence against its author
    /// for this round).
    Duplicate,
    /// Outside the window of rounds kept.
    OutOfWindow,
    /// This vote completed a quorum.
    Quorum(QuorumCert),
    /// The author already voted differently in this round.
    Equivocation(Box<Evidence>),
}

#[derive(Default)]
pub struct VoteCollector {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteCollector {
    pub fn add(&mut self, vote: Verified<Vote>, current: Round, validators: &ValidatorSet) -> VoteOutcome {
        let vote = vote.into_inner();
        let round = vote.data.round;
        if round.saturating_add(1) < current || round > current.saturating_add(FUTURE_ROUNDS) {
            return VoteOutcome::OutOfWindow;
        }
        let rv = self.rounds.entry(round).or_default();
        if let Some(prev) = rv.by_author.get(&vote.author) {
            if prev.data == vote.data || !rv.equivocated.insert(vote.author) {
                return VoteOutcome::Duplicate;
            }
            return VoteOutcome::Equivocation(Box::new(Evidence::DoubleVote {
                author: vote.author,
                a: prev.data,
                sig_a: prev.signature,
                b: vote.data,
                sig_b: vote.signature,
            }));
        }
        let power = validators.power(&vote.author);
        let total = rv.by_data.entry(vote.data).or_insert(0);
        *total += power;
        let reached = *total >= validators.quorum_power();
        let data = vote.data;
        rv.by_author.insert(vote.author, vote);
        if !reached || rv.qc_formed {
            return VoteOutcome::Counted;
        }
        rv.qc_formed = true;
        let mut signers = SignerBitmap::with_len(validators.len());
        let mut signatures = Vec::new();
        for (pos, v) in validators.iter().enumerate() {
            if let Some(vote) = rv.by_author.get(&v.id)
                && vote.data == data
            {
                signers.set(pos);
                signatures.push(vote.signature);
            }
        }
        VoteOutcome::Quorum(QuorumCert { vote: data, signers, signatures })
    }

    /// Forgets rounds below `round`.
    pub fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }
}
