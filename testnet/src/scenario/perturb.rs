//! Carries out the timeline: kills, restarts, pauses, resumes, partitions
//! and heals, each at its time, and records what was done when.
//!
//! Partitions use the nodes' `admin_partition` RPC: every node in a group
//! drops all traffic with the validators outside it. A node that is down or
//! paused when a partition starts or ends cannot be told; it is brought in
//! line as soon as it is restarted (once its RPC answers) or resumed. A
//! restarted process starts unpartitioned, so for the moment between its
//! start and that call it may exchange messages across the partition.

use super::live::{NodeState, QUICK, Shared};
use super::spec::{Action, NodeRef, TimedAction};
use crate::cluster::Cluster;
use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a restarted node may take to answer RPC.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long to look for a leader that is up.
const LEADER_DEADLINE: Duration = Duration::from_secs(15);
/// Poll period of those waits.
const POLL: Duration = Duration::from_millis(50);

/// One perturbation as carried out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// When it was done, seconds since the workload began.
    pub at_s: f64,
    /// When the timeline asked for it (`None`: the final heal).
    pub planned_s: Option<f64>,
    /// `kill`, `restart`, `pause`, `resume`, `partition`, `heal`.
    pub action: String,
    /// The nodes it touched.
    pub nodes: Vec<usize>,
    /// A readable description: `kill node1 (the leader)`.
    pub label: String,
    /// Heal, restart or resume: ends a fault.
    pub recovery: bool,
}

/// Executes actions against a cluster.
pub struct Perturber<'a> {
    cluster: &'a mut Cluster,
    shared: Arc<Shared>,
    names: BTreeMap<String, usize>,
    /// Group of each node while a partition holds.
    groups: Option<Vec<usize>>,
    /// The peers each running node was told to drop (empty: none).
    applied: Vec<Vec<String>>,
    /// Nodes that stopped by themselves and were not restarted since.
    exited: BTreeSet<usize>,
    pub events: Vec<Event>,
}

