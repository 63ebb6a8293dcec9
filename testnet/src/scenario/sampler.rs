//! Watches the honest nodes' committed heights while the scenario runs.
//!
//! One task per honest node asks `status` every [`EVERY`] while the node is
//! up and not paused, and records each change of height with the time the
//! answer came. The liveness and no-progress checks read these samples.

use super::live::Shared;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Sampling period.
pub const EVERY: Duration = Duration::from_millis(100);

/// Node `node` reported `height` at `t_us` (µs since the workload began).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub t_us: u64,
    pub node: usize,
    pub height: u64,
}

/// Samples every honest node until `stop` turns true; returns the samples
/// in time order.
pub async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Vec<Sample> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..shared.rpcs.len() {
        if shared.honest[i] {
            tasks.spawn(watch_node(shared.clone(), i, stop.clone()));
        }
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.expect("a sampler task panicked"));
    }
    all.sort_by_key(|s| (s.t_us, s.node));
    all
}

async fn watch_node(shared: Arc<Shared>, i: usize, mut stop: watch::Receiver<bool>) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    while !*stop.borrow() {
        if shared.state(i).serving()
            && let Some(height) = shared.height(i).await
            && out.last().is_none_or(|s| s.height != height)
        {
            out.push(Sample { t_us: shared.now_us(), node: i, height });
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
    }
    out
}

/// When the highest height any honest node had reported rose, and to what:
/// `(t_us, height)`, strictly increasing in both.
pub fn commit_events(samples: &[Sample]) -> Vec<(u64, u64)> {
    let mut top = 0;
    let mut out = Vec::new();
    for s in samples {
        if s.height > top {
            top = s.height;
            out.push((s.t_us, top));
        }
    }
    out
}
