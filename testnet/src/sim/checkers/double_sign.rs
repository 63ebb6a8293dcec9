//! No double-signing: an honest validator never signs two different votes,
//! or two different proposals, for one round, across any number of crashes
//! and restarts.

use super::{Checker, Ctx};
use phalanx_consensus::engine::{ConsensusMsg, HotStuffMsg};
use phalanx_consensus::types::{BlockId, Round, ValidatorId};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct NoDoubleSigning {
    /// (signer, round, "vote" | "proposal") -> what it signed.
    signed: BTreeMap<(ValidatorId, Round, &'static str), BlockId>,
}

impl NoDoubleSigning {
    fn record(&mut self, who: ValidatorId, round: Round, kind: &'static str, id: BlockId) -> Result<(), String> {
        match self.signed.insert((who, round, kind), id) {
            Some(prev) if prev != id => Err(format!(
                "validator {} signed two {kind}s in round {round}: {} and {}",
                who.short(),
                prev.short(),
                id.short()
            )),
            _ => Ok(()),
        }
    }
}

impl Checker for NoDoubleSigning {
    fn name(&self) -> &'static str {
        "no double-signing"
    }

    fn on_send(&mut self, ctx: &Ctx<'_>, instance: usize, msg: &ConsensusMsg) -> Result<(), String> {
        if !ctx.honest[instance] {
            return Ok(());
        }
        match msg {
            ConsensusMsg::HotStuff(HotStuffMsg::Vote(v)) => {
                self.record(v.author, v.data.round, "vote", v.data.block_id)
            }
            ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p)) => {
                self.record(p.block.header.proposer, p.block.round(), "proposal", p.block.id())
            }
            _ => Ok(()),
        }
    }
}
