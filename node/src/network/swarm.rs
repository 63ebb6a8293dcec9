//! The swarm task: owns the libp2p swarm, executes send commands, hands
//! inbound traffic to the [`InboundHandler`], keeps configured peers dialled.

use super::{
    Command, FrameCodec, InboundHandler, NetConfig, NetStats, NetworkHandle, PeerInfo, SyncWire, libp2p_keypair,
    tcp_multiaddr,
};
use futures::StreamExt as _;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, noise, ping, tcp, yamux};
use phalanx_consensus::engine::SyncResponse;
use phalanx_crypto::{Keypair, codec as canonical};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

const MSG_PROTOCOL: StreamProtocol = StreamProtocol::new("/phalanx/msg/2");
const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/phalanx/sync/3");

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    ping: ping::Behaviour,
    msg: request_response::Behaviour<FrameCodec>,
    sync: request_response::Behaviour<FrameCodec>,
}

enum Outstanding {
    Blocks,
    /// A request whose answer goes to a channel (snapshot queries,
    /// proposal transactions).
    Asked(tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>),
}

struct Task {
    swarm: Swarm<Behaviour>,
    handler: Arc<dyn InboundHandler>,
    cmd_tx: mpsc::Sender<Command>,
    stats: Arc<NetStats>,
    allowed: Vec<PeerId>,
    /// Configured addresses and the peer last seen at each.
    peer_addrs: Vec<(Multiaddr, Option<PeerId>)>,
    dialing: HashSet<Multiaddr>,
    /// Peers all traffic with is dropped (an operator's partition).
    blocked: HashSet<PeerId>,
    connected: HashMap<PeerId, Multiaddr>,
    /// Sync requests in flight: block sync answers go to the handler,
    /// snapshot answers to whoever asked.
    sync_requests: HashMap<OutboundRequestId, Outstanding>,
    /// Bounds the sync requests served at once (each reads the store).
    sync_permits: Arc<tokio::sync::Semaphore>,
}

/// Sync requests served concurrently at most.
const MAX_SYNC_SERVING: usize = 4;

