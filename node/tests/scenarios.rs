//! Scenario runs with real processes: the shipped scenarios CI runs, each
//! a 4-validator testnet with a workload, faults and a timeline (see
//! `testnet/src/scenario` and the README, "Scenarios").
//!
//! Each test runs one file from `testnet/scenarios/` through
//! `phalanx_testnet::scenario::run` and asserts the verdict: every check
//! passes for the scenarios within f, and for `beyond-f` (2 of 4 validators
//! Byzantine) the liveness check fails and says why. Tests take a global
//! lock: each starts 4 processes, and a small machine runs one at a time.
//! Reports (report.json, operations.json, timeline.svg, logs) are written
//! under the target directory's `tmp/scenarios/<name>/`; set
//! `PHALANX_KEEP_TESTNET=1` to keep the testnets too.

use phalanx_testnet::scenario::{self, Report, RunOptions, Scenario};
use std::path::{Path, PathBuf};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testnet/scenarios").join(format!("{name}.toml"))
}

/// Runs the shipped scenario `name` and prints its verdict lines.
async fn run(name: &str) -> Report {
    let _serial = SERIAL.lock().await;
    let path = file(name);
    let s = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_phalanx")),
        out_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenarios").join(name)),
        keep: std::env::var_os("PHALANX_KEEP_TESTNET").is_some(),
    };
    let report = scenario::run(&s, Some(&path), &opts).await.unwrap_or_else(|e| panic!("{name} could not run: {e:#}"));
    for line in report.lines() {
        eprintln!("{line}");
    }
    report
}

/// Every check passed.
fn assert_passes(r: &Report) {
    assert!(
        r.passed && r.as_expected,
        "scenario {} failed {:?}:\n{}\nreport in {}",
        r.scenario.name,
        r.failed(),
        r.lines().join("\n"),
        r.out_dir.display()
    );
}

/// Every honest node holds committed evidence against `culprit` (shown by
/// the evidence check, and read back here from what the report recorded).
fn assert_evidence_on_every_honest_node(r: &Report, culprit: usize) {
    let key = &r.nodes[culprit].validator;
    for n in r.nodes.iter().filter(|n| n.honest) {
        let held = &r.evidence[&format!("node{}", n.index)];
        assert!(held.recorded_by_culprit.get(key).is_some_and(|&k| k > 0), "node{}: {held:?}", n.index);
        assert!(
            held.items.iter().any(|e| &e.culprit == key && e.height.is_some()),
            "node{} lists no evidence against node{culprit} with the height that recorded it: {held:?}",
            n.index
        );
    }
}

/// Issue 5, shown 1 and 4: an equivocating leader (f = 1 of 4) changes
/// nothing for the honest three, and each of them can be asked for
/// committed evidence against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocate_passes_and_every_honest_node_holds_the_evidence() {
    let r = run("equivocate").await;
    assert_passes(&r);
    assert_evidence_on_every_honest_node(&r, 1);
}

/// Issue 5, shown 1: a validator signing two votes per round is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_vote_passes_and_every_honest_node_holds_the_evidence() {
    let r = run("double-vote").await;
    assert_passes(&r);
    assert_evidence_on_every_honest_node(&r, 2);
}

/// Issue 5, shown 1: invalid blocks from a leader are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_block_passes() {
    assert_passes(&run("invalid-block").await);
}

/// Issue 5, shown 1: a validator that forgets its safety state across a
/// crash and restart cannot break the honest three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amnesia_passes() {
    assert_passes(&run("amnesia").await);
}

/// Issue 5, shown 1: the leader killed mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_passes() {
    let r = run("leader-crash").await;
    assert_passes(&r);
    assert!(r.events.iter().any(|e| e.action == "kill" && e.label.contains("(the leader)")), "{:?}", r.events);
}

/// Issue 5, shown 1: a 2-2 partition stops all commits while it holds, and
/// commits resume after the heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heal_stalls_during_and_recovers_after() {
    let r = run("partition-heal").await;
    assert_passes(&r);
    let stall = r.check("no-progress").expect("the no-progress check ran");
    assert!(stall.reason.starts_with("no honest commit during partition [0, 1] | [2, 3]"), "{}", stall.reason);
    let live = r.check("liveness").unwrap();
    assert!(live.reason.contains("after heal the partition at"), "{}", live.reason);
}

/// Issue 5, shown 2: with 2 of 4 validators withholding (beyond f) no
/// quorum forms; the runner's verdict is FAIL, the liveness check is the
/// one that fails, and its reason says how long nothing committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_f_is_caught_as_a_liveness_failure() {
    let r = run("beyond-f").await;
    assert!(!r.passed, "the verdict is FAIL:\n{}", r.lines().join("\n"));
    assert!(r.as_expected, "{}", r.expectation);
    let live = r.check("liveness").unwrap();
    assert!(!live.passed);
    assert!(live.reason.starts_with("no commit for "), "{}", live.reason);
    assert!(r.lines().iter().any(|l| l.starts_with("FAIL liveness: no commit for ")), "{:?}", r.lines());
    assert!(r.check("safety").unwrap().passed, "two honest nodes still agree");
}
