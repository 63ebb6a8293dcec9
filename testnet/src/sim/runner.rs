//! Running many seeds and summarising them.
//!
//! Seeds are handed out to worker threads from a shared counter; each seed's
//! run is independent and deterministic, so the summary does not depend on
//! how the threads interleave (except for the wall-clock time).

use super::{Protocol, SimConfig, SimReport, run_seed};
use phalanx_consensus::types::{Millis, Round};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Faults injected, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Byzantine validators by behaviour.
    pub byzantine: BTreeMap<&'static str, u64>,
    pub partitions: u64,
    pub crashes: u64,
    /// Crashes that closed no connection (a host that stopped answering).
    pub silent_crashes: u64,
    pub restarts: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub adversary_dropped: u64,
    pub replayed: u64,
    pub corrupted: u64,
    pub stale_proposals: u64,
    pub sync_requests: u64,
    /// Messages honest engines refused.
    pub invalid_messages: u64,
    pub evidence: u64,
    /// Raft membership changes completed (the final configuration committed).
    pub membership_changes: u64,
}

impl FaultStats {
    pub fn add(&mut self, o: &FaultStats) {
        for (k, v) in &o.byzantine {
            *self.byzantine.entry(k).or_default() += v;
        }
        self.partitions += o.partitions;
        self.crashes += o.crashes;
        self.silent_crashes += o.silent_crashes;
        self.restarts += o.restarts;
        self.messages_lost += o.messages_lost;
        self.messages_duplicated += o.messages_duplicated;
        self.adversary_dropped += o.adversary_dropped;
        self.replayed += o.replayed;
        self.corrupted += o.corrupted;
        self.stale_proposals += o.stale_proposals;
        self.sync_requests += o.sync_requests;
        self.invalid_messages += o.invalid_messages;
        self.evidence += o.evidence;
        self.membership_changes += o.membership_changes;
    }

    pub fn describe(&self) -> String {
        let byz: Vec<String> = self.byzantine.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "byzantine [{}], partitions {}, crashes {} ({} silent), restarts {}, messages lost {}, duplicated {}, \
             dropped by adversaries {}, replayed {}, corrupted {}, stale proposals {}, sync requests {}, refused by honest nodes {}, evidence {}, membership changes {}",
            byz.join(", "),
            self.partitions,
            self.crashes,
            self.silent_crashes,
            self.restarts,
            self.messages_lost,
            self.messages_duplicated,
            self.adversary_dropped,
            self.replayed,
            self.corrupted,
            self.stale_proposals,
            self.sync_requests,
            self.invalid_messages,
            self.evidence,
            self.membership_changes
        )
    }
}

/// The outcome of many seeds.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub protocol: String,
    pub validators: usize,
    pub seeds: u64,
    pub failures: Vec<SimReport>,
    pub faults: FaultStats,
    /// Blocks committed, summed over seeds.
    pub commits: u64,
    pub committed_txs: u64,
    pub events: u64,
    pub worst_gap_rounds: Round,
    pub worst_gap_ms: Millis,
    /// The seed with the worst gap in rounds.
    pub worst_gap_seed: u64,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// A human summary: seeds, faults, commits, worst liveness gap, and the
    /// replay command of every failure.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} seeds of {} with {} validators in {:.1} s: {} violations\n  \
             faults: {}\n  commits: {} blocks, {} transactions, {} events\n  \
             worst liveness gap after GST: {} rounds (seed {}), {} ms",
            self.seeds,
            self.protocol,
            self.validators,
            self.elapsed.as_secs_f64(),
            self.failures.len(),
            self.faults.describe(),
            self.commits,
            self.committed_txs,
            self.events,
            self.worst_gap_rounds,
            self.worst_gap_seed,
            self.worst_gap_ms
        );
        for f in &self.failures {
            s += &format!("\n\n{}", f.failure_text());
        }
        s
    }
}

/// Runs `seeds` with `template` (its `seed` replaced) on `threads` threads.
pub fn run_seeds(protocol: Arc<dyn Protocol>, template: &SimConfig, seeds: Range<u64>, threads: usize) -> RunSummary {
    let start = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let reports: Vec<SimReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let (next, protocol, end) = (&next, protocol.clone(), seeds.end);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= end {
                            return out;
                        }
                        let cfg = SimConfig { seed, ..template.clone() };
                        out.push(run_seed(protocol.clone(), cfg));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a simulation thread panicked")).collect()
    });
    let mut sum =
        RunSummary { protocol: protocol.name().into(), validators: template.validators, ..RunSummary::default() };
    let mut sorted = reports;
    sorted.sort_by_key(|r| r.seed);
    for r in sorted {
        sum.seeds += 1;
        sum.faults.add(&r.faults);
        sum.commits += r.max_height;
        sum.committed_txs += r.committed_txs as u64;
        sum.events += r.events;
        if r.worst_gap_rounds > sum.worst_gap_rounds {
            sum.worst_gap_rounds = r.worst_gap_rounds;
            sum.worst_gap_seed = r.seed;
        }
        sum.worst_gap_ms = sum.worst_gap_ms.max(r.worst_gap_ms);
        if !r.ok() {
            sum.failures.push(r);
        }
    }
    sum.elapsed = start.elapsed();
    sum
}
