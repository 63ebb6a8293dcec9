//! Byzantine fault injection: a layer between the engine's actions and the
//! network.
//!
//! A node started with `--fault KIND` (or `[faults]` in `node.toml`) runs
//! the same honest engine as every other node; this layer rewrites what the
//! engine sends before it leaves the process, signing with the node's own
//! validator key where a fault needs a second, conflicting message. Keeping
//! misbehaviour out of the engines means the code that is tested for safety
//! is the code that runs, and a faulty node shows exactly what a Byzantine
//! validator could do with its key. The faults ([`Fault`]):
//!
//! | fault | what leaves the node |
//! | --- | --- |
//! | `equivocate` | as leader, the proposal goes to the first half of the other validators and a second block for the same round (same parent and payload, a different timestamp), also signed, to the rest |
//! | `double-vote` | each vote is followed by a second vote for a different block in the same round |
//! | `withhold` | no proposal, vote or timeout (the node stays connected and serves sync) |
//! | `bad-signature` | proposals, votes and timeouts with one bit of the signature flipped |
//! | `invalid-block` | as leader, proposals that are invalid, in turn: an undecodable transaction, a wrong parent, a forged QC; each is re-signed, so only its content is wrong |
//! | `stale-proposal` | as leader, a block on an old QC (one of its own earlier proposals' parents, or genesis), forking committed history |
//! | `delay=MS` | every consensus message, MS milliseconds late |
//! | `drop=P` | each consensus message lost with probability P |
//! | `amnesia` | nothing here: the node forgets its safety state when it starts (see `node.rs`) |
//! | `tx-flood=RATE` | nothing here: the node gossips RATE invalid transactions per second (see `node.rs`) |
//!
//! Every fault acts only once the node has committed `from_height`. The
//! Byzantine faults rewrite HotStuff messages; in Raft mode (crash faults
//! only) only `delay`, `drop`, `amnesia` and `tx-flood` act.

use phalanx_config::Fault;
use phalanx_consensus::engine::{ConsensusMsg, HotStuffMsg};
use phalanx_consensus::types::{Block, Certificate, Height, Proposal, QuorumCert, ValidatorId, ValidatorSet, Vote};
use phalanx_consensus::verify::genesis_qc;
use phalanx_crypto::{Domain, Hash, Keypair, Signature};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::VecDeque;
use std::time::Duration;
use tracing::warn;

/// The faults a node was told to inject, and from which height.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
    /// Faults act once the node has committed this height.
    pub from_height: Height,
}

impl FaultPlan {
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Whether `f` (compared by kind, ignoring its parameter) is planned.
    pub fn has(&self, f: Fault) -> bool {
        self.faults.iter().any(|g| std::mem::discriminant(g) == std::mem::discriminant(&f))
    }

    /// The `tx-flood` rate, if flooding is planned.
    pub fn tx_flood(&self) -> Option<u64> {
        self.faults.iter().find_map(|f| if let Fault::TxFlood(r) = f { Some(*r) } else { None })
    }

    /// The faults as written on the command line (for `status` and logs).
    pub fn names(&self) -> Vec<String> {
        self.faults.iter().map(|f| f.to_string()).collect()
    }
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Dest {
    One(ValidatorId),
    /// Every other validator.
    All,
}

/// A message as it actually leaves the node.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub dest: Dest,
    pub msg: ConsensusMsg,
    /// Send this much later.
    pub delay: Option<Duration>,
}

/// Own proposals remembered for `stale-proposal`.
const OWN_PROPOSALS_KEEP: usize = 8;

/// Rewrites a faulty node's outgoing consensus messages.
pub struct FaultLayer {
    plan: FaultPlan,
    key: Keypair,
    chain_id: String,
    /// The other validators, in validator-set order.
    others: Vec<ValidatorId>,
    genesis: Block,
    rng: StdRng,
    /// Which corruption `invalid-block` applies next.
    invalid_turn: u8,
    own_proposals: VecDeque<Block>,
}

impl FaultLayer {
    pub fn new(plan: FaultPlan, key: Keypair, chain_id: String, validators: &ValidatorSet, genesis: Block) -> Self {
        let me = key.public();
        let others = validators.iter().map(|v| v.id).filter(|id| *id != me).collect();
        FaultLayer {
            plan,
            key,
            chain_id,
            others,
            genesis,
            rng: StdRng::from_entropy(),
            invalid_turn: 0,
            own_proposals: VecDeque::new(),
        }
    }

    fn has(&self, f: Fault) -> bool {
        self.plan.has(f)
    }

