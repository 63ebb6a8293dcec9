//! The scenario runner: a real-process testnet, a workload, a timeline of
//! perturbations, and checks of what came out (`phalanx-testnet run FILE`).
//!
//! # Phases
//!
//! 1. **Setup.** `phalanx testnet` makes the homes (one funded account per
//!    client plus one for the commit probe); each node's
//!    `rpc.commit_timeout_ms` is set to [`live::COMMIT_TIMEOUT`]; each node
//!    starts with its `--fault` flags (on every start, restarts included);
//!    the runner waits until every honest node has committed a block and
//!    every node still runs.
//! 2. **Workload and timeline**, concurrently, for `duration` seconds (time
//!    0 is the workload's start): clients (see [`workload`]) record every
//!    operation; the timeline's actions run at their times ([`perturb`]);
//!    a sampler records the honest nodes' heights ([`sampler`]).
//! 3. **Settle.** Every fault still in force ends (paused nodes resume,
//!    stopped nodes restart, the partition heals: the *final heal*); the
//!    clients' last operations finish; a *commit probe* (a put from its own
//!    account, submitted to an honest node and looked up by hash) must
//!    commit within the liveness bound; every honest node must reach the
//!    highest honest height seen after the probe within `settle` seconds;
//!    if evidence is expected, the runner waits up to `settle` seconds for
//!    it to be committed on every honest node.
//! 4. **Collect and check.** The runner reads each honest node's chain
//!    (`block` for every height from its base to its tip), the genesis
//!    accounts' balances and the evidence, stops the testnet, and checks.
//!
//! # Checks
//!
//! The *honest* nodes are those without faults, unless the file says
//! otherwise (`byzantine` per node).
//!
//! - **safety**: at every height that two honest nodes both hold they hold
//!   the same block id, and the same application hash after it where both
//!   report one. The first difference is reported.
//! - **durability**: every transaction a client was told is committed
//!   (`broadcast_tx_commit` answered with a height) is in every honest
//!   node's final chain at that height.
//! - **bank**: on every honest node the balances of all genesis accounts
//!   add up to their genesis total.
//! - **linearizability**: the key-value history (puts, and the reads
//!   described in [`workload`]) is linearizable, by
//!   `crate::linearizability::Checker`, with every key initially absent.
//! - **liveness**: let T be the time of the last recovery (a heal, restart
//!   or resume, including the final heal), or 0 when there was none or the
//!   file sets `liveness_throughout`. From T to the end of observation (the
//!   probe's commit, or its deadline) the highest honest height never stays
//!   the same for longer than `liveness_bound` seconds, not counting
//!   partitions that must stall; and every honest node reaches the target
//!   height of phase 3.
//! - **no-progress** (only with `progress_during_partition = false`): from
//!   `partition_grace` seconds after a partition starts (blocks already
//!   certified may still commit) until it heals, the highest honest height
//!   does not rise.
//! - **evidence**: the state of every honest node records evidence against
//!   each expected culprit (`status`: `evidence.by_culprit`; evidence is
//!   recorded by a block, so every honest replica holds it), and none
//!   against an honest validator; nor has any honest node detected
//!   evidence against an honest validator (`evidence`: `detected`).
//! - **processes**: no honest node's process stopped by itself (the runner
//!   looks before each action, at the final heal and after the run; such a
//!   node is left down, not restarted).
//!
//! The verdict passes when every check passes. A scenario states whether
//! it expects to pass or fail (and which checks must fail); the exit code
//! of `phalanx-testnet run` says whether the verdict is as expected.

pub mod checks;
pub mod collect;
pub mod live;
pub mod perturb;
pub mod report;
pub mod sampler;
pub mod spec;
pub mod workload;

pub use report::Report;
pub use spec::{Scenario, SpecError};

use crate::cluster::Cluster;
use crate::linearizability as lin;
use anyhow::{Context as _, bail};
use checks::{Check, LivenessInput, StallWindow};
use live::{QUICK, Shared};
use perturb::{Event, Perturber};
use phalanx_crypto::{Hash, Keypair, PublicKey, keyfile};
use phalanx_node::app::{Op, Transaction};
use report::{NodeReport, Timings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{Client, OpRecord};

/// How long the nodes may take to commit their first block.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// How a run is done.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The `phalanx` binary.
    pub bin: PathBuf,
    /// Where to write the report (default `./scenario-out/<name>-<time>/`).
    pub out_dir: Option<PathBuf>,
    /// Keep the testnet's directory (homes, data, logs) after the run.
    pub keep: bool,
}

