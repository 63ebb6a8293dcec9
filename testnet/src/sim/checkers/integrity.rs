//! Chain integrity: every honest validator's committed chain grows one
//! height at a time from genesis, each block extending the previous, and
//! every committed block is certified by a valid quorum of the validator set.

use super::{Checker, Ctx};
use phalanx_consensus::types::{Block, BlockId, Certificate, CertifiedBlock, Height, ValidatorSet};
use phalanx_consensus::verify::{Verifier, genesis_qc};
use std::collections::{BTreeMap, BTreeSet};

pub struct ChainIntegrity {
    verifier: Verifier,
    /// Per instance: the last committed (height, id).
    tips: BTreeMap<usize, (Height, BlockId)>,
    genesis: (Height, BlockId),
    certified: BTreeSet<BlockId>,
}

impl ChainIntegrity {
    pub fn new(chain_id: &str, validators: &ValidatorSet, genesis: &Block) -> ChainIntegrity {
        ChainIntegrity {
            verifier: Verifier::new(chain_id.to_owned(), validators.clone(), genesis_qc(genesis)),
            tips: BTreeMap::new(),
            genesis: (0, genesis.id()),
            certified: BTreeSet::new(),
        }
    }

    fn check_cert(&mut self, cb: &CertifiedBlock) -> Result<(), String> {
        let id = cb.block.id();
        if self.certified.contains(&id) {
            return Ok(());
        }
        let qc = match &cb.cert {
            Certificate::Quorum(qc) => qc,
            Certificate::Raft { term, index } => {
                // Raft commits by a majority of crash-fault members: nothing
                // to verify but that the certificate names this entry.
                if (*term, *index) != (cb.block.round(), cb.block.height()) {
                    return Err(format!(
                        "height {}: raft certificate names entry {index} of term {term}, not this block",
                        cb.block.height()
                    ));
                }
                self.certified.insert(id);
                return Ok(());
            }
            Certificate::Genesis => {
                return Err(format!("height {} committed with a genesis certificate", cb.block.height()));
            }
        };
        if qc.block_id() != id {
            return Err(format!("height {}: its certificate is for another block", cb.block.height()));
        }
        self.verifier.verify_qc(qc).map_err(|e| format!("height {}: invalid certificate: {e}", cb.block.height()))?;
        self.certified.insert(id);
        Ok(())
    }
}

impl Checker for ChainIntegrity {
    fn name(&self) -> &'static str {
        "chain integrity"
    }

    fn on_commit(&mut self, ctx: &Ctx<'_>, instance: usize, cb: &CertifiedBlock) -> Result<(), String> {
        if !ctx.honest[instance] {
            return Ok(());
        }
        let (h, id) = (cb.block.height(), cb.block.id());
        let (th, tid) = *self.tips.get(&instance).unwrap_or(&self.genesis);
        if h <= th {
            // A restarted instance may replay commits it already made.
            return Ok(());
        }
        if h != th + 1 || cb.block.parent() != tid {
            return Err(format!(
                "instance {instance} committed height {h} on top of height {th} ({}), not extending it",
                tid.short()
            ));
        }
        self.check_cert(cb)?;
        self.tips.insert(instance, (h, id));
        Ok(())
    }
}
