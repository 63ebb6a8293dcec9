//! The figures of a benchmark run: computed from the tracker after the
//! drain, printed as a table and written as one JSON line.

use super::commits::StreamStats;
use super::track::{Admission, Duplicate, Tracker};
use super::workload::Workload;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// Latency (or send lag) percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of samples in microseconds (sorted here).
    pub fn of_micros(mut us: Vec<u64>) -> Option<Percentiles> {
        if us.is_empty() {
            return None;
        }
        us.sort_unstable();
        let n = us.len();
        let at = |q: f64| us[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
        let ms = |v: f64| (v * 100.0).round() / 100.0;
        Some(Percentiles {
            count: n as u64,
            mean: ms(us.iter().sum::<u64>() as f64 / n as f64 / 1000.0),
            p50: ms(at(0.50)),
            p90: ms(at(0.90)),
            p99: ms(at(0.99)),
            max: ms(at(1.0)),
        })
    }
}

/// Where each transaction that never committed stands, over the whole run
/// (warm-up included), once the drain is over.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcomes {
    /// Accepted by a node that stayed up, not committed, and in no live
    /// node's mempool when the drain ended: a loss.
    pub lost: u64,
    /// Accepted, not committed when the drain ended, but still in a live
    /// node's mempool (or committed just after): the drain was too short
    /// for it, which is not a loss. A longer `--drain` lets it commit.
    pub pending: u64,
    /// Accepted by the node the benchmark killed, and not committed: its
    /// mempool died with it (the mempool is not replicated before a block
    /// carries a transaction).
    pub dropped_with_killed_node: u64,
    /// `kv`: not committed because an earlier nonce of its account did not
    /// commit (refused, unanswered, lost or dropped), so it never can.
    pub stranded: u64,
    /// Refused by the node (the codes are in `submit_errors`).
    pub refused: u64,
    /// Sent but unanswered (the connection failed), and not committed.
    pub unanswered: u64,
    /// Never sent (the sender stopped early, or a closed loop's window
    /// ended first).
    pub not_sent: u64,
}

/// Where an uncommitted transaction stands in its account's nonce order.
enum Place {
    /// Never sent.
    NotSent,
    /// The account's first uncommitted transaction: its admission says why.
    First,
    /// After the account's first uncommitted one, so it never can commit.
    Stranded,
}

/// Calls `f` for every uncommitted transaction of the run with its place.
/// For `kv`, an account's transactions are walked in nonce order.
fn walk_uncommitted(wl: &Workload, tr: &Tracker, mut f: impl FnMut(usize, Place)) {
    let accounts = wl.accounts().unwrap_or(tr.len().max(1));
    for a in 0..accounts.min(tr.len()) {
        let mut blocked = false;
        for i in (a..tr.len()).step_by(accounts) {
            if tr.committed_at(i).is_some() {
                continue;
            }
            if tr.admission(i).0 == Admission::NotSent {
                // Never sent (a closed loop stops at the window's end).
                // Senders send an account's transactions in nonce order,
                // so only the account's last ones are unsent.
                f(i, Place::NotSent);
            } else if blocked {
                f(i, Place::Stranded);
            } else {
                blocked = wl.accounts().is_some();
                f(i, Place::First);
            }
        }
    }
}

impl Outcomes {
    /// Classifies every uncommitted transaction of the run. For `kv`, an
    /// account's transactions are walked in nonce order: the first
    /// uncommitted one is classified by its admission, the later ones are
    /// stranded. `pending`: those found still pending after the drain
    /// (among [`Outcomes::unconfirmed`]).
    pub fn classify(wl: &Workload, tr: &Tracker, killed: Option<usize>, pending: &HashSet<usize>) -> Outcomes {
        let mut o = Outcomes::default();
        walk_uncommitted(wl, tr, |i, place| match place {
            Place::NotSent => o.not_sent += 1,
            Place::Stranded => o.stranded += 1,
            Place::First => match tr.admission(i) {
                (Admission::Accepted, node) if Some(node) == killed => o.dropped_with_killed_node += 1,
                (Admission::Accepted, _) if pending.contains(&i) => o.pending += 1,
                (Admission::Accepted, _) => o.lost += 1,
                (Admission::Refused, _) => o.refused += 1,
                (Admission::NoAnswer, _) => o.unanswered += 1,
                (Admission::NotSent, _) => {} // a NotSent place
            },
        });
        o
    }

