//! End-to-end benchmark: offered load against a real testnet, committed
//! throughput and latency out (`phalanx-bench`, `scripts/bench.sh`).
//!
//! # Method
//!
//! For each offered rate R the benchmark
//!
//! 1. starts a fresh testnet with the real CLI (`phalanx testnet --base-port
//!    0`, one `phalanx start` process per validator, homes under the data
//!    directory), or attaches to running validators (`attach`); a sweep gets
//!    a fresh testnet per rate, so each rate starts from an empty chain and
//!    mempool and each node's peak RSS is that rate's;
//! 2. makes every transaction of the run before the clock starts
//!    (R × (warm-up + window) of them; `kv` ones signed, see
//!    [`workload`](self::workload));
//! 3. subscribes to every validator's committed blocks over WebSocket;
//! 4. sends open loop: transaction `i` is scheduled at `t0 + i / R`, over
//!    `connections` HTTP connections spread over the validators, as
//!    JSON-RPC batches of `broadcast_tx_sync` (see [`sender`]); the sender
//!    never waits for commits, only for the node's answer to a batch; or,
//!    with [`BenchConfig::closed_loop`], runs one client per connection,
//!    each with one `broadcast_tx_commit` out at a time
//!    ([`sender::run_client`]);
//! 5. after the warm-up, measures a window of `duration`, then stops sending
//!    and drains: waits until every accepted transaction has committed, at
//!    most `drain`.
//!
//! # Definitions
//!
//! - **Latency** of a transaction: from its *scheduled* send time to the
//!   first commit notification of it from any validator, as read by the
//!   benchmark. It includes client-side queueing when the sender falls
//!   behind the schedule (the send lag is reported separately), the RPC
//!   round trip, mempool, consensus, execution, the fsync of the commit and
//!   the notification. Percentiles are over the transactions scheduled in
//!   the window that committed.
//! - **Committed tx/s**: our transactions whose first commit notification
//!   arrived in the window, divided by its length. **Blocks/s** and **mean
//!   block size** (transactions per block) are over the blocks first notified
//!   in the window.
//! - **Lost**: accepted by a validator that stayed up (`broadcast_tx_sync`
//!   answered without error) and not committed by the end of the drain. A
//!   transaction accepted only by a node the benchmark killed is counted
//!   apart (its mempool died with it), and so, for `kv`, is one that cannot
//!   commit because an earlier nonce of its account did not (stranded).
//!   Refused transactions are counted by error code.
//! - **Duplicate**: a transaction that one validator's stream reports in two
//!   different blocks. The benchmark also counts transactions two validators
//!   report at different heights, and heights with two block ids.
//! - **CPU seconds** of a validator: the growth of its utime + stime
//!   (`/proc/PID/stat`) over the window; **peak RSS**: its `VmHWM` at the
//!   end. Validators are found by the process listening on their RPC port,
//!   so both are omitted where that process is not visible.
//!
//! A run fails ([`Report::ok`]) if any transaction was lost or committed
//! twice. The figures are measurements, never test assertions.

pub mod commits;
pub mod procfs;
pub mod report;
pub mod sender;
pub mod track;
pub mod workload;

use crate::cluster::{Cluster, call};
use anyhow::{Context as _, bail};
use commits::StreamStats;
use report::{CompactFigures, KillFigures, Machine, NodeFigures, Outcomes, Params, Percentiles, RateResult, Report};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use track::Tracker;
use workload::Workload;

/// The chain id of testnets the benchmark starts.
pub const CHAIN_ID: &str = "phalanx-bench";

/// The application transactions are made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// Signed `Put`s of the key-value application.
    Kv,
    /// Opaque payloads of the `noop` application.
    Noop,
}

impl std::str::FromStr for App {
    type Err = String;
    fn from_str(s: &str) -> Result<App, String> {
        match s {
            "kv" => Ok(App::Kv),
            "noop" => Ok(App::Noop),
            other => Err(format!("unknown app {other:?}: use kv or noop")),
        }
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            App::Kv => "kv",
            App::Noop => "noop",
        })
    }
}

