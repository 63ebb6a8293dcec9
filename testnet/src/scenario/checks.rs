//! The checks, as pure functions of what the run recorded and read, so each
//! can be tested on hand-made inputs. Each returns a [`Check`]: pass or
//! fail, a plain-language reason naming nodes, heights, hashes and times,
//! and details for the JSON report. Definitions are in the module doc of
//! `scenario`.

#[cfg(test)]
use super::collect::EvidenceItem;
use super::collect::{BlockInfo, HeldEvidence, NodeChain, short};
use super::perturb::Event;
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
    /// `no-progress`, `evidence`, `processes`.
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

/// Evidence: the chain of every honest node records evidence against each
/// expected culprit, and none against an honest validator; no honest node
/// has detected any against an honest validator either.
pub fn evidence(
    expected: &[usize],
    keys: &[String],
    honest: &[usize],
    held: &[(usize, Result<HeldEvidence, String>)],
) -> Check {
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for (node, r) in held {
        let h = match r {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("could not read node{node}'s evidence: {e}"));
                continue;
            }
        };
        let recorded = |k: &String| h.recorded_by_culprit.get(k).copied().unwrap_or(0);
        counts.insert(format!("node{node}"), h.recorded_by_culprit.values().sum::<u64>());
        for &c in expected {
            if recorded(&keys[c]) == 0 {
                let detected = h.items.iter().filter(|e| e.culprit == keys[c] && e.height.is_none()).count();
                problems.push(format!(
                    "node{node}'s chain records no evidence against node{c} ({}); {detected} item(s) detected there, none recorded in a block",
                    short(&keys[c])
                ));
            }
        }
        for &x in honest {
            if recorded(&keys[x]) > 0 {
                problems.push(format!(
                    "node{node}'s chain records {} evidence item(s) against honest node{x}",
                    recorded(&keys[x])
                ));
            }
            if let Some(e) = h.items.iter().find(|e| e.culprit == keys[x] && e.height.is_none()) {
                problems.push(format!("node{node} detected {} evidence against honest node{x}", e.kind));
            }
        }
    }
    let details = json!({ "expected_against": expected, "recorded_items": counts });
    if !problems.is_empty() {
        return Check::fail("evidence", problems.join("; "), details);
    }
    let nodes = node_list(held.iter().map(|(n, _)| *n));
    let reason = if expected.is_empty() {
        format!("none expected; {nodes} hold none against an honest validator")
    } else {
        let culprits = node_list(expected.iter().copied());
        format!("the chains of {nodes} each record evidence against {culprits}, and none against an honest validator")
    };
    Check::pass("evidence", reason, details)
}

