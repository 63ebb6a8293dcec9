//! The scenario file: parsing and validation.
//!
//! A scenario is a TOML file (README, "Scenarios", documents every field).
//! Unknown fields are refused. Every error names the file, the line when it
//! is known, the field (`at[2].node`) and what would be accepted instead;
//! a file that parses is fully checked, so a run never fails half-way on a
//! typo. What cannot be checked statically (which node `"leader"` will be)
//! is resolved when the action runs.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use toml::Spanned;

/// Fault kinds whose culprit must show up as evidence by default.
pub const EVIDENT_FAULTS: &[&str] = &["equivocate", "double-vote"];

/// A bad scenario file: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file (or `<text>`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, starting with the field's path.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

/// The consensus protocol of the scenario's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    HotStuff,
    Raft,
}

impl Protocol {
    /// The name `phalanx testnet --protocol` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HotStuff => "hotstuff",
            Protocol::Raft => "raft",
        }
    }
}

/// A node named in the timeline.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRef {
    /// Node `i` (0-based, as in `node<i>`).
    Index(usize),
    /// The current leader when the action runs (from an honest node's
    /// `status`: `consensus.leader`).
    Leader,
    /// The node an earlier action bound with `as = "NAME"`.
    Named(String),
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Index(i) => write!(f, "node{i}"),
            NodeRef::Leader => write!(f, "the leader"),
            NodeRef::Named(n) => write!(f, "{n:?}"),
        }
    }
}

/// One perturbation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "do")]
pub enum Action {
    /// SIGKILL.
    Kill { node: NodeRef },
    /// Start a stopped node again (a running one is killed first).
    Restart { node: NodeRef },
    /// SIGSTOP.
    Pause { node: NodeRef },
    /// SIGCONT.
    Resume { node: NodeRef },
    /// Every node drops all traffic with nodes outside its group; nodes
    /// named in no group form one more group together.
    Partition { groups: Vec<Vec<NodeRef>> },
    /// End the partition.
    Heal,
}

impl Action {
    /// The action's name, as written in the file.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Kill { .. } => "kill",
            Action::Restart { .. } => "restart",
            Action::Pause { .. } => "pause",
            Action::Resume { .. } => "resume",
            Action::Partition { .. } => "partition",
            Action::Heal => "heal",
        }
    }

    /// The single node the action applies to, if it has one.
    pub fn node(&self) -> Option<&NodeRef> {
        match self {
            Action::Kill { node } | Action::Restart { node } | Action::Pause { node } | Action::Resume { node } => {
                Some(node)
            }
            _ => None,
        }
    }

    /// Whether the action ends a fault (heal, restart, resume).
    pub fn is_recovery(&self) -> bool {
        matches!(self, Action::Heal | Action::Restart { .. } | Action::Resume { .. })
    }
}

/// An action at a time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TimedAction {
    /// Milliseconds after the workload starts.
    pub at_ms: u64,
    pub action: Action,
    /// `as = NAME`: later actions may name the node this one resolved to.
    pub bind: Option<String>,
    /// Line in the file.
    pub line: usize,
}

/// One validator's faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeSpec {
    /// `--fault` values, as given.
    pub faults: Vec<String>,
    /// `--fault-from-height`.
    pub from_height: Option<u64>,
    /// Excluded from the honest set (default: the node has a fault).
    pub byzantine: bool,
}

/// How fast each client issues operations.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pacing {
    /// Closed loop: wait this long after each answer.
    ThinkMs(u64),
    /// Start one operation every 1/rate seconds (or as soon as the last
    /// one answers, when it took longer).
    Rate(f64),
}

/// The clients' load.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Workload {
    /// Concurrent clients, each with its own funded account.
    pub clients: usize,
    /// Keys written and read: `k0` .. `k{keys-1}`.
    pub keys: usize,
    /// Relative weights of puts, reads and transfers.
    pub put: u32,
    pub get: u32,
    pub transfer: u32,
    pub pacing: Pacing,
}

/// Whether the run should pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Pass,
    Fail,
}

