//! `phalanx-bench`: end-to-end throughput and latency of a Phalanx testnet.
//!
//! Starts a fresh testnet (or attaches to one), offers transactions at a
//! fixed rate, measures submit → commit latency and committed throughput,
//! prints a table and, as the last line of stdout, one JSON line (also
//! appended to `--json FILE`). Method and definitions:
//! `phalanx_testnet::bench`.
//!
//!   phalanx-bench                                   # hotstuff, 4 validators, kv, 2000 tx/s, 20 s
//!   phalanx-bench --app noop --sweep 10000,25000,50000
//!   phalanx-bench --protocol raft --rate 5000
//!   phalanx-bench --kill-leader-at 10 --rate 2000
//!   phalanx-bench --protocol raft --closed-loop 64 --rate 40000
//!   phalanx-bench --attach 127.0.0.1:26601,127.0.0.1:26604
//!
//! Exit status: 0 if every transaction committed at most once and none was
//! lost, 1 otherwise, 2 if the benchmark could not run.

use clap::Parser;
use phalanx_testnet::bench::{App, BenchConfig, Submit, run};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "phalanx-bench", about = "End-to-end throughput and latency of a Phalanx testnet")]
struct Args {
    /// Consensus protocol of the testnet to start: hotstuff or raft.
    #[arg(long, default_value = "hotstuff")]
    protocol: String,
    /// Validators to start (default 4; 3 for raft).
    #[arg(long)]
    validators: Option<usize>,
    /// Application: kv (signed Puts) or noop (opaque payloads). Attached
    /// testnets use their own.
    #[arg(long, default_value = "kv")]
    app: App,
    /// Offered load, transactions per second (open loop; with --closed-loop,
    /// a ceiling).
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Several offered loads, comma-separated, one measured window each on a
    /// fresh testnet (replaces --rate).
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<f64>,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Warm-up before the window, seconds.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Longest wait after the last send for accepted transactions to commit,
    /// seconds.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// HTTP connections, spread over the validators.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// noop payload size in bytes (at least 18).
    #[arg(long, default_value_t = 512)]
    payload_bytes: usize,
    /// kv signing accounts (default: one per 16 tx/s, at least one per
    /// connection).
    #[arg(long)]
    clients: Option<usize>,
    /// Where the testnet homes go (on the real disk).
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
    /// Keep the testnet homes and logs afterwards.
    #[arg(long)]
    keep: bool,
    /// RPC addresses (host:port, comma-separated) of a running testnet to use
    /// instead of starting one.
    #[arg(long, value_delimiter = ',')]
    attach: Vec<String>,
    /// SIGKILL the leader this many seconds into the measured window.
    #[arg(long)]
    kill_leader_at: Option<f64>,
    /// The phalanx binary (default: next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Append the JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// How transactions are submitted: txs (broadcast_txs, one call per
    /// connection per tick), sync (a JSON-RPC batch of broadcast_tx_sync) or
    /// async (of broadcast_tx_async; refusals are then invisible and count
    /// as lost).
    #[arg(long, value_enum, default_value = "txs")]
    submit: Submit,
    /// Each connection sends what is due every this many milliseconds.
    #[arg(long, default_value_t = 5.0)]
    tick_ms: f64,
    /// Most transactions in one batch request.
    #[arg(long, default_value_t = 2000)]
    max_batch: usize,
    /// Show each node's CPU time per thread in the table.
    #[arg(long)]
    threads: bool,
    /// Closed loop with this many clients instead of open-loop connections:
    /// each client (its own signing account) has one broadcast_tx_commit
    /// out at a time and sends the next once it is answered; --rate is then
    /// a ceiling on the total. Replaces --connections and --clients; not
    /// with --submit.
    #[arg(long)]
    closed_loop: Option<usize>,
    /// consensus.timeout_ms_base of the testnet to start, in ms (Raft: the
    /// election timeout T; a leader's death is noticed after T to 2T).
    /// Default: the chain default, 1000.
    #[arg(long)]
    timeout_ms: Option<u64>,
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what} must be a non-negative number of seconds, got {s}"))
}

fn config(a: &Args) -> Result<BenchConfig, String> {
    let bin = match &a.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("phalanx"),
    };
    if a.attach.is_empty() && !bin.exists() {
        return Err(format!("no phalanx binary at {} (build it, or pass --bin)", bin.display()));
    }
    if !matches!(a.protocol.as_str(), "hotstuff" | "raft") {
        return Err(format!("unknown protocol {:?}: use hotstuff or raft", a.protocol));
    }
    let mut c = BenchConfig::new(bin);
    c.validators = a.validators.unwrap_or(if a.protocol == "raft" { 3 } else { 4 });
    c.protocol = a.protocol.clone();
    c.app = a.app;
    c.rates = if a.sweep.is_empty() { vec![a.rate] } else { a.sweep.clone() };
    c.duration = secs(a.duration, "--duration")?;
    c.warmup = secs(a.warmup, "--warmup")?;
    c.drain = secs(a.drain, "--drain")?;
    c.connections = a.connections;
    c.payload_bytes = a.payload_bytes;
    c.clients = a.clients;
    c.data_dir = a.data_dir.clone();
    c.keep = a.keep;
    c.attach = a.attach.clone();
    c.kill_leader_at = a.kill_leader_at.map(|s| secs(s, "--kill-leader-at")).transpose()?;
    c.submit = a.submit;
    c.tick = secs(a.tick_ms / 1000.0, "--tick-ms")?;
    c.max_batch = a.max_batch;
    c.timeout_ms_base = a.timeout_ms;
    if a.closed_loop == Some(0) {
        return Err("--closed-loop takes at least 1 client".into());
    }
    if let Some(n) = a.closed_loop {
        c.closed_loop = true;
        c.connections = n;
        c.clients = Some(n);
    }
    c.progress = true;
    Ok(c)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("phalanx-bench: {e}");
            std::process::exit(2);
        }
    };
    let report = match run(&cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("phalanx-bench: {e:#}");
            std::process::exit(2);
        }
    };
    let line = report.json_line();
    if let Some(path) = &args.json {
        let appended =
            std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            eprintln!("phalanx-bench: cannot append to {}: {e}", path.display());
            std::process::exit(2);
        }
    }
    println!("{}", report.table(args.threads));
    println!("{line}");
    if !report.ok() {
        eprintln!("phalanx-bench: FAILED: transactions were lost or committed twice (see the table)");
        std::process::exit(1);
    }
}
