//! The pacemaker: which round this validator is in, when it gives up on
//! it, and how timeouts become timeout certificates.
//!
//! A validator is in round r until it sees a QC or a TC for a round >= r,
//! then moves to that round + 1. Entering a round arms a timer of
//! `base * 2^k` (k = consecutive rounds entered without a QC, capped at
//! [`MAX_BACKOFF_EXP`], and never more than the configured maximum). A quorum
//! of timeouts for one round forms a TC. Timeouts are kept only for rounds
//! in a bounded window at or above the current round.

use crate::types::{Millis, QuorumCert, Round, SignerBitmap, Timeout, TimeoutCert, ValidatorId, ValidatorSet};
use crate::verify::Verified;
use std::collections::{BTreeMap, HashMap};

/// Largest exponent of the exponential back-off.
pub const MAX_BACKOFF_EXP: u32 = 6;
/// How many rounds ahead of the current one timeouts are kept.
pub const FUTURE_ROUNDS: Round = 64;

pub struct Pacemaker {
    round: Round,
    rounds_without_qc: u32,
    base_ms: Millis,
    max_ms: Millis,
    deadline: Millis,
    last_tc: Option<TimeoutCert>,
    /// Our own signed timeout for the current round, if any (rebroadcast on
    /// later expiries).
    own_timeout: Option<Timeout>,
    timeouts: BTreeMap<Round, RoundTimeouts>,
}

#[derive(Default)]
struct RoundTimeouts {
    by_author: HashMap<ValidatorId, Timeout>,
    power: u64,
    tc_formed: bool,
}

impl Pacemaker {
    pub fn new(base_ms: Millis, max_ms: Millis) -> Pacemaker {
        Pacemaker {
            round: 0,
            rounds_without_qc: 0,
            base_ms,
            max_ms: max_ms.max(base_ms),
            deadline: 0,
            last_tc: None,
            own_timeout: None,
            timeouts: BTreeMap::new(),
        }
    }

    pub fn round(&self) -> Round {
        self.round
    }

    pub fn deadline(&self) -> Millis {
        self.deadline
    }

    pub fn last_tc(&self) -> Option<&TimeoutCert> {
        self.last_tc.as_ref()
    }

    pub fn own_timeout(&self) -> Option<&Timeout> {
        self.own_timeout.as_ref()
    }

    pub fn set_own_timeout(&mut self, t: Timeout) {
        self.own_timeout = Some(t);
    }

    /// The timer length after `k` consecutive rounds without a QC.
    pub fn duration(&self, k: u32) -> Millis {
        let d = self.base_ms.saturating_mul(1 << k.min(MAX_BACKOFF_EXP));
        d.min(self.max_ms)
    }

    /// Enters `round` if it is above the current one. `via_qc` says whether
    /// a QC (rather than a TC) brought us here. Returns the new deadline.
    pub fn enter(&mut self, round: Round, via_qc: bool, now: Millis) -> Option<Millis> {
        if round <= self.round {
            return None;
        }
        self.rounds_without_qc = if via_qc { 0 } else { self.rounds_without_qc + 1 };
        self.round = round;
        self.own_timeout = None;
        self.deadline = now + self.duration(self.rounds_without_qc);
        self.timeouts = self.timeouts.split_off(&round);
        Some(self.deadline)
    }

    /// After our timer fired in the current round: the next deadline, backed
    /// off once more, for rebroadcasting our timeout.
    pub fn backoff(&mut self, now: Millis) -> Millis {
        self.deadline = now + self.duration(self.rounds_without_qc + 1);
        self.deadline
    }

    /// Records a TC if it is the highest seen.
    pub fn record_tc(&mut self, tc: TimeoutCert) {
        if self.last_tc.as_ref().is_none_or(|t| tc.round > t.round) {
            self.last_tc = Some(tc);
        }
    }

    /// Counts a verified timeout; returns a TC when this one completes a
    /// quorum for its round.
    pub fn add_timeout(&mut self, t: Verified<Timeout>, validators: &ValidatorSet) -> Option<TimeoutCert> {
        let t = t.into_inner();
        if t.round < self.round || t.round > self.round.saturating_add(FUTURE_ROUNDS) {
            return None;
        }
        let rt = self.timeouts.entry(t.round).or_default();
        if rt.by_author.contains_key(&t.author) {
            return None;
        }
        rt.power += validators.power(&t.author);
        let round = t.round;
        rt.by_author.insert(t.author, t);
        if rt.tc_formed || rt.power < validators.quorum_power() {
            return None;
        }
        rt.tc_formed = true;
        let mut signers = SignerBitmap::with_len(validators.len());
        let mut high_qc_rounds = Vec::new();
        let mut signatures = Vec::new();
        let mut high_qc: Option<&QuorumCert> = None;
        for (pos, v) in validators.iter().enumerate() {
            if let Some(t) = rt.by_author.get(&v.id) {
                signers.set(pos);
                high_qc_rounds.push(t.high_qc.round());
                signatures.push(t.signature);
                if high_qc.is_none_or(|q| t.high_qc.round() > q.round()) {
                    high_qc = Some(&t.high_qc);
                }
            }
        }
        let high_qc = high_qc.expect("a quorum has members").clone();
        Some(TimeoutCert { round, signers, high_qc_rounds, signatures, high_qc })
    }

    /// Voting power that has timed out in `round`.
    pub fn timeout_power(&self, round: Round) -> u64 {
        self.timeouts.get(&round).map_or(0, |r| r.power)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = Pacemaker::new(100, 2_000);
        let got: Vec<Millis> = (0..8).map(|k| p.duration(k)).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn entering_rounds_counts_rounds_without_qc() {
        let mut p = Pacemaker::new(100, 10_000);
        assert_eq!(p.enter(1, true, 0), Some(100));
        assert_eq!(p.enter(2, false, 0), Some(200), "a TC backs off");
        assert_eq!(p.enter(3, false, 0), Some(400));
        assert_eq!(p.enter(3, true, 0), None, "not above the current round");
        assert_eq!(p.enter(4, true, 1000), Some(1100), "a QC resets the back-off");
    }
}
