//! Networking: libp2p over TCP with noise encryption and yamux streams.
//!
//! Owns the swarm (one tokio task) and nothing about consensus. Two
//! request-response protocols run over each connection:
//! - `/phalanx/msg/2`: one [`NetMsg`] per request (consensus messages and
//!   batches of gossiped transactions), acknowledged with an empty answer;
//! - `/phalanx/sync/3`: a [`SyncWire`] request: block sync (answered with
//!   blocks, delivered to the [`InboundHandler`]), a state snapshot query or
//!   a fetch of a compact proposal's missing transactions (answered with
//!   bytes, delivered to the caller of [`NetworkHandle::snapshot_request`]
//!   or [`NetworkHandle::proposal_txs_request`]).
//!
//! Peer policy: only the network keys listed in genesis, and in Raft mode
//! those of members added later by configuration entries, may connect
//! (libp2p's allow list); frames larger than the limits and frames that do not decode
//! are dropped and reported to the [`InboundHandler`], which counts them per
//! peer. The configured peer addresses are dialled at start and again every
//! `dial_interval` while no connection to them is up, so lost connections
//! come back by themselves.
//!
//! Sends never block the caller: commands go through a bounded queue and a
//! full queue drops the message (consensus tolerates loss) and counts it.

mod codec;
mod swarm;

pub use codec::FrameCodec;
pub use swarm::spawn;

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId, identity};
use parking_lot::RwLock;
use phalanx_consensus::engine::{ConsensusMsg, SyncRequest, SyncResponse};
use phalanx_consensus::types::BlockId;
use phalanx_crypto::{Hash, Keypair, PublicKey, codec as canonical};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// What travels on `/phalanx/msg/2`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NetMsg {
    Consensus(ConsensusMsg),
    /// Transactions admitted by the sender's mempool.
    Txs(Vec<Bytes>),
    /// A HotStuff proposal whose payload travels as digests
    /// ([`crate::compact`]).
    CompactProposal(Box<crate::compact::CompactProposal>),
}

impl NetMsg {
    pub fn encode(&self) -> Vec<u8> {
        canonical::encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<NetMsg, canonical::CodecError> {
        canonical::decode(bytes)
    }
}

/// What travels as a request on `/phalanx/sync/3`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SyncWire {
    /// Committed blocks (block sync).
    Blocks(SyncRequest),
    /// A state snapshot query, encoded by `crate::snapshot`.
    Snapshot(Vec<u8>),
    /// The transactions with these digests of a proposal the peer sent
    /// compact; answered with `Option<Vec<Bytes>>`, in the order asked
    /// (`None`: the peer no longer has them all).
    ProposalTxs { block: BlockId, hashes: Vec<Hash> },
}

/// The libp2p identity for a node key.
pub fn libp2p_keypair(key: &Keypair) -> identity::Keypair {
    identity::Keypair::ed25519_from_bytes(key.seed()).expect("a 32-byte ed25519 seed")
}

/// The libp2p peer id of a node's network public key.
pub fn peer_id_of(node_key: &PublicKey) -> PeerId {
    let pk = identity::ed25519::PublicKey::try_from_bytes(node_key.as_bytes()).expect("a valid ed25519 key");
    identity::PublicKey::from(pk).to_peer_id()
}

/// `IP:port` as a TCP multiaddr.
pub fn tcp_multiaddr(addr: &SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => libp2p::multiaddr::Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => libp2p::multiaddr::Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(libp2p::multiaddr::Protocol::Tcp(addr.port()))
}

/// Where inbound traffic goes. Implemented by the node.
pub trait InboundHandler: Send + Sync + 'static {
    /// A consensus message from `from`.
    fn consensus(&self, from: PeerId, msg: ConsensusMsg);
    /// Transactions gossiped by `from`.
    fn transactions(&self, from: PeerId, txs: Vec<Bytes>);
    /// A proposal `from` sent compact (its payload as digests).
    fn compact_proposal(&self, from: PeerId, proposal: crate::compact::CompactProposal);
    /// Answers a peer's request for transactions of a proposal this node
    /// sent compact (encoded `Option<Vec<Bytes>>`).
    fn serve_proposal_txs(&self, block: &BlockId, hashes: &[Hash]) -> Vec<u8>;
    /// Answers a peer's sync request (may block on storage; called off the
    /// network task).
    fn serve_sync(&self, request: SyncRequest) -> SyncResponse;
    /// Answers a peer's state snapshot query (encoded by `crate::snapshot`;
    /// may block on storage; called off the network task).
    fn serve_snapshot(&self, query: &[u8]) -> Vec<u8>;
    /// A peer answered our sync request.
    fn sync_response(&self, from: PeerId, response: SyncResponse);
    /// `from` sent something we could not use.
    fn invalid(&self, from: PeerId, reason: String);
    /// The last connection to `peer` closed.
    fn disconnected(&self, peer: PeerId);
}

