//! `phalanx-testnet`: run a scenario against a real-process testnet.
//!
//!   phalanx-testnet run testnet/scenarios/partition-heal.toml
//!   phalanx-testnet run FILE.toml --bin target/release/phalanx --out /tmp/run --keep
//!
//! Prints one verdict line per check and the overall verdict, and writes
//! `report.json`, `operations.json`, `heights.json`, `timeline.svg` and the
//! nodes' logs to the output directory. Exit status: 0 when the verdict is
//! what the scenario expects, 1 when it is not, 2 when the scenario file is
//! bad or the run could not be carried out.

use clap::{Parser, Subcommand};
use phalanx_testnet::scenario::{self, RunOptions, Scenario};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "phalanx-testnet", about = "Run Phalanx scenarios: faults, workload, checks, report")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario file (format: README, "Scenarios").
    Run {
        /// The scenario (TOML).
        file: PathBuf,
        /// The phalanx binary (default: `phalanx` next to this program).
        #[arg(long, value_name = "PATH")]
        bin: Option<PathBuf>,
        /// Output directory (default ./scenario-out/<name>-<time>/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Keep the testnet directory (homes, databases) after the run.
        #[arg(long)]
        keep: bool,
    },
}

fn main() {
    let Cmd::Run { file, bin, out, keep } = Args::parse().cmd;
    std::process::exit(run(&file, bin, out, keep));
}

fn run(file: &Path, bin: Option<PathBuf>, out: Option<PathBuf>, keep: bool) -> i32 {
    let scenario = match Scenario::from_file(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let bin = match bin.map(Ok).unwrap_or_else(default_bin) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let opts = RunOptions { bin, out_dir: out, keep };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let report = match rt.block_on(scenario::run(&scenario, Some(file), &opts)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the scenario could not be run: {e:#}");
            return 2;
        }
    };
    for line in report.lines() {
        println!("{line}");
    }
    println!("report: {}", report.out_dir.join("report.json").display());
    println!("timeline: {}", report.out_dir.join("timeline.svg").display());
    if let Some(d) = &report.testnet_dir {
        println!("testnet kept in {}", d.display());
    }
    if report.as_expected { 0 } else { 1 }
}

/// `phalanx` in the directory of this executable.
fn default_bin() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
    let bin = me.with_file_name("phalanx");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no phalanx binary at {}; build it (`cargo build --release -p phalanx-node --bin phalanx`) or give --bin PATH",
            bin.display()
        ))
    }
}
