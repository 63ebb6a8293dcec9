//! Commit tracking: one WebSocket `subscribe` per validator.
//!
//! Each node streams every block it commits as `{height, block_id, time_ms,
//! app_hash, txs: [{hash, code}]}`. A stream's task timestamps each
//! notification when it reads it and records, for each of our transactions
//! in it, the first commit time over all streams (the latency's end). Per
//! stream it checks that no transaction appears at two different heights
//! (a duplicate commit) and that heights follow one another (a gap means
//! the node skipped blocks for a slow subscriber; the other streams still
//! report them). Across streams it checks that a transaction has one height
//! and a height one block id.

use super::track::{Duplicate, Tracker, micros_since};
use super::workload::Workload;
use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::watch;

/// One committed block, as notified.
#[derive(Deserialize)]
pub struct BlockNote {
    height: u64,
    block_id: String,
    txs: Vec<TxNote>,
}

#[derive(Deserialize)]
struct TxNote {
    hash: String,
    code: u32,
}

/// An open subscription to one node's committed blocks.
pub struct Stream {
    node: usize,
    // The client must live as long as its subscription.
    _client: WsClient,
    sub: Subscription<BlockNote>,
}

/// What one stream saw.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StreamStats {
    /// The node's index.
    pub node: usize,
    /// Block notifications received.
    pub blocks: u64,
    /// Times a height did not follow the previous one.
    pub gaps: u64,
    /// Transactions that are not ours (e.g. evidence, other clients').
    pub foreign_txs: u64,
    /// Why the stream ended before the run did (e.g. the node was killed).
    pub ended: Option<String>,
}

/// Subscribes to node `node`'s committed blocks at `rpc` (host:port).
pub async fn subscribe(node: usize, rpc: &str) -> anyhow::Result<Stream> {
    let client = WsClientBuilder::default()
        .max_response_size(256 << 20)
        .max_buffer_capacity_per_subscription(1 << 16)
        .build(format!("ws://{rpc}"))
        .await
        .map_err(|e| anyhow::anyhow!("WebSocket to node{node} at {rpc}: {e}"))?;
    let sub = client
        .subscribe::<BlockNote, _>("subscribe", ArrayParams::new(), "unsubscribe")
        .await
        .map_err(|e| anyhow::anyhow!("subscribe on node{node} at {rpc}: {e}"))?;
    Ok(Stream { node, _client: client, sub })
}

/// Follows `stream` until `stop` turns true or the stream ends.
pub async fn follow(
    mut stream: Stream,
    wl: Arc<Workload>,
    tr: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) -> StreamStats {
    let mut stats = StreamStats { node: stream.node, ..StreamStats::default() };
    // Height at which this stream reported each of our transactions (0: not yet).
    let mut seen = vec![0u32; wl.len()];
    let mut last_height = 0u64;
    loop {
        let note = tokio::select! {
            n = stream.sub.next() => n,
            _ = stop.wait_for(|s| *s) => return stats,
        };
        let note = match note {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                stats.ended = Some(format!("undecodable notification: {e}"));
                return stats;
            }
            None => {
                let why = match stream.sub.close_reason() {
                    Some(jsonrpsee::core::client::SubscriptionCloseReason::Lagged) => "lagged",
                    _ => "connection closed",
                };
                stats.ended = Some(why.into());
                return stats;
            }
        };
        let us = micros_since(tr.t0);
        stats.blocks += 1;
        if last_height != 0 && note.height != last_height + 1 {
            stats.gaps += 1;
        }
        last_height = note.height;
        tr.block(note.height, &note.block_id, note.txs.len(), us);
        for t in &note.txs {
            let Some(i) = wl.find(&t.hash) else {
                stats.foreign_txs += 1;
                continue;
            };
            let h = note.height as u32;
            if seen[i] != 0 && seen[i] != h {
                tr.duplicate(Duplicate {
                    tx: i,
                    hash: t.hash.clone(),
                    node: stream.node,
                    first_height: seen[i].into(),
                    second_height: note.height,
                    submitted_to: 0,
                });
                continue;
            }
            seen[i] = h;
            tr.commit(i, note.height, us, t.code);
        }
    }
}