/// How the network runs.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub listen: SocketAddr,
    /// Addresses to keep connections to.
    pub peers: Vec<SocketAddr>,
    /// Peers allowed to connect (every validator's network key).
    pub allowed: Vec<PeerId>,
    pub dial_interval: Duration,
    /// Largest `/phalanx/msg/2` frame accepted.
    pub max_message_bytes: usize,
    /// Largest sync answer accepted.
    pub max_sync_bytes: usize,
    /// Largest sync request accepted (a fetch of a compact proposal's
    /// missing transactions lists up to a block's worth of digests).
    pub max_sync_request_bytes: usize,
}

/// One connected peer, for `net_info`.
#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub address: String,
}

/// Counters and the peer list, shared with RPC.
#[derive(Default)]
pub struct NetStats {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub dropped_full_queue: AtomicU64,
    /// Messages dropped, in or out, because of an operator's partition.
    pub dropped_partitioned: AtomicU64,
    /// Peers this node is partitioned from (`admin_partition`).
    pub partitioned: RwLock<Vec<String>>,
    pub send_failures: AtomicU64,
    pub peers: RwLock<Vec<PeerInfo>>,
    pub listen_addrs: RwLock<Vec<String>>,
}

pub(crate) enum Command {
    Send { peer: PeerId, bytes: Vec<u8> },
    Broadcast { bytes: Vec<u8> },
    SyncRequest { peer: PeerId, bytes: Vec<u8> },
    Ask { peer: PeerId, bytes: Vec<u8>, reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, String>> },
    SyncReply { channel: libp2p::request_response::ResponseChannel<Vec<u8>>, bytes: Vec<u8> },
    AddPeer { peer: PeerId, addr: Multiaddr },
    Partition { peers: std::collections::HashSet<PeerId> },
}

/// A cheap handle for sending; clone freely.
#[derive(Clone)]
pub struct NetworkHandle {
    cmd: mpsc::Sender<Command>,
    local: PeerId,
    stats: Arc<NetStats>,
}

/// Commands queued for the network task at most.
pub const COMMAND_QUEUE: usize = 16_384;

impl NetworkHandle {
    fn push(&self, c: Command) {
        if self.cmd.try_send(c).is_err() {
            self.stats.dropped_full_queue.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends `msg` to one peer.
    pub fn send(&self, peer: PeerId, msg: &NetMsg) {
        self.push(Command::Send { peer, bytes: msg.encode() });
    }

    /// Sends `msg` to every allowed peer but ourselves.
    pub fn broadcast(&self, msg: &NetMsg) {
        self.push(Command::Broadcast { bytes: msg.encode() });
    }

    /// Asks `peer` for blocks; the answer arrives at
    /// [`InboundHandler::sync_response`].
    pub fn request_sync(&self, peer: PeerId, request: &SyncRequest) {
        self.push(Command::SyncRequest { peer, bytes: canonical::encode(&SyncWire::Blocks(request.clone())) });
    }

    /// Sends a state snapshot query to `peer`; the answer (or why there is
    /// none: queue full, connection failure, timeout) arrives on the
    /// returned channel.
    pub fn snapshot_request(
        &self,
        peer: PeerId,
        query: Vec<u8>,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<u8>, String>> {
        self.ask(peer, &SyncWire::Snapshot(query))
    }

    /// Asks `peer` for the transactions with `hashes` of proposal `block`,
    /// which it sent compact; the encoded answer (or why there is none)
    /// arrives on the returned channel.
    pub fn proposal_txs_request(
        &self,
        peer: PeerId,
        block: BlockId,
        hashes: Vec<Hash>,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<u8>, String>> {
        self.ask(peer, &SyncWire::ProposalTxs { block, hashes })
    }

    /// Sends a sync-protocol request whose answer goes to the returned
    /// channel rather than to the handler.
    fn ask(&self, peer: PeerId, wire: &SyncWire) -> tokio::sync::oneshot::Receiver<Result<Vec<u8>, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let bytes = canonical::encode(wire);
        if let Err(e) = self.cmd.try_send(Command::Ask { peer, bytes, reply: tx }) {
            self.stats.dropped_full_queue.fetch_add(1, Ordering::Relaxed);
            if let mpsc::error::TrySendError::Full(Command::Ask { reply, .. })
            | mpsc::error::TrySendError::Closed(Command::Ask { reply, .. }) = e
            {
                let _ = reply.send(Err("the network queue is full or closed".into()));
            }
        }
        rx
    }

    /// Drops all traffic to and from `peers` from now on (an empty set
    /// heals): a partition between real processes, for tests and drills.
    pub fn partition(&self, peers: std::collections::HashSet<PeerId>) {
        self.push(Command::Partition { peers });
    }

    /// Lets `peer` connect (a member added after genesis), sends to it in
    /// broadcasts, and keeps a connection to `addr`.
    pub fn add_peer(&self, peer: PeerId, addr: &SocketAddr) {
        self.push(Command::AddPeer { peer, addr: tcp_multiaddr(addr) });
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Commands waiting for the network task.
    pub fn queued(&self) -> usize {
        COMMAND_QUEUE - self.cmd.capacity()
    }
}