    /// The transactions [`Outcomes::classify`] counts as lost unless they
    /// are found pending: accepted by a node that was not killed, the first
    /// uncommitted of their account, not committed.
    pub fn unconfirmed(wl: &Workload, tr: &Tracker, killed: Option<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        walk_uncommitted(wl, tr, |i, place| {
            if let (Place::First, (Admission::Accepted, node)) = (place, tr.admission(i))
                && Some(node) != killed
            {
                out.push(i);
            }
        });
        out
    }
}

/// One validator's resource use over the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeFigures {
    pub node: usize,
    pub rpc: String,
    /// Its process id, if it could be found.
    pub pid: Option<u32>,
    /// CPU seconds (user + system) used in the window (until the kill, for
    /// the killed node).
    pub cpu_s: Option<f64>,
    /// `cpu_s` as a percentage of one core over the window.
    pub cpu_percent: Option<f64>,
    /// Peak resident set size (`VmHWM`) at the end of the run, in MiB: the
    /// process's lifetime peak.
    pub peak_rss_mib: Option<f64>,
    /// CPU seconds in the window by thread name, largest first.
    pub threads: Vec<(String, f64)>,
    /// Whether the benchmark killed it.
    pub killed: bool,
}

/// The leader kill, when asked for.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KillFigures {
    /// Seconds into the measured window.
    pub at_s: f64,
    /// Which node was killed (`None`: it could not be, see `error`).
    pub node: Option<usize>,
    /// The longest time without a new block between the kill and the end
    /// of the window, in ms: the stall the kill caused.
    pub stall_ms: f64,
    /// From the kill to the end of that stall, in ms. When the kill caused
    /// no stall this is wherever the window's longest gap between blocks
    /// happened to end, not a recovery time.
    pub resumed_after_ms: f64,
    pub error: Option<String>,
}

/// How compact proposals fared, summed over the nodes for the whole run
/// (warm-up, window and drain), from their `phalanx_compact_*` metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactFigures {
    /// Compact proposals received.
    pub received: u64,
    /// Of those, proposals whose missing transactions were fetched.
    pub fetched: u64,
    /// Proposals whose fetch failed or was not attempted (the block then
    /// arrives by block sync).
    pub failed: u64,
    /// Transactions the proposals named.
    pub txs: u64,
    /// Transactions fetched from proposers.
    pub fetched_txs: u64,
}

impl CompactFigures {
    /// Sums the figures in Prometheus texts (one per node).
    pub fn from_metrics<'a>(texts: impl IntoIterator<Item = &'a str>) -> CompactFigures {
        let mut f = CompactFigures::default();
        for text in texts {
            for line in text.lines() {
                let Some((name, value)) = line.rsplit_once(' ') else { continue };
                let Ok(v) = value.parse::<f64>() else { continue };
                let v = v as u64;
                match name {
                    "phalanx_compact_txs_total" => f.txs += v,
                    "phalanx_compact_fetched_txs_total" => f.fetched_txs += v,
                    n if n.starts_with("phalanx_compact_proposals_total{") => {
                        f.received += v;
                        match n {
                            r#"phalanx_compact_proposals_total{outcome="fetched"}"# => f.fetched += v,
                            r#"phalanx_compact_proposals_total{outcome="complete"}"# => {}
                            _ => f.failed += v,
                        }
                    }
                    _ => {}
                }
            }
        }
        f
    }
}

