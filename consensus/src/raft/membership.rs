//! Cluster membership: voters, learners, and joint consensus.
//!
//! A configuration is carried by a log entry of its own (a block whose only
//! transaction is [`CONFIG_TX_PREFIX`] followed by the encoded
//! [`Membership`]) and takes effect on every server as soon as the entry is
//! in its log, committed or not (dissertation §4.1; paper §6). When a
//! suffix of the log is truncated, the configurations in it are dropped
//! with it.
//!
//! Voter changes go through a joint configuration (paper §6, dissertation
//! §4.3): `C_old,new` has `voters` = the new voters and `outgoing` = the old
//! ones, and every decision (election, commitment, check-quorum, read
//! index) needs a majority of *each*. Once `C_old,new` commits, the leader
//! appends `C_new`. Learners receive the log but never vote and never count
//! toward a majority (etcd's learners; dissertation §4.2.1 "catching up new
//! servers"), so adding or removing one is a single configuration entry.
//!
//! One change at a time: a change is refused while a configuration entry is
//! uncommitted or the configuration is joint.

use super::log::Index;
use crate::types::{Tx, ValidatorId, ValidatorSet};
use bytes::Bytes;
use phalanx_crypto::{PublicKey, codec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The first bytes of a configuration entry's transaction. Client
/// transactions beginning with these bytes are refused by the mempool.
pub const CONFIG_TX_PREFIX: &[u8] = b"\0phalanx/raft-config/v1\0";

/// How to reach a member that was added after genesis (genesis members are
/// found through the genesis file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddr {
    /// The member's network (libp2p) public key.
    pub node_key: PublicKey,
    /// Its peer-to-peer listen address, `IP:port`.
    pub p2p_addr: String,
}

/// A Raft configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters (the new voters while joint).
    pub voters: BTreeSet<ValidatorId>,
    /// While joint: the old voters. Empty otherwise.
    pub outgoing: BTreeSet<ValidatorId>,
    /// Members that receive the log but do not vote.
    pub learners: BTreeSet<ValidatorId>,
    /// Network identities of members added after genesis.
    pub directory: BTreeMap<ValidatorId, MemberAddr>,
}

/// A change an operator asks for (`phalanx admin`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a non-voting member that receives the log.
    AddLearner { id: ValidatorId, addr: MemberAddr },
    /// Make a learner a voter (through a joint configuration).
    Promote { id: ValidatorId },
    /// Remove a voter (through a joint configuration) or a learner.
    Remove { id: ValidatorId },
}

impl MembershipChange {
    /// The member the change is about.
    pub fn member(&self) -> ValidatorId {
        match self {
            MembershipChange::AddLearner { id, .. }
            | MembershipChange::Promote { id }
            | MembershipChange::Remove { id } => *id,
        }
    }
}

impl Membership {
    /// Every genesis validator a voter.
    pub fn from_genesis(validators: &ValidatorSet) -> Membership {
        Membership { voters: validators.iter().map(|v| v.id).collect(), ..Membership::default() }
    }

    /// Is this a joint configuration?
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Does `v` vote (in either half of a joint configuration)?
    pub fn is_voter(&self, v: &ValidatorId) -> bool {
        self.voters.contains(v) || self.outgoing.contains(v)
    }

    /// Is `v` a voter or a learner?
    pub fn contains(&self, v: &ValidatorId) -> bool {
        self.is_voter(v) || self.learners.contains(v)
    }

    /// Every member: voters of both halves and learners.
    pub fn all(&self) -> BTreeSet<ValidatorId> {
        self.voters.iter().chain(&self.outgoing).chain(&self.learners).copied().collect()
    }

    /// Do `granted` include a majority of the voters, and, while joint, a
    /// majority of the outgoing voters too?
    pub fn has_quorum(&self, granted: &BTreeSet<ValidatorId>) -> bool {
        let majority = |group: &BTreeSet<ValidatorId>| {
            group.is_empty() || group.iter().filter(|v| granted.contains(v)).count() > group.len() / 2
        };
        !self.voters.is_empty() && majority(&self.voters) && majority(&self.outgoing)
    }