/// Runs `scenario` (read from `file`, if it was) and writes its report. An
/// `Err` is a run that could not be carried out (setup failed, a timeline
/// action failed), not a failed check.
pub async fn run(s: &Scenario, file: Option<&Path>, opts: &RunOptions) -> anyhow::Result<Report> {
    let began = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let out_dir = opts.out_dir.clone().unwrap_or_else(|| default_out(&s.name, &started_at));
    let (name, n, protocol) = (&s.name, s.validators, s.protocol.as_str());
    eprintln!("scenario {name}: {n} {protocol} validators, {} s of workload", s.duration_s);
    let mut cluster = setup(s, opts).await?;
    let shared = Arc::new(shared_state(s, &cluster).await?);
    let setup_s = began.elapsed().as_secs_f64();
    let ran = execute(s, &mut cluster, &shared, &out_dir).await?;
    let check_began = Instant::now();
    let found = collect_all(s, &cluster, &shared).await?;
    let checks = run_checks(s, &shared, &ran, &found);
    copy_logs(&cluster, &out_dir.join("logs"))?;
    let testnet_dir = opts.keep.then(|| cluster.keep());
    drop(cluster);
    let (passed, as_expected, expectation) = Report::judge(&checks, s.expect.verdict, &s.expect.failing);
    let (committed_txs, repeated_txs) = collect::tx_counts(&found.chains);
    let timings = Timings {
        setup_s,
        workload_s: ran.workload_end_s,
        settle_s: ran.settle_s,
        check_s: check_began.elapsed().as_secs_f64(),
        total_s: began.elapsed().as_secs_f64(),
    };
    let report = Report {
        scenario: s.clone(),
        file: file.map(Path::to_path_buf),
        started_at,
        passed,
        expected: s.expect.verdict,
        as_expected,
        expectation,
        checks,
        timings,
        operations: report::op_counts(&ran.records),
        committed_txs,
        repeated_txs,
        nodes: found.nodes.clone(),
        events: ran.events,
        evidence: found.evidence_map(),
        out_dir: out_dir.clone(),
        testnet_dir,
    };
    report::write(&out_dir, &report, &ran.records, &ran.samples, ran.settled.end_s)?;
    Ok(report)
}

/// What phases 2 and 3 recorded.
struct Ran {
    records: Vec<OpRecord>,
    events: Vec<Event>,
    samples: Vec<sampler::Sample>,
    settled: Settled,
    /// Seconds from the workload's start.
    workload_end_s: f64,
    settle_s: f64,
}

/// Phases 2 and 3: the workload with the timeline, the final heal, the
/// settle phase. On a failed action, the nodes' logs are copied to
/// `out_dir` and the error says where.
async fn execute(s: &Scenario, cluster: &mut Cluster, shared: &Arc<Shared>, out_dir: &Path) -> anyhow::Result<Ran> {
    let mut w = Workload::start(s, cluster, shared.clone())?;
    let phase = async {
        let mut p = Perturber::new(cluster, shared.clone());
        p.run(&s.timeline).await?;
        tokio::time::sleep_until((shared.t0 + Duration::from_secs_f64(s.duration_s)).into()).await;
        let workload_end = shared.now_us() as f64 / 1e6;
        p.heal_all().await?;
        anyhow::Ok((p.events, workload_end))
    };
    let (mut events, workload_end_s) = match phase.await {
        Ok(v) => v,
        Err(e) => {
            w.abort();
            let logs = out_dir.join("logs");
            return Err(match copy_logs(cluster, &logs) {
                Ok(()) => e.context(format!("the nodes' logs are in {}", logs.display())),
                Err(_) => e,
            });
        }
    };
    let records = w.finish().await;
    let settled = settle(s, cluster, shared).await;
    let settle_s = shared.now_us() as f64 / 1e6 - workload_end_s;
    let samples = w.stop_sampler().await;
    perturb::note_exits(cluster, shared, &mut events);
    Ok(Ran { records, events, samples, settled, workload_end_s, settle_s })
}

fn default_out(name: &str, started_at: &str) -> PathBuf {
    let stamp: String = started_at.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    PathBuf::from("scenario-out").join(format!("{name}-{stamp}"))
}

