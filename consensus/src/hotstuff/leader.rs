//! Who leads each round: round-robin weighted by voting power.
//!
//! The schedule is one cycle of smooth weighted round-robin (the nginx and
//! CometBFT proposer-priority idea): each validator appears in proportion to
//! its power, spread out rather than in runs. `leader(r)` is the schedule's
//! entry `r mod len`. Powers are first divided by their greatest common
//! divisor; if the cycle would still be longer than [`MAX_CYCLE`] slots,
//! powers are scaled down proportionally (each keeps at least one slot).

use crate::types::{Round, ValidatorId, ValidatorSet};

/// Longest schedule cycle kept in memory.
pub const MAX_CYCLE: u64 = 4096;

#[derive(Clone, Debug)]
pub struct LeaderSchedule {
    slots: Vec<ValidatorId>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl LeaderSchedule {
    pub fn new(validators: &ValidatorSet) -> LeaderSchedule {
        let g = validators.iter().fold(0, |g, v| gcd(g, v.power));
        let mut weights: Vec<u64> = validators.iter().map(|v| v.power / g).collect();
        let total: u64 = weights.iter().sum();
        if total > MAX_CYCLE {
            weights =
                weights.iter().map(|&w| ((w as u128 * MAX_CYCLE as u128 / total as u128) as u64).max(1)).collect();
        }
        let total: i128 = weights.iter().map(|&w| w as i128).sum();
        let ids: Vec<ValidatorId> = validators.iter().map(|v| v.id).collect();
        let mut current = vec![0i128; ids.len()];
        let mut slots = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, &w) in current.iter_mut().zip(&weights) {
                *c += w as i128;
            }
            // Highest current weight wins; ties go to the earlier validator.
            let (best, _) = current
                .iter()
                .enumerate()
                .fold((0, i128::MIN), |(bi, bc), (i, &c)| if c > bc { (i, c) } else { (bi, bc) });
            current[best] -= total;
            slots.push(ids[best]);
        }
        LeaderSchedule { slots }
    }

    pub fn leader(&self, round: Round) -> ValidatorId {
        self.slots[(round % self.slots.len() as u64) as usize]
    }

    /// Length of one cycle of the schedule.
    pub fn cycle_len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Validator;
    use phalanx_crypto::Keypair;

    fn ids(n: u8) -> Vec<ValidatorId> {
        (1..=n).map(|i| Keypair::from_seed(&[i; 32]).public()).collect()
    }

    #[test]
    fn equal_power_is_plain_round_robin() {
        let k = ids(4);
        let s = LeaderSchedule::new(&ValidatorSet::equal(&k));
        let got: Vec<_> = (0..8).map(|r| s.leader(r)).collect();
        assert_eq!(got, [&k[..], &k[..]].concat());
    }

    #[test]
    fn weighted_power_gives_proportional_spread_slots() {
        let k = ids(3);
        let set = ValidatorSet::new(vec![
            Validator { id: k[0], power: 30 },
            Validator { id: k[1], power: 10 },
            Validator { id: k[2], power: 20 },
        ])
        .unwrap();
        let s = LeaderSchedule::new(&set);
        assert_eq!(s.cycle_len(), 6);
        let count = |id| (0..6).filter(|&r| s.leader(r) == id).count();
        assert_eq!((count(k[0]), count(k[1]), count(k[2])), (3, 1, 2));
        let order: Vec<usize> = (0..6).map(|r| k.iter().position(|id| *id == s.leader(r)).unwrap()).collect();
        assert_eq!(order, vec![0, 2, 0, 1, 2, 0], "pinned: the schedule is consensus-critical");
    }

    #[test]
    fn huge_powers_are_scaled_to_a_bounded_cycle() {
        let k = ids(2);
        let set = ValidatorSet::new(vec![Validator { id: k[0], power: 1_000_003 }, Validator { id: k[1], power: 1 }])
            .unwrap();
        let s = LeaderSchedule::new(&set);
        assert!(s.cycle_len() as u64 <= MAX_CYCLE + 1);
        assert!((0..s.cycle_len() as u64).any(|r| s.leader(r) == k[1]), "every validator keeps a slot");
    }
}