    /// The highest index stored by a majority of the voters (and of the
    /// outgoing voters while joint), given each voter's match index.
    pub fn quorum_index(&self, matched: impl Fn(&ValidatorId) -> Index) -> Index {
        let group_index = |group: &BTreeSet<ValidatorId>| {
            if group.is_empty() {
                return Index::MAX;
            }
            let mut m: Vec<Index> = group.iter().map(&matched).collect();
            m.sort_unstable_by(|a, b| b.cmp(a));
            m[group.len() / 2]
        };
        if self.voters.is_empty() {
            return 0;
        }
        group_index(&self.voters).min(group_index(&self.outgoing))
    }

    /// The configuration `change` leads to: a joint one for voter changes,
    /// the final one for learner changes. Refuses changes that make no
    /// sense, naming why.
    pub fn apply(&self, change: &MembershipChange) -> Result<Membership, String> {
        if self.is_joint() {
            return Err("a membership change is in progress (the configuration is joint)".into());
        }
        let mut next = self.clone();
        match change {
            MembershipChange::AddLearner { id, addr } => {
                if self.contains(id) {
                    return Err(format!("{} is already a member", id.short()));
                }
                if addr.p2p_addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(format!("{:?} is not an IP:port address", addr.p2p_addr));
                }
                next.learners.insert(*id);
                next.directory.insert(*id, addr.clone());
            }
            MembershipChange::Promote { id } => {
                if self.voters.contains(id) {
                    return Err(format!("{} is already a voter", id.short()));
                }
                if !self.learners.contains(id) {
                    return Err(format!("{} is not a learner: add it with add-learner first", id.short()));
                }
                next.learners.remove(id);
                next.outgoing = self.voters.clone();
                next.voters.insert(*id);
            }
            MembershipChange::Remove { id } => {
                if self.learners.contains(id) {
                    next.learners.remove(id);
                    next.directory.remove(id);
                } else if self.voters.contains(id) {
                    if self.voters.len() == 1 {
                        return Err("refusing to remove the last voter".into());
                    }
                    next.outgoing = self.voters.clone();
                    next.voters.remove(id);
                } else {
                    return Err(format!("{} is not a member", id.short()));
                }
            }
        }
        Ok(next)
    }

    /// The final configuration of a joint one (`C_new`): the outgoing half
    /// dropped, and the directory entries of members no longer present.
    pub fn leave_joint(&self) -> Membership {
        let mut next = self.clone();
        next.outgoing.clear();
        let all = next.all();
        next.directory.retain(|id, _| all.contains(id));
        next
    }

    /// The transaction of a configuration entry.
    pub fn to_entry_tx(&self) -> Tx {
        let mut bytes = CONFIG_TX_PREFIX.to_vec();
        bytes.extend_from_slice(&codec::encode(self));
        Bytes::from(bytes)
    }

    /// The configuration carried by an entry's transactions, if it is a
    /// configuration entry.
    pub fn from_entry(txs: &[Tx]) -> Option<Membership> {
        match txs {
            [tx] => tx.strip_prefix(CONFIG_TX_PREFIX).and_then(|rest| codec::decode(rest).ok()),
            _ => None,
        }
    }
}

/// Is `tx` a configuration entry's transaction (by its prefix)?
pub fn is_config_tx(tx: &[u8]) -> bool {
    tx.starts_with(CONFIG_TX_PREFIX)
}

