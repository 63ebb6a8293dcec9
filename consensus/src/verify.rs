//! Unverified wire messages become verified ones here, and only here.
//!
//! Handlers in the engines take [`Verified<T>`], which only this module can
//! construct, so an unchecked vote or certificate cannot be counted by
//! mistake. Checks are those of PROTOCOLS.md, "Verification of a QC/TC":
//! signers are distinct members of the validator set, their power is a
//! quorum, and every signature is valid over the canonical message (batch
//! verification, falling back to single checks to name the bad one).
//!
//! Certificates that verified once are remembered by digest (a bounded
//! cache), because the same QC arrives in many messages.

use crate::types::{
    Block, BlockId, Certificate, Proposal, QuorumCert, Round, SignerBitmap, Timeout, TimeoutCert, TimeoutData,
    ValidatorId, ValidatorSet, Vote, VoteData,
};
use phalanx_crypto::{Domain, Hash, PreparedKey, Signature, signing_message, verify_batch_prepared};
use std::collections::HashSet;
use std::ops::Deref;

/// A message whose signatures and certificates have been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
    /// Wraps a value this node produced itself (its own signed messages).
    pub(crate) fn own(value: T) -> Verified<T> {
        Verified(value)
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why a message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("message for chain {got:?}, this chain is {want:?}")]
    WrongChain { got: String, want: String },
    #[error("{0} is not a validator")]
    NotAValidator(ValidatorId),
    #[error("bad signature by {0}")]
    BadSignature(ValidatorId),
    #[error("signer bitmap names position {0}, beyond the validator set")]
    SignerOutOfRange(usize),
    #[error("{signers} signers but {signatures} signatures")]
    SignatureCountMismatch { signers: usize, signatures: usize },
    #[error("signers hold {power} voting power, a quorum needs {quorum}")]
    NoQuorum { power: u64, quorum: u64 },
    #[error("round-0 certificate that is not the genesis certificate")]
    BadGenesisCert,
    #[error("timeout certificate's high QC is for round {qc}, its signers reported at most {reported}")]
    TcHighQcMismatch { qc: Round, reported: Round },
    #[error("certificate for round {qc} is not below round {round}")]
    CertNotBelowRound { qc: Round, round: Round },
    #[error("proposal by {got}, the leader of round {round} is {want}")]
    WrongProposer { round: Round, got: ValidatorId, want: ValidatorId },
    #[error("block's justify does not certify its parent")]
    JustifyMismatch,
    #[error("block {0} carries no quorum certificate")]
    MissingJustify(BlockId),
    #[error("round {round} is neither QC round {qc} + 1 nor reached through a TC")]
    RoundNotJustified { round: Round, qc: Round },
    #[error("payload_root does not match the block's transactions")]
    PayloadMismatch,
}

const CACHE_MAX: usize = 4096;

/// Verifies messages against one chain's validator set.
pub struct Verifier {
    chain_id: String,
    validators: ValidatorSet,
    /// Each validator's key, decompressed once, by position.
    keys: Vec<PreparedKey>,
    genesis_qc: QuorumCert,
    verified: HashSet<Hash>,
}

impl Verifier {
    pub fn new(chain_id: String, validators: ValidatorSet, genesis_qc: QuorumCert) -> Verifier {
        let keys = validators.iter().map(|v| PreparedKey::new(&v.id).expect("validator keys are valid")).collect();
        Verifier { chain_id, validators, keys, genesis_qc, verified: HashSet::new() }
    }

