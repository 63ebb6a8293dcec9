//! Commit tracking: one WebSocket `subscribe` per validator.
//!
//! Each node streams every block it commits as `{height, block_id, time_ms,
//! app_hash, txs: [{hash, code}]}`. A stream's task timestamps each
//! notification when it reads it. The first notification of a height, from
//! whichever node, is read in full: each of our transactions in it gets
//! that commit time (the latency's end), and one already recorded at
//! another height was committed twice. A later notification of the height
//! is checked, not read: its block id must be the first one's (else a
//! fork) and its transaction list, kept as raw JSON, must digest the same
//! (else a height mismatch). Reading each block once rather than once per
//! node keeps the benchmark's own CPU, which shares the machine with the
//! validators, about a quarter of what it was. Per stream it checks that
//! heights follow one another (a gap means the node skipped blocks for a
//! slow subscriber; the other streams still report them).

use super::track::{Duplicate, Tracker, micros_since};
use super::workload::Workload;
use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;
use tokio::sync::watch;

/// One committed block, as notified; its transactions are read only if
/// this is the first notification of its height.
#[derive(Deserialize)]
pub struct BlockNote {
    height: u64,
    block_id: String,
    txs: Box<RawValue>,
}

#[derive(Deserialize)]
struct TxNote<'a> {
    #[serde(borrow)]
    hash: &'a str,
    code: u32,
}

/// A digest of a notification's raw transaction list, to compare nodes'
/// lists of one block without reading them.
fn digest(raw: &RawValue) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    raw.get().hash(&mut h);
    h.finish()
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
    /// Transactions that are not ours (e.g. evidence, other clients'), in
    /// the blocks this stream was the first to report.
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
        if !tr.block(note.height, &note.block_id, digest(&note.txs), us) {
            continue;
        }
        let txs: Vec<TxNote> = match serde_json::from_str(note.txs.get()) {
            Ok(txs) => txs,
            Err(e) => {
                stats.ended = Some(format!("undecodable transactions at height {}: {e}", note.height));
                return stats;
            }
        };
        tr.block_txs(note.height, txs.len());
        for t in &txs {
            let Some(i) = wl.find(t.hash) else {
                stats.foreign_txs += 1;
                continue;
            };
            if let Err(first_height) = tr.commit(i, note.height, us, t.code) {
                tr.duplicate(Duplicate {
                    tx: i,
                    hash: t.hash.to_owned(),
                    node: stream.node,
                    first_height,
                    second_height: note.height,
                    submitted_to: 0,
                });
            }
        }
    }
}