/// The configuration in effect at each index where one was set, oldest
/// first. The first element is the configuration at or below the commit
/// index; later ones are uncommitted.
pub type ConfigHistory = Vec<(Index, Membership)>;

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::Keypair;

    fn ids(n: u8) -> Vec<ValidatorId> {
        (0..n).map(|i| Keypair::from_seed(&[i + 1; 32]).public()).collect()
    }

    fn config(voters: &[ValidatorId]) -> Membership {
        Membership { voters: voters.iter().copied().collect(), ..Membership::default() }
    }

    #[test]
    fn joint_quorum_needs_a_majority_of_both_halves() {
        let v = ids(5);
        let mut c = config(&v[..3]);
        c = c
            .apply(&MembershipChange::AddLearner {
                id: v[3],
                addr: MemberAddr { node_key: v[3], p2p_addr: "127.0.0.1:1".into() },
            })
            .unwrap();
        let joint = c.apply(&MembershipChange::Promote { id: v[3] }).unwrap();
        assert!(joint.is_joint());
        // New voters {0,1,2,3}: 3 needed; old {0,1,2}: 2 needed.
        assert!(!joint.has_quorum(&[v[0], v[3]].into()), "no majority of the new voters");
        assert!(!joint.has_quorum(&[v[2], v[3], v[4]].into()), "no majority of the old voters");
        assert!(joint.has_quorum(&[v[0], v[1], v[3]].into()));
        // Commitment is the lower of the two majorities' indexes.
        let m = |id: &ValidatorId| [10, 10, 2, 10].get(v.iter().position(|x| x == id).unwrap()).copied().unwrap_or(0);
        assert_eq!(joint.quorum_index(m), 10);
        let m = |id: &ValidatorId| [10, 3, 2, 10].get(v.iter().position(|x| x == id).unwrap()).copied().unwrap_or(0);
        assert_eq!(joint.quorum_index(m), 3, "old half {{10,3,2}} holds 3, new half {{10,10,3,2}} holds 3");
        let fin = joint.leave_joint();
        assert!(!fin.is_joint() && fin.voters.len() == 4 && fin.learners.is_empty());
    }

    #[test]
    fn learners_never_count() {
        let v = ids(4);
        let mut c = config(&v[..1]);
        c.learners.insert(v[1]);
        assert!(c.has_quorum(&[v[0]].into()));
        assert!(!c.has_quorum(&[v[1]].into()));
        assert_eq!(c.quorum_index(|id| if *id == v[0] { 5 } else { 9 }), 5);
    }

    #[test]
    fn bad_changes_are_refused_with_a_reason() {
        let v = ids(3);
        let c = config(&v[..2]);
        let e = c.apply(&MembershipChange::Promote { id: v[2] }).unwrap_err();
        assert!(e.contains("not a learner"), "{e}");
        let e = c.apply(&MembershipChange::Remove { id: v[2] }).unwrap_err();
        assert!(e.contains("not a member"), "{e}");
        let e = c
            .apply(&MembershipChange::AddLearner {
                id: v[0],
                addr: MemberAddr { node_key: v[0], p2p_addr: "127.0.0.1:1".into() },
            })
            .unwrap_err();
        assert!(e.contains("already a member"), "{e}");
        let e = c
            .apply(&MembershipChange::AddLearner {
                id: v[2],
                addr: MemberAddr { node_key: v[2], p2p_addr: "x".into() },
            })
            .unwrap_err();
        assert!(e.contains("IP:port"), "{e}");
        let joint = c.apply(&MembershipChange::Remove { id: v[1] }).unwrap();
        let e = joint.apply(&MembershipChange::Remove { id: v[0] }).unwrap_err();
        assert!(e.contains("in progress"), "{e}");
        let e = config(&v[..1]).apply(&MembershipChange::Remove { id: v[0] }).unwrap_err();
        assert!(e.contains("last voter"), "{e}");
    }

    #[test]
    fn a_configuration_entry_round_trips_and_other_payloads_are_not_one() {
        let v = ids(2);
        let c = config(&v);
        assert_eq!(Membership::from_entry(&[c.to_entry_tx()]), Some(c.clone()));
        assert!(is_config_tx(&c.to_entry_tx()));
        assert_eq!(Membership::from_entry(&[c.to_entry_tx(), c.to_entry_tx()]), None);
        assert_eq!(Membership::from_entry(&[Bytes::from_static(b"put k v")]), None);
    }
}