impl<'a> Perturber<'a> {
    /// Acts on `cluster`; no partition, nothing named yet.
    pub fn new(cluster: &'a mut Cluster, shared: Arc<Shared>) -> Perturber<'a> {
        let n = shared.rpcs.len();
        Perturber {
            cluster,
            shared,
            names: BTreeMap::new(),
            groups: None,
            applied: vec![Vec::new(); n],
            exited: BTreeSet::new(),
            events: Vec::new(),
        }
    }

    /// Runs `timeline` on schedule (times from the workload's start).
    pub async fn run(&mut self, timeline: &[TimedAction]) -> anyhow::Result<()> {
        for a in timeline {
            let at = self.shared.t0 + Duration::from_millis(a.at_ms);
            tokio::time::sleep_until(at.into()).await;
            let planned = a.at_ms as f64 / 1000.0;
            self.act(a, planned).await.with_context(|| {
                format!("timeline action `{}` at {planned} s (line {}) failed", a.action.verb(), a.line)
            })?;
        }
        Ok(())
    }

    async fn act(&mut self, a: &TimedAction, planned_s: f64) -> anyhow::Result<()> {
        self.exited.extend(note_exits(self.cluster, &self.shared, &mut self.events));
        let planned = Some(planned_s);
        match &a.action {
            Action::Partition { groups } => self.partition(groups, planned).await?,
            Action::Heal => self.heal(planned).await?,
            other => {
                let r = other.node().expect("single-node action");
                let i = self.resolve(r).await?;
                if let Some(name) = &a.bind {
                    self.names.insert(name.clone(), i);
                }
                let how = match r {
                    NodeRef::Index(_) => String::new(),
                    NodeRef::Leader => " (the leader)".into(),
                    NodeRef::Named(n) => format!(" ({n})"),
                };
                match other {
                    Action::Kill { .. } => self.kill(i, planned, &how)?,
                    Action::Restart { .. } => self.restart(i, planned, &how).await?,
                    Action::Pause { .. } => self.pause(i, planned, &how)?,
                    Action::Resume { .. } => self.resume(i, planned, &how).await?,
                    _ => unreachable!("single-node actions only"),
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, action: &str, nodes: Vec<usize>, label: String, planned_s: Option<f64>) {
        record(&self.shared, &mut self.events, action, nodes, label, planned_s);
    }

    /// The node a reference names now.
    async fn resolve(&self, r: &NodeRef) -> anyhow::Result<usize> {
        match r {
            NodeRef::Index(i) => Ok(*i),
            NodeRef::Named(n) => self.names.get(n).copied().with_context(|| format!("no node is named {n:?} yet")),
            NodeRef::Leader => self.leader().await,
        }
    }

    /// The leader an honest serving node reports, once it is a node that is
    /// up and not paused.
    async fn leader(&self) -> anyhow::Result<usize> {
        let end = Instant::now() + LEADER_DEADLINE;
        let mut last = String::from("no honest node answered");
        while Instant::now() < end {
            for i in self.shared.serving_honest() {
                let Ok(s) = self.shared.call(i, "status", Value::Null, QUICK).await else { continue };
                let Some(key) = s["consensus"]["leader"].as_str() else {
                    last = format!("node{i} knows no leader");
                    continue;
                };
                match self.shared.keys.iter().position(|k| k == key) {
                    Some(l) if self.shared.state(l).serving() => return Ok(l),
                    Some(l) => last = format!("node{i} names node{l}, which is down or paused"),
                    None => last = format!("node{i} names leader {key}, not a genesis validator"),
                }
            }
            tokio::time::sleep(POLL).await;
        }
        bail!("no leader that is up within {LEADER_DEADLINE:?}: {last}")
    }

    fn kill(&mut self, i: usize, planned: Option<f64>, how: &str) -> anyhow::Result<()> {
        if self.exited.contains(&i) {
            self.record("kill", vec![i], format!("kill node{i}{how}: not needed, it had exited by itself"), planned);
            return Ok(());
        }
        if !self.shared.state(i).up {
            bail!("node{i} is not running");
        }
        self.shared.set_state(i, NodeState { up: false, paused: false });
        self.cluster.kill(i)?;
        self.applied[i].clear();
        self.record("kill", vec![i], format!("kill node{i}{how}"), planned);
        Ok(())
    }

    async fn restart(&mut self, i: usize, planned: Option<f64>, how: &str) -> anyhow::Result<()> {
        if self.cluster.is_running(i) {
            self.shared.set_state(i, NodeState { up: false, paused: false });
            self.cluster.kill(i)?;
        }
        self.applied[i].clear();
        self.exited.remove(&i);
        self.cluster.start(i)?;
        self.record("restart", vec![i], format!("restart node{i}{how}"), planned);
        self.wait_answering(i).await?;
        self.shared.set_state(i, NodeState { up: true, paused: false });
        self.reconcile(i).await
    }

    /// Waits until node `i` answers RPC, failing if it exits.
    async fn wait_answering(&mut self, i: usize) -> anyhow::Result<()> {
        let end = Instant::now() + START_DEADLINE;
        loop {
            if self.shared.call(i, "health", Value::Null, QUICK).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.cluster.exited(i) {
                bail!(
                    "node{i} exited after its restart ({status}); see its log {}",
                    self.cluster.nodes[i].log.display()
                );
            }
            if Instant::now() > end {
                bail!("node{i} did not answer RPC within {START_DEADLINE:?} of its restart");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn pause(&mut self, i: usize, planned: Option<f64>, how: &str) -> anyhow::Result<()> {
        if self.exited.contains(&i) {
            self.record(
                "pause",
                vec![i],
                format!("pause node{i}{how}: not possible, it had exited by itself"),
                planned,
            );
            return Ok(());
        }
        if !self.shared.state(i).serving() {
            bail!("node{i} is down or already paused");
        }
        self.shared.set_state(i, NodeState { up: true, paused: true });
        self.cluster.pause(i)?;
        self.record("pause", vec![i], format!("pause node{i}{how}"), planned);
        Ok(())
    }

    async fn resume(&mut self, i: usize, planned: Option<f64>, how: &str) -> anyhow::Result<()> {
        if !self.shared.state(i).paused {
            bail!("node{i} is not paused");
        }
        self.cluster.resume(i)?;
        self.shared.set_state(i, NodeState { up: true, paused: false });
        self.record("resume", vec![i], format!("resume node{i}{how}"), planned);
        self.reconcile(i).await
    }

    async fn partition(&mut self, groups: &[Vec<NodeRef>], planned: Option<f64>) -> anyhow::Result<()> {
        let n = self.shared.rpcs.len();
        let mut of = vec![groups.len(); n];
        let mut resolved = Vec::new();
        for (g, members) in groups.iter().enumerate() {
            let mut list = Vec::new();
            for r in members {
                let i = self.resolve(r).await?;
                if of[i] != groups.len() {
                    bail!("node{i} is named in two groups");
                }
                of[i] = g;
                list.push(i);
            }
            resolved.push(list);
        }
        let rest: Vec<usize> = (0..n).filter(|&i| of[i] == groups.len()).collect();
        if !rest.is_empty() {
            resolved.push(rest);
        }
        let label = resolved.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join(" | ");
        self.groups = Some(of);
        self.record("partition", (0..n).collect(), format!("partition {label}"), planned);
        for i in 0..n {
            self.reconcile(i).await?;
        }
        Ok(())
    }

    async fn heal(&mut self, planned: Option<f64>) -> anyhow::Result<()> {
        let n = self.shared.rpcs.len();
        self.groups = None;
        self.record("heal", (0..n).collect(), "heal the partition".into(), planned);
        for i in 0..n {
            self.reconcile(i).await?;
        }
        Ok(())
    }

    /// Tells node `i` (if it can answer) which peers to drop now.
    async fn reconcile(&mut self, i: usize) -> anyhow::Result<()> {
        if !self.shared.state(i).serving() {
            return Ok(());
        }
        let want: Vec<String> = match &self.groups {
            Some(of) => (0..of.len()).filter(|&j| of[j] != of[i]).map(|j| self.shared.keys[j].clone()).collect(),
            None => Vec::new(),
        };
        if want == self.applied[i] {
            return Ok(());
        }
        self.shared
            .call(i, "admin_partition", json!({ "peers": want }), QUICK)
            .await
            .map_err(|e| anyhow::anyhow!("admin_partition on node{i}: {e}"))?;
        self.applied[i] = want;
        Ok(())
    }

    /// Ends every fault still in force: resumes paused nodes, restarts
    /// stopped ones (with their fault flags), heals the partition. Returns
    /// whether there was anything to do.
    pub async fn heal_all(&mut self) -> anyhow::Result<bool> {
        self.exited.extend(note_exits(self.cluster, &self.shared, &mut self.events));
        let n = self.shared.rpcs.len();
        let mut did = false;
        for i in 0..n {
            let s = self.shared.state(i);
            if self.exited.contains(&i) {
                // Left down: a node that stopped by itself is a finding,
                // not something to heal.
                continue;
            }
            if s.paused {
                self.resume(i, None, " (final heal)").await?;
                did = true;
            } else if !s.up {
                self.restart(i, None, " (final heal)").await?;
                did = true;
            }
        }
        if self.groups.is_some() {
            self.heal(None).await?;
            did = true;
        }
        Ok(did)
    }
}

/// Appends an event, printing it.
fn record(
    shared: &Shared,
    events: &mut Vec<Event>,
    action: &str,
    nodes: Vec<usize>,
    label: String,
    planned_s: Option<f64>,
) {
    let at_s = shared.now_us() as f64 / 1e6;
    let recovery = matches!(action, "heal" | "restart" | "resume");
    eprintln!("  {at_s:6.1} s  {label}");
    events.push(Event { at_s, planned_s, action: action.into(), nodes, label, recovery });
}

/// Records an `exited` event for each node the runner believed up whose
/// process has stopped by itself (a crash, an abort, a refusal to go on),
/// and marks it down. Returns those nodes.
pub fn note_exits(cluster: &mut Cluster, shared: &Shared, events: &mut Vec<Event>) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..shared.rpcs.len() {
        if !shared.state(i).up {
            continue;
        }
        if let Some(status) = cluster.exited(i) {
            shared.set_state(i, NodeState { up: false, paused: false });
            let label = format!("node{i} exited by itself ({status})");
            record(shared, events, "exited", vec![i], label, None);
            out.push(i);
        }
    }
    out
}