/// What to measure and how.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The `phalanx` binary.
    pub bin: PathBuf,
    /// `hotstuff` or `raft` (attached testnets report their own).
    pub protocol: String,
    pub validators: usize,
    /// Ignored when attaching: the chain's own application is used.
    pub app: App,
    /// Offered rates (transactions per second), one measured window each.
    pub rates: Vec<f64>,
    /// The measured window.
    pub duration: Duration,
    pub warmup: Duration,
    /// Longest wait after the last send for accepted transactions to commit.
    pub drain: Duration,
    pub connections: usize,
    /// `noop` payload size.
    pub payload_bytes: usize,
    /// `kv` signing accounts (`None`: enough for the rate, see
    /// [`BenchConfig::accounts_for`]).
    pub clients: Option<usize>,
    /// Parent of the testnet homes.
    pub data_dir: PathBuf,
    /// Keep the testnet homes afterwards.
    pub keep: bool,
    /// RPC addresses of a running testnet to use instead of starting one.
    pub attach: Vec<String>,
    /// SIGKILL the leader this long into the window.
    pub kill_leader_at: Option<Duration>,
    /// The RPC method transactions are submitted with.
    pub submit: Submit,
    /// How often each connection sends what is due.
    pub tick: Duration,
    /// Most transactions in one batch request.
    pub max_batch: usize,
    /// Print progress to stderr.
    pub progress: bool,
    /// Closed loop instead of open: each of the `connections` clients has
    /// one `broadcast_tx_commit` out at a time, with its own signing
    /// account; the rate is then a ceiling (see [`sender::run_client`]).
    pub closed_loop: bool,
    /// `consensus.timeout_ms_base` of a started testnet (Raft: the election
    /// timeout); `None`: the chain default.
    pub timeout_ms_base: Option<u64>,
}

/// How the benchmark submits transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Submit {
    /// `broadcast_txs`: all that is due on a connection in one call, one
    /// answer per transaction.
    Txs,
    /// A JSON-RPC batch of `broadcast_tx_sync` calls, one per transaction.
    Sync,
    /// A JSON-RPC batch of `broadcast_tx_async` calls (refusals are then
    /// invisible and count as lost).
    Async,
}

impl Submit {
    /// The RPC method.
    pub fn method(self) -> &'static str {
        match self {
            Submit::Txs => "broadcast_txs",
            Submit::Sync => "broadcast_tx_sync",
            Submit::Async => "broadcast_tx_async",
        }
    }
}

impl BenchConfig {
    /// The defaults of `phalanx-bench`, running `bin`.
    pub fn new(bin: PathBuf) -> BenchConfig {
        BenchConfig {
            bin,
            protocol: "hotstuff".into(),
            validators: 4,
            app: App::Kv,
            rates: vec![2000.0],
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(5),
            drain: Duration::from_secs(10),
            connections: 8,
            payload_bytes: 512,
            clients: None,
            data_dir: PathBuf::from("bench-data"),
            keep: false,
            attach: Vec::new(),
            kill_leader_at: None,
            submit: Submit::Txs,
            tick: Duration::from_millis(5),
            max_batch: 2000,
            progress: false,
            closed_loop: false,
            timeout_ms_base: None,
        }
    }

    /// Signing accounts for `rate`: as given, else one per 16 tx/s (so an
    /// account stays within the mempool's 64-nonce window with up to 4 s of
    /// latency), at least one per connection; always rounded up to a
    /// multiple of the connections, so each account uses one connection.
    /// In a closed loop, one account per client.
    pub fn accounts_for(&self, rate: f64) -> usize {
        if self.closed_loop {
            return self.connections;
        }
        let want = self.clients.unwrap_or((rate / 16.0).ceil() as usize).max(self.connections);
        want.div_ceil(self.connections) * self.connections
    }