/// The figures of one offered rate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RateResult {
    /// Offered transactions per second (the schedule).
    pub offered_tx_s: f64,
    /// Length of the measured window, in seconds.
    pub window_s: f64,
    /// Transactions in the whole run (warm-up and window).
    pub total_txs: u64,
    /// Signing accounts (`kv`).
    pub accounts: Option<usize>,
    /// Transactions scheduled (closed loop: first sent) in the window that
    /// left before it ended, per second.
    pub sent_tx_s: f64,
    /// Our transactions whose first commit notification arrived in the
    /// window, per second.
    pub committed_tx_s: f64,
    /// Open loop: scheduled send time → first commit notification, for
    /// transactions scheduled in the window that committed. Closed loop:
    /// first send → the committed answer, for transactions first sent in the
    /// window.
    pub latency_ms: Option<Percentiles>,
    /// Actual − scheduled send time, for transactions scheduled in the window
    /// (open loop).
    pub send_lag_ms: Option<Percentiles>,
    /// Closed loop: clients that used up their pre-made transactions before
    /// the window ended (the offered rate, a ceiling, was reached).
    pub exhausted_clients: u64,
    /// Closed loop, `kv`: clients that stopped because a transaction of
    /// their account ended refused or unanswered (its later nonces could
    /// never commit).
    pub stuck_clients: u64,
    /// Transactions scheduled (closed loop: first sent) in the window that
    /// never committed.
    pub window_uncommitted: u64,
    /// Blocks first notified in the window, per second.
    pub blocks_s: f64,
    /// Transactions per block over those blocks (every transaction, ours or not).
    pub mean_block_txs: f64,
    /// The longest stretch of the window without a new block, in ms.
    pub max_block_gap_ms: f64,
    /// Our transactions committed in each second of the window.
    pub per_second: Vec<u64>,
    /// Submissions accepted by a node (whole run).
    pub accepted: u64,
    /// Submission failures by JSON-RPC error code, or `transport`,
    /// `no-answer`, `timeout` (closed loop), `http-NNN` (whole run). The
    /// closed loop counts attempts: a transaction resent after a failure
    /// counts once per failed attempt.
    pub submit_errors: BTreeMap<String, u64>,
    pub outcomes: Outcomes,
    /// Transactions notified at two different heights by one node.
    pub duplicates: u64,
    /// The first few duplicates: which transaction, node and heights.
    pub duplicate_examples: Vec<Duplicate>,
    /// Transactions notified at different heights by different nodes.
    pub height_mismatches: u64,
    /// Heights notified with two different block ids.
    pub forks: u64,
    /// Our transactions that committed with a non-zero result code.
    pub failed_execution: u64,
    pub streams: Vec<StreamStats>,
    pub nodes: Vec<NodeFigures>,
    /// CPU seconds the benchmark itself used in the window (it shares the
    /// machine with the validators).
    pub bench_cpu_s: Option<f64>,
    pub kill: Option<KillFigures>,
    /// Compact proposals over the whole run (HotStuff on a testnet the
    /// benchmark started).
    pub compact: Option<CompactFigures>,
}

impl RateResult {
    /// Whether the run kept every transaction exactly once: nothing lost,
    /// committed twice, or committed differently by two nodes.
    pub fn ok(&self) -> bool {
        self.outcomes.lost == 0 && self.duplicates == 0 && self.height_mismatches == 0 && self.forks == 0
    }
}

/// What the benchmark was asked to do.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Params {
    pub protocol: String,
    pub validators: usize,
    pub app: String,
    pub rates: Vec<f64>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub drain_s: f64,
    pub connections: usize,
    pub payload_bytes: usize,
    pub clients: Option<usize>,
    pub method: String,
    pub tick_ms: f64,
    pub max_batch: usize,
    pub attach: Vec<String>,
    pub kill_leader_at_s: Option<f64>,
    pub data_dir: String,
    /// Closed loop: `connections` clients, one transaction out each, the
    /// rates being ceilings.
    pub closed_loop: bool,
    /// `consensus.timeout_ms_base` of a started testnet, if set.
    pub timeout_ms_base: Option<u64>,
}

/// Where it ran.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: Option<String>,
    pub mem_total_gib: Option<f64>,
    pub kernel: Option<String>,
    pub git_commit: Option<String>,
    /// Seconds since the Unix epoch at the end of the run.
    pub unix_time: u64,
}

impl Machine {
    /// This machine, now.
    pub fn here() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let git = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |p| p.get()),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned()),
            mem_total_gib: meminfo
                .lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
                .map(|k| (k / (1024.0 * 1024.0) * 10.0).round() / 10.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
            git_commit: git
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|s| !s.is_empty()),
            unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

/// A whole benchmark: parameters, machine, one result per offered rate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub tool: String,
    pub params: Params,
    pub machine: Machine,
    pub results: Vec<RateResult>,
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

impl Report {
    /// Whether every rate kept every transaction exactly once.
    pub fn ok(&self) -> bool {
        self.results.iter().all(RateResult::ok)
    }

