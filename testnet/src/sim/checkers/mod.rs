//! Invariant checkers, one per file, each watching every commit and every
//! message an instance sends. A checker returns `Err(detail)` the moment its
//! invariant breaks; the simulation records the step and stops.
//!
//! Only honest instances are judged: Byzantine validators (Twins copies and
//! message-layer adversaries) may do anything.

mod agreement;
mod double_sign;
mod election_safety;
mod integrity;
mod liveness;
mod validity;

pub use agreement::Agreement;
pub use double_sign::NoDoubleSigning;
pub use election_safety::ElectionSafety;
pub use integrity::ChainIntegrity;
pub use liveness::{Liveness, LivenessBound};
pub use validity::Validity;

use phalanx_consensus::engine::ConsensusMsg;
use phalanx_consensus::types::{Block, CertifiedBlock, Millis, Round, Tx, ValidatorId, ValidatorSet};
use std::collections::BTreeSet;

/// What checkers may look at.
pub struct Ctx<'a> {
    pub now: Millis,
    pub gst: Millis,
    /// Per instance: is it an honest validator?
    pub honest: &'a [bool],
    /// Per instance: the validator it runs as.
    pub ids: &'a [ValidatorId],
    pub validators: &'a ValidatorSet,
    pub genesis: &'a Block,
    pub submitted: &'a BTreeSet<Tx>,
    /// The highest round any running honest instance is in.
    pub honest_round: Round,
}

/// One invariant.
pub trait Checker: Send {
    /// The property, as the checker's doc line states it.
    fn name(&self) -> &'static str;
    /// `instance` is about to send `msg`.
    fn on_send(&mut self, _ctx: &Ctx<'_>, _instance: usize, _msg: &ConsensusMsg) -> Result<(), String> {
        Ok(())
    }
    /// `instance` committed `cb`.
    fn on_commit(&mut self, _ctx: &Ctx<'_>, _instance: usize, _cb: &CertifiedBlock) -> Result<(), String> {
        Ok(())
    }
    /// The run ended.
    fn at_end(&mut self, _ctx: &Ctx<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The standard set for a run.
pub fn standard(
    liveness: LivenessBound,
    chain_id: &str,
    validators: &ValidatorSet,
    genesis: &Block,
) -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(Agreement::default()),
        Box::new(ChainIntegrity::new(chain_id, validators, genesis)),
        Box::new(NoDoubleSigning::default()),
        Box::new(ElectionSafety::default()),
        Box::new(Validity::default()),
        Box::new(Liveness::new(liveness)),
    ]
}