    fn params(&self) -> Params {
        Params {
            protocol: self.protocol.clone(),
            validators: self.validators,
            app: self.app.to_string(),
            rates: self.rates.clone(),
            duration_s: self.duration.as_secs_f64(),
            warmup_s: self.warmup.as_secs_f64(),
            drain_s: self.drain.as_secs_f64(),
            connections: self.connections,
            payload_bytes: self.payload_bytes,
            clients: self.clients,
            method: self.method().into(),
            tick_ms: self.tick.as_secs_f64() * 1000.0,
            max_batch: self.max_batch,
            attach: self.attach.clone(),
            kill_leader_at_s: self.kill_leader_at.map(|d| d.as_secs_f64()),
            data_dir: self.data_dir.display().to_string(),
            closed_loop: self.closed_loop,
            timeout_ms_base: self.timeout_ms_base,
        }
    }

    fn method(&self) -> &'static str {
        if self.closed_loop { "broadcast_tx_commit" } else { self.submit.method() }
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.rates.is_empty() || self.rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
            bail!("every rate must be a positive number of transactions per second");
        }
        if self.connections == 0 || self.max_batch == 0 || self.tick.is_zero() || self.duration.is_zero() {
            bail!("connections, max batch, tick and duration must be positive");
        }
        if self.payload_bytes < workload::NOOP_HEADER_BYTES {
            bail!("--payload-bytes must be at least {} (a unique header)", workload::NOOP_HEADER_BYTES);
        }
        if let Some(k) = self.kill_leader_at
            && k >= self.duration
        {
            bail!("--kill-leader-at ({k:?}) must fall inside the measured window ({:?})", self.duration);
        }
        if !self.attach.is_empty() && self.kill_leader_at.is_some() && self.rates.len() > 1 {
            bail!(
                "--kill-leader-at with --attach takes one rate: the benchmark does not restart a node it did not start"
            );
        }
        if !self.attach.is_empty() && self.timeout_ms_base.is_some() {
            bail!("--timeout-ms sets up a testnet the benchmark starts; an attached one keeps its own genesis");
        }
        if self.closed_loop && self.submit != Submit::Txs {
            bail!("a closed loop submits with broadcast_tx_commit; --submit applies to the open loop");
        }
        if self.attach.is_empty() && (self.validators == 0 || self.validators > 255) {
            bail!("--validators must be 1 to 255");
        }
        Ok(())
    }

    fn say(&self, msg: impl std::fmt::Display) {
        if self.progress {
            eprintln!("bench: {msg}");
        }
    }
}

/// The validators under test.
struct Target {
    /// The testnet the benchmark started (killed and removed on drop).
    cluster: Option<Cluster>,
    rpcs: Vec<String>,
    pids: Vec<Option<u32>>,
    /// Each node's validator key (hex), to find the leader.
    keys: Vec<String>,
    chain_id: String,
    app: App,
    /// The chain's consensus protocol, as its nodes report it.
    protocol: String,
}

fn port_of(rpc: &str) -> Option<u16> {
    rpc.rsplit(':').next()?.parse().ok()
}

