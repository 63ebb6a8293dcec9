//! The checks, as pure functions of what the run recorded and read, so each
//! can be tested on hand-made inputs. Each returns a [`Check`]: pass or
//! fail, a plain-language reason naming nodes, heights, hashes and times,
//! and details for the JSON report. Definitions are in the module doc of
//! `scenario`.

use super::collect::{BlockInfo, EvidenceItem, NodeChain, short};
use super::workload::{OpKind, OpRecord, Outcome};
use crate::linearizability as lin;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Most individual problems a reason lists.
const LIST_MAX: usize = 5;

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// `safety`, `durability`, `bank`, `linearizability`, `liveness`,
    /// `no-progress`, `evidence`.
    pub name: String,
    pub passed: bool,
    /// One line a person can act on.
    pub reason: String,
    pub details: Value,
}

impl Check {
    fn pass(name: &str, reason: String, details: Value) -> Check {
        Check { name: name.into(), passed: true, reason, details }
    }

    fn fail(name: &str, reason: String, details: Value) -> Check {
        Check { name: name.into(), passed: false, reason, details }
    }

    /// `PASS safety: ...` / `FAIL liveness: ...`.
    pub fn line(&self) -> String {
        format!("{} {}: {}", if self.passed { "PASS" } else { "FAIL" }, self.name, self.reason)
    }
}

fn node_list(nodes: impl IntoIterator<Item = usize>) -> String {
    nodes.into_iter().map(|i| format!("node{i}")).collect::<Vec<_>>().join(", ")
}

/// Safety: at every height two honest nodes both hold, they hold the same
/// block, and the same application hash after it where both report one.
pub fn safety(chains: &[NodeChain]) -> Check {
    let tips: BTreeMap<String, u64> = chains.iter().map(|c| (format!("node{}", c.node), c.tip)).collect();
    if let Some(c) = chains.iter().find(|c| c.error.is_some()) {
        let e = c.error.as_deref().unwrap_or_default();
        return Check::fail("safety", format!("could not read node{}'s chain: {e}", c.node), json!({ "tips": tips }));
    }
    let top = chains.iter().map(|c| c.tip).max().unwrap_or(0);
    let bottom = chains.iter().map(|c| c.base).min().unwrap_or(1);
    let mut compared = 0u64;
    for h in bottom..=top {
        let held: Vec<(usize, &BlockInfo)> = chains.iter().filter_map(|c| c.at(h).map(|b| (c.node, b))).collect();
        let Some(&(n0, b0)) = held.first() else { continue };
        for &(n, b) in &held[1..] {
            if b.id != b0.id {
                let reason = format!(
                    "node{n0} and node{n} committed different blocks at height {h}: {} vs {}",
                    short(&b0.id),
                    short(&b.id)
                );
                let d = json!({ "height": h, "nodes": [n0, n], "blocks": [b0.id, b.id], "tips": tips });
                return Check::fail("safety", reason, d);
            }
            if let (Some(a0), Some(a)) = (&b0.app_hash, &b.app_hash)
                && a0 != a
            {
                let reason = format!(
                    "node{n0} and node{n} hold block {} at height {h} but disagree on the app hash after it: {} vs {}",
                    short(&b0.id),
                    short(a0),
                    short(a)
                );
                let d = json!({ "height": h, "nodes": [n0, n], "app_hashes": [a0, a], "tips": tips });
                return Check::fail("safety", reason, d);
            }
        }
        if held.len() > 1 {
            compared += 1;
        }
    }
    let nodes = node_list(chains.iter().map(|c| c.node));
    let reason = if chains.len() < 2 {
        format!("only {nodes} is honest: {top} blocks, nothing to compare")
    } else {
        format!(
            "{compared} heights held by two or more nodes: blocks and app hashes identical on {nodes} (tips {top} at most)"
        )
    };
    Check::pass("safety", reason, json!({ "heights_compared": compared, "tips": tips }))
}

/// A transaction a client was told is committed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Acked {
    pub hash: String,
    pub height: u64,
    /// The node that acknowledged it.
    pub node: usize,
    pub client: usize,
    pub at_s: f64,
    /// `put k1`, `transfer`, `barrier`.
    pub what: String,
}

/// The acknowledged transactions of a history.
pub fn acked(records: &[OpRecord]) -> Vec<Acked> {
    records
        .iter()
        .filter_map(|r| {
            let (hash, height) = r.acked()?;
            let what = match &r.op {
                OpKind::Put { key, .. } => format!("put {key}"),
                OpKind::Transfer { .. } => "transfer".into(),
                OpKind::Barrier { .. } => "barrier".into(),
                OpKind::Get { .. } => "get".into(),
            };
            let at_s = r.complete_us as f64 / 1e6;
            Some(Acked { hash: hash.to_owned(), height, node: r.node, client: r.client, at_s, what })
        })
        .collect()
}

