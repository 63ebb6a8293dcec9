//! Transaction gossip: each transaction a client submits is sent to every
//! peer once, in batches.
//!
//! In HotStuff mode proposals travel compact (`compact.rs`): replicas
//! rebuild them from what they were gossiped. So that a proposal rarely
//! names a transaction its replicas lack, a client's transaction is held
//! back from this node's proposals until its batch has been handed to the
//! network ([`phalanx_mempool::Origin::ClientHeld`]); one that finds the
//! queue full is released at once (its peers fetch it if it is proposed).

use crate::network::{NetMsg, NetworkHandle};
use bytes::Bytes;
use phalanx_crypto::Hash;
use phalanx_mempool::{Origin, SharedMempool};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Transactions queued for gossip at most.
pub const GOSSIP_QUEUE: usize = 65_536;

/// Where client transactions wait for gossip.
#[derive(Clone)]
pub struct GossipQueue {
    /// `None` when gossip is off (`mempool.gossip = false`).
    tx: Option<mpsc::Sender<(Hash, Bytes)>>,
    hold: bool,
}

impl GossipQueue {
    /// A queue and the task that empties it (spawned when `enabled`).
    /// With `hold`, this node proposes a client's transaction only once it
    /// has been gossiped (HotStuff's compact proposals); without it, at
    /// once (Raft: the leader sends whole entries).
    pub fn start(
        enabled: bool,
        hold: bool,
        net: NetworkHandle,
        mempool: SharedMempool,
        shutdown: watch::Receiver<bool>,
    ) -> GossipQueue {
        if !enabled {
            return GossipQueue { tx: None, hold: false };
        }
        let (tx, rx) = mpsc::channel(GOSSIP_QUEUE);
        tokio::spawn(run(rx, net, hold.then_some(mempool), shutdown));
        GossipQueue { tx: Some(tx), hold }
    }

    /// How the mempool should admit a client's transaction.
    pub fn origin(&self) -> Origin {
        if self.hold { Origin::ClientHeld } else { Origin::Client }
    }

    /// Queues admitted client transactions for gossip. Those the queue has
    /// no room for are released to proposals at once; returns how many.
    pub fn send(&self, mempool: &SharedMempool, admitted: impl IntoIterator<Item = (Hash, Bytes)>) -> usize {
        let Some(queue) = &self.tx else { return 0 };
        let mut unsent = Vec::new();
        for (hash, tx) in admitted {
            if queue.try_send((hash, tx)).is_err() {
                unsent.push(hash);
            }
        }
        if self.hold {
            mempool.release(&unsent);
        }
        unsent.len()
    }
}

/// Shortest time between two gossip batches while transactions keep
/// arriving.
pub const GOSSIP_BATCH_INTERVAL: Duration = Duration::from_millis(20);
/// Most transactions in one gossip batch.
pub const GOSSIP_BATCH_TXS: usize = 4096;

/// Largest encoded gossip message of more than one transaction: under the
/// largest message a peer accepts (`block_max_bytes` + 1 MiB) whatever the
/// genesis says. A transaction alone always fits (it is at most
/// `tx_max_bytes`, hence at most `block_max_bytes`).
pub const GOSSIP_BATCH_BYTES: usize = 1 << 20;

/// Room for the message's own framing (variant tag, list length).
const GOSSIP_ENVELOPE_BYTES: usize = 32;
/// Most bytes the encoding adds to one transaction (a varint length).
const TX_PREFIX_BYTES: usize = 9;

/// Splits `txs` into messages whose encoding is at most
/// [`GOSSIP_BATCH_BYTES`] (a larger transaction travels alone).
fn by_bytes(txs: Vec<Bytes>) -> Vec<Vec<Bytes>> {
    let budget = GOSSIP_BATCH_BYTES - GOSSIP_ENVELOPE_BYTES;
    let mut out: Vec<Vec<Bytes>> = Vec::new();
    let mut bytes = 0;
    for tx in txs {
        let cost = tx.len() + TX_PREFIX_BYTES;
        match out.last_mut() {
            Some(last) if bytes + cost <= budget => {
                bytes += cost;
                last.push(tx);
            }
            _ => {
                bytes = cost;
                out.push(vec![tx]);
            }
        }
    }
    out
}