impl Target {
    async fn start(cfg: &BenchConfig) -> anyhow::Result<Target> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating the data directory {}", cfg.data_dir.display()))?;
        let (protocol, app) = (cfg.protocol.as_str(), cfg.app.to_string());
        let timeout = cfg.timeout_ms_base.map(|t| t.to_string());
        let mut extra = vec!["--protocol", protocol, "--app", &app, "--chain-id", CHAIN_ID];
        if let Some(t) = &timeout {
            extra.extend(["--timeout-ms-base", t]);
        }
        let mut c = Cluster::generate_in(&cfg.bin, cfg.validators, &extra, &cfg.data_dir)?;
        cfg.say(format!("starting {} {protocol} validators in {}", cfg.validators, c.root().display()));
        c.start_all()?;
        for i in 0..cfg.validators {
            c.wait_height(i, 1, Duration::from_secs(60)).await?;
        }
        let rpcs: Vec<String> = c.nodes.iter().map(|n| n.rpc.clone()).collect();
        let mut t = Target::attach(&rpcs).await?;
        t.cluster = Some(c);
        Ok(t)
    }

    async fn attach(rpcs: &[String]) -> anyhow::Result<Target> {
        let mut keys = Vec::new();
        let mut chain_id = String::new();
        let mut app = App::Kv;
        let mut protocol = String::new();
        for rpc in rpcs {
            let s = call(rpc, "status", Value::Null).await.with_context(|| format!("status of {rpc}"))?;
            keys.push(s["node_info"]["validator"].as_str().unwrap_or_default().to_owned());
            chain_id = s["node_info"]["chain_id"].as_str().context("status has no chain id")?.to_owned();
            app = s["node_info"]["app"].as_str().unwrap_or("kv").parse().map_err(anyhow::Error::msg)?;
            protocol = s["node_info"]["protocol"].as_str().unwrap_or_default().to_owned();
        }
        let pids = rpcs.iter().map(|r| port_of(r).and_then(procfs::pid_listening_on)).collect();
        Ok(Target { cluster: None, rpcs: rpcs.to_vec(), pids, keys, chain_id, app, protocol })
    }

    /// Finds the current leader (as most nodes that answer say) and SIGKILLs
    /// it. Returns its index.
    async fn kill_leader(&self) -> anyhow::Result<usize> {
        let mut votes: BTreeMap<String, usize> = BTreeMap::new();
        for rpc in &self.rpcs {
            if let Ok(s) = call(rpc, "status", Value::Null).await
                && let Some(l) = s["consensus"]["leader"].as_str()
            {
                *votes.entry(l.to_owned()).or_insert(0) += 1;
            }
        }
        let leader = votes.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k).context("no node names a leader")?;
        let node = self.keys.iter().position(|k| *k == leader).context("the leader is not among these nodes")?;
        let pid = self.pids[node].with_context(|| format!("node{node}'s process id is unknown"))?;
        // SAFETY: kill(2) with a pid we found listening on the node's RPC port.
        if unsafe { libc::kill(pid as i32, libc::SIGKILL) } != 0 {
            bail!("SIGKILL to node{node} (pid {pid}): {}", std::io::Error::last_os_error());
        }
        Ok(node)
    }
}

/// Runs the benchmark: one measured window per rate. Fails on setup errors
/// (testnet does not start, nodes unreachable); lost or duplicated
/// transactions are in the report ([`Report::ok`]).
pub async fn run(cfg: &BenchConfig) -> anyhow::Result<Report> {
    cfg.check()?;
    let mut results = Vec::new();
    let mut attached = None;
    for &rate in &cfg.rates {
        let target = match (&cfg.attach[..], attached.take()) {
            ([], _) => Target::start(cfg).await?,
            (_, Some(t)) => t,
            (rpcs, None) => Target::attach(rpcs).await?,
        };
        let (result, target) = run_rate(cfg, rate, target).await?;
        results.push(result);
        match target.cluster {
            Some(mut c) if cfg.keep => {
                cfg.say(format!("kept the testnet in {}", c.keep().display()));
            }
            Some(c) => drop(c),
            None => attached = Some(target),
        }
    }
    let _ = std::fs::remove_dir(&cfg.data_dir); // only if empty
    let mut params = cfg.params();
    if let Some(t) = &attached {
        params.app = t.app.to_string();
        params.validators = t.rpcs.len();
        params.protocol = t.protocol.clone();
    }
    Ok(Report { tool: "phalanx-bench".into(), params, machine: Machine::here(), results })
}

/// CPU seconds of each node (and of this process), and per-thread figures.
struct CpuSample {
    nodes: Vec<Option<f64>>,
    /// Peak RSS so far, in bytes.
    rss: Vec<Option<u64>>,
    threads: Vec<BTreeMap<String, f64>>,
    me: Option<f64>,
}

fn sample(pids: &[Option<u32>]) -> CpuSample {
    CpuSample {
        nodes: pids.iter().map(|p| p.and_then(procfs::cpu_seconds)).collect(),
        rss: pids.iter().map(|p| p.and_then(procfs::peak_rss_bytes)).collect(),
        threads: pids.iter().map(|p| p.map(procfs::thread_cpu_seconds).unwrap_or_default()).collect(),
        me: procfs::cpu_seconds(std::process::id()),
    }
}