/// Durability: every acknowledged transaction is in every honest node's
/// final chain, at the height it was acknowledged at. Heights below a
/// node's base height (a Raft state snapshot) cannot be checked there and
/// are counted as skipped.
pub fn durability(acked: &[Acked], chains: &[NodeChain]) -> Check {
    let mut problems = Vec::new();
    let mut skipped = 0usize;
    for c in chains {
        // A transaction's height is that of its first block: a copy
        // proposed again later executes with code 4 and changes nothing.
        let mut at: HashMap<&str, u64> = HashMap::new();
        for b in &c.blocks {
            for t in &b.txs {
                at.entry(t.as_str()).or_insert(b.height);
            }
        }
        for a in acked {
            if a.height < c.base {
                skipped += 1;
                continue;
            }
            let acked_as = format!(
                "tx {} ({} by client {}, acknowledged by node{} at height {} at {:.1} s)",
                short(&a.hash),
                a.what,
                a.client,
                a.node,
                a.height,
                a.at_s
            );
            match at.get(a.hash.as_str()) {
                Some(&h) if h == a.height => {}
                Some(&h) => problems.push(format!("{acked_as} is at height {h} on node{}", c.node)),
                None => problems.push(format!("{acked_as} is not in node{}'s chain (tip {})", c.node, c.tip)),
            }
        }
    }
    let nodes = node_list(chains.iter().map(|c| c.node));
    let details = json!({ "acknowledged": acked.len(), "problems": problems.len(), "skipped_below_base": skipped });
    if problems.is_empty() {
        let reason = format!(
            "all {} acknowledged transactions are in the chains of {nodes} at the heights acknowledged",
            acked.len()
        );
        Check::pass("durability", reason, details)
    } else {
        let more = if problems.len() > LIST_MAX {
            format!(" (and {} more)", problems.len() - LIST_MAX)
        } else {
            String::new()
        };
        let reason = format!("{}{more}", problems[..problems.len().min(LIST_MAX)].join("; "));
        Check::fail("durability", reason, json!({ "problems": problems, "acknowledged": acked.len() }))
    }
}

/// Bank: on every honest node, the balances of the genesis accounts add up
/// to their genesis total.
pub fn bank(genesis: &[(String, u64)], balances: &[(usize, Result<Vec<u64>, String>)]) -> Check {
    let total: u128 = genesis.iter().map(|(_, b)| *b as u128).sum();
    let mut sums = BTreeMap::new();
    for (node, r) in balances {
        match r {
            Err(e) => return Check::fail("bank", format!("could not read balances on node{node}: {e}"), json!({})),
            Ok(b) => {
                let sum: u128 = b.iter().map(|&x| x as u128).sum();
                sums.insert(format!("node{node}"), sum.to_string());
                if sum != total {
                    let diff = sum as i128 - total as i128;
                    let reason = format!(
                        "the {} genesis accounts hold {sum} on node{node}, not the genesis total {total} ({diff:+})",
                        genesis.len()
                    );
                    return Check::fail("bank", reason, json!({ "genesis_total": total.to_string(), "sums": sums }));
                }
            }
        }
    }
    let nodes = node_list(balances.iter().map(|(n, _)| *n));
    let reason = format!("the {} genesis accounts hold {total} on {nodes}, as at genesis", genesis.len());
    Check::pass("bank", reason, json!({ "genesis_total": total.to_string(), "sums": sums }))
}

/// The key-value history the linearizability checker judges: puts and
/// reads of the checked keys. Definite failures (refused, not sent, a put
/// committed with a failure code, a read whose barrier failed) did
/// nothing and are left out; a put without a definite answer may have
/// happened at any time after its invocation; reads without an answer are
/// left out.
pub fn kv_history(records: &[OpRecord]) -> Vec<lin::Operation> {
    let mut out = Vec::new();
    for r in records {
        let (op, outcome, complete_us) = match (&r.op, &r.outcome) {
            (OpKind::Put { key, value }, Outcome::Committed { code: 0, .. }) => {
                (lin::KvOp::Put { key: key.clone(), value: value.clone() }, lin::KvOutcome::PutOk, Some(r.complete_us))
            }
            (OpKind::Put { key, value }, Outcome::Unknown { .. }) => {
                (lin::KvOp::Put { key: key.clone(), value: value.clone() }, lin::KvOutcome::Unknown, None)
            }
            (OpKind::Get { key }, Outcome::Read { value, .. }) => {
                (lin::KvOp::Get { key: key.clone() }, lin::KvOutcome::GetOk(value.clone()), Some(r.complete_us))
            }
            _ => continue,
        };
        out.push(lin::Operation { client: r.client, invoke_us: r.invoke_us, complete_us, op, outcome });
    }
    out
}