/// Batches admitted transactions and sends each batch to every peer once.
///
/// Nagle-style: a transaction that arrives when no batch went out in the
/// last [`GOSSIP_BATCH_INTERVAL`] leaves at once (with whatever is already
/// queued), so a lightly loaded node adds no delay; under steady load
/// batches leave at most once per interval (or on reaching
/// [`GOSSIP_BATCH_TXS`]). Each batch costs every peer one network message
/// and one admission pass, so under load fewer, larger batches leave more
/// CPU for consensus, and the wait adds about the interval at most to a
/// transaction's latency (two intervals when a batch fills up early).
///
/// `release_to`: the mempool whose held transactions each sent batch
/// releases to proposals (HotStuff), if any.
async fn run(
    mut rx: mpsc::Receiver<(Hash, Bytes)>,
    net: NetworkHandle,
    release_to: Option<SharedMempool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_sent: Option<tokio::time::Instant> = None;
    loop {
        let first = tokio::select! {
            t = rx.recv() => match t { Some(t) => t, None => return },
            _ = shutdown.changed() => return,
        };
        let mut batch = vec![first];
        let now = tokio::time::Instant::now();
        let flush_at = last_sent.map_or(now, |t| (t + GOSSIP_BATCH_INTERVAL).max(now));
        let deadline = tokio::time::sleep_until(flush_at);
        tokio::pin!(deadline);
        while batch.len() < GOSSIP_BATCH_TXS {
            match rx.try_recv() {
                Ok(t) => {
                    batch.push(t);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) if tokio::time::Instant::now() >= flush_at => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            tokio::select! {
                t = rx.recv() => match t { Some(t) => batch.push(t), None => break },
                _ = &mut deadline => break,
            }
        }
        let (hashes, txs): (Vec<Hash>, Vec<Bytes>) = batch.into_iter().unzip();
        for msg in by_bytes(txs) {
            net.broadcast(&NetMsg::Txs(msg));
        }
        // Queued for every peer's connection: a proposal naming them now
        // follows them on the same connections.
        if let Some(mempool) = &release_to {
            mempool.release(&hashes);
        }
        last_sent = Some(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoded messages stay under the byte bound (a peer refuses a larger
    /// frame), length prefixes included; a transaction larger than the
    /// bound travels alone; nothing is lost or reordered.
    #[test]
    fn gossip_messages_are_bounded_in_bytes() {
        let tx = |n: usize, b: u8| Bytes::from(vec![b; n]);
        let half = GOSSIP_BATCH_BYTES / 2;
        let mut txs = vec![tx(half - 100, 0), tx(half - 100, 1), tx(1, 2), tx(GOSSIP_BATCH_BYTES * 2, 3), tx(10, 4)];
        // Many small transactions whose prefixes alone pass the bound's slack.
        txs.extend((0..6000).map(|i| tx(251, i as u8)));
        let msgs = by_bytes(txs.clone());
        assert_eq!(msgs[0].len(), 3);
        assert_eq!(msgs[1], vec![tx(GOSSIP_BATCH_BYTES * 2, 3)], "the large transaction travels alone");
        for m in &msgs {
            let encoded = NetMsg::Txs(m.clone()).encode().len();
            assert!(m.len() == 1 || encoded <= GOSSIP_BATCH_BYTES, "{} txs encode to {encoded} bytes", m.len());
        }
        assert_eq!(msgs.len(), 4, "the small transactions need two messages");
        assert_eq!(msgs.concat(), txs);
        assert!(by_bytes(Vec::new()).is_empty());
    }
}