/// Processes: no honest node's process stopped by itself (a crash or an
/// abort; the runner notices at each action and after the run). A
/// Byzantine node that stops is reported, not failed.
pub fn processes(events: &[Event], honest: &[bool]) -> Check {
    let exits: Vec<&Event> = events.iter().filter(|e| e.action == "exited").collect();
    let describe = |e: &&Event| format!("{} (noticed at {:.1} s; see logs/node{}.log)", e.label, e.at_s, e.nodes[0]);
    let (bad, byz): (Vec<&Event>, Vec<&Event>) = exits.iter().partition(|e| honest[e.nodes[0]]);
    let details = json!({ "exits": exits });
    if !bad.is_empty() {
        return Check::fail("processes", bad.iter().map(describe).collect::<Vec<_>>().join("; "), details);
    }
    let reason = if byz.is_empty() {
        "every node ran until the end (or until the timeline stopped it)".into()
    } else {
        format!(
            "every honest node ran until the end; byzantine {}",
            byz.iter().map(describe).collect::<Vec<_>>().join("; ")
        )
    };
    Check::pass("processes", reason, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: u64, id: &str, txs: &[&str]) -> BlockInfo {
        BlockInfo {
            height,
            id: id.into(),
            app_hash: Some(format!("app-{id}")),
            txs: txs.iter().map(|t| t.to_string()).collect(),
            time_ms: 0,
        }
    }

    fn chain(node: usize, blocks: Vec<BlockInfo>) -> NodeChain {
        let base = blocks.first().map_or(1, |b| b.height);
        let tip = blocks.last().map_or(0, |b| b.height);
        NodeChain { node, base, tip, blocks, error: None }
    }

    fn abc(node: usize) -> NodeChain {
        chain(node, vec![block(1, "aaaa", &["t1"]), block(2, "bbbb", &["t2", "t3"]), block(3, "cccc", &[])])
    }

    #[test]
    fn safety_passes_on_identical_prefixes_of_different_length() {
        let mut short = abc(2);
        short.blocks.pop();
        short.tip = 2;
        let c = safety(&[abc(0), abc(1), short]);
        assert!(c.passed, "{}", c.reason);
        assert_eq!(c.details["heights_compared"], 3);
    }

    #[test]
    fn safety_reports_the_first_height_with_different_blocks() {
        let mut other = abc(3);
        other.blocks[1].id = "dddd".into();
        other.blocks[2].id = "eeee".into();
        let c = safety(&[abc(0), other]);
        assert!(!c.passed);
        assert_eq!(c.reason, "node0 and node3 committed different blocks at height 2: bbbb vs dddd");
    }

    #[test]
    fn safety_reports_different_app_hashes_for_the_same_block() {
        let mut other = abc(1);
        other.blocks[2].app_hash = Some("app-zzzz".into());
        let c = safety(&[abc(0), other]);
        assert!(!c.passed);
        assert!(c.reason.contains("hold block cccc at height 3 but disagree on the app hash"), "{}", c.reason);
    }

    fn ack(hash: &str, height: u64) -> Acked {
        Acked { hash: hash.into(), height, node: 1, client: 2, at_s: 3.25, what: "put k0".into() }
    }

    #[test]
    fn durability_passes_when_every_ack_is_at_its_height_even_with_later_copies() {
        let mut c0 = abc(0);
        c0.blocks[2].txs.push("t1".into()); // proposed again later: no effect
        let c = durability(&[ack("t1", 1), ack("t3", 2)], &[c0, abc(1)]);
        assert!(c.passed, "{}", c.reason);
    }

    #[test]
    fn durability_reports_a_missing_acknowledged_transaction() {
        let c = durability(&[ack("t1", 1), ack("t9", 3)], &[abc(0), abc(1)]);
        assert!(!c.passed);
        assert!(
            c.reason.starts_with(
                "tx t9 (put k0 by client 2, acknowledged by node1 at height 3 at 3.2 s) is not in node0's chain (tip 3)"
            ),
            "{}",
            c.reason
        );
        assert_eq!(c.details["problems"].as_array().unwrap().len(), 2, "missing on both nodes");
    }

    #[test]
    fn durability_reports_a_transaction_at_another_height() {
        let c = durability(&[ack("t2", 1)], &[abc(0)]);
        assert!(!c.passed);
        assert!(c.reason.ends_with("is at height 2 on node0"), "{}", c.reason);
    }

    #[test]
    fn bank_detects_a_changed_sum() {
        let genesis = vec![("a".to_owned(), 100), ("b".to_owned(), 50)];
        let ok = bank(&genesis, &[(0, Ok(vec![120, 30])), (1, Ok(vec![0, 150]))]);
        assert!(ok.passed, "{}", ok.reason);
        let bad = bank(&genesis, &[(0, Ok(vec![120, 30])), (2, Ok(vec![120, 31]))]);
        assert!(!bad.passed);
        assert_eq!(bad.reason, "the 2 genesis accounts hold 151 on node2, not the genesis total 150 (+1)");
        let unread = bank(&genesis, &[(3, Err("account aa: transport".into()))]);
        assert!(!unread.passed && unread.reason.contains("node3"), "{}", unread.reason);
    }

    fn record(client: usize, op: OpKind, outcome: Outcome, invoke_us: u64, complete_us: u64) -> OpRecord {
        OpRecord {
            client,
            seq: 0,
            node: 0,
            invoke_us,
            complete_us,
            op,
            outcome,
            tx_hash: Some("h".into()),
            nonce: Some(0),
        }
    }

    fn put(v: &str) -> OpKind {
        OpKind::Put { key: "k0".into(), value: v.into() }
    }

    fn get() -> OpKind {
        OpKind::Get { key: "k0".into() }
    }

    fn read(v: Option<&str>) -> Outcome {
        Outcome::Read { value: v.map(str::to_owned), height: 1 }
    }

    #[test]
    fn the_kv_history_keeps_what_may_have_happened_and_drops_definite_failures() {
        let records = vec![
            record(0, put("a"), Outcome::Committed { height: 1, code: 0 }, 0, 10),
            record(0, put("b"), Outcome::Committed { height: 2, code: 4 }, 20, 30),
            record(1, put("c"), Outcome::Rejected { code: 1009, message: "pending".into() }, 0, 1),
            record(1, put("d"), Outcome::NotSent { reason: "refused".into() }, 2, 3),
            record(2, put("e"), Outcome::Unknown { reason: "timeout".into() }, 5, 5_000),
            record(3, get(), read(Some("a")), 40, 50),
            record(3, get(), Outcome::Aborted { reason: "barrier".into() }, 60, 70),
            record(3, OpKind::Transfer { to: 1, amount: 5 }, Outcome::Committed { height: 3, code: 0 }, 80, 90),
        ];
        let h = kv_history(&records);
        let kinds: Vec<(&lin::KvOutcome, Option<u64>)> = h.iter().map(|o| (&o.outcome, o.complete_us)).collect();
        assert_eq!(
            kinds,
            vec![
                (&lin::KvOutcome::PutOk, Some(10)),
                (&lin::KvOutcome::Unknown, None),
                (&lin::KvOutcome::GetOk(Some("a".into())), Some(50)),
            ]
        );
    }

    #[test]
    fn linearizability_fails_on_a_stale_read() {
        // put a, then put b acknowledged, then a read that still sees a.
        let records = vec![
            record(0, put("a"), Outcome::Committed { height: 1, code: 0 }, 0, 10),
            record(0, put("b"), Outcome::Committed { height: 2, code: 0 }, 20, 30),
            record(1, get(), read(Some("a")), 40, 50),
        ];
        let c = linearizability(&kv_history(&records), &lin::Checker::new());
        assert!(!c.passed);
        assert!(c.reason.starts_with("key k0: "), "{}", c.reason);
        let ok = linearizability(&kv_history(&records[..2]), &lin::Checker::new());
        assert!(ok.passed, "{}", ok.reason);
    }

    fn input<'a>(commits: &'a [(u64, u64)], from_s: f64, end_s: f64, exempt: &'a [(f64, f64)]) -> LivenessInput<'a> {
        LivenessInput {
            commits,
            from_s,
            from_label: "heal the partition".into(),
            end_s,
            bound_s: 5.0,
            exempt,
            final_heights: &[(0, Some(10)), (1, Some(10))],
            target: 10,
            settle_s: 30.0,
        }
    }

    #[test]
    fn liveness_passes_when_commits_resume_within_the_bound() {
        let commits = [(1_000_000, 3), (12_500_000, 4), (14_000_000, 9), (16_000_000, 10)];
        let c = liveness(&input(&commits, 10.0, 16.0, &[]));
        assert!(c.passed, "{}", c.reason);
        assert!(c.reason.starts_with("commits resumed 2.5 s after heal the partition at 10.0 s"), "{}", c.reason);
    }

    #[test]
    fn liveness_fails_when_no_commit_follows_the_heal() {
        let commits = [(1_000_000, 3)];
        let c = liveness(&input(&commits, 10.0, 20.0, &[]));
        assert!(!c.passed);
        assert_eq!(
            c.reason,
            "no commit for 10.0 s after heal the partition at 10.0 s (bound 5 s), up to the end of the run at 20.0 s"
        );
    }

    #[test]
    fn liveness_fails_on_a_long_stall_later_but_not_inside_an_exempt_window() {
        let commits = [(11_000_000, 4), (19_000_000, 5), (20_000_000, 10)];
        let c = liveness(&input(&commits, 10.0, 20.0, &[]));
        assert!(!c.passed);
        assert_eq!(c.reason, "no commit for 8.0 s from 11.0 s (height 4) to 19.0 s (bound 5 s)");
        let c = liveness(&input(&commits, 10.0, 20.0, &[(12.0, 18.0)]));
        assert!(c.passed, "a stall the scenario requires does not count: {}", c.reason);
    }

    #[test]
    fn liveness_fails_when_an_honest_node_does_not_catch_up() {
        let commits = [(11_000_000, 10)];
        let mut l = input(&commits, 10.0, 12.0, &[]);
        let behind = [(0, Some(10)), (3, Some(7)), (2, None)];
        l.final_heights = &behind;
        let c = liveness(&l);
        assert!(!c.passed);
        assert_eq!(
            c.reason,
            "node3 reached height 7, node2 did not answer, not the height 10 every honest node had to reach within 30 s after the run"
        );
    }

    #[test]
    fn no_progress_detects_a_commit_while_a_partition_holds() {
        let w = [StallWindow { from_s: 5.0, to_s: 12.0, label: "partition [0, 1] | [2, 3]".into() }];
        let quiet = [(4_000_000, 30), (6_000_000, 31), (12_500_000, 32)];
        let c = no_progress(&w, &quiet, 2.0);
        assert!(c.passed, "a commit inside the grace is in flight: {}", c.reason);
        assert!(c.reason.contains("height stayed 31"), "{}", c.reason);
        let busy = [(4_000_000, 30), (8_000_000, 33)];
        let c = no_progress(&w, &busy, 2.0);
        assert!(!c.passed);
        assert!(c.reason.starts_with("honest nodes committed up to height 33 between 8.0 s and 8.0 s"), "{}", c.reason);
    }

    fn held(recorded: &[(&str, u64)], detected: &[&str]) -> HeldEvidence {
        let item = |c: &&str| EvidenceItem {
            kind: "double_vote".into(),
            culprit: c.to_string(),
            round: Some(7),
            height: None,
        };
        HeldEvidence {
            recorded_by_culprit: recorded.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            items: detected.iter().map(item).collect(),
        }
    }

    #[test]
    fn evidence_needs_recorded_items_against_each_culprit_on_every_honest_node() {
        let keys: Vec<String> = ["k0", "k1", "k2", "k3"].iter().map(|s| s.to_string()).collect();
        let honest = [0, 2, 3];
        let good =
            [(0, Ok(held(&[("k1", 2)], &[]))), (2, Ok(held(&[("k1", 2)], &[]))), (3, Ok(held(&[("k1", 2)], &["k1"])))];
        let c = evidence(&[1], &keys, &honest, &good);
        assert!(c.passed, "{}", c.reason);
        let local_only = [(0, Ok(held(&[("k1", 1)], &[]))), (2, Ok(held(&[], &["k1"])))];
        let c = evidence(&[1], &keys, &honest, &local_only);
        assert!(!c.passed);
        assert_eq!(
            c.reason,
            "node2's chain records no evidence against node1 (k1); 1 item(s) detected there, none recorded in a block"
        );
        let framed = [(0, Ok(held(&[("k3", 1)], &["k2"])))];
        let c = evidence(&[], &keys, &honest, &framed);
        assert!(!c.passed);
        assert_eq!(
            c.reason,
            "node0 detected double_vote evidence against honest node2; node0's chain records 1 evidence item(s) against honest node3"
        );
    }

    fn exited(node: usize, at_s: f64) -> Event {
        let label = format!("node{node} exited by itself (signal: 6 (SIGABRT))");
        Event { at_s, planned_s: None, action: "exited".into(), nodes: vec![node], label, recovery: false }
    }

    #[test]
    fn processes_fails_when_an_honest_node_stops_by_itself() {
        let honest = [true, false, true, true];
        assert!(processes(&[], &honest).passed);
        let byz = processes(&[exited(1, 4.0)], &honest);
        assert!(byz.passed, "a byzantine node may stop: {}", byz.reason);
        let c = processes(&[exited(1, 4.0), exited(2, 7.5)], &honest);
        assert!(!c.passed);
        assert_eq!(c.reason, "node2 exited by itself (signal: 6 (SIGABRT)) (noticed at 7.5 s; see logs/node2.log)");
    }
}