/// Linearizability of the key-value history (keys start absent).
pub fn linearizability(history: &[lin::Operation], checker: &lin::Checker) -> Check {
    let puts = history.iter().filter(|o| matches!(o.op, lin::KvOp::Put { .. })).count();
    let unknown = history.iter().filter(|o| o.outcome == lin::KvOutcome::Unknown).count();
    let reads = history.len() - puts;
    let details = json!({ "operations": history.len(), "puts": puts, "unknown_puts": unknown, "reads": reads });
    let (verdict, stats) = checker.check_with_stats(history, &BTreeMap::new());
    let details = json!({ "counts": details, "search": stats });
    match verdict {
        lin::Verdict::Linearizable => Check::pass(
            "linearizability",
            format!("{puts} puts ({unknown} without an answer) and {reads} reads form a linearizable history"),
            details,
        ),
        lin::Verdict::NotLinearizable(v) => {
            let ops: Vec<&lin::Operation> = v.operations.iter().filter_map(|&i| history.get(i)).collect();
            let reason = format!("key {}: {}", v.key, v.message);
            Check::fail("linearizability", reason, json!({ "violation": v, "operations": ops, "stats": details }))
        }
        lin::Verdict::Inconclusive { key, reason } => Check::fail(
            "linearizability",
            format!("undecided (the checker gave up on key {key}: {reason}); shorten the run or use fewer clients"),
            details,
        ),
    }
}

/// What the liveness check looks at.
pub struct LivenessInput<'a> {
    /// `(t_us, height)` each time the highest honest height rose.
    pub commits: &'a [(u64, u64)],
    /// Where the bound starts: the last recovery (or the workload start).
    pub from_s: f64,
    /// What happened then, e.g. `heal the partition`.
    pub from_label: String,
    /// The end of observation.
    pub end_s: f64,
    pub bound_s: f64,
    /// Windows where no progress is required (partitions that must stall).
    pub exempt: &'a [(f64, f64)],
    /// Each honest node's height at the end, and the height all had to reach.
    pub final_heights: &'a [(usize, Option<u64>)],
    pub target: u64,
    pub settle_s: f64,
}

/// Seconds of `(a, b)` outside every exempt window.
fn counted(a: f64, b: f64, exempt: &[(f64, f64)]) -> f64 {
    let inside: f64 = exempt.iter().map(|&(x, y)| (b.min(y) - a.max(x)).max(0.0)).sum();
    (b - a - inside).max(0.0)
}

/// Liveness: from `from_s` to the end, the highest honest height never
/// stays the same for longer than the bound (not counting exempt
/// windows), and every honest node reaches the final target height.
pub fn liveness(l: &LivenessInput) -> Check {
    let bound = l.bound_s;
    let mut points = vec![(l.from_s, None)];
    for &(t, h) in l.commits {
        let t = t as f64 / 1e6;
        if t > l.from_s && t <= l.end_s {
            points.push((t, Some(h)));
        }
    }
    points.push((l.end_s, None));
    let first = points.get(1).filter(|p| p.1.is_some()).map(|p| p.0 - l.from_s);
    let mut longest = 0.0f64;
    for w in points.windows(2) {
        let ((a, ha), (b, hb)) = (w[0], w[1]);
        let gap = counted(a, b, l.exempt);
        longest = longest.max(gap);
        if gap > bound {
            let reason = match (ha, hb) {
                (None, Some(_)) => format!(
                    "no commit for {gap:.1} s after {} at {:.1} s (bound {bound} s); the next came at {b:.1} s",
                    l.from_label, l.from_s
                ),
                (None, None) => format!(
                    "no commit for {gap:.1} s after {} at {:.1} s (bound {bound} s), up to the end of the run at {b:.1} s",
                    l.from_label, l.from_s
                ),
                (Some(h), _) => {
                    format!("no commit for {gap:.1} s from {a:.1} s (height {h}) to {b:.1} s (bound {bound} s)")
                }
            };
            return Check::fail("liveness", reason, json!({ "from_s": l.from_s, "gap_s": gap, "at_s": a }));
        }
    }
    let behind: Vec<String> = l
        .final_heights
        .iter()
        .filter(|(_, h)| h.is_none_or(|h| h < l.target))
        .map(|(n, h)| match h {
            Some(h) => format!("node{n} reached height {h}"),
            None => format!("node{n} did not answer"),
        })
        .collect();
    let heights: BTreeMap<String, Option<u64>> =
        l.final_heights.iter().map(|(n, h)| (format!("node{n}"), *h)).collect();
    if !behind.is_empty() {
        let reason = format!(
            "{}, not the height {} every honest node had to reach within {} s after the run",
            behind.join(", "),
            l.target,
            l.settle_s
        );
        return Check::fail("liveness", reason, json!({ "final_heights": heights, "target": l.target }));
    }
    let start = if l.from_s == 0.0 {
        format!("longest pause between honest commits from the workload start: {longest:.1} s (bound {bound} s)")
    } else {
        let first = first.map_or("no commit was due before the end".into(), |f| format!("commits resumed {f:.1} s"));
        format!(
            "{first} after {} at {:.1} s; longest pause after it {longest:.1} s (bound {bound} s)",
            l.from_label, l.from_s
        )
    };
    let reason = format!("{start}; every honest node reached height {}", l.target);
    Check::pass("liveness", reason, json!({ "from_s": l.from_s, "longest_gap_s": longest, "final_heights": heights }))
}