    /// The report as one line of JSON.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("a report serialises")
    }

    /// A table for people: one row per offered rate, then per-rate details.
    /// `threads` adds each node's busiest threads.
    pub fn table(&self, threads: bool) -> String {
        let p = &self.params;
        let mut s = String::new();
        let (what, load) =
            if p.closed_loop { ("closed-loop clients", "ceiling/s") } else { ("connections", "offered/s") };
        let _ = writeln!(
            s,
            "phalanx-bench: {} {} validators, app {}, {} {what} ({}), window {} s after {} s warm-up, {} cores",
            p.protocol, p.validators, p.app, p.connections, p.method, p.duration_s, p.warmup_s, self.machine.nproc
        );
        let _ = writeln!(
            s,
            "{:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>4} {:>10} {:>9}",
            load,
            "sent/s",
            "commit/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "blocks/s",
            "tx/block",
            "refused",
            "lost",
            "dup",
            "CPU%/node",
            "RSS MiB"
        );
        for r in &self.results {
            let lat = r.latency_ms.as_ref();
            let cpu: Vec<f64> = r.nodes.iter().filter_map(|n| n.cpu_percent).collect();
            let cpu_mean = (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64);
            let rss = r.nodes.iter().filter_map(|n| n.peak_rss_mib).reduce(f64::max);
            let _ = writeln!(
                s,
                "{:>9.0} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>8.1} {:>8.1} {:>8} {:>6} {:>4} {:>10} {:>9}",
                r.offered_tx_s,
                r.sent_tx_s,
                r.committed_tx_s,
                opt(lat.map(|l| l.p50), 1),
                opt(lat.map(|l| l.p90), 1),
                opt(lat.map(|l| l.p99), 1),
                opt(lat.map(|l| l.max), 1),
                r.blocks_s,
                r.mean_block_txs,
                r.outcomes.refused,
                r.outcomes.lost,
                r.duplicates,
                opt(cpu_mean, 0),
                opt(rss, 0),
            );
        }
        for r in &self.results {
            s.push_str(&r.details(threads));
        }
        s
    }
}

