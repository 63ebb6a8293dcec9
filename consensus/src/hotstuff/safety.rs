//! Safety rules: the only code that signs votes, timeouts and proposals.
//!
//! Owns the consensus key and the persisted [`SafetyData`]. Every signing
//! method first updates the data and appends `Action::PersistSafety` to the
//! output, then signs; the driver makes the persist durable before any
//! message that follows it leaves the node. A validator that restarts from
//! its persisted data therefore can never sign two different votes for one
//! round, vote in a round it timed out in, or vote against its lock.
//!
//! Rules (2-chain Jolteon / DiemBFT v4, see PROTOCOLS.md and
//! Aptos `safety_rules_2chain.rs`):
//! - vote for block B of round r with optional TC only if
//!   `r > last_voted_round` and either `r == B.qc.round + 1` or
//!   (`r == tc.round + 1` and `B.qc.round >= tc.highest_hqc_round`);
//! - sign a timeout for round r only if `r == high_qc.round + 1` or
//!   `r == tc.round + 1`, `high_qc.round >= one_chain_round`, and
//!   `r >= last_voted_round`;
//! - sign at most one proposal per round.
//!
//! This module must never sign anything without a preceding persist.

use crate::engine::{Action, SafetyState};
use crate::types::{
    Block, BlockHeader, Certificate, QuorumCert, Round, Timeout, TimeoutCert, TimeoutData, Tx, ValidatorId, Vote,
    VoteData,
};
use phalanx_crypto::{Domain, Keypair};
use serde::{Deserialize, Serialize};

/// What must survive a restart for a validator to stay safe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyData {
    /// Highest round this validator voted in or timed out in.
    pub last_voted_round: Round,
    /// Highest QC round observed through a block this validator voted for
    /// (its lock).
    pub one_chain_round: Round,
    /// Highest round this validator signed a timeout for.
    pub highest_timeout_round: Round,
    /// Highest round this validator signed a proposal for.
    pub last_proposed_round: Round,
    /// The last vote signed, resent unchanged if asked again.
    pub last_vote: Option<Vote>,
    /// The highest QC known when this state was last persisted. With
    /// `highest_tc`, it lets a restarted validator re-enter the round it was
    /// in: without them, a validator whose last vote or timeout was in a round
    /// above what its stored blocks certify could neither vote nor time out
    /// again (PROTOCOLS.md timeout rule 3), and a whole-cluster restart would
    /// stall for good.
    pub high_qc: Option<QuorumCert>,
    /// The highest TC known when this state was last persisted.
    pub highest_tc: Option<TimeoutCert>,
}

/// Why the safety rules refused to sign.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    #[error("round {round} is not above the last voted round {last_voted_round}")]
    RoundNotNewer { round: Round, last_voted_round: Round },
    #[error(
        "round {round} follows neither its QC (round {qc_round}) nor a TC whose high QC round is at most {qc_round}"
    )]
    NotSafeToVote { round: Round, qc_round: Round },
    #[error("timeout for round {round} is not justified by high QC round {qc_round} or a TC for round {round} - 1")]
    TimeoutNotJustified { round: Round, qc_round: Round },
    #[error("high QC round {qc_round} is below the locked round {one_chain_round}")]
    HighQcBelowLock { qc_round: Round, one_chain_round: Round },
    #[error("already signed a proposal in round {last_proposed_round}; refusing round {round}")]
    ProposalRoundNotNewer { round: Round, last_proposed_round: Round },
}

/// The signer, guarded by the rules above.
pub struct SafetyRules {
    key: Keypair,
    chain_id: String,
    data: SafetyData,
    /// Always true in a validator; false only in the simulator's deliberately
    /// broken engines (feature `unsafe-test-hooks`).
    check_lock: bool,
    /// Always true in a validator; see `check_lock`.
    one_vote_per_round: bool,
    /// Always true in a validator; see `check_lock`.
    no_vote_after_timeout: bool,
}

impl SafetyRules {
    pub fn new(key: Keypair, chain_id: String, data: SafetyData) -> SafetyRules {
        SafetyRules { key, chain_id, data, check_lock: true, one_vote_per_round: true, no_vote_after_timeout: true }
    }

    pub fn data(&self) -> &SafetyData {
        &self.data
    }