/// Generates and starts the testnet; waits until the honest nodes commit.
async fn setup(s: &Scenario, opts: &RunOptions) -> anyhow::Result<Cluster> {
    if !opts.bin.is_file() {
        bail!(
            "the phalanx binary {} does not exist; build it with `cargo build -p phalanx-node --bin phalanx` or give --bin",
            opts.bin.display()
        );
    }
    let accounts = (s.workload.clients + 1).to_string();
    let mut extra = vec!["--accounts", &accounts, "--protocol", s.protocol.as_str()];
    let timeout = s.timeout_ms_base.map(|t| t.to_string());
    if let Some(t) = &timeout {
        extra.extend(["--timeout-ms-base", t]);
    }
    let mut c = Cluster::generate(&opts.bin, s.validators, &extra)?;
    for (i, n) in s.nodes.iter().enumerate() {
        set_commit_timeout(&c.nodes[i].home)?;
        for f in &n.faults {
            c.nodes[i].start_args.extend(["--fault".to_owned(), f.clone()]);
        }
        if let Some(h) = n.from_height {
            c.nodes[i].start_args.extend(["--fault-from-height".to_owned(), h.to_string()]);
        }
    }
    c.start_all()?;
    let honest = s.honest();
    for &i in &honest {
        c.wait_height(i, 1, START_DEADLINE).await.with_context(|| format!("node{i} did not start committing"))?;
    }
    for i in 0..s.validators {
        if !c.is_running(i) {
            bail!("node{i} exited at start; its log:\n{}", tail(&c.log(i), 15));
        }
    }
    Ok(c)
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Writes [`live::COMMIT_TIMEOUT`] into a home's node.toml.
fn set_commit_timeout(home: &Path) -> anyhow::Result<()> {
    let path = home.join("config/node.toml");
    let toml = std::fs::read_to_string(&path)?;
    let line = toml
        .lines()
        .find(|l| l.trim_start().starts_with("commit_timeout_ms"))
        .context("node.toml has no commit_timeout_ms")?;
    let new = format!("commit_timeout_ms = {}", live::COMMIT_TIMEOUT.as_millis());
    std::fs::write(&path, toml.replace(line, &new))?;
    Ok(())
}

/// Reads every node's validator key and the chain id; starts the clock.
async fn shared_state(s: &Scenario, c: &Cluster) -> anyhow::Result<Shared> {
    let mut keys = Vec::new();
    let mut chain_id = String::new();
    for i in 0..s.validators {
        let st = c.call(i, "status", Value::Null).await.map_err(|e| anyhow::anyhow!("status of node{i}: {e}"))?;
        keys.push(st["node_info"]["validator"].as_str().context("status has no node_info.validator")?.to_owned());
        chain_id = st["node_info"]["chain_id"].as_str().context("status has no chain id")?.to_owned();
    }
    let rpcs = c.nodes.iter().map(|n| n.rpc.clone()).collect();
    let honest = (0..s.validators).map(|i| !s.nodes[i].byzantine).collect();
    Ok(Shared::new(s.protocol, chain_id, rpcs, keys, honest))
}

/// The clients and the sampler, running.
struct Workload {
    clients: Vec<tokio::task::JoinHandle<Vec<OpRecord>>>,
    sampler: tokio::task::JoinHandle<Vec<sampler::Sample>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Workload {
    fn start(s: &Scenario, c: &Cluster, shared: Arc<Shared>) -> anyhow::Result<Workload> {
        let keys: Vec<Keypair> =
            (0..s.workload.clients).map(|j| keyfile::read(&c.client_key(j))).collect::<Result<_, _>>()?;
        let accounts: Arc<Vec<PublicKey>> = Arc::new(keys.iter().map(Keypair::public).collect());
        let end = shared.t0 + Duration::from_secs_f64(s.duration_s);
        let clients = keys
            .into_iter()
            .enumerate()
            .map(|(j, key)| {
                let client = Client::new(j, key, accounts.clone(), shared.clone(), s.workload.clone(), s.seed);
                tokio::spawn(client.run(end))
            })
            .collect();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let sampler = tokio::spawn(sampler::run(shared, rx));
        Ok(Workload { clients, sampler, stop })
    }

    fn abort(&self) {
        for c in &self.clients {
            c.abort();
        }
        self.sampler.abort();
    }

    /// Waits for the clients' last operations; their records in time order.
    async fn finish(&mut self) -> Vec<OpRecord> {
        let mut all = Vec::new();
        for c in self.clients.drain(..) {
            all.extend(c.await.expect("a client panicked"));
        }
        all.sort_by_key(|r| (r.invoke_us, r.client));
        all
    }

    async fn stop_sampler(self) -> Vec<sampler::Sample> {
        let _ = self.stop.send(true);
        self.sampler.await.expect("the sampler panicked")
    }
}

/// What the settle phase found.
struct Settled {
    /// When the probe committed (or its deadline), seconds.
    end_s: f64,
    /// The height every honest node had to reach.
    target: u64,
    /// Each honest node's height after the catch-up wait.
    final_heights: Vec<(usize, Option<u64>)>,
}

/// Phase 3: the commit probe, catch-up and the evidence wait.
async fn settle(s: &Scenario, c: &Cluster, shared: &Arc<Shared>) -> Settled {
    let probe_key = keyfile::read(&c.client_key(s.workload.clients)).ok();
    let deadline = Instant::now() + Duration::from_secs_f64(s.expect.liveness_bound_s);
    let probed = match &probe_key {
        Some(k) => probe(shared, k, deadline).await,
        None => None,
    };
    let end_s = shared.now_us() as f64 / 1e6;
    match probed {
        Some(h) => eprintln!("  {end_s:6.1} s  commit probe committed at height {h}"),
        None => eprintln!("  {end_s:6.1} s  commit probe did not commit within {} s", s.expect.liveness_bound_s),
    }
    let honest = s.honest();
    let mut target = probed.unwrap_or(0);
    for &i in &honest {
        target = target.max(shared.height(i).await.unwrap_or(0));
    }
    let settle_end = Instant::now() + Duration::from_secs_f64(s.expect.settle_s);
    let mut final_heights = Vec::new();
    for &i in &honest {
        let mut h = shared.height(i).await;
        while h.is_none_or(|h| h < target) && Instant::now() < settle_end {
            tokio::time::sleep(sampler::EVERY).await;
            h = shared.height(i).await;
        }
        final_heights.push((i, h));
    }
    if !s.expect.evidence_against.is_empty() {
        wait_evidence(s, shared, Instant::now() + Duration::from_secs_f64(s.expect.settle_s)).await;
    }
    Settled { end_s, target, final_heights }
}

/// Commits one put from the probe account; its height, or `None` by the
/// deadline. The same signed bytes go to each honest node in turn until
/// one admits them; then the runner looks the hash up on every honest node.
async fn probe(shared: &Shared, key: &Keypair, deadline: Instant) -> Option<u64> {
    let mut bytes = None;
    while Instant::now() < deadline {
        for i in shared.serving_honest() {
            if bytes.is_none() {
                let r = shared.call(i, "query", json!({ "account": key.public().to_hex() }), QUICK).await;
                let Some(nonce) = r.ok().and_then(|r| r["nonce"].as_u64()) else { continue };
                let op = Op::Put { key: b"_probe".to_vec(), value: b"after the run".to_vec() };
                let tx = Transaction { chain_id: shared.chain_id.clone(), sender: key.public(), nonce, op };
                bytes = Some(tx.sign(key).encode());
            }
            let tx = bytes.as_ref().expect("signed above");
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, tx);
            let _ = shared.call(i, "broadcast_tx_sync", json!({ "tx": b64 }), QUICK).await;
            let hash = Hash::digest(tx).to_hex();
            if let Ok(r) = shared.call(i, "tx", json!({ "hash": hash }), QUICK).await {
                return r["height"].as_u64();
            }
        }
        tokio::time::sleep(sampler::EVERY).await;
    }
    None
}

/// Waits until every honest node holds committed evidence against every
/// expected culprit, or the deadline.
async fn wait_evidence(s: &Scenario, shared: &Shared, deadline: Instant) {
    let culprits: Vec<&String> = s.expect.evidence_against.iter().map(|&c| &shared.keys[c]).collect();
    while Instant::now() < deadline {
        let mut all = true;
        for i in s.honest() {
            let held = collect::evidence(shared, i).await.unwrap_or_default();
            all &= culprits.iter().all(|k| held.recorded_by_culprit.get(*k).is_some_and(|&n| n > 0));
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What phase 4 read.
struct Found {
    chains: Vec<collect::NodeChain>,
    genesis: Vec<(String, u64)>,
    balances: Vec<(usize, Result<Vec<u64>, String>)>,
    evidence: Vec<(usize, Result<collect::HeldEvidence, String>)>,
    nodes: Vec<NodeReport>,
}

impl Found {
    fn evidence_map(&self) -> std::collections::BTreeMap<String, collect::HeldEvidence> {
        self.evidence.iter().filter_map(|(n, r)| Some((format!("node{n}"), r.as_ref().ok()?.clone()))).collect()
    }
}

async fn collect_all(s: &Scenario, c: &Cluster, shared: &Arc<Shared>) -> anyhow::Result<Found> {
    let honest = s.honest();
    let genesis = collect::genesis_accounts(&c.nodes[0].home.join("config/genesis.json"))?;
    let chains = collect::chains(shared, &honest).await;
    let mut balances = Vec::new();
    let mut evidence = Vec::new();
    for &i in &honest {
        balances.push((i, collect::balances(shared, i, &genesis).await));
        evidence.push((i, collect::evidence(shared, i).await));
    }
    let mut nodes = Vec::new();
    for i in 0..s.validators {
        let held = evidence
            .iter()
            .find(|(n, _)| *n == i)
            .and_then(|(_, r)| r.as_ref().ok().map(|h| h.recorded_by_culprit.values().sum()));
        nodes.push(NodeReport {
            index: i,
            validator: shared.keys[i].clone(),
            honest: shared.honest[i],
            faults: s.nodes[i].faults.clone(),
            final_height: shared.height(i).await,
            evidence: held,
            invalid_messages_from: if shared.honest[i] { collect::invalid_messages(shared, i).await } else { None },
        });
    }
    Ok(Found { chains, genesis, balances, evidence, nodes })
}

/// Every check, in report order.
fn run_checks(s: &Scenario, shared: &Shared, ran: &Ran, found: &Found) -> Vec<Check> {
    let (records, events, settled) = (&ran.records, &ran.events, &ran.settled);
    let commits = sampler::commit_events(&ran.samples);
    let stalls = stall_windows(events, settled.end_s);
    let exempt: Vec<(f64, f64)> = if s.expect.progress_during_partition {
        Vec::new()
    } else {
        stalls.iter().map(|w| (w.from_s, w.to_s)).collect()
    };
    let last_recovery = events.iter().rev().find(|e| e.recovery);
    let (from_s, from_label) = match last_recovery {
        Some(e) if !s.expect.liveness_throughout => (e.at_s, e.label.clone()),
        _ => (0.0, "the workload start".to_owned()),
    };
    let liveness = LivenessInput {
        commits: &commits,
        from_s,
        from_label,
        end_s: settled.end_s,
        bound_s: s.expect.liveness_bound_s,
        exempt: &exempt,
        final_heights: &settled.final_heights,
        target: settled.target,
        settle_s: s.expect.settle_s,
    };
    let history = checks::kv_history(records);
    let mut out = vec![
        checks::safety(&found.chains),
        checks::durability(&checks::acked(records), &found.chains),
        checks::bank(&found.genesis, &found.balances),
        checks::linearizability(&history, &lin::Checker::new()),
        checks::liveness(&liveness),
    ];
    if !s.expect.progress_during_partition {
        out.push(checks::no_progress(&stalls, &commits, s.expect.partition_grace_s));
    }
    out.push(checks::evidence(&s.expect.evidence_against, &shared.keys, &s.honest(), &found.evidence));
    out.push(checks::processes(events, &shared.honest));
    out
}

/// Partition windows: from each partition to the next heal (or the end).
fn stall_windows(events: &[Event], end_s: f64) -> Vec<StallWindow> {
    let mut out = Vec::new();
    let mut open: Option<&Event> = None;
    for e in events {
        match e.action.as_str() {
            "partition" => {
                if let Some(p) = open.replace(e) {
                    out.push(StallWindow { from_s: p.at_s, to_s: e.at_s, label: p.label.clone() });
                }
            }
            "heal" => {
                if let Some(p) = open.take() {
                    out.push(StallWindow { from_s: p.at_s, to_s: e.at_s, label: p.label.clone() });
                }
            }
            _ => {}
        }
    }
    if let Some(p) = open {
        out.push(StallWindow { from_s: p.at_s, to_s: end_s, label: p.label.clone() });
    }
    out
}

/// Copies every node's log into `dir`.
fn copy_logs(c: &Cluster, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, n) in c.nodes.iter().enumerate() {
        if n.log.exists() {
            std::fs::copy(&n.log, dir.join(format!("node{i}.log")))?;
        }
    }
    Ok(())
}
