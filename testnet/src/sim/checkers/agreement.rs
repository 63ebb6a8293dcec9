//! Agreement: no two honest validators commit different blocks at one height.

use super::{Checker, Ctx};
use phalanx_consensus::types::{BlockId, CertifiedBlock, Height};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Agreement {
    /// The block first committed at each height, and by which instance.
    first: BTreeMap<Height, (BlockId, usize)>,
}

impl Checker for Agreement {
    fn name(&self) -> &'static str {
        "agreement"
    }

    fn on_commit(&mut self, ctx: &Ctx<'_>, instance: usize, cb: &CertifiedBlock) -> Result<(), String> {
        if !ctx.honest[instance] {
            return Ok(());
        }
        let (h, id) = (cb.block.height(), cb.block.id());
        match self.first.get(&h) {
            Some((other, by)) if *other != id => Err(format!(
                "instance {instance} committed {} at height {h}, instance {by} committed {}",
                id.short(),
                other.short()
            )),
            Some(_) => Ok(()),
            None => {
                self.first.insert(h, (id, instance));
                Ok(())
            }
        }
    }
}