async fn sleep_until(t0: Instant, at: Duration) {
    tokio::time::sleep_until((t0 + at).into()).await;
}

/// Everything a measured window produced, before it is summarised.
struct Measured {
    start: CpuSample,
    end: CpuSample,
    kill: Option<(KillFigures, u64)>,
    lag_us: Vec<u64>,
    /// Transactions scheduled in the window that left before it ended.
    sent_in_window: u64,
    streams: Vec<StreamStats>,
    /// Closed loop: each transaction first sent in the window, when, and
    /// its latency if it was answered as committed.
    closed: Vec<(usize, u64, Option<u64>)>,
    /// Closed loop: clients that used up their transactions early.
    exhausted: u64,
    /// Closed loop: `kv` clients stopped by a refused or unanswered
    /// transaction.
    stuck: u64,
    /// Accepted transactions not seen committed when the drain ended that a
    /// live node still held in its mempool, or had committed, when asked.
    pending: std::collections::HashSet<usize>,
}

async fn run_rate(cfg: &BenchConfig, rate: f64, target: Target) -> anyhow::Result<(RateResult, Target)> {
    let total = (rate * (cfg.warmup + cfg.duration).as_secs_f64()).ceil() as usize;
    let accounts = cfg.accounts_for(rate);
    cfg.say(format!("making {total} {} transactions for {rate} tx/s", target.app));
    let (app, chain_id, payload) = (target.app, target.chain_id.clone(), cfg.payload_bytes);
    let wl = Arc::new(
        tokio::task::spawn_blocking(move || match app {
            App::Kv => Workload::kv(&chain_id, total, accounts),
            App::Noop => Workload::noop(total, payload),
        })
        .await?,
    );
    let mut streams = Vec::new();
    for (i, rpc) in target.rpcs.iter().enumerate() {
        streams.push(commits::subscribe(i, rpc).await?);
    }
    cfg.say(format!(
        "offering {rate} tx/s: {} s warm-up, {} s measured",
        cfg.warmup.as_secs_f64(),
        cfg.duration.as_secs_f64()
    ));
    let tr = Arc::new(Tracker::new(total, rate, Instant::now()));
    let measured = measure(cfg, &target, &wl, &tr, streams).await;
    let mut result = summarise(cfg, &target, &wl, &tr, measured);
    if let Some(c) = &target.cluster {
        // Blocking reads with short timeouts, off the runtime's workers.
        let texts: Vec<String> =
            tokio::task::block_in_place(|| (0..target.rpcs.len()).filter_map(|i| c.metrics(i)).collect());
        result.compact = Some(CompactFigures::from_metrics(texts.iter().map(String::as_str)));
    }
    Ok((result, target))
}