    /// What leaves the node in place of `msg` to `dest`, once the node has
    /// committed `height`.
    pub fn outgoing(&mut self, dest: Dest, msg: ConsensusMsg, height: Height) -> Vec<Outgoing> {
        if height < self.plan.from_height {
            return vec![Outgoing { dest, msg, delay: None }];
        }
        let mut out = match msg {
            ConsensusMsg::HotStuff(m) => self.hotstuff(dest, m),
            other => vec![Outgoing { dest, msg: other, delay: None }],
        };
        for f in &self.plan.faults {
            match *f {
                Fault::Drop(p) => out.retain(|_| !self.rng.gen_bool(p)),
                Fault::Delay(ms) => out.iter_mut().for_each(|o| o.delay = Some(Duration::from_millis(ms))),
                _ => {}
            }
        }
        out
    }

    fn hotstuff(&mut self, dest: Dest, m: HotStuffMsg) -> Vec<Outgoing> {
        let send = |dest: Dest, m: HotStuffMsg| Outgoing { dest, msg: ConsensusMsg::HotStuff(m), delay: None };
        if self.has(Fault::Withhold) && !matches!(m, HotStuffMsg::SyncInfo(_)) {
            return vec![];
        }
        let mut out = match m {
            HotStuffMsg::Proposal(p) => self.proposal(dest, *p).into_iter().map(|(d, p)| send(d, p)).collect(),
            HotStuffMsg::Vote(v) if self.has(Fault::DoubleVote) => {
                let second = self.conflicting_vote(&v);
                warn!(round = v.data.round, "fault double-vote: signed a second vote for another block");
                vec![send(dest.clone(), HotStuffMsg::Vote(v)), send(dest, HotStuffMsg::Vote(second))]
            }
            other => vec![send(dest, other)],
        };
        if self.has(Fault::BadSignature) {
            for o in &mut out {
                if let ConsensusMsg::HotStuff(m) = &mut o.msg {
                    corrupt_signature(m);
                }
            }
        }
        out
    }

    /// A leader's proposal under `equivocate`, `invalid-block` and
    /// `stale-proposal`.
    fn proposal(&mut self, dest: Dest, p: Proposal) -> Vec<(Dest, HotStuffMsg)> {
        let round = p.block.round();
        self.own_proposals.push_back(p.block.clone());
        if self.own_proposals.len() > OWN_PROPOSALS_KEEP {
            self.own_proposals.pop_front();
        }
        let mut p = p;
        if self.has(Fault::StaleProposal) {
            p = self.stale(p);
            warn!(round, height = p.block.height(), "fault stale-proposal: proposing on an old QC");
        }
        if self.has(Fault::InvalidBlock) {
            let (block, what) = self.invalid(p.block);
            warn!(round, what, "fault invalid-block: proposing an invalid block");
            p.block = block;
        }
        if self.has(Fault::Equivocate) && dest == Dest::All && self.others.len() >= 2 {
            let mut header = p.block.header.clone();
            header.time_ms += 1;
            let twin = Proposal {
                block: Block::sign(header, p.block.justify.clone(), p.block.txs.clone(), &self.key),
                tc: p.tc.clone(),
            };
            warn!(round, a = %p.block.id(), b = %twin.block.id(), "fault equivocate: two proposals for one round");
            let half = self.others.len().div_ceil(2);
            let mut out = Vec::new();
            for (i, v) in self.others.iter().enumerate() {
                let which = if i < half { p.clone() } else { twin.clone() };
                out.push((Dest::One(*v), HotStuffMsg::Proposal(Box::new(which))));
            }
            return out;
        }
        vec![(dest, HotStuffMsg::Proposal(Box::new(p)))]
    }

    /// A block for the same round on an old QC: the QC of the oldest
    /// remembered own proposal (a sibling of that proposal, at its height),
    /// or genesis'. Its application claim is that proposal's (or genesis'),
    /// which is valid on that parent, so only its staleness is wrong.
    fn stale(&self, p: Proposal) -> Proposal {
        let old = self.own_proposals.front().filter(|b| b.height() + 2 < p.block.height());
        let (qc, claim) = match old.and_then(|b| b.justify.as_quorum().map(|qc| (qc.clone(), &b.header))) {
            Some((qc, h)) => (qc, (h.app_height, h.app_hash)),
            None => (genesis_qc(&self.genesis), (self.genesis.header.app_height, self.genesis.header.app_hash)),
        };
        let mut header = p.block.header.clone();
        header.parent = qc.block_id();
        header.parent_round = qc.round();
        header.height = qc.height() + 1;
        (header.app_height, header.app_hash) = claim;
        let block = Block::sign(header, Certificate::Quorum(qc), p.block.txs, &self.key);
        Proposal { block, tc: p.tc }
    }