impl RateResult {
    fn details(&self, threads: bool) -> String {
        let mut s = format!("\nat {:.0} tx/s:\n", self.offered_tx_s);
        if self.stuck_clients > 0 {
            let _ = writeln!(
                s,
                "  {} clients stopped early: a transaction of theirs ended refused or unanswered (see the errors)",
                self.stuck_clients
            );
        }
        if self.exhausted_clients > 0 {
            let _ = writeln!(
                s,
                "  {} clients used up their transactions before the window ended: the rate ceiling was reached, raise --rate",
                self.exhausted_clients
            );
        }
        let o = &self.outcomes;
        let _ = writeln!(
            s,
            "  submissions: {} accepted, errors {:?}; send lag ms {}",
            self.accepted,
            self.submit_errors,
            self.send_lag_ms.as_ref().map_or("-".into(), |l| format!("p50 {} p99 {} max {}", l.p50, l.p99, l.max)),
        );
        let _ = writeln!(
            s,
            "  not committed: {} lost, {} still pending when the drain ended, {} dropped with the killed node, {} stranded (kv nonce gap), {} refused, {} unanswered, {} not sent; {} of them scheduled (closed loop: first sent) in the window",
            o.lost,
            o.pending,
            o.dropped_with_killed_node,
            o.stranded,
            o.refused,
            o.unanswered,
            o.not_sent,
            self.window_uncommitted
        );
        if o.pending > 0 {
            let _ = writeln!(
                s,
                "  note: {} accepted transactions had not committed when the drain ended but were still pending in a mempool: not a loss; a longer --drain lets them commit",
                o.pending
            );
        }
        let _ = writeln!(
            s,
            "  checks: {} duplicates, {} height mismatches, {} forks, {} failed execution; longest block gap {:.0} ms",
            self.duplicates, self.height_mismatches, self.forks, self.failed_execution, self.max_block_gap_ms
        );
        if let Some(c) = self.compact.as_ref().filter(|c| c.received > 0) {
            let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
            let _ = writeln!(
                s,
                "  compact proposals (whole run, all nodes): {} received, {} needed a fetch ({:.1} %), {} failed; {} of {} transactions fetched ({:.1} %)",
                c.received,
                c.fetched,
                pct(c.fetched, c.received),
                c.failed,
                c.fetched_txs,
                c.txs,
                pct(c.fetched_txs, c.txs)
            );
        }
        for d in &self.duplicate_examples {
            let _ = writeln!(
                s,
                "  duplicate: tx {} ({}…) at heights {} and {} on node{}, submitted to node{}",
                d.tx,
                &d.hash[..d.hash.len().min(12)],
                d.first_height,
                d.second_height,
                d.node,
                d.submitted_to
            );
        }
        if let Some(k) = &self.kill {
            let _ = writeln!(
                s,
                "  leader kill at {:.1} s: node {}, longest stall {:.0} ms, ending {:.0} ms after the kill{}",
                k.at_s,
                k.node.map_or("-".into(), |n| n.to_string()),
                k.stall_ms,
                k.resumed_after_ms,
                k.error.as_ref().map_or(String::new(), |e| format!(" ({e})")),
            );
        }
        for st in self.streams.iter().filter(|st| st.gaps > 0 || st.ended.is_some()) {
            let _ = writeln!(s, "  stream node{}: {} gaps, ended: {:?}", st.node, st.gaps, st.ended);
        }
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "  node{} pid {}: CPU {} s ({}%), peak RSS {} MiB{}",
                n.node,
                n.pid.map_or("?".into(), |p| p.to_string()),
                opt(n.cpu_s, 2),
                opt(n.cpu_percent, 0),
                opt(n.peak_rss_mib, 0),
                if n.killed { ", killed" } else { "" }
            );
            if threads {
                let top: Vec<String> = n.threads.iter().take(8).map(|(t, c)| format!("{t} {c:.2}")).collect();
                let _ = writeln!(s, "    threads (CPU s): {}", top.join(", "));
            }
        }
        let _ = writeln!(s, "  benchmark process CPU {} s", opt(self.bench_cpu_s, 2));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn compact_figures_sum_the_nodes_metrics() {
        let a = "# HELP phalanx_compact_txs Transactions named\n\
                 phalanx_compact_txs_total 100\n\
                 phalanx_compact_fetched_txs_total 7\n\
                 phalanx_compact_proposals_total{outcome=\"complete\"} 3\n\
                 phalanx_compact_proposals_total{outcome=\"fetched\"} 2\n\
                 phalanx_compact_proposals_total{outcome=\"fetch_failed\"} 1\n\
                 phalanx_txs_committed_total 999\n";
        let b = "phalanx_compact_txs_total 50\nphalanx_compact_proposals_total{outcome=\"complete\"} 4\n# EOF\n";
        let f = CompactFigures::from_metrics([a, b]);
        assert_eq!(f, CompactFigures { received: 10, fetched: 2, failed: 1, txs: 150, fetched_txs: 7 });
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let p = Percentiles::of_micros((1..=100).map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max, p.mean), (50.0, 90.0, 99.0, 100.0, 50.5));
        assert!(Percentiles::of_micros(Vec::new()).is_none());
    }

    #[test]
    fn the_first_uncommitted_nonce_is_classified_and_the_later_ones_are_stranded() {
        // 2 accounts: account 0 has txs 0, 2, 4, 6; account 1 has 1, 3, 5, 7.
        let wl = Workload::kv("c", 8, 2);
        let tr = Tracker::new(8, 1000.0, Instant::now());
        for i in 0..8 {
            tr.admitted(i, Admission::Accepted, 0);
        }
        tr.admitted(2, Admission::Refused, 0);
        for i in [0, 1, 3, 5, 7] {
            tr.commit(i, 1, 10, 0).unwrap();
        }
        let o = Outcomes::classify(&wl, &tr, None, &HashSet::new());
        assert_eq!((o.refused, o.stranded, o.lost), (1, 2, 0));
        tr.admitted(2, Admission::Accepted, 1);
        assert_eq!(Outcomes::classify(&wl, &tr, None, &HashSet::new()).lost, 1);
        // Only the account's first uncommitted one is worth asking about.
        assert_eq!(Outcomes::unconfirmed(&wl, &tr, None), vec![2]);
        assert!(Outcomes::unconfirmed(&wl, &tr, Some(1)).is_empty());
        assert_eq!(Outcomes::classify(&wl, &tr, Some(1), &HashSet::new()).dropped_with_killed_node, 1);
    }

    #[test]
    fn never_sent_transactions_are_not_sent_not_stranded() {
        // A closed loop stops at the window's end: account 0 committed tx 0,
        // its tx 2 was refused, and txs 4 and 6 were never sent.
        let wl = Workload::kv("c", 8, 2);
        let tr = Tracker::new(8, 1000.0, Instant::now());
        for i in [0, 1, 3] {
            tr.admitted(i, Admission::Accepted, 0);
            tr.commit(i, 1, 10, 0).unwrap();
        }
        tr.admitted(2, Admission::Refused, 0);
        let o = Outcomes::classify(&wl, &tr, None, &HashSet::new());
        assert_eq!((o.refused, o.not_sent, o.stranded, o.lost), (1, 4, 0, 0));
    }

    #[test]
    fn noop_transactions_stand_alone() {
        let wl = Workload::noop(4, 64);
        let tr = Tracker::new(4, 1000.0, Instant::now());
        for i in 0..4 {
            tr.admitted(i, Admission::Accepted, 0);
        }
        tr.commit(3, 1, 10, 0).unwrap();
        let o = Outcomes::classify(&wl, &tr, None, &HashSet::new());
        assert_eq!((o.lost, o.stranded), (3, 0));
        // Two of them were found in a mempool after the drain.
        let o = Outcomes::classify(&wl, &tr, None, &HashSet::from([0, 2]));
        assert_eq!((o.lost, o.pending), (1, 2));
    }
}
