//! The run's report: verdict lines for people, `report.json` for tools,
//! `timeline.svg` for a browser.

use super::checks::Check;
use super::collect::HeldEvidence;
use super::perturb::Event;
use super::spec::{Expected, Scenario};
use super::workload::{OpKind, OpRecord, Outcome};
use crate::timeline;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Seconds each phase took.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Generating homes, starting nodes, waiting for the first commits.
    pub setup_s: f64,
    /// The workload and the timeline.
    pub workload_s: f64,
    /// Final heal, commit probe, catch-up and evidence waits.
    pub settle_s: f64,
    /// Reading chains, balances and evidence, and checking.
    pub check_s: f64,
    pub total_s: f64,
}

/// One validator at the end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeReport {
    pub index: usize,
    /// Validator public key (hex).
    pub validator: String,
    pub honest: bool,
    pub faults: Vec<String>,
    /// Committed height at the end (`None`: it did not answer).
    pub final_height: Option<u64>,
    /// Evidence items its chain records (honest nodes only).
    pub evidence: Option<u64>,
    /// Messages it refused from each validator (`net_info`; honest nodes
    /// only): signatures, certificates or blocks that did not check out.
    pub invalid_messages_from: Option<BTreeMap<String, u64>>,
}

/// Everything a run found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    /// The scenario file, if it came from one.
    pub file: Option<PathBuf>,
    /// Wall-clock time the workload began (RFC 3339).
    pub started_at: String,
    /// `true` when every check passed.
    pub passed: bool,
    pub expected: Expected,
    /// The verdict is what the scenario expects (this decides the exit code).
    pub as_expected: bool,
    /// Why the run is or is not as expected.
    pub expectation: String,
    pub checks: Vec<Check>,
    pub timings: Timings,
    /// Operation counts by kind, then by outcome.
    pub operations: BTreeMap<String, BTreeMap<String, usize>>,
    /// Distinct transactions in the honest chains (every sender's,
    /// evidence included).
    pub committed_txs: usize,
    /// Of those, how many are in more than one block (a copy proposed
    /// again executes with code 4 and changes nothing).
    pub repeated_txs: usize,
    pub nodes: Vec<NodeReport>,
    /// The timeline as carried out.
    pub events: Vec<Event>,
    /// Evidence each honest node holds.
    pub evidence: BTreeMap<String, HeldEvidence>,
    /// Where the report, history, logs and SVG are.
    pub out_dir: PathBuf,
    /// The testnet's directory, when kept.
    pub testnet_dir: Option<PathBuf>,
}

impl Report {
    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&str> {
        self.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect()
    }

    /// The verdict lines: one per check, then the overall verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.checks.iter().map(Check::line).collect();
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        out.push(format!("verdict: {verdict} ({})", self.expectation));
        out
    }

    /// Decides whether the verdict is what `expected` asks for.
    pub fn judge(checks: &[Check], expected: Expected, failing: &[String]) -> (bool, bool, String) {
        let passed = checks.iter().all(|c| c.passed);
        let failed: Vec<&str> = checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        match expected {
            Expected::Pass if passed => (true, true, "expected to pass: as expected".into()),
            Expected::Pass => (false, false, format!("expected to pass; failed: {}", failed.join(", "))),
            Expected::Fail if passed => (true, false, "expected to fail, but every check passed".into()),
            Expected::Fail => {
                let missing: Vec<&String> = failing.iter().filter(|f| !failed.contains(&f.as_str())).collect();
                if missing.is_empty() {
                    (false, true, format!("expected to fail: as expected ({} failed)", failed.join(", ")))
                } else {
                    let m = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                    (false, false, format!("expected {m} to fail; failed: {}", failed.join(", ")))
                }
            }
        }
    }
}

/// Counts operations by kind and outcome.
pub fn op_counts(records: &[OpRecord]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in records {
        let kind = match r.op {
            OpKind::Put { .. } => "put",
            OpKind::Get { .. } => "get",
            OpKind::Transfer { .. } => "transfer",
            OpKind::Barrier { .. } => "barrier",
        };
        let outcome = match &r.outcome {
            Outcome::Committed { code: 0, .. } => "committed".to_owned(),
            Outcome::Committed { code, .. } => format!("committed_code_{code}"),
            Outcome::Read { .. } => "read".into(),
            Outcome::Rejected { code, .. } => format!("rejected_{code}"),
            Outcome::NotSent { .. } => "not_sent".into(),
            Outcome::Unknown { .. } => "unknown".into(),
            Outcome::Aborted { .. } => "aborted".into(),
        };
        *out.entry(kind.into()).or_default().entry(outcome).or_default() += 1;
        *out.entry("all".into()).or_default().entry("total".into()).or_default() += 1;
    }
    out
}

