use phalanx_testnet::sim::{SimConfig, Simulation};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let mut cfg = SimConfig::new(seed, 4);
    cfg.duration_ms = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(20_000);
    cfg.network.gst_ms = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(0);
    cfg.network.loss_before_gst = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(0.05);
    let r = Simulation::new(cfg).run();
    println!(
        "events {} height {} min {} txs {}/{} invalid {} gap {} violations {:?}",
        r.events,
        r.max_height,
        r.min_height,
        r.committed_txs,
        r.submitted_txs,
        r.invalid_messages,
        r.max_commit_gap_ms,
        r.violations
    );
    for l in &r.trace_tail {
        println!("{l}");
    }
}
