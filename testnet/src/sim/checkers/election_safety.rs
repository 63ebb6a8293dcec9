//! Election safety (Raft, Figure 3): at most one leader is elected in a
//! term, across any number of crashes and restarts. A node acts as leader
//! of a term when it sends appends or heartbeats of that term.

use super::{Checker, Ctx};
use phalanx_consensus::engine::ConsensusMsg;
use phalanx_consensus::raft::{RaftMsg, Term};
use phalanx_consensus::types::ValidatorId;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<Term, (ValidatorId, usize)>,
}

impl Checker for ElectionSafety {
    fn name(&self) -> &'static str {
        "election safety"
    }

    fn on_send(&mut self, ctx: &Ctx<'_>, instance: usize, msg: &ConsensusMsg) -> Result<(), String> {
        if !ctx.honest[instance] {
            return Ok(());
        }
        let term = match msg {
            ConsensusMsg::Raft(RaftMsg::Append { term, .. } | RaftMsg::Heartbeat { term, .. }) => *term,
            _ => return Ok(()),
        };
        let me = ctx.ids[instance];
        match self.leaders.get(&term) {
            Some((leader, first)) if *leader != me => Err(format!(
                "two leaders in term {term}: instance {first} ({}) and instance {instance} ({})",
                leader.short(),
                me.short()
            )),
            Some(_) => Ok(()),
            None => {
                self.leaders.insert(term, (me, instance));
                Ok(())
            }
        }
    }
}