/// Markers for every event and spans for partitions, pauses and downtime.
pub fn marks(events: &[Event], end_s: f64) -> (Vec<timeline::Marker>, Vec<timeline::Span>) {
    let markers = events.iter().map(|e| timeline::Marker { at_s: e.at_s, label: e.label.clone() }).collect();
    let mut spans = Vec::new();
    let mut open: BTreeMap<String, (f64, String)> = BTreeMap::new();
    for e in events {
        let node = e.nodes.first().copied().unwrap_or(0);
        let (key, starts, label) = match e.action.as_str() {
            "kill" => (format!("down{node}"), true, format!("node{node} down")),
            "restart" => (format!("down{node}"), false, String::new()),
            "pause" => (format!("paused{node}"), true, format!("node{node} paused")),
            "resume" => (format!("paused{node}"), false, String::new()),
            "partition" => ("partition".into(), true, e.label.clone()),
            "heal" => ("partition".into(), false, String::new()),
            _ => continue,
        };
        if starts {
            open.insert(key, (e.at_s, label));
        } else if let Some((from_s, label)) = open.remove(&key) {
            spans.push(timeline::Span { from_s, to_s: e.at_s, label });
        }
    }
    for (_, (from_s, label)) in open {
        spans.push(timeline::Span { from_s, to_s: end_s, label });
    }
    spans.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
    (markers, spans)
}

/// Writes `report.json`, `operations.json`, `heights.json` and
/// `timeline.svg` into `dir`.
pub fn write(
    dir: &Path,
    report: &Report,
    records: &[OpRecord],
    heights: &impl Serialize,
    end_s: f64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(report)?)?;
    std::fs::write(dir.join("operations.json"), serde_json::to_string_pretty(records)?)?;
    std::fs::write(dir.join("heights.json"), serde_json::to_string(heights)?)?;
    let commits: Vec<f64> =
        records.iter().filter(|r| r.acked().is_some()).map(|r| r.complete_us as f64 / 1e6).collect();
    let (markers, spans) = marks(&report.events, end_s);
    let verdict = if report.passed { "PASS" } else { "FAIL" };
    let title = format!("{}: {verdict} (acknowledged transactions per second)", report.scenario.name);
    let svg = timeline::render_svg(&title, &commits, 1.0, end_s, &markers, &spans);
    std::fs::write(dir.join("timeline.svg"), svg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, passed: bool) -> Check {
        Check { name: name.into(), passed, reason: String::new(), details: serde_json::Value::Null }
    }

    #[test]
    fn the_verdict_is_judged_against_the_expectation() {
        let all = [check("safety", true), check("liveness", true)];
        let stalled = [check("safety", true), check("liveness", false)];
        assert!(Report::judge(&all, Expected::Pass, &[]).1);
        assert_eq!(
            Report::judge(&stalled, Expected::Pass, &[]),
            (false, false, "expected to pass; failed: liveness".into())
        );
        assert!(!Report::judge(&all, Expected::Fail, &[]).1, "a failure scenario that passes is not as expected");
        assert!(Report::judge(&stalled, Expected::Fail, &["liveness".into()]).1);
        let wrong = Report::judge(&stalled, Expected::Fail, &["safety".into()]);
        assert_eq!(wrong, (false, false, "expected safety to fail; failed: liveness".into()));
    }

    fn event(at_s: f64, action: &str, node: usize, label: &str) -> Event {
        Event {
            at_s,
            planned_s: Some(at_s),
            action: action.into(),
            nodes: vec![node],
            label: label.into(),
            recovery: false,
        }
    }

    #[test]
    fn spans_cover_downtime_pauses_and_partitions() {
        let events = [
            event(1.0, "kill", 2, "kill node2"),
            event(2.0, "pause", 1, "pause node1"),
            event(3.0, "restart", 2, "restart node2"),
            event(4.0, "partition", 0, "partition [0] | [1, 2, 3]"),
        ];
        let (markers, spans) = marks(&events, 10.0);
        assert_eq!(markers.len(), 4);
        let got: Vec<(f64, f64, &str)> = spans.iter().map(|s| (s.from_s, s.to_s, s.label.as_str())).collect();
        assert_eq!(
            got,
            vec![(1.0, 3.0, "node2 down"), (2.0, 10.0, "node1 paused"), (4.0, 10.0, "partition [0] | [1, 2, 3]")]
        );
    }
}