/// Starts the network on the current tokio runtime.
pub fn spawn(
    cfg: NetConfig,
    node_key: &Keypair,
    handler: Arc<dyn InboundHandler>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<NetworkHandle> {
    let keypair = libp2p_keypair(node_key);
    let local = keypair.public().to_peer_id();
    let msg_codec = FrameCodec { max_request: cfg.max_message_bytes, max_response: 16 };
    let sync_codec = FrameCodec { max_request: cfg.max_sync_request_bytes, max_response: cfg.max_sync_bytes };
    let mut allow = allow_block_list::Behaviour::default();
    for p in cfg.allowed.iter().filter(|p| **p != local) {
        allow.allow_peer(*p);
    }
    let rr_cfg = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(10))
        .with_max_concurrent_streams(4096);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|_| Behaviour {
            allow,
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
            msg: request_response::Behaviour::with_codec(
                msg_codec,
                [(MSG_PROTOCOL, ProtocolSupport::Full)],
                rr_cfg.clone(),
            ),
            sync: request_response::Behaviour::with_codec(
                sync_codec,
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                rr_cfg.with_request_timeout(Duration::from_secs(30)),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let listen = tcp_multiaddr(&cfg.listen);
    swarm
        .listen_on(listen.clone())
        .map_err(|e| anyhow::anyhow!("cannot listen for peers on {} (p2p.listen_addr): {e}", cfg.listen))?;
    let (cmd_tx, cmd_rx) = mpsc::channel(super::COMMAND_QUEUE);
    let stats = Arc::new(NetStats::default());
    let listen_self = cfg.listen;
    let peer_addrs = cfg.peers.iter().filter(|a| **a != listen_self).map(|a| (tcp_multiaddr(a), None)).collect();
    let task = Task {
        swarm,
        handler,
        cmd_tx: cmd_tx.clone(),
        stats: stats.clone(),
        allowed: cfg.allowed.iter().copied().filter(|p| *p != local).collect(),
        peer_addrs,
        dialing: HashSet::new(),
        blocked: HashSet::new(),
        connected: HashMap::new(),
        sync_requests: HashMap::new(),
        sync_permits: Arc::new(tokio::sync::Semaphore::new(MAX_SYNC_SERVING)),
    };
    tokio::spawn(task.run(cmd_rx, cfg.dial_interval, shutdown));
    info!(peer_id = %local, listen = %cfg.listen, "p2p network started");
    Ok(NetworkHandle { cmd: cmd_tx, local, stats })
}

impl Task {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        dial_interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(dial_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                Some(cmd) = cmds.recv() => self.on_command(cmd),
                _ = tick.tick() => self.redial(),
                _ = shutdown.changed() => break,
            }
        }
        debug!("p2p network stopped");
    }

    fn redial(&mut self) {
        for (addr, peer) in self.peer_addrs.clone() {
            let up = peer.is_some_and(|p| self.connected.contains_key(&p));
            if up || self.dialing.contains(&addr) {
                continue;
            }
            let opts = match peer {
                Some(p) => DialOpts::peer_id(p).addresses(vec![addr.clone()]).build(),
                None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
            };
            if self.swarm.dial(opts).is_ok() {
                self.dialing.insert(addr);
            }
        }
    }

    /// Counts a message dropped because of a partition; true if `peer` is
    /// partitioned off.
    fn partitioned(&self, peer: &PeerId) -> bool {
        let blocked = self.blocked.contains(peer);
        if blocked {
            self.stats.dropped_partitioned.fetch_add(1, Ordering::Relaxed);
        }
        blocked
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send { peer, bytes } => {
                if !self.partitioned(&peer) {
                    self.swarm.behaviour_mut().msg.send_request(&peer, bytes);
                    self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
                }
            }
            Command::Broadcast { bytes } => {
                for peer in self.allowed.clone() {
                    if !self.partitioned(&peer) {
                        self.swarm.behaviour_mut().msg.send_request(&peer, bytes.clone());
                        self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Command::SyncRequest { peer, bytes } => {
                if !self.partitioned(&peer) {
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                    self.sync_requests.insert(id, Outstanding::Blocks);
                }
            }
            Command::Ask { peer, bytes, reply } => {
                if self.partitioned(&peer) {
                    let _ = reply.send(Err(format!("partitioned from {peer}")));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                self.sync_requests.insert(id, Outstanding::Asked(reply));
            }
            Command::Partition { peers } => {
                info!(peers = peers.len(), "partition: dropping all traffic with {} peers", peers.len());
                let mut names: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
                names.sort();
                *self.stats.partitioned.write() = names;
                self.blocked = peers;
            }
            Command::SyncReply { channel, bytes } => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, bytes);
            }
            Command::AddPeer { peer, addr } => {
                if peer == *self.swarm.local_peer_id() || self.allowed.contains(&peer) {
                    return;
                }
                info!(%peer, %addr, "new member: allowing and dialling it");
                self.swarm.behaviour_mut().allow.allow_peer(peer);
                self.allowed.push(peer);
                if !self.peer_addrs.iter().any(|(a, _)| *a == addr) {
                    self.peer_addrs.push((addr, Some(peer)));
                }
                self.redial();
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening for peers");
                self.stats.listen_addrs.write().push(address.to_string());
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                let addr = endpoint.get_remote_address().clone();
                if endpoint.is_dialer() {
                    self.dialing.remove(&addr);
                    if let Some(entry) = self.peer_addrs.iter_mut().find(|(a, _)| *a == addr) {
                        entry.1 = Some(peer_id);
                    }
                    self.swarm.add_peer_address(peer_id, addr.clone());
                }
                if self.connected.insert(peer_id, addr).is_none() {
                    info!(peer = %peer_id, "peer connected");
                }
                self.publish_peers();
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                self.connected.remove(&peer_id);
                info!(peer = %peer_id, cause = ?cause, "peer disconnected");
                self.publish_peers();
                self.handler.disconnected(peer_id);
            }
            SwarmEvent::OutgoingConnectionError { error, connection_id: _, peer_id } => {
                debug!(?peer_id, %error, "dial failed");
                self.dialing.clear();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Msg(e)) => self.on_msg_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync_event(e),
            _ => {}
        }
    }

    fn publish_peers(&self) {
        let mut peers: Vec<PeerInfo> =
            self.connected.iter().map(|(p, a)| PeerInfo { peer_id: p.to_string(), address: a.to_string() }).collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        *self.stats.peers.write() = peers;
    }

    fn on_msg_event(&mut self, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        match e {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                if self.partitioned(&peer) {
                    return; // unanswered: the sender sees a lost message
                }
                let _ = self.swarm.behaviour_mut().msg.send_response(channel, Vec::new());
                self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
                match super::NetMsg::decode(&request) {
                    Ok(super::NetMsg::Consensus(m)) => self.handler.consensus(peer, m),
                    Ok(super::NetMsg::Txs(txs)) => self.handler.transactions(peer, txs),
                    Ok(super::NetMsg::CompactProposal(p)) => self.handler.compact_proposal(peer, *p),
                    Err(e) => self.handler.invalid(peer, format!("undecodable message ({} bytes): {e}", request.len())),
                }
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                self.stats.send_failures.fetch_add(1, Ordering::Relaxed);
                debug!(%peer, %error, "message not delivered");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if matches!(error, request_response::InboundFailure::Io(ref e) if e.kind() == std::io::ErrorKind::InvalidData)
                {
                    self.handler.invalid(peer, format!("bad frame: {error}"));
                }
            }
            _ => {}
        }
    }

    fn on_sync_event(&mut self, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        match e {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                if self.partitioned(&peer) {
                    return;
                }
                let req: SyncWire = match canonical::decode(&request) {
                    Ok(r) => r,
                    Err(e) => return self.handler.invalid(peer, format!("undecodable sync request: {e}")),
                };
                // Store reads are bounded by the serving slots; a fetch of
                // proposal transactions is a lookup in memory that every
                // replica needs at once, so it takes none.
                let permit = match req {
                    SyncWire::ProposalTxs { .. } => None,
                    _ => match self.sync_permits.clone().try_acquire_owned() {
                        Ok(p) => Some(p),
                        Err(_) => {
                            // At capacity: drop it; the peer times out and asks another.
                            debug!(%peer, "sync request dropped: already serving the maximum");
                            return;
                        }
                    },
                };
                let handler = self.handler.clone();
                let reply = self.cmd_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let bytes = match req {
                        SyncWire::Blocks(r) => canonical::encode(&handler.serve_sync(r)),
                        SyncWire::Snapshot(q) => handler.serve_snapshot(&q),
                        SyncWire::ProposalTxs { block, hashes } => handler.serve_proposal_txs(&block, &hashes),
                    };
                    let _ = reply.blocking_send(Command::SyncReply { channel, bytes });
                    drop(permit);
                });
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, response },
                ..
            } => match self.sync_requests.remove(&request_id) {
                Some(Outstanding::Asked(reply)) => {
                    let _ = reply.send(Ok(response));
                }
                _ => match canonical::decode::<SyncResponse>(&response) {
                    Ok(r) => self.handler.sync_response(peer, r),
                    Err(e) => self.handler.invalid(peer, format!("undecodable sync response: {e}")),
                },
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some(Outstanding::Asked(reply)) = self.sync_requests.remove(&request_id) {
                    let _ = reply.send(Err(format!("request to {peer} failed: {error}")));
                }
                warn!(%peer, %error, "sync request failed");
            }
            _ => {}
        }
    }
}