/// A partition that must stall the chain: from, to (seconds), label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StallWindow {
    pub from_s: f64,
    pub to_s: f64,
    pub label: String,
}

/// No progress: while each window holds (after `grace_s` for blocks in
/// flight when it began), the highest honest height does not rise.
pub fn no_progress(windows: &[StallWindow], commits: &[(u64, u64)], grace_s: f64) -> Check {
    let mut held = Vec::new();
    for w in windows {
        let start = w.from_s + grace_s;
        let during: Vec<(f64, u64)> =
            commits.iter().map(|&(t, h)| (t as f64 / 1e6, h)).filter(|&(t, _)| t > start && t < w.to_s).collect();
        if let (Some(first), Some(last)) = (during.first(), during.last()) {
            let reason = format!(
                "honest nodes committed up to height {} between {:.1} s and {:.1} s, while {} held ({:.1} s to {:.1} s, after a {grace_s} s grace)",
                last.1, first.0, last.0, w.label, w.from_s, w.to_s
            );
            return Check::fail("no-progress", reason, json!({ "window": w, "commits": during }));
        }
        let height = commits.iter().take_while(|&&(t, _)| (t as f64 / 1e6) <= w.to_s).last().map(|c| c.1);
        held.push(format!(
            "{} from {:.1} s to {:.1} s (height stayed {} after a {grace_s} s grace)",
            w.label,
            w.from_s,
            w.to_s,
            height.map_or("unknown".into(), |h| h.to_string())
        ));
    }
    if held.is_empty() {
        return Check::pass("no-progress", "no partition was in force".into(), json!({}));
    }
    Check::pass("no-progress", format!("no honest commit during {}", held.join("; ")), json!({ "windows": windows }))
}

/// Evidence: every honest node holds committed evidence (a recording
/// height) against each expected culprit, and none against an honest
/// validator.
pub fn evidence(
    expected: &[usize],
    keys: &[String],
    honest: &[usize],
    held: &[(usize, Result<Vec<EvidenceItem>, String>)],
) -> Check {
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for (node, r) in held {
        let items = match r {
            Ok(items) => items,
            Err(e) => {
                problems.push(format!("could not read node{node}'s evidence: {e}"));
                continue;
            }
        };
        counts.insert(format!("node{node}"), items.len());
        for &c in expected {
            let against: Vec<&EvidenceItem> = items.iter().filter(|e| e.culprit == keys[c]).collect();
            if !against.iter().any(|e| e.height.is_some()) {
                problems.push(format!(
                    "node{node} holds no committed evidence against node{c} ({}): {} item(s) against it, none recorded in a block",
                    short(&keys[c]),
                    against.len()
                ));
            }
        }
        for e in items {
            if let Some(h) = honest.iter().find(|&&h| keys[h] == e.culprit) {
                problems.push(format!("node{node} holds {} evidence against honest node{h}", e.kind));
            }
        }
    }
    let details = json!({ "expected_against": expected, "items_held": counts });
    if !problems.is_empty() {
        return Check::fail("evidence", problems.join("; "), details);
    }
    let nodes = node_list(held.iter().map(|(n, _)| *n));
    let reason = if expected.is_empty() {
        format!("none expected; {nodes} hold none against an honest validator")
    } else {
        format!(
            "{nodes} each hold committed evidence against {}, and none against an honest validator",
            node_list(expected.iter().copied())
        )
    };
    Check::pass("evidence", reason, details)
}
