//! Liveness: after the global stabilisation time, with at most f validators
//! faulty, honest validators commit again within `rounds` rounds (counted by
//! the highest round any honest validator reached) and never go longer than
//! that without a new commit; and rounds keep moving: no honest round lasts
//! longer than `stall_ms` (the largest round timeout plus message delays).

use super::{Checker, Ctx};
use phalanx_consensus::types::{CertifiedBlock, Height, Millis, Round};

/// The stated bound.
#[derive(Clone, Copy, Debug)]
pub struct LivenessBound {
    /// Rounds without a new commit, after GST, at most.
    pub rounds: Round,
    /// Time without a new round or commit, after GST, at most.
    pub stall_ms: Millis,
}

impl LivenessBound {
    /// The bound for `n` validators: the time for honest validators to meet
    /// in one round after GST plus two full cycles of the leader schedule
    /// (every cycle has three consecutive honest leaders, enough for a
    /// 2-chain commit, while at most f of n are faulty).
    pub fn for_validators(n: usize, timeout_ms_max: Millis, delay_ms_max: Millis) -> LivenessBound {
        // A round after GST lasts at most: the rest of a timer armed just
        // before GST, then one full timer for validators that entered it
        // late, plus message delays.
        LivenessBound { rounds: 2 * n as Round + 8, stall_ms: 2 * timeout_ms_max + 8 * delay_ms_max + 500 }
    }
}

pub struct Liveness {
    bound: LivenessBound,
    max_height: Height,
    /// Round and time of the last new commit after GST (or GST itself).
    last: Option<(Round, Millis)>,
    /// Worst gap seen after GST.
    pub worst_rounds: Round,
    pub worst_ms: Millis,
    pub commits_after_gst: u64,
    /// The highest honest round seen, and when it was first seen.
    round_seen: (Round, Millis),
}

impl Liveness {
    pub fn new(bound: LivenessBound) -> Liveness {
        Liveness {
            bound,
            max_height: 0,
            last: None,
            worst_rounds: 0,
            worst_ms: 0,
            commits_after_gst: 0,
            round_seen: (0, 0),
        }
    }

    /// Notes the highest honest round; fails if it stood still too long.
    fn progress(&mut self, ctx: &Ctx<'_>) -> Result<(), String> {
        if ctx.honest_round > self.round_seen.0 {
            self.round_seen = (ctx.honest_round, ctx.now);
            return Ok(());
        }
        let since = self.round_seen.1.max(ctx.gst).max(self.last.map_or(0, |(_, t)| t));
        let stalled = ctx.now.saturating_sub(since);
        if ctx.now >= ctx.gst && stalled > self.bound.stall_ms {
            return Err(format!(
                "round {} has lasted {stalled} ms after GST without a commit, the bound is {} ms",
                ctx.honest_round, self.bound.stall_ms
            ));
        }
        Ok(())
    }

    fn gap(&mut self, ctx: &Ctx<'_>) -> Result<(), String> {
        let (r0, t0) = *self.last.get_or_insert((ctx.honest_round, ctx.gst));
        let rounds = ctx.honest_round.saturating_sub(r0);
        self.worst_rounds = self.worst_rounds.max(rounds);
        self.worst_ms = self.worst_ms.max(ctx.now.saturating_sub(t0));
        if rounds > self.bound.rounds {
            return Err(format!(
                "no commit for {rounds} rounds after GST (rounds {r0} to {}), the bound is {}",
                ctx.honest_round, self.bound.rounds
            ));
        }
        Ok(())
    }
}

impl Checker for Liveness {
    fn name(&self) -> &'static str {
        "liveness"
    }

    fn on_send(
        &mut self,
        ctx: &Ctx<'_>,
        instance: usize,
        _msg: &phalanx_consensus::engine::ConsensusMsg,
    ) -> Result<(), String> {
        if ctx.honest[instance] { self.progress(ctx) } else { Ok(()) }
    }

    fn on_commit(&mut self, ctx: &Ctx<'_>, instance: usize, cb: &CertifiedBlock) -> Result<(), String> {
        if !ctx.honest[instance] || cb.block.height() <= self.max_height {
            return Ok(());
        }
        self.max_height = cb.block.height();
        if ctx.now < ctx.gst {
            return Ok(());
        }
        self.gap(ctx)?;
        self.commits_after_gst += 1;
        self.last = Some((ctx.honest_round, ctx.now));
        Ok(())
    }

    fn at_end(&mut self, ctx: &Ctx<'_>) -> Result<(), String> {
        self.gap(ctx)?;
        self.progress(ctx)
    }
}