    /// The prepared key of a validator.
    fn key_of(&self, id: &ValidatorId) -> Result<&PreparedKey, VerifyError> {
        self.validators.position(id).map(|p| &self.keys[p]).ok_or(VerifyError::NotAValidator(*id))
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn remember(&mut self, digest: Hash) {
        if self.verified.len() >= CACHE_MAX {
            self.verified.clear();
        }
        self.verified.insert(digest);
    }

    /// The signers named by a bitmap, checked against the set, with their
    /// total power.
    fn signers(&self, bitmap: &SignerBitmap, signatures: usize) -> Result<Vec<usize>, VerifyError> {
        let n = self.validators.len();
        if bitmap.byte_len() > n.div_ceil(8) {
            return Err(VerifyError::SignerOutOfRange(bitmap.byte_len() * 8));
        }
        let mut keys = Vec::new();
        let mut power = 0;
        for pos in bitmap.iter() {
            let v = self.validators.get(pos).ok_or(VerifyError::SignerOutOfRange(pos))?;
            keys.push(pos);
            power += v.power;
        }
        if keys.len() != signatures {
            return Err(VerifyError::SignatureCountMismatch { signers: keys.len(), signatures });
        }
        let quorum = self.validators.quorum_power();
        if power < quorum {
            return Err(VerifyError::NoQuorum { power, quorum });
        }
        Ok(keys)
    }

    fn batch(&self, msgs: &[Vec<u8>], sigs: &[Signature], positions: &[usize]) -> Result<(), VerifyError> {
        let items: Vec<(&[u8], &Signature, &PreparedKey)> =
            msgs.iter().zip(sigs).zip(positions).map(|((m, s), &p)| (m.as_slice(), s, &self.keys[p])).collect();
        verify_batch_prepared(&items).map_err(|e| {
            let index = match e {
                phalanx_crypto::CryptoError::BadSignatureInBatch { index } => index,
                _ => 0,
            };
            VerifyError::BadSignature(*self.keys[positions[index]].public())
        })
    }

    /// Checks a quorum certificate.
    pub fn verify_qc(&mut self, qc: &QuorumCert) -> Result<(), VerifyError> {
        if qc.round() == 0 {
            return if *qc == self.genesis_qc { Ok(()) } else { Err(VerifyError::BadGenesisCert) };
        }
        let digest = qc.digest();
        if self.verified.contains(&digest) {
            return Ok(());
        }
        let keys = self.signers(&qc.signers, qc.signatures.len())?;
        let msg = signing_message(Domain::Vote, &self.chain_id, &qc.vote.signing_body());
        let msgs = vec![msg; keys.len()];
        self.batch(&msgs, &qc.signatures, &keys)?;
        self.remember(digest);
        Ok(())
    }

    /// Checks a timeout certificate, including its high QC. Remembered by
    /// digest: every timeout carries its sender's last TC.
    pub fn verify_tc(&mut self, tc: &TimeoutCert) -> Result<(), VerifyError> {
        let digest = Hash::digest(&phalanx_crypto::codec::encode(tc));
        if self.verified.contains(&digest) {
            return Ok(());
        }
        self.verify_tc_uncached(tc)?;
        self.remember(digest);
        Ok(())
    }

    fn verify_tc_uncached(&mut self, tc: &TimeoutCert) -> Result<(), VerifyError> {
        if tc.high_qc_rounds.len() != tc.signatures.len() {
            return Err(VerifyError::SignatureCountMismatch {
                signers: tc.high_qc_rounds.len(),
                signatures: tc.signatures.len(),
            });
        }
        let reported = tc.highest_hqc_round();
        if tc.high_qc.round() != reported {
            return Err(VerifyError::TcHighQcMismatch { qc: tc.high_qc.round(), reported });
        }
        if reported >= tc.round {
            return Err(VerifyError::CertNotBelowRound { qc: reported, round: tc.round });
        }
        self.verify_qc(&tc.high_qc)?;
        let keys = self.signers(&tc.signers, tc.signatures.len())?;
        let msgs: Vec<Vec<u8>> = tc
            .high_qc_rounds
            .iter()
            .map(|&r| {
                let body = TimeoutData { round: tc.round, high_qc_round: r }.signing_body();
                signing_message(Domain::Timeout, &self.chain_id, &body)
            })
            .collect();
        self.batch(&msgs, &tc.signatures, &keys)
    }

    /// Checks a vote's author and signature.
    pub fn verify_vote(&self, vote: Vote) -> Result<Verified<Vote>, VerifyError> {
        self.key_of(&vote.author)?
            .verify(Domain::Vote, &self.chain_id, &vote.data.signing_body(), &vote.signature)
            .map_err(|_| VerifyError::BadSignature(vote.author))?;
        Ok(Verified(vote))
    }

    /// Checks a timeout's author, signature, high QC and attached TC.
    pub fn verify_timeout(&mut self, t: Timeout) -> Result<Verified<Timeout>, VerifyError> {
        let key = self.key_of(&t.author)?.clone();
        if t.high_qc.round() >= t.round {
            return Err(VerifyError::CertNotBelowRound { qc: t.high_qc.round(), round: t.round });
        }
        let body = TimeoutData { round: t.round, high_qc_round: t.high_qc.round() }.signing_body();
        key.verify(Domain::Timeout, &self.chain_id, &body, &t.signature)
            .map_err(|_| VerifyError::BadSignature(t.author))?;
        self.verify_qc(&t.high_qc)?;
        if let Some(tc) = &t.last_tc {
            self.verify_tc(tc)?;
        }
        Ok(Verified(t))
    }

    /// Checks a block's chain id, proposer signature, that its transactions
    /// match its `payload_root`, and its justify QC (which must certify the
    /// block's parent). Does not check the proposer is the round's leader:
    /// see [`Verifier::verify_proposal`].
    pub fn verify_block(&mut self, block: &Block) -> Result<(), VerifyError> {
        let h = &block.header;
        if h.chain_id != self.chain_id {
            return Err(VerifyError::WrongChain { got: h.chain_id.clone(), want: self.chain_id.clone() });
        }
        self.key_of(&h.proposer)?
            .verify(Domain::Proposal, &h.chain_id, block.id().as_bytes(), &block.signature)
            .map_err(|_| VerifyError::BadSignature(h.proposer))?;
        // The id (and so every signature and certificate) covers the header
        // only; the transactions are bound to it through payload_root.
        if h.payload_root != block.computed_payload_root() {
            return Err(VerifyError::PayloadMismatch);
        }
        let qc = justify_qc(block)?;
        if qc.block_id() != h.parent
            || qc.round() != h.parent_round
            || qc.height() + 1 != h.height
            || qc.round() >= h.round
        {
            return Err(VerifyError::JustifyMismatch);
        }
        self.verify_qc(qc)
    }

    /// Checks a proposal: its block (see [`Verifier::verify_block`]), and
    /// that its round follows its QC's round or a valid TC for the round
    /// before. Whether its proposer leads the round depends on the chain it
    /// extends (leader reputation), so the engine checks that once it holds
    /// the parent.
    pub fn verify_proposal(&mut self, p: Proposal) -> Result<Verified<Proposal>, VerifyError> {
        let round = p.block.round();
        self.verify_block(&p.block)?;
        let qc_round = p.block.header.parent_round;
        if let Some(tc) = &p.tc {
            if tc.round >= round {
                return Err(VerifyError::CertNotBelowRound { qc: tc.round, round });
            }
            self.verify_tc(tc)?;
        }
        let via_qc = qc_round + 1 == round;
        let via_tc = p.tc.as_ref().is_some_and(|tc| tc.round + 1 == round);
        if !via_qc && !via_tc {
            return Err(VerifyError::RoundNotJustified { round, qc: qc_round });
        }
        Ok(Verified(p))
    }
}

/// The QC in a block's `justify`.
pub fn justify_qc(block: &Block) -> Result<&QuorumCert, VerifyError> {
    match &block.justify {
        Certificate::Quorum(qc) => Ok(qc),
        _ => Err(VerifyError::MissingJustify(block.id())),
    }
}

/// The genesis QC: round 0, certifying the genesis block, no signatures.
pub fn genesis_qc(genesis: &Block) -> QuorumCert {
    QuorumCert { vote: VoteData::for_block(genesis), signers: SignerBitmap::default(), signatures: Vec::new() }
}
