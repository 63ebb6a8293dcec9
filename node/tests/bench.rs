//! The end-to-end benchmark runs: a tiny load on a real testnet, through the
//! same library entry point `phalanx-bench` uses.
//!
//! These prove that the tool works and that no transaction is lost or
//! committed twice under steady load; the figures are printed, never
//! asserted (they depend on the machine). Tests take a lock so only one
//! testnet runs at a time.

use phalanx_testnet::bench::report::Report;
use phalanx_testnet::bench::{App, BenchConfig, run};
use std::path::PathBuf;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 4 HotStuff validators, 200 tx/s for 3 s after 1 s of warm-up.
fn tiny(app: App, data_dir: PathBuf) -> BenchConfig {
    let mut c = BenchConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_phalanx")));
    c.app = app;
    c.rates = vec![200.0];
    c.duration = Duration::from_secs(3);
    c.warmup = Duration::from_secs(1);
    c.drain = Duration::from_secs(20);
    c.connections = 4;
    c.data_dir = data_dir;
    c
}

fn check(report: &Report) {
    println!("{}", report.table(true));
    println!("{}", report.json_line());
    let r = &report.results[0];
    assert!(r.accepted > 0, "the nodes accepted no transaction");
    assert!(r.committed_tx_s > 0.0, "nothing committed in the window");
    assert_eq!(r.outcomes.lost, 0, "accepted transactions were never committed");
    assert_eq!(r.duplicates, 0, "a transaction was committed in two blocks");
    assert_eq!((r.height_mismatches, r.forks), (0, 0), "nodes disagree on where transactions committed");
    let lat = r.latency_ms.as_ref().expect("latency percentiles");
    assert!(lat.count > 0 && lat.p50 <= lat.p90 && lat.p90 <= lat.p99 && lat.p99 <= lat.max);
    assert!(report.ok());
    assert_eq!(r.nodes.len(), 4);
    assert!(r.nodes.iter().all(|n| n.pid.is_some() && n.cpu_s.is_some() && n.peak_rss_mib.is_some()));
}

/// Signed key-value transactions: latency percentiles are reported, nothing
/// is lost or committed twice, every node's CPU and memory are found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_kv_on_four_hotstuff_validators() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&tiny(App::Kv, dir.path().join("bench"))).await.expect("the benchmark runs");
    check(&report);
    assert_eq!(report.params.app, "kv");
}

/// `noop` payloads of 512 bytes: the same checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_noop_on_four_hotstuff_validators() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&tiny(App::Noop, dir.path().join("bench"))).await.expect("the benchmark runs");
    check(&report);
    assert_eq!(report.params.app, "noop");
}

/// Raft, closed loop: 8 clients each with one `broadcast_tx_commit` out;
/// the leader is SIGKILLed mid-window. Clients of the dead leader resend to
/// the survivors, commits resume, and nothing is lost or committed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_raft_closed_loop_survives_a_leader_kill() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = tiny(App::Kv, dir.path().join("bench"));
    c.protocol = "raft".into();
    c.validators = 3;
    c.closed_loop = true;
    c.connections = 8;
    c.rates = vec![2000.0]; // a ceiling: the clients are not held back by it
    c.duration = Duration::from_secs(8);
    c.kill_leader_at = Some(Duration::from_secs(2));
    let report = run(&c).await.expect("the benchmark runs");
    println!("{}", report.table(true));
    println!("{}", report.json_line());
    let r = &report.results[0];
    assert!(report.params.closed_loop);
    let kill = r.kill.as_ref().expect("kill figures");
    assert!(kill.node.is_some(), "the leader was not killed: {:?}", kill.error);
    assert_eq!(r.nodes.iter().filter(|n| n.killed).count(), 1, "one node killed");
    assert_eq!(r.outcomes.lost, 0, "accepted transactions were never committed");
    assert_eq!(r.duplicates, 0, "a transaction was committed in two blocks");
    assert_eq!((r.height_mismatches, r.forks), (0, 0), "nodes disagree on where transactions committed");
    // Commits resumed after the kill: our transactions committed in the
    // window's last two seconds (the kill was at 2 s of 8).
    let late: u64 = r.per_second[6..].iter().sum();
    assert!(late > 0, "nothing committed late in the window: {:?}", r.per_second);
    assert_eq!(r.stuck_clients, 0, "a client's transaction ended refused or unanswered");
    let lat = r.latency_ms.as_ref().expect("closed-loop latencies");
    assert!(lat.count > 0 && lat.p50 <= lat.p99 && lat.p99 <= lat.max);
    assert!(report.ok());
}