/// Sends the whole run, samples CPU at the window's edges, kills the leader
/// if asked, drains, and stops the streams.
async fn measure(
    cfg: &BenchConfig,
    target: &Target,
    wl: &Arc<Workload>,
    tr: &Arc<Tracker>,
    streams: Vec<commits::Stream>,
) -> Measured {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let followers: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(commits::follow(s, wl.clone(), tr.clone(), stop_rx.clone())))
        .collect();
    let nodes = Arc::new(target.rpcs.clone());
    let send_cfg = sender::SendConfig {
        method: cfg.method(),
        tick: cfg.tick,
        max_batch: cfg.max_batch,
        connections: cfg.connections,
        window_us: (cfg.warmup.as_micros() as u64, (cfg.warmup + cfg.duration).as_micros() as u64),
    };
    let senders: Vec<_> = (0..cfg.connections)
        .map(|c| {
            let (nodes, wl, tr, send_cfg) = (nodes.clone(), wl.clone(), tr.clone(), send_cfg.clone());
            if cfg.closed_loop {
                tokio::spawn(sender::run_client(c, nodes, wl, tr, send_cfg))
            } else {
                tokio::spawn(sender::run_connection(c, nodes, wl, tr, send_cfg))
            }
        })
        .collect();
    sleep_until(tr.t0, cfg.warmup).await;
    let start = sample(&target.pids);
    let kill = match cfg.kill_leader_at {
        Some(at) => Some(kill_leader_at(cfg, target, tr, at).await),
        None => None,
    };
    sleep_until(tr.t0, cfg.warmup + cfg.duration).await;
    let mut end = sample(&target.pids);
    if let Some((_, _, Some((node, before)))) = &kill {
        // The killed node's figures end where it did.
        end.nodes[*node] = before.nodes[*node];
        end.threads[*node] = before.threads[*node].clone();
        end.rss[*node] = before.rss[*node];
    }
    let (mut lag_us, mut sent_in_window, mut closed, mut exhausted, mut stuck) = (Vec::new(), 0, Vec::new(), 0, 0);
    for s in senders {
        let st = s.await.unwrap_or_default();
        sent_in_window += st.sent_in_window;
        lag_us.extend(st.lag_us.into_iter().map(u64::from));
        closed.extend(st.closed);
        exhausted += st.exhausted as u64;
        stuck += st.stuck as u64;
    }
    cfg.say("draining");
    drain(tr, cfg.drain).await;
    let killed = kill.as_ref().and_then(|(k, _, _)| k.node);
    let pending = still_pending(target, wl, tr, killed).await;
    let _ = stop_tx.send(true);
    let mut stream_stats = Vec::new();
    for f in followers {
        stream_stats.extend(f.await.ok());
    }
    let window_end = (cfg.warmup + cfg.duration).as_micros() as u64;
    let kill = kill.map(|(mut k, kill_us, _)| {
        let (gap_us, resumed_us) = longest_gap(tr, kill_us, window_end);
        k.stall_ms = gap_us as f64 / 1000.0;
        k.resumed_after_ms = resumed_us.saturating_sub(kill_us) as f64 / 1000.0;
        (k, kill_us)
    });
    Measured { start, end, kill, lag_us, sent_in_window, streams: stream_stats, closed, exhausted, stuck, pending }
}

/// Kills the leader `at` into the window. Returns what happened, when (µs
/// since t0), and the killed node with its resource figures just before.
async fn kill_leader_at(
    cfg: &BenchConfig,
    target: &Target,
    tr: &Tracker,
    at: Duration,
) -> (KillFigures, u64, Option<(usize, CpuSample)>) {
    sleep_until(tr.t0, cfg.warmup + at).await;
    let before = sample(&target.pids);
    let kill_us = track::micros_since(tr.t0);
    let mut k = KillFigures { at_s: at.as_secs_f64(), ..KillFigures::default() };
    match target.kill_leader().await {
        Ok(node) => {
            cfg.say(format!("killed the leader, node{node}"));
            k.node = Some(node);
            (k, kill_us, Some((node, before)))
        }
        Err(e) => {
            k.error = Some(e.to_string());
            (k, kill_us, None)
        }
    }
}

/// Most transactions [`still_pending`] asks about.
const PENDING_CHECKS: usize = 20_000;

/// Of the transactions the report would count as lost
/// ([`Outcomes::unconfirmed`]), those that a live node still holds in its
/// mempool (or has committed since) when asked after the drain: they were
/// not lost, the drain was too short for them. Asks the `tx` method of each
/// live node in turn, about at most [`PENDING_CHECKS`] transactions; the
/// rest stay unconfirmed and count as lost.
async fn still_pending(
    target: &Target,
    wl: &Workload,
    tr: &Tracker,
    killed: Option<usize>,
) -> std::collections::HashSet<usize> {
    use futures::StreamExt as _;
    let mut candidates = Outcomes::unconfirmed(wl, tr, killed);
    candidates.truncate(PENDING_CHECKS);
    let live: Vec<&String> =
        target.rpcs.iter().enumerate().filter(|(n, _)| Some(*n) != killed).map(|(_, r)| r).collect();
    futures::stream::iter(candidates)
        .map(|i| {
            let (hash, live) = (wl.hash_hex(i), &live);
            async move {
                for rpc in live {
                    match call(rpc, "tx", serde_json::json!({ "hash": hash })).await {
                        Ok(_) => return Some(i),
                        Err(crate::cluster::RpcError::Rpc { data: Some(d), .. }) if d["in_mempool"] == true => {
                            return Some(i);
                        }
                        Err(_) => {}
                    }
                }
                None
            }
        })
        .buffer_unordered(16)
        .filter_map(|found| async move { found })
        .collect()
        .await
}