    /// Switches off the lock checks (voting rule 2's TC case and timeout rule
    /// 2). Exists only to show the simulator's checkers catch a broken engine.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn disable_lock_check_for_tests(&mut self) {
        self.check_lock = false;
    }

    /// Lets a validator vote in a round it timed out in (the timeout no longer
    /// raises `last_voted_round`), which lets a TC carry a high QC below the
    /// lock of validators that voted. Exists only to show the simulator's
    /// checkers catch a broken engine.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn allow_vote_after_timeout_for_tests(&mut self) {
        self.no_vote_after_timeout = false;
    }

    /// Switches off voting rule 1 (one vote per round): a later, different
    /// block of the same round gets a vote too. Exists only to show the
    /// simulator's checkers catch a broken engine.
    #[cfg(feature = "unsafe-test-hooks")]
    pub fn disable_one_vote_per_round_for_tests(&mut self) {
        self.one_vote_per_round = false;
    }

    /// Replaces the state with what the store recovered.
    pub fn restore(&mut self, data: SafetyData) {
        self.data = data;
    }

    pub fn author(&self) -> ValidatorId {
        self.key.public()
    }

    /// Remembers the highest certificates known, to be persisted with the
    /// next signature. Never lowers them.
    pub fn remember(&mut self, high_qc: &QuorumCert, tc: Option<&TimeoutCert>) {
        if self.data.high_qc.as_ref().is_none_or(|q| high_qc.round() > q.round()) {
            self.data.high_qc = Some(high_qc.clone());
        }
        if let Some(tc) = tc
            && self.data.highest_tc.as_ref().is_none_or(|t| tc.round > t.round)
        {
            self.data.highest_tc = Some(tc.clone());
        }
    }

    fn persist(&self, out: &mut Vec<Action>) {
        out.push(Action::PersistSafety(SafetyState::HotStuff(self.data.clone())));
    }

    /// Signs a vote for `block` (reached with `tc` if the block's QC is not
    /// from the previous round). Appends `PersistSafety` before returning
    /// a new vote; returns the identical earlier vote if asked again for the
    /// same block in the same round.
    pub fn vote(
        &mut self,
        block: &Block,
        tc: Option<&TimeoutCert>,
        out: &mut Vec<Action>,
    ) -> Result<Vote, SafetyError> {
        let data = VoteData::for_block(block);
        if let Some(last) = &self.data.last_vote
            && last.data == data
        {
            return Ok(last.clone());
        }
        let round = data.round;
        let qc_round = data.parent_round;
        if round < self.data.last_voted_round || (round == self.data.last_voted_round && self.one_vote_per_round) {
            return Err(SafetyError::RoundNotNewer { round, last_voted_round: self.data.last_voted_round });
        }
        let follows_qc = round == qc_round + 1;
        let follows_tc =
            tc.is_some_and(|tc| round == tc.round + 1 && (qc_round >= tc.highest_hqc_round() || !self.check_lock));
        if !follows_qc && !follows_tc {
            return Err(SafetyError::NotSafeToVote { round, qc_round });
        }
        let signature = self.key.sign(Domain::Vote, &self.chain_id, &data.signing_body());
        let vote = Vote { data, author: self.key.public(), signature };
        self.data.last_voted_round = round;
        self.data.one_chain_round = self.data.one_chain_round.max(qc_round);
        self.data.last_vote = Some(vote.clone());
        self.persist(out);
        Ok(vote)
    }

    /// Signs a timeout for `round` carrying `high_qc`; `tc` is the TC for
    /// `round - 1` if that is how this validator entered `round`.
    pub fn timeout(
        &mut self,
        round: Round,
        high_qc: &QuorumCert,
        tc: Option<&TimeoutCert>,
        out: &mut Vec<Action>,
    ) -> Result<Timeout, SafetyError> {
        let qc_round = high_qc.round();
        let justified = round == qc_round + 1 || tc.is_some_and(|tc| round == tc.round + 1);
        if !justified {
            return Err(SafetyError::TimeoutNotJustified { round, qc_round });
        }
        if qc_round < self.data.one_chain_round && self.check_lock {
            return Err(SafetyError::HighQcBelowLock { qc_round, one_chain_round: self.data.one_chain_round });
        }
        if round < self.data.last_voted_round {
            return Err(SafetyError::RoundNotNewer { round, last_voted_round: self.data.last_voted_round });
        }
        let body = TimeoutData { round, high_qc_round: qc_round }.signing_body();
        let signature = self.key.sign(Domain::Timeout, &self.chain_id, &body);
        if self.no_vote_after_timeout {
            self.data.last_voted_round = self.data.last_voted_round.max(round);
        }
        self.data.highest_timeout_round = self.data.highest_timeout_round.max(round);
        self.persist(out);
        Ok(Timeout { round, high_qc: high_qc.clone(), author: self.key.public(), signature, last_tc: None })
    }

    /// Signs a proposal; at most one per round, ever.
    pub fn propose(
        &mut self,
        header: BlockHeader,
        justify: Certificate,
        txs: Vec<Tx>,
        out: &mut Vec<Action>,
    ) -> Result<Block, SafetyError> {
        if header.round <= self.data.last_proposed_round {
            return Err(SafetyError::ProposalRoundNotNewer {
                round: header.round,
                last_proposed_round: self.data.last_proposed_round,
            });
        }
        self.data.last_proposed_round = header.round;
        self.persist(out);
        Ok(Block::sign(header, justify, txs, &self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SignerBitmap;
    use phalanx_crypto::Hash;

    const CHAIN: &str = "test-chain";

    fn rules() -> SafetyRules {
        SafetyRules::new(Keypair::from_seed(&[1; 32]), CHAIN.into(), SafetyData::default())
    }

    fn qc(round: Round) -> QuorumCert {
        QuorumCert {
            vote: VoteData {
                block_id: Hash::digest(&round.to_le_bytes()),
                round,
                height: round,
                parent_id: Hash::ZERO,
                parent_round: round.saturating_sub(1),
            },
            signers: SignerBitmap::default(),
            signatures: vec![],
        }
    }

    fn block(round: Round, qc_round: Round) -> Block {
        let q = qc(qc_round);
        let header = BlockHeader {
            chain_id: CHAIN.into(),
            height: qc_round + 1,
            round,
            parent: q.block_id(),
            parent_round: qc_round,
            payload_root: Hash::ZERO,
            app_height: 0,
            app_hash: Hash::ZERO,
            proposer: Keypair::from_seed(&[2; 32]).public(),
            time_ms: 0,
        };
        Block::sign(header, Certificate::Quorum(q), vec![], &Keypair::from_seed(&[2; 32]))
    }

    fn tc(round: Round, hqc_rounds: Vec<Round>) -> TimeoutCert {
        let high = *hqc_rounds.iter().max().unwrap();
        TimeoutCert {
            round,
            signers: SignerBitmap::default(),
            high_qc_rounds: hqc_rounds,
            signatures: vec![],
            high_qc: qc(high),
        }
    }

    fn persisted(out: &[Action]) -> SafetyData {
        match out {
            [Action::PersistSafety(SafetyState::HotStuff(d))] => d.clone(),
            other => panic!("expected exactly one PersistSafety, got {other:?}"),
        }
    }

    /// Voting rule 2, first case: a block whose QC is from the previous
    /// round is safe; the vote is persisted (exactly one PersistSafety
    /// carrying the new state) before it is returned.
    #[test]
    fn vote_for_block_extending_previous_round_qc_persists_first() {
        let mut s = rules();
        let mut out = vec![];
        let b = block(5, 4);
        let v = s.vote(&b, None, &mut out).unwrap();
        let d = persisted(&out);
        assert_eq!(d.last_voted_round, 5);
        assert_eq!(d.one_chain_round, 4);
        assert_eq!(d.last_vote, Some(v.clone()));
        assert_eq!(v.data, VoteData::for_block(&b));
        v.author.verify(Domain::Vote, CHAIN, &v.data.signing_body(), &v.signature).unwrap();
    }

    /// Voting rule 1: never two votes in one round, never a lower round.
    #[test]
    fn refuses_second_vote_in_same_round_for_another_block() {
        let mut s = rules();
        s.vote(&block(5, 4), None, &mut vec![]).unwrap();
        let mut out = vec![];
        let mut other = block(5, 4);
        other.header.time_ms = 99;
        assert_eq!(s.vote(&other, None, &mut out), Err(SafetyError::RoundNotNewer { round: 5, last_voted_round: 5 }));
        assert!(out.is_empty(), "a refused vote persists nothing");
        assert!(matches!(s.vote(&block(4, 3), None, &mut out), Err(SafetyError::RoundNotNewer { .. })));
    }

    /// PROTOCOLS.md: "If last_vote is for round r already, resend it
    /// unchanged instead" (no new signature, no new persist).
    #[test]
    fn same_block_again_returns_identical_vote_without_persist() {
        let mut s = rules();
        let b = block(5, 4);
        let v1 = s.vote(&b, None, &mut vec![]).unwrap();
        let mut out = vec![];
        let v2 = s.vote(&b, None, &mut out).unwrap();
        assert_eq!(v1, v2);
        assert!(out.is_empty());
    }

    /// Voting rule 2, second case: after a TC, vote only for a block whose
    /// QC is at least the highest QC reported in the TC (the lock check).
    #[test]
    fn vote_after_tc_requires_qc_at_least_tc_high_qc() {
        let mut s = rules();
        let t = tc(6, vec![3, 5, 4]);
        // Block of round 7 extending a QC of round 4 < 5: against the lock.
        assert_eq!(
            s.vote(&block(7, 4), Some(&t), &mut vec![]),
            Err(SafetyError::NotSafeToVote { round: 7, qc_round: 4 })
        );
        // Extending the QC of round 5: safe.
        let mut out = vec![];
        s.vote(&block(7, 5), Some(&t), &mut out).unwrap();
        assert_eq!(persisted(&out).last_voted_round, 7);
    }

    /// A block that skips rounds with no TC is never voted for.
    #[test]
    fn refuses_round_not_following_qc_without_tc() {
        let mut s = rules();
        assert_eq!(s.vote(&block(7, 4), None, &mut vec![]), Err(SafetyError::NotSafeToVote { round: 7, qc_round: 4 }));
    }

    /// Timeout rule: after timing out in round r, no vote in round r.
    #[test]
    fn timeout_then_no_vote_in_that_round() {
        let mut s = rules();
        let mut out = vec![];
        let t = s.timeout(5, &qc(4), None, &mut out).unwrap();
        let d = persisted(&out);
        assert_eq!((d.last_voted_round, d.highest_timeout_round), (5, 5));
        let body = TimeoutData { round: 5, high_qc_round: 4 }.signing_body();
        t.author.verify(Domain::Timeout, CHAIN, &body, &t.signature).unwrap();
        assert!(matches!(s.vote(&block(5, 4), None, &mut vec![]), Err(SafetyError::RoundNotNewer { .. })));
    }

    /// Timeout rule 1: the round must follow the high QC or a TC.
    #[test]
    fn timeout_must_follow_qc_or_tc() {
        let mut s = rules();
        assert_eq!(
            s.timeout(7, &qc(4), None, &mut vec![]),
            Err(SafetyError::TimeoutNotJustified { round: 7, qc_round: 4 })
        );
        s.timeout(7, &qc(4), Some(&tc(6, vec![4])), &mut vec![]).unwrap();
    }

    /// Timeout rule 2: the high QC must not be below the lock.
    #[test]
    fn timeout_refuses_high_qc_below_lock() {
        let mut s = rules();
        s.vote(&block(5, 4), None, &mut vec![]).unwrap(); // lock = 4
        s.vote(&block(6, 5), None, &mut vec![]).unwrap(); // lock = 5
        assert_eq!(
            s.timeout(7, &qc(4), Some(&tc(6, vec![4])), &mut vec![]),
            Err(SafetyError::HighQcBelowLock { qc_round: 4, one_chain_round: 5 })
        );
    }

    /// Timeout rule 3: never time out in a round below one already voted in.
    #[test]
    fn timeout_refuses_round_below_last_voted() {
        let mut s = rules();
        s.vote(&block(5, 4), None, &mut vec![]).unwrap();
        // Round 4 is justified (TC for round 3) and the high QC is not below
        // the lock, but the validator already voted in round 5.
        assert_eq!(
            s.timeout(4, &qc(4), Some(&tc(3, vec![2])), &mut vec![]),
            Err(SafetyError::RoundNotNewer { round: 4, last_voted_round: 5 })
        );
    }

    /// At most one proposal per round, persisted before it is signed.
    #[test]
    fn one_proposal_per_round() {
        let mut s = rules();
        let b = block(5, 4);
        let mut out = vec![];
        s.propose(b.header.clone(), b.justify.clone(), vec![], &mut out).unwrap();
        assert_eq!(persisted(&out).last_proposed_round, 5);
        assert_eq!(
            s.propose(b.header.clone(), b.justify.clone(), vec![], &mut vec![]),
            Err(SafetyError::ProposalRoundNotNewer { round: 5, last_proposed_round: 5 })
        );
    }

    /// A validator restored from its persisted data refuses what it refused
    /// before the restart.
    #[test]
    fn restored_rules_remember_the_vote() {
        let mut s = rules();
        let mut out = vec![];
        s.vote(&block(5, 4), None, &mut out).unwrap();
        let d = persisted(&out);
        let mut again = SafetyRules::new(Keypair::from_seed(&[1; 32]), CHAIN.into(), d);
        let mut other = block(5, 4);
        other.header.time_ms = 1;
        assert!(matches!(again.vote(&other, None, &mut vec![]), Err(SafetyError::RoundNotNewer { .. })));
    }
}
