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
