//! Validity: every committed transaction was submitted by a client, and no
//! transaction is committed twice (Raft configuration entries, which
//! operators ask for, are not client transactions).

use super::{Checker, Ctx};
use phalanx_consensus::types::{CertifiedBlock, Height, Tx};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct Validity {
    heights: BTreeSet<Height>,
    /// Each committed transaction and the height that committed it.
    committed: BTreeMap<Tx, Height>,
}

impl Checker for Validity {
    fn name(&self) -> &'static str {
        "validity"
    }

    fn on_commit(&mut self, ctx: &Ctx<'_>, instance: usize, cb: &CertifiedBlock) -> Result<(), String> {
        if !ctx.honest[instance] || !self.heights.insert(cb.block.height()) {
            return Ok(());
        }
        for tx in &cb.block.txs {
            // Raft configuration entries come from operators, not clients,
            // and the same configuration may be set again later.
            if phalanx_consensus::raft::is_config_tx(tx) {
                continue;
            }
            if !ctx.submitted.contains(tx) {
                return Err(format!("height {} commits a transaction no client submitted", cb.block.height()));
            }
            if let Some(first) = self.committed.insert(tx.clone(), cb.block.height()) {
                return Err(format!(
                    "height {} commits transaction {:?} a second time (first at height {first})",
                    cb.block.height(),
                    String::from_utf8_lossy(tx)
                ));
            }
        }
        Ok(())
    }
}