/// What the checks are held to.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Expectations {
    pub verdict: Expected,
    /// With `verdict = "fail"`: checks that must each fail.
    pub failing: Vec<String>,
    /// Seconds within which commits resume after the last recovery, and
    /// the longest pause between commits from then on.
    pub liveness_bound_s: f64,
    /// Hold the liveness bound from the workload's start, not only after
    /// the last recovery.
    pub liveness_throughout: bool,
    /// `false`: assert that no honest node commits while a partition holds.
    pub progress_during_partition: bool,
    /// Seconds after a partition starts during which commits still count
    /// as in flight.
    pub partition_grace_s: f64,
    /// Validators whose evidence every honest node must hold, committed.
    pub evidence_against: Vec<usize>,
    /// Seconds allowed for catch-up and for evidence after the run.
    pub settle_s: f64,
}

/// A parsed and checked scenario.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub protocol: Protocol,
    pub validators: usize,
    /// Seconds of workload.
    pub duration_s: f64,
    /// `phalanx testnet --timeout-ms-base`, when given.
    pub timeout_ms_base: Option<u64>,
    /// Seeds the clients' choices.
    pub seed: u64,
    /// One entry per validator.
    pub nodes: Vec<NodeSpec>,
    /// In time order.
    pub timeline: Vec<TimedAction>,
    pub workload: Workload,
    pub expect: Expectations,
}

impl Scenario {
    /// Indices of the validators treated as honest.
    pub fn honest(&self) -> Vec<usize> {
        (0..self.validators).filter(|&i| !self.nodes[i].byzantine).collect()
    }

    /// Reads and checks a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, SpecError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            origin: origin.clone(),
            line: None,
            message: format!("cannot read the scenario: {e}"),
        })?;
        Scenario::parse(&text, &origin)
    }

    /// Parses and checks scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, SpecError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| SpecError {
            origin: origin.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_owned(),
        })?;
        let v = Validator { text, origin };
        v.scenario(raw)
    }
}

// ---- raw file shapes ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    protocol: Option<String>,
    validators: usize,
    duration: f64,
    timeout_ms_base: Option<u64>,
    seed: Option<u64>,
    #[serde(default)]
    node: Vec<Spanned<RawNode>>,
    #[serde(default)]
    at: Vec<Spanned<RawAt>>,
    workload: Option<RawWorkload>,
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    index: usize,
    #[serde(default)]
    faults: Vec<String>,
    from_height: Option<u64>,
    byzantine: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAt {
    s: f64,
    #[serde(rename = "do")]
    action: String,
    node: Option<toml::Value>,
    groups: Option<Vec<Vec<toml::Value>>>,
    #[serde(rename = "as")]
    bind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    clients: Option<usize>,
    keys: Option<usize>,
    put: Option<u32>,
    get: Option<u32>,
    transfer: Option<u32>,
    think_ms: Option<u64>,
    rate: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    verdict: Option<String>,
    failing: Option<Vec<String>>,
    liveness_bound: Option<f64>,
    liveness_throughout: Option<bool>,
    progress_during_partition: Option<bool>,
    partition_grace: Option<f64>,
    evidence_against: Option<Vec<usize>>,
    settle: Option<f64>,
}