    /// The next invalid variant of `block`, re-signed, and what is wrong with it.
    fn invalid(&mut self, block: Block) -> (Block, &'static str) {
        self.invalid_turn = (self.invalid_turn + 1) % 3;
        let Block { mut header, mut justify, mut txs, .. } = block;
        let what = match self.invalid_turn {
            0 => {
                txs.push(bytes::Bytes::from_static(b"phalanx fault: not a transaction"));
                header.payload_root = phalanx_consensus::types::payload_root(&txs);
                "an undecodable transaction"
            }
            1 => {
                header.parent = Hash::digest(b"phalanx fault: no such parent");
                "a wrong parent"
            }
            _ => {
                if let Certificate::Quorum(QuorumCert { signatures, .. }) = &mut justify {
                    match signatures.first_mut() {
                        Some(s) => flip(s),
                        None => signatures.push(Signature([7; 64])),
                    }
                }
                "a forged QC"
            }
        };
        (Block::sign(header, justify, txs, &self.key), what)
    }

    /// A vote in the same round for a block that is not `v`'s.
    fn conflicting_vote(&self, v: &Vote) -> Vote {
        let mut data = v.data;
        let mut h = phalanx_crypto::Hasher::with_domain(b"phalanx/fault/double-vote\0");
        h.update(v.data.block_id.as_bytes());
        data.block_id = h.finish();
        Vote { data, author: v.author, signature: self.key.sign(Domain::Vote, &self.chain_id, &data.signing_body()) }
    }
}

fn flip(s: &mut Signature) {
    s.0[0] ^= 0x01;
}

