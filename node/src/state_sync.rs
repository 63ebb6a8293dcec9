//! State sync: serving and fetching application-state snapshots between
//! nodes (Raft's InstallSnapshot, §7, pulled by the follower in chunks).
//!
//! A follower behind its leader's compaction point gets
//! `Action::RequestSnapshot`; the driver starts [`fetch`] on the tokio
//! runtime. It asks the peer for a [`SnapshotManifest`], then for every
//! chunk in order over `/phalanx/sync/3`, checks each chunk's size and the
//! whole snapshot's digest ([`SnapshotAssembler`]), and hands the snapshot
//! to the driver, which passes it to the committer thread to install (so an
//! install never interleaves with a commit). The engine hears
//! `Input::SnapshotInstalled` once the store holds it durably.
//!
//! The serving side ([`SnapshotServer`]) exports the committed state at its
//! tip (an export holds off commits while it reads the state, so it reuses
//! a snapshot made within [`REUSE`] rather than export again) and keeps the
//! last [`KEEP`] snapshots cut into chunks while followers fetch them. A
//! chunk of a snapshot no longer held is refused with a reason; the
//! follower starts again.

use crate::network::NetworkHandle;
use crate::snapshot::{SnapshotAssembler, SnapshotChunks, SnapshotManifest};
use crate::store::{ChainStore, StateSnapshot};
use bytes::Bytes;
use libp2p::PeerId;
use parking_lot::Mutex;
use phalanx_consensus::types::Height;
use phalanx_crypto::{Hash, codec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Bytes per snapshot chunk.
pub const CHUNK_BYTES: u32 = 1 << 20;
/// A snapshot younger than this is served again rather than exported anew.
pub const REUSE: Duration = Duration::from_secs(2);
/// Snapshots kept for followers still fetching them.
pub const KEEP: usize = 2;
/// How long one query may take before the fetch gives up.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A query for a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotQuery {
    /// Describe the snapshot of your committed tip.
    Manifest,
    /// Chunk `index` of the snapshot named by `digest`.
    Chunk { height: Height, digest: Hash, index: u32 },
}

/// The answer to a [`SnapshotQuery`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotAnswer {
    Manifest(SnapshotManifest),
    Chunk(Bytes),
    /// The query cannot be answered, and why.
    Unavailable(String),
}

/// Serves this node's committed state as snapshots.
pub struct SnapshotServer {
    store: Arc<dyn ChainStore>,
    chunk_bytes: u32,
    /// Newest last, with when each was exported.
    kept: Mutex<Vec<(std::time::Instant, Arc<SnapshotChunks>)>>,
}

impl SnapshotServer {
    pub fn new(store: Arc<dyn ChainStore>, chunk_bytes: u32) -> SnapshotServer {
        SnapshotServer { store, chunk_bytes, kept: Mutex::new(Vec::new()) }
    }

    /// Answers an encoded [`SnapshotQuery`] with an encoded
    /// [`SnapshotAnswer`]. Blocks on the store.
    pub fn answer(&self, query: &[u8]) -> Vec<u8> {
        let answer = match codec::decode::<SnapshotQuery>(query) {
            Err(e) => SnapshotAnswer::Unavailable(format!("undecodable snapshot query: {e}")),
            Ok(SnapshotQuery::Manifest) => match self.snapshot_of_tip() {
                Ok(chunks) => SnapshotAnswer::Manifest(chunks.manifest().clone()),
                Err(e) => SnapshotAnswer::Unavailable(e),
            },
            Ok(SnapshotQuery::Chunk { height, digest, index }) => {
                let kept = self.kept.lock().iter().find(|(_, c)| c.manifest().digest == digest).map(|(_, c)| c.clone());
                match kept {
                    Some(c) => match c.chunk(index) {
                        Some(bytes) => SnapshotAnswer::Chunk(bytes),
                        None => SnapshotAnswer::Unavailable(format!(
                            "the snapshot at height {height} has {} chunks; there is no chunk {index}",
                            c.manifest().chunks
                        )),
                    },
                    None => SnapshotAnswer::Unavailable(format!(
                        "the snapshot at height {height} is no longer served; ask for a new manifest"
                    )),
                }
            }
        };
        codec::encode(&answer)
    }

    /// The snapshot of the committed tip, or one exported within [`REUSE`].
    fn snapshot_of_tip(&self) -> Result<Arc<SnapshotChunks>, String> {
        let (tip, _) = self.store.committed_tip().map_err(|e| format!("cannot read the committed tip: {e}"))?;
        if let Some((at, c)) = self.kept.lock().last()
            && (c.manifest().height == tip || at.elapsed() < REUSE)
        {
            return Ok(c.clone());
        }
        let snapshot = self.store.export_snapshot().map_err(|e| format!("cannot export a snapshot: {e}"))?;
        let chunks = Arc::new(
            SnapshotChunks::new(&snapshot, self.chunk_bytes).map_err(|e| format!("cannot cut the snapshot: {e}"))?,
        );
        tracing::info!(
            height = snapshot.height,
            entries = snapshot.entries.len(),
            bytes = chunks.manifest().total_bytes,
            "serving a state snapshot"
        );
        let mut kept = self.kept.lock();
        kept.push((std::time::Instant::now(), chunks.clone()));
        if kept.len() > KEEP {
            kept.remove(0);
        }
        Ok(chunks)
    }
}

async fn ask(net: &NetworkHandle, peer: PeerId, query: &SnapshotQuery) -> Result<SnapshotAnswer, String> {
    let reply = net.snapshot_request(peer, codec::encode(query));
    let bytes = tokio::time::timeout(QUERY_TIMEOUT, reply)
        .await
        .map_err(|_| format!("no answer from {peer} within {} s", QUERY_TIMEOUT.as_secs()))?
        .map_err(|_| "the network stopped".to_string())??;
    codec::decode(&bytes).map_err(|e| format!("undecodable snapshot answer from {peer}: {e}"))
}

/// Fetches `peer`'s snapshot: the manifest, then every chunk, verified
/// against the manifest's digest.
pub async fn fetch(net: &NetworkHandle, peer: PeerId) -> Result<StateSnapshot, String> {
    let manifest = match ask(net, peer, &SnapshotQuery::Manifest).await? {
        SnapshotAnswer::Manifest(m) => m,
        SnapshotAnswer::Unavailable(why) => return Err(format!("{peer} serves no snapshot: {why}")),
        SnapshotAnswer::Chunk(_) => return Err(format!("{peer} answered a manifest query with a chunk")),
    };
    let (height, digest) = (manifest.height, manifest.digest);
    tracing::info!(height, chunks = manifest.chunks, bytes = manifest.total_bytes, %peer, "fetching a state snapshot");
    let mut assembler = SnapshotAssembler::new(manifest).map_err(|e| format!("bad manifest from {peer}: {e}"))?;
    let chunks = assembler.manifest().chunks;
    for index in 0..chunks {
        match ask(net, peer, &SnapshotQuery::Chunk { height, digest, index }).await? {
            SnapshotAnswer::Chunk(bytes) => {
                assembler.add(index, bytes).map_err(|e| format!("chunk {index} from {peer}: {e}"))?;
            }
            SnapshotAnswer::Unavailable(why) => return Err(format!("chunk {index} from {peer}: {why}")),
            SnapshotAnswer::Manifest(_) => return Err(format!("{peer} answered a chunk query with a manifest")),
        }
    }
    assembler.finish().map_err(|e| format!("snapshot from {peer}: {e}"))
}