/// Names of the checks, for `expect.failing`.
pub const CHECK_NAMES: &[&str] =
    &["safety", "durability", "bank", "linearizability", "liveness", "no-progress", "evidence", "processes"];

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn err(&self, line: Option<usize>, message: String) -> SpecError {
        SpecError { origin: self.origin.to_owned(), line, message }
    }

    fn line<T>(&self, s: &Spanned<T>) -> Option<usize> {
        Some(line_of(self.text, s.span().start))
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, SpecError> {
        let ok_name = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok_name {
            return Err(self.err(None, format!("name: {:?} must be 1 to 64 characters of A-Za-z0-9._-", raw.name)));
        }
        let protocol = match raw.protocol.as_deref() {
            None | Some("hotstuff") => Protocol::HotStuff,
            Some("raft") => Protocol::Raft,
            Some(p) => return Err(self.err(None, format!("protocol: {p:?} is not \"hotstuff\" or \"raft\""))),
        };
        if !(1..=16).contains(&raw.validators) {
            return Err(self.err(None, format!("validators: {} is not between 1 and 16", raw.validators)));
        }
        if !(raw.duration > 0.0 && raw.duration <= 3600.0) {
            return Err(self.err(None, format!("duration: {} s is not in (0, 3600]", raw.duration)));
        }
        if let Some(t) = raw.timeout_ms_base
            && t < 10
        {
            return Err(self.err(None, format!("timeout_ms_base: {t} is below 10")));
        }
        let nodes = self.nodes(&raw.node, raw.validators)?;
        let timeline = self.timeline(&raw.at, raw.validators, raw.duration)?;
        let workload = self.workload(raw.workload.unwrap_or_default())?;
        let expect = self.expect(raw.expect.unwrap_or_default(), &nodes)?;
        let scenario = Scenario {
            name: raw.name,
            description: raw.description,
            protocol,
            validators: raw.validators,
            duration_s: raw.duration,
            timeout_ms_base: raw.timeout_ms_base,
            seed: raw.seed.unwrap_or(1),
            nodes,
            timeline,
            workload,
            expect,
        };
        if scenario.honest().is_empty() {
            return Err(self.err(None, "node: every validator is byzantine; no honest node is left to check".into()));
        }
        Ok(scenario)
    }

    fn nodes(&self, raw: &[Spanned<RawNode>], n: usize) -> Result<Vec<NodeSpec>, SpecError> {
        let mut nodes = vec![NodeSpec::default(); n];
        let mut seen = BTreeSet::new();
        for (k, entry) in raw.iter().enumerate() {
            let line = self.line(entry);
            let r = entry.get_ref();
            if r.index >= n {
                return Err(self.err(line, format!("node[{k}].index: {} is out of range ({})", r.index, range(n))));
            }
            if !seen.insert(r.index) {
                return Err(self.err(line, format!("node[{k}].index: node {} is described twice", r.index)));
            }
            phalanx_config::parse_faults(&r.faults).map_err(|m| self.err(line, format!("node[{k}].faults: {m}")))?;
            nodes[r.index] = NodeSpec {
                faults: r.faults.clone(),
                from_height: r.from_height,
                byzantine: r.byzantine.unwrap_or(!r.faults.is_empty()),
            };
        }
        Ok(nodes)
    }

    fn timeline(&self, raw: &[Spanned<RawAt>], n: usize, duration: f64) -> Result<Vec<TimedAction>, SpecError> {
        let mut out = Vec::new();
        for (k, entry) in raw.iter().enumerate() {
            let line = self.line(entry);
            let r = entry.get_ref();
            let field = |f: &str| format!("at[{k}].{f}");
            if !(r.s >= 0.0 && r.s <= duration) {
                return Err(self
                    .err(line, format!("{}: {} s is outside the run (0 to duration {duration} s)", field("s"), r.s)));
            }
            let action = self.action(r, n, &field).map_err(|m| self.err(line, m))?;
            if r.bind.is_some() && action.node().is_none() {
                return Err(self.err(line, format!("{}: only an action on one node can bind a name", field("as"))));
            }
            if let Some(b) = &r.bind
                && (b.is_empty() || b == "leader" || b.parse::<usize>().is_ok())
            {
                return Err(self.err(
                    line,
                    format!("{}: {b:?} cannot be a name (not empty, \"leader\" or a number)", field("as")),
                ));
            }
            out.push(TimedAction {
                at_ms: (r.s * 1000.0).round() as u64,
                action,
                bind: r.bind.clone(),
                line: line.unwrap_or(0),
            });
        }
        out.sort_by_key(|a| a.at_ms);
        let mut names = BTreeSet::new();
        for a in &out {
            let refs: Vec<&NodeRef> = match &a.action {
                Action::Partition { groups } => groups.iter().flatten().collect(),
                other => other.node().into_iter().collect(),
            };
            for r in refs {
                if let NodeRef::Named(name) = r
                    && !names.contains(name)
                {
                    return Err(self.err(
                        Some(a.line),
                        format!("node {name:?} is not an index, \"leader\", or a name bound by an earlier `as`"),
                    ));
                }
            }
            if let Some(b) = &a.bind {
                names.insert(b.clone());
            }
        }
        Ok(out)
    }

    fn action(&self, r: &RawAt, n: usize, field: &dyn Fn(&str) -> String) -> Result<Action, String> {
        let one = |f: &str| -> Result<NodeRef, String> {
            let v = r.node.as_ref().ok_or_else(|| format!("{}: `{}` needs a node", field("node"), r.action))?;
            node_ref(v, n).map_err(|m| format!("{}: {m}", field(f)))
        };
        let none = |what: &str, present: bool| -> Result<(), String> {
            if present { Err(format!("{}: `{}` takes no {what}", field(what), r.action)) } else { Ok(()) }
        };
        let action = match r.action.as_str() {
            "kill" => Action::Kill { node: one("node")? },
            "restart" => Action::Restart { node: one("node")? },
            "pause" => Action::Pause { node: one("node")? },
            "resume" => Action::Resume { node: one("node")? },
            "heal" => {
                none("node", r.node.is_some())?;
                Action::Heal
            }
            "partition" => {
                none("node", r.node.is_some())?;
                let raw = r.groups.as_ref().ok_or_else(|| format!("{}: `partition` needs groups", field("groups")))?;
                let groups = self.groups(raw, n).map_err(|m| format!("{}: {m}", field("groups")))?;
                Action::Partition { groups }
            }
            other => {
                return Err(format!(
                    "{}: unknown action {other:?}; expected one of kill, restart, pause, resume, partition, heal",
                    field("do")
                ));
            }
        };
        if !matches!(action, Action::Partition { .. }) {
            none("groups", r.groups.is_some())?;
        }
        Ok(action)
    }

    fn groups(&self, raw: &[Vec<toml::Value>], n: usize) -> Result<Vec<Vec<NodeRef>>, String> {
        if raw.is_empty() || raw.iter().any(Vec::is_empty) {
            return Err("give at least one group, and no empty group".into());
        }
        let mut seen = BTreeSet::new();
        let mut groups = Vec::new();
        for g in raw {
            let mut group = Vec::new();
            for v in g {
                let r = node_ref(v, n)?;
                if let NodeRef::Index(i) = r
                    && !seen.insert(i)
                {
                    return Err(format!("node {i} is in two groups"));
                }
                group.push(r);
            }
            groups.push(group);
        }
        Ok(groups)
    }

    fn workload(&self, r: RawWorkload) -> Result<Workload, SpecError> {
        let e = |m: String| self.err(None, format!("workload.{m}"));
        let clients = r.clients.unwrap_or(4);
        if !(1..=64).contains(&clients) {
            return Err(e(format!("clients: {clients} is not between 1 and 64")));
        }
        let keys = r.keys.unwrap_or(3);
        if !(1..=1000).contains(&keys) {
            return Err(e(format!("keys: {keys} is not between 1 and 1000")));
        }
        let (put, get, transfer) = (r.put.unwrap_or(4), r.get.unwrap_or(4), r.transfer.unwrap_or(2));
        if put + get + transfer == 0 {
            return Err(e("put, get, transfer: the weights are all 0".into()));
        }
        if transfer > 0 && clients < 2 {
            return Err(e("transfer: transfers need at least 2 clients".into()));
        }
        let pacing = match (r.think_ms, r.rate) {
            (Some(_), Some(_)) => return Err(e("rate: give think_ms or rate, not both".into())),
            (_, Some(rate)) if !(rate > 0.0 && rate <= 1000.0) => {
                return Err(e(format!("rate: {rate} operations per second is not in (0, 1000]")));
            }
            (_, Some(rate)) => Pacing::Rate(rate),
            (Some(t), None) => Pacing::ThinkMs(t),
            (None, None) => Pacing::ThinkMs(20),
        };
        Ok(Workload { clients, keys, put, get, transfer, pacing })
    }

    fn expect(&self, r: RawExpect, nodes: &[NodeSpec]) -> Result<Expectations, SpecError> {
        let e = |m: String| self.err(None, format!("expect.{m}"));
        let verdict = match r.verdict.as_deref() {
            None | Some("pass") => Expected::Pass,
            Some("fail") => Expected::Fail,
            Some(v) => return Err(e(format!("verdict: {v:?} is not \"pass\" or \"fail\""))),
        };
        let failing = r.failing.unwrap_or_default();
        for c in &failing {
            if !CHECK_NAMES.contains(&c.as_str()) {
                return Err(e(format!("failing: {c:?} is not a check; the checks are {}", CHECK_NAMES.join(", "))));
            }
        }
        if !failing.is_empty() && verdict == Expected::Pass {
            return Err(e("failing: only a scenario with verdict = \"fail\" names failing checks".into()));
        }
        let positive = |name: &str, v: f64| -> Result<f64, SpecError> {
            if v > 0.0 && v <= 3600.0 { Ok(v) } else { Err(e(format!("{name}: {v} s is not in (0, 3600]"))) }
        };
        let liveness_bound_s = positive("liveness_bound", r.liveness_bound.unwrap_or(15.0))?;
        let settle_s = positive("settle", r.settle.unwrap_or(30.0))?;
        let partition_grace_s = r.partition_grace.unwrap_or(2.0);
        if !(0.0..=60.0).contains(&partition_grace_s) {
            return Err(e(format!("partition_grace: {partition_grace_s} s is not in [0, 60]")));
        }
        let default_culprits = || {
            (0..nodes.len())
                .filter(|&i| nodes[i].faults.iter().any(|f| EVIDENT_FAULTS.contains(&f.as_str())))
                .collect::<Vec<_>>()
        };
        let evidence_against = r.evidence_against.unwrap_or_else(default_culprits);
        for &i in &evidence_against {
            if i >= nodes.len() {
                return Err(e(format!("evidence_against: {i} is out of range ({})", range(nodes.len()))));
            }
        }
        Ok(Expectations {
            verdict,
            failing,
            liveness_bound_s,
            liveness_throughout: r.liveness_throughout.unwrap_or(false),
            progress_during_partition: r.progress_during_partition.unwrap_or(true),
            partition_grace_s,
            evidence_against,
            settle_s,
        })
    }
}