/// Waits until every accepted transaction has committed, at most `limit`.
async fn drain(tr: &Tracker, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        // The counters are a cheap first test; the scan is exact.
        if tr.committed.load(Ordering::Relaxed) >= tr.accepted.load(Ordering::Relaxed) && tr.outstanding() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn summarise(cfg: &BenchConfig, target: &Target, wl: &Workload, tr: &Tracker, m: Measured) -> RateResult {
    let (w0, w1) = (cfg.warmup.as_micros() as u64, (cfg.warmup + cfg.duration).as_micros() as u64);
    let window_s = cfg.duration.as_secs_f64();
    let in_window = |us: u64| us >= w0 && us < w1;
    let mut latencies = Vec::new();
    let mut committed = 0u64;
    let mut window_uncommitted = 0u64;
    let mut per_second = vec![0u64; cfg.duration.as_secs_f64().ceil() as usize];
    for i in 0..tr.len() {
        let sched = tr.scheduled_us(i);
        let commit = tr.committed_at(i);
        if in_window(sched) {
            match commit {
                Some(c) => latencies.push(c.saturating_sub(sched)),
                None => window_uncommitted += 1,
            }
        }
        if let Some(c) = commit.filter(|c| in_window(*c)) {
            committed += 1;
            per_second[((c - w0) / 1_000_000) as usize] += 1;
        }
    }
    if cfg.closed_loop {
        // Latency is the client's own: first send → committed answer; for
        // one the client gave up on that committed later, first send → its
        // first commit notification.
        latencies = m
            .closed
            .iter()
            .filter_map(|&(i, sent, l)| l.or_else(|| tr.committed_at(i).map(|c| c.saturating_sub(sent))))
            .collect();
        window_uncommitted = m.closed.iter().filter(|(i, _, _)| tr.committed_at(*i).is_none()).count() as u64;
    }
    let (blocks, block_txs, max_gap_us) = block_figures(tr, w0, w1);
    let killed = m.kill.as_ref().and_then(|(k, _)| k.node);
    RateResult {
        offered_tx_s: tr.rate,
        window_s,
        total_txs: tr.len() as u64,
        accounts: wl.accounts(),
        sent_tx_s: m.sent_in_window as f64 / window_s,
        committed_tx_s: committed as f64 / window_s,
        latency_ms: Percentiles::of_micros(latencies),
        send_lag_ms: Percentiles::of_micros(m.lag_us.clone()),
        exhausted_clients: m.exhausted,
        stuck_clients: m.stuck,
        window_uncommitted,
        blocks_s: blocks as f64 / window_s,
        mean_block_txs: if blocks > 0 { block_txs as f64 / blocks as f64 } else { 0.0 },
        max_block_gap_ms: max_gap_us as f64 / 1000.0,
        per_second,
        accepted: tr.accepted.load(Ordering::Relaxed),
        submit_errors: tr.errors.lock().expect("errors lock").clone(),
        outcomes: Outcomes::classify(wl, tr, killed, &m.pending),
        duplicates: tr.duplicates.load(Ordering::Relaxed),
        duplicate_examples: tr.duplicate_examples.lock().expect("duplicates lock").clone(),
        height_mismatches: tr.height_mismatches.load(Ordering::Relaxed),
        forks: tr.forks.load(Ordering::Relaxed),
        failed_execution: tr.failed_execution.load(Ordering::Relaxed),
        streams: m.streams,
        nodes: node_figures(target, &m.start, &m.end, window_s, killed),
        bench_cpu_s: m.end.me.zip(m.start.me).map(|(e, s)| e - s),
        kill: m.kill.map(|(k, _)| k),
        compact: None,
    }
}

/// Blocks first seen in [w0, w1), their transactions, and the longest time
/// in the window without a new block (µs).
fn block_figures(tr: &Tracker, w0: u64, w1: u64) -> (u64, u64, u64) {
    let blocks = tr.blocks.lock().expect("blocks lock");
    let (mut n, mut txs) = (0u64, 0u64);
    for b in blocks.values().filter(|b| b.first_us >= w0 && b.first_us < w1) {
        n += 1;
        txs += b.txs as u64;
    }
    drop(blocks);
    (n, txs, longest_gap(tr, w0, w1).0)
}

/// The longest interval in [from, to) without a new block (µs), and when it
/// ended (µs since t0).
fn longest_gap(tr: &Tracker, from: u64, to: u64) -> (u64, u64) {
    let blocks = tr.blocks.lock().expect("blocks lock");
    let mut times: Vec<u64> = blocks.values().map(|b| b.first_us).filter(|t| *t >= from && *t < to).collect();
    times.sort_unstable();
    let (mut last, mut gap, mut end) = (from, 0, from);
    for t in times.into_iter().chain([to]) {
        if t - last > gap {
            (gap, end) = (t - last, t);
        }
        last = t;
    }
    (gap, end)
}

fn node_figures(
    target: &Target,
    start: &CpuSample,
    end: &CpuSample,
    window_s: f64,
    killed: Option<usize>,
) -> Vec<NodeFigures> {
    (0..target.rpcs.len())
        .map(|i| {
            let cpu_s = end.nodes[i].zip(start.nodes[i]).map(|(e, s)| ((e - s) * 100.0).round() / 100.0);
            let mut threads: Vec<(String, f64)> = end.threads[i]
                .iter()
                .map(|(name, e)| {
                    (name.clone(), ((e - start.threads[i].get(name).unwrap_or(&0.0)) * 100.0).round() / 100.0)
                })
                .filter(|(_, s)| *s > 0.0)
                .collect();
            threads.sort_by(|a, b| b.1.total_cmp(&a.1));
            NodeFigures {
                node: i,
                rpc: target.rpcs[i].clone(),
                pid: target.pids[i],
                cpu_s,
                cpu_percent: cpu_s.map(|c| (c / window_s * 100.0).round()),
                peak_rss_mib: target.pids[i]
                    .filter(|_| killed != Some(i))
                    .and_then(procfs::peak_rss_bytes)
                    .or(end.rss[i])
                    .map(|b| (b as f64 / (1 << 20) as f64).round()),
                threads,
                killed: killed == Some(i),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_cover_the_rate_and_divide_among_the_connections() {
        let mut c = BenchConfig::new(PathBuf::from("phalanx"));
        assert_eq!(c.accounts_for(2000.0), 128);
        assert_eq!(c.accounts_for(100.0), 8);
        c.clients = Some(3);
        assert_eq!(c.accounts_for(50_000.0), 8);
        c.clients = Some(20);
        assert_eq!(c.accounts_for(1.0), 24);
        c.closed_loop = true;
        c.connections = 64;
        assert_eq!(c.accounts_for(50_000.0), 64, "a closed-loop client signs with its own account");
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let ok = BenchConfig::new(PathBuf::from("phalanx"));
        assert!(ok.check().is_ok());
        let refused = |f: fn(&mut BenchConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.check().unwrap_err().to_string()
        };
        assert!(refused(|c| c.rates = vec![0.0]).contains("positive"));
        assert!(refused(|c| c.payload_bytes = 8).contains("--payload-bytes"));
        assert!(refused(|c| c.kill_leader_at = Some(Duration::from_secs(30))).contains("inside the measured window"));
        assert!(
            refused(|c| {
                c.attach = vec!["127.0.0.1:1".into()];
                c.timeout_ms_base = Some(500);
            })
            .contains("attached")
        );
        assert!(
            refused(|c| {
                c.closed_loop = true;
                c.submit = Submit::Sync;
            })
            .contains("broadcast_tx_commit")
        );
        assert!(
            refused(|c| {
                c.attach = vec!["127.0.0.1:1".into()];
                c.kill_leader_at = Some(Duration::from_secs(1));
                c.rates = vec![1.0, 2.0];
            })
            .contains("one rate")
        );
    }
}