fn corrupt_signature(m: &mut HotStuffMsg) {
    match m {
        HotStuffMsg::Proposal(p) => flip(&mut p.block.signature),
        HotStuffMsg::Vote(v) => flip(&mut v.signature),
        HotStuffMsg::Timeout(t) => flip(&mut t.signature),
        HotStuffMsg::SyncInfo(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_consensus::types::{BlockHeader, Certificate, VoteData, payload_root};
    use phalanx_consensus::verify::Verifier;

    const CHAIN: &str = "faults";

    struct Setup {
        keys: Vec<Keypair>,
        set: ValidatorSet,
        genesis: Block,
    }

    fn setup() -> Setup {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let set = ValidatorSet::equal(&keys.iter().map(|k| k.public()).collect::<Vec<_>>());
        let genesis = Block::genesis(CHAIN, 0, Hash::ZERO, keys[0].public());
        Setup { keys, set, genesis }
    }

    fn layer(s: &Setup, faults: &[&str]) -> FaultLayer {
        let plan = FaultPlan { faults: phalanx_config::parse_faults(faults).unwrap(), from_height: 0 };
        FaultLayer::new(plan, s.keys[1].clone(), CHAIN.into(), &s.set, s.genesis.clone())
    }

    /// Validator 1's proposal for round 1 on genesis.
    fn proposal(s: &Setup) -> Proposal {
        let txs = vec![bytes::Bytes::from_static(b"tx")];
        let header = BlockHeader {
            chain_id: CHAIN.into(),
            height: 1,
            round: 1,
            parent: s.genesis.id(),
            parent_round: 0,
            payload_root: payload_root(&txs),
            app_height: 0,
            app_hash: Hash::ZERO,
            proposer: s.keys[1].public(),
            time_ms: 5,
        };
        let block = Block::sign(header, Certificate::Quorum(genesis_qc(&s.genesis)), txs, &s.keys[1]);
        Proposal { block, tc: None }
    }

    fn verifier(s: &Setup) -> Verifier {
        Verifier::new(CHAIN.into(), s.set.clone(), genesis_qc(&s.genesis))
    }

    fn proposals(out: &[Outgoing]) -> Vec<(Dest, Proposal)> {
        out.iter()
            .map(|o| match &o.msg {
                ConsensusMsg::HotStuff(HotStuffMsg::Proposal(p)) => (o.dest.clone(), (**p).clone()),
                m => panic!("not a proposal: {m:?}"),
            })
            .collect()
    }

    fn send_proposal(l: &mut FaultLayer, p: &Proposal) -> Vec<Outgoing> {
        l.outgoing(Dest::All, ConsensusMsg::HotStuff(HotStuffMsg::Proposal(Box::new(p.clone()))), 0)
    }

    #[test]
    fn equivocate_sends_two_valid_blocks_to_disjoint_halves() {
        let s = setup();
        let p = proposal(&s);
        let out = proposals(&send_proposal(&mut layer(&s, &["equivocate"]), &p));
        assert_eq!(out.len(), 3, "one message per other validator");
        let others: Vec<ValidatorId> = [0, 2, 3].iter().map(|&i| s.keys[i].public()).collect();
        assert_eq!(
            out.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
            others.iter().map(|v| Dest::One(*v)).collect::<Vec<_>>()
        );
        assert_eq!(out[0].1, p);
        assert_eq!(out[1].1, p);
        let twin = &out[2].1;
        assert_ne!(twin.block.id(), p.block.id());
        assert_eq!(twin.block.round(), p.block.round());
        let mut v = verifier(&s);
        assert!(v.verify_proposal(twin.clone()).is_ok(), "the twin is a valid proposal");
    }

    #[test]
    fn double_vote_adds_a_validly_signed_vote_for_another_block() {
        let s = setup();
        let data = VoteData::for_block(&proposal(&s).block);
        let vote = Vote {
            data,
            author: s.keys[1].public(),
            signature: s.keys[1].sign(Domain::Vote, CHAIN, &data.signing_body()),
        };
        let to = Dest::One(s.keys[2].public());
        let out = layer(&s, &["double-vote"]).outgoing(
            to.clone(),
            ConsensusMsg::HotStuff(HotStuffMsg::Vote(vote.clone())),
            0,
        );
        assert_eq!(out.len(), 2);
        let ConsensusMsg::HotStuff(HotStuffMsg::Vote(second)) = &out[1].msg else { panic!() };
        assert_eq!(out[1].dest, to);
        assert_eq!(second.data.round, vote.data.round);
        assert_ne!(second.data.block_id, vote.data.block_id);
        assert!(verifier(&s).verify_vote(second.clone()).is_ok());
    }

    #[test]
    fn withhold_sends_no_proposal_vote_or_timeout() {
        let s = setup();
        let out = send_proposal(&mut layer(&s, &["withhold"]), &proposal(&s));
        assert!(out.is_empty());
    }

    #[test]
    fn bad_signature_breaks_every_signature_it_sends() {
        let s = setup();
        let out = proposals(&send_proposal(&mut layer(&s, &["bad-signature"]), &proposal(&s)));
        assert!(!out[0].1.block.verify_signature());
    }

    #[test]
    fn invalid_block_cycles_through_three_rejected_variants() {
        let s = setup();
        let mut l = layer(&s, &["invalid-block"]);
        let p = proposal(&s);
        let mut v = verifier(&s);
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let (_, bad) = proposals(&send_proposal(&mut l, &p)).remove(0);
            assert!(bad.block.verify_signature(), "re-signed: only the content is wrong");
            match v.verify_proposal(bad.clone()) {
                Err(e) => kinds.push(e.to_string()),
                // An undecodable transaction passes the consensus checks; the
                // application's payload check refuses it.
                Ok(_) => {
                    assert_eq!(bad.block.txs.len(), 2);
                    kinds.push("payload".into());
                }
            }
        }
        assert_eq!(kinds.len(), 3);
        assert!(kinds.iter().any(|k| k == "payload"), "{kinds:?}");
    }

    #[test]
    fn stale_proposal_builds_on_an_older_qc() {
        let s = setup();
        let mut l = layer(&s, &["stale-proposal"]);
        let mut p = proposal(&s);
        p.block.header.height = 9;
        p.block.header.round = 9;
        let (_, stale) = proposals(&send_proposal(&mut l, &p)).remove(0);
        assert_eq!(stale.block.height(), 1, "on genesis' QC");
        assert_eq!(stale.block.round(), 9);
        assert!(stale.block.verify_signature());
    }

    #[test]
    fn drop_everything_and_delay() {
        let s = setup();
        assert!(send_proposal(&mut layer(&s, &["drop=1"]), &proposal(&s)).is_empty());
        let out = send_proposal(&mut layer(&s, &["delay=250"]), &proposal(&s));
        assert_eq!(out[0].delay, Some(Duration::from_millis(250)));
    }

    #[test]
    fn faults_wait_for_their_height() {
        let s = setup();
        let plan = FaultPlan { faults: vec![Fault::Withhold], from_height: 10 };
        let mut l = FaultLayer::new(plan, s.keys[1].clone(), CHAIN.into(), &s.set, s.genesis.clone());
        let msg = ConsensusMsg::HotStuff(HotStuffMsg::Proposal(Box::new(proposal(&s))));
        assert_eq!(l.outgoing(Dest::All, msg.clone(), 9).len(), 1);
        assert!(l.outgoing(Dest::All, msg, 10).is_empty());
    }
}