fn range(n: usize) -> String {
    format!("the scenario has {n} validators: 0 to {}", n - 1)
}

/// A node given as an index or a name.
fn node_ref(v: &toml::Value, n: usize) -> Result<NodeRef, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 && (*i as usize) < n => Ok(NodeRef::Index(*i as usize)),
        toml::Value::Integer(i) => Err(format!("node {i} is out of range ({})", range(n))),
        toml::Value::String(s) if s == "leader" => Ok(NodeRef::Leader),
        toml::Value::String(s) => Ok(NodeRef::Named(s.clone())),
        other => Err(format!("{other} is not a node: give an index, \"leader\" or a name bound with `as`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "sample"
description = "a sample"
protocol = "hotstuff"
validators = 4
duration = 12.5

[[node]]
index = 2
faults = ["equivocate", "delay=50"]
from_height = 5

[[at]]
s = 6
do = "heal"

[[at]]
s = 3
do = "kill"
node = "leader"
as = "gone"

[[at]]
s = 4
do = "partition"
groups = [[0, "gone"], [1]]

[[at]]
s = 5
do = "restart"
node = "gone"

[workload]
clients = 3
keys = 2
transfer = 0
rate = 20

[expect]
liveness_bound = 7
progress_during_partition = false
"#;

    fn parse(text: &str) -> Result<Scenario, SpecError> {
        Scenario::parse(text, "test.toml")
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_parses_with_defaults_filled_in() {
        let s = parse(GOOD).unwrap();
        assert_eq!((s.name.as_str(), s.protocol, s.validators, s.duration_s), ("sample", Protocol::HotStuff, 4, 12.5));
        assert_eq!(s.nodes[2].faults, vec!["equivocate", "delay=50"]);
        assert_eq!(s.nodes[2].from_height, Some(5));
        assert!(s.nodes[2].byzantine && !s.nodes[0].byzantine);
        assert_eq!(s.honest(), vec![0, 1, 3]);
        let times: Vec<u64> = s.timeline.iter().map(|a| a.at_ms).collect();
        assert_eq!(times, vec![3000, 4000, 5000, 6000], "sorted by time");
        assert_eq!(s.timeline[0].action, Action::Kill { node: NodeRef::Leader });
        assert_eq!(s.timeline[0].bind.as_deref(), Some("gone"));
        assert_eq!(
            s.timeline[1].action,
            Action::Partition {
                groups: vec![vec![NodeRef::Index(0), NodeRef::Named("gone".into())], vec![NodeRef::Index(1)]]
            }
        );
        assert_eq!(s.workload.pacing, Pacing::Rate(20.0));
        assert_eq!(
            (s.workload.clients, s.workload.keys, s.workload.put, s.workload.get, s.workload.transfer),
            (3, 2, 4, 4, 0)
        );
        assert_eq!(s.expect.verdict, Expected::Pass);
        assert_eq!(s.expect.liveness_bound_s, 7.0);
        assert!(!s.expect.progress_during_partition);
        assert_eq!(s.expect.evidence_against, vec![2], "equivocators are expected culprits by default");
        assert_eq!(s.seed, 1);
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_name_and_line() {
        let e = error(&GOOD.replace("keys = 2", "keys = 2\ncolour = \"blue\""));
        assert!(e.starts_with("test.toml:"), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");
        let line = GOOD.lines().position(|l| l == "keys = 2").unwrap() + 2;
        assert!(e.starts_with(&format!("test.toml:{line}:")), "names line {line}: {e}");
    }

    #[test]
    fn an_unknown_action_is_refused_with_the_choices() {
        let e = error(&GOOD.replace("do = \"heal\"", "do = \"explode\""));
        assert!(e.contains("at[0].do: unknown action \"explode\""), "{e}");
        assert!(e.contains("kill, restart, pause, resume, partition, heal"), "{e}");
        // The `[[at]]` header, two lines above `do`.
        let line = GOOD.lines().position(|l| l == "do = \"heal\"").unwrap() - 1;
        assert!(e.starts_with(&format!("test.toml:{line}:")), "names the entry's line {line}: {e}");
    }

    #[test]
    fn node_indices_out_of_range_are_refused() {
        let e = error(&GOOD.replace("index = 2", "index = 4"));
        assert!(e.contains("node[0].index: 4 is out of range (the scenario has 4 validators: 0 to 3)"), "{e}");
        let e = error(&GOOD.replace("groups = [[0, \"gone\"], [1]]", "groups = [[0, 9]]"));
        assert!(e.contains("at[2].groups: node 9 is out of range"), "{e}");
        let e = error(&GOOD.replace("expect]\n", "expect]\nevidence_against = [7]\n"));
        assert!(e.contains("expect.evidence_against: 7 is out of range"), "{e}");
    }

    #[test]
    fn other_mistakes_name_the_field() {
        let cases = [
            (
                GOOD.replace("node = \"gone\"\n", "node = \"lost\"\n"),
                "node \"lost\" is not an index, \"leader\", or a name bound",
            ),
            (GOOD.replace("\"delay=50\"", "\"delay\""), "node[0].faults: fault \"delay\" needs a value"),
            (GOOD.replace("\"equivocate\", ", "\"equivicate\", "), "unknown fault \"equivicate\""),
            (GOOD.replace("protocol = \"hotstuff\"", "protocol = \"paxos\""), "protocol: \"paxos\" is not"),
            (GOOD.replace("s = 6\n", "s = 60\n"), "at[0].s: 60 s is outside the run"),
            (GOOD.replace("rate = 20", "rate = 20\nthink_ms = 5"), "workload.rate: give think_ms or rate, not both"),
            (GOOD.replace("do = \"heal\"", "do = \"heal\"\nnode = 1"), "at[0].node: `heal` takes no node"),
            (GOOD.replace("groups = [[0, \"gone\"], [1]]", "groups = [[0, 1], [1]]"), "node 1 is in two groups"),
            (
                GOOD.replace("liveness_bound = 7", "liveness_bound = 7\nfailing = [\"safety\"]"),
                "expect.failing: only a scenario",
            ),
        ];
        for (text, want) in cases {
            let e = error(&text);
            assert!(e.contains(want), "expected {want:?} in: {e}");
        }
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(path.file_stem().unwrap().to_str(), Some(s.name.as_str()), "file name = scenario name");
                n += 1;
            }
        }
        assert!(n >= 18, "{n} scenarios shipped");
    }
}
