//! Byzantine fault injection: what a node told to misbehave does.
//!
//! Faults are for testnets and demonstrations only: they make a validator
//! break the protocol on purpose so that users can watch the honest
//! validators hold. They are off unless named, either with `phalanx start
//! --fault KIND[=PARAM]` (repeatable) or in `node.toml`:
//!
//! ```toml
//! [faults]
//! kinds = ["equivocate", "delay=200"]
//! from_height = 10
//! ```
//!
//! The node applies them in `node/src/faults.rs`, between the engine's
//! actions and the network, so the engines themselves stay honest code.

use std::fmt;
use std::str::FromStr;

/// One way to misbehave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// As leader, sign two different proposals for one round and send each
    /// to a different half of the other validators.
    Equivocate,
    /// Sign votes for two different blocks in one round.
    DoubleVote,
    /// Never vote, propose or time out, but stay connected.
    Withhold,
    /// Corrupt the signature of every consensus message sent.
    BadSignature,
    /// As leader, propose blocks that are invalid: in turn one with an
    /// invalid transaction, one with a wrong parent and one with a forged QC.
    InvalidBlock,
    /// As leader, propose on an old QC, trying to fork committed history.
    StaleProposal,
    /// Delay every outgoing consensus message by this many milliseconds.
    Delay(u64),
    /// Drop each outgoing consensus message with this probability (0 to 1).
    Drop(f64),
    /// Forget the safety state (last voted round, lock) at every start.
    Amnesia,
    /// Send peers this many invalid transactions per second.
    TxFlood(u64),
}

/// Every fault name, as written on the command line.
pub const FAULT_NAMES: &str = "equivocate, double-vote, withhold, bad-signature, invalid-block, stale-proposal, \
                               delay=MS, drop=P, amnesia, tx-flood=RATE";

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        let (name, param) = match s.split_once('=') {
            Some((n, p)) => (n.trim(), Some(p.trim())),
            None => (s.trim(), None),
        };
        let number = |what: &str| -> Result<u64, String> {
            let p = param.ok_or_else(|| format!("fault {name:?} needs a value: {name}={what}"))?;
            p.parse().map_err(|_| format!("fault {name:?}: {p:?} is not a whole number of {what}"))
        };
        let bare = |f: Fault| match param {
            None => Ok(f),
            Some(p) => Err(format!("fault {name:?} takes no value (got {p:?})")),
        };
        match name {
            "equivocate" => bare(Fault::Equivocate),
            "double-vote" => bare(Fault::DoubleVote),
            "withhold" => bare(Fault::Withhold),
            "bad-signature" => bare(Fault::BadSignature),
            "invalid-block" => bare(Fault::InvalidBlock),
            "stale-proposal" => bare(Fault::StaleProposal),
            "amnesia" => bare(Fault::Amnesia),
            "delay" => Ok(Fault::Delay(number("milliseconds")?)),
            "tx-flood" => match number("transactions per second")? {
                0 => Err("fault \"tx-flood\": the rate must be at least 1 per second".into()),
                r => Ok(Fault::TxFlood(r)),
            },
            "drop" => {
                let p = param.ok_or("fault \"drop\" needs a probability: drop=P with P from 0 to 1")?;
                match p.parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => Ok(Fault::Drop(v)),
                    _ => Err(format!("fault \"drop\": {p:?} is not a probability from 0 to 1")),
                }
            }
            other => Err(format!("unknown fault {other:?}; the faults are: {FAULT_NAMES}")),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Equivocate => f.write_str("equivocate"),
            Fault::DoubleVote => f.write_str("double-vote"),
            Fault::Withhold => f.write_str("withhold"),
            Fault::BadSignature => f.write_str("bad-signature"),
            Fault::InvalidBlock => f.write_str("invalid-block"),
            Fault::StaleProposal => f.write_str("stale-proposal"),
            Fault::Delay(ms) => write!(f, "delay={ms}"),
            Fault::Drop(p) => write!(f, "drop={p}"),
            Fault::Amnesia => f.write_str("amnesia"),
            Fault::TxFlood(r) => write!(f, "tx-flood={r}"),
        }
    }
}

/// Parses fault names, refusing unknown ones and duplicates of one kind.
pub fn parse_faults<S: AsRef<str>>(names: &[S]) -> Result<Vec<Fault>, String> {
    let mut out: Vec<Fault> = Vec::new();
    for n in names {
        let f: Fault = n.as_ref().parse()?;
        if out.iter().any(|g| std::mem::discriminant(g) == std::mem::discriminant(&f)) {
            return Err(format!("fault {:?} is given twice", f.to_string()));
        }
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_parses_and_prints_back() {
        for s in [
            "equivocate",
            "double-vote",
            "withhold",
            "bad-signature",
            "invalid-block",
            "stale-proposal",
            "delay=250",
            "drop=0.25",
            "amnesia",
            "tx-flood=100",
        ] {
            let f: Fault = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
    }

    #[test]
    fn bad_fault_names_and_values_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<Fault>().unwrap_err();
        assert!(err("equivicate").contains("unknown fault \"equivicate\""), "{}", err("equivicate"));
        assert!(err("delay").contains("needs a value"));
        assert!(err("delay=soon").contains("not a whole number"));
        assert!(err("drop=1.5").contains("not a probability"));
        assert!(err("withhold=3").contains("takes no value"));
        assert!(err("tx-flood=0").contains("at least 1"));
        assert!(parse_faults(&["delay=1", "delay=2"]).unwrap_err().contains("given twice"));
    }
}
