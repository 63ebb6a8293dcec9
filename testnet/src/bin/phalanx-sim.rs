//! `phalanx-sim`: run the deterministic simulator from the command line.
//!
//! One seed, with its trace:   phalanx-sim --seed 42 --trace
//! Many seeds (soak):          phalanx-sim --seeds 100000 --validators 7
//!
//! A failing run prints the invariant, the step, the last events and the
//! exact command that replays it; the exit status is 1 if any seed failed.

use clap::Parser;
use phalanx_testnet::sim::{
    Broken, ByzantineKind, FaultConfig, HotStuffProtocol, Protocol, RaftProtocol, SimConfig, run_seed, run_seeds,
};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "phalanx-sim", about = "Deterministic simulation of Phalanx consensus under faults")]
struct Args {
    /// Run exactly this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many seeds (from --start).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed of a multi-seed run.
    #[arg(long, default_value_t = 0)]
    start: u64,
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// The protocol to simulate.
    #[arg(long, default_value = "hotstuff")]
    protocol: String,
    /// Byzantine validators run as Twins pairs (default 1).
    #[arg(long, default_value_t = 1)]
    twins: usize,
    /// Byzantine validators run as message-layer adversaries (default: the
    /// rest of f).
    #[arg(long)]
    adversaries: Option<usize>,
    /// Make every message-layer adversary this kind: drop-all, delay, replay,
    /// corrupt-signatures, stale-proposal.
    #[arg(long)]
    only: Option<String>,
    /// How long to run after the global stabilisation time, in ms.
    #[arg(long)]
    after_gst: Option<u64>,
    #[arg(long)]
    no_partitions: bool,
    #[arg(long)]
    no_crashes: bool,
    /// Deliberately break a safety rule (shows the checkers catch it): lock,
    /// one-vote, vote-after-timeout, commit-rule, majority-quorum.
    #[arg(long)]
    broken: Option<String>,
    /// Raft: keep removing, re-adding (as a learner) and promoting the last
    /// validator before GST (membership changes under faults).
    #[arg(long)]
    membership: bool,
    /// Latest global stabilisation time, in ms.
    #[arg(long)]
    gst_max: Option<u64>,
    /// Longest partition, in ms.
    #[arg(long)]
    partition_max: Option<u64>,
    /// Do not run this checker (by name, e.g. 'no double-signing'); repeatable.
    #[arg(long)]
    skip_checker: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the whole trace of a single-seed run.
    #[arg(long)]
    trace: bool,
}

fn main() {
    let a = Args::parse();
    let broken = match a.broken.as_deref() {
        None => None,
        _ if a.protocol == "raft" => None,
        Some("lock") => Some(Broken::LockCheck),
        Some("one-vote") => Some(Broken::OneVotePerRound),
        Some("vote-after-timeout") => Some(Broken::VoteAfterTimeout),
        Some("commit-rule") => Some(Broken::CommitRule),
        Some("majority-quorum") => Some(Broken::MajorityQuorum),
        Some(other) => fail(&format!(
            "--broken: unknown rule {other:?} (known: lock, one-vote, vote-after-timeout, commit-rule, majority-quorum; for raft: double-vote)"
        )),
    };
    let protocol: Arc<dyn Protocol> = match a.protocol.as_str() {
        "hotstuff" => Arc::new(HotStuffProtocol { broken }),
        "raft" => match a.broken.as_deref() {
            None => Arc::new(RaftProtocol { broken_vote: false, membership: a.membership }),
            Some("double-vote") => Arc::new(RaftProtocol { broken_vote: true, membership: a.membership }),
            Some(other) => fail(&format!("--broken: {other:?} is not a raft rule (known: double-vote)")),
        },
        other => fail(&format!("--protocol: {other:?} is not simulated (known: hotstuff, raft)")),
    };
    if a.validators == 0 {
        fail("--validators must be at least 1");
    }
    let mut cfg = SimConfig::new(0, a.validators);
    let f = protocol.max_faulty(a.validators);
    cfg.faults = FaultConfig::full(a.adversaries.unwrap_or(f.saturating_sub(a.twins)));
    cfg.faults.twins = a.twins;
    cfg.faults.partitions = !a.no_partitions;
    cfg.faults.crashes = !a.no_crashes;
    if let Some(k) = a.only.as_deref() {
        let kind = ByzantineKind::ALL.into_iter().find(|x| x.name() == k);
        cfg.faults.only_kind = Some(kind.unwrap_or_else(|| fail(&format!("--only: unknown kind {k:?}"))));
    }
    cfg.skip_checkers = a.skip_checker.clone();
    if let Some(g) = a.gst_max {
        cfg.faults.gst_ms_max = g;
    }
    if let Some(p) = a.partition_max {
        cfg.faults.partition_ms_max = p;
    }
    if let Some(t) = a.after_gst {
        cfg.faults.after_gst_ms = t;
    }
    if let Some(seed) = a.seed {
        cfg.seed = seed;
        cfg.full_trace = a.trace;
        let r = run_seed(protocol, cfg);
        if a.trace {
            for line in &r.trace {
                println!("{line}");
            }
        }
        println!(
            "seed {}: {} (height {}, {} of {} transactions, {} events, gst {} ms, worst gap {} rounds / {} ms, trace {})",
            r.seed,
            if r.ok() { "ok" } else { "VIOLATION" },
            r.max_height,
            r.committed_txs,
            r.submitted_txs,
            r.events,
            r.gst_ms,
            r.worst_gap_rounds,
            r.worst_gap_ms,
            r.trace_hash.short()
        );
        println!("faults: {}", r.faults.describe());
        if !r.ok() {
            println!("{}", r.failure_text());
            std::process::exit(1);
        }
        return;
    }
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let sum = run_seeds(protocol, &cfg, a.start..a.start + a.seeds, threads);
    println!("{}", sum.describe());
    if !sum.ok() {
        std::process::exit(1);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}
