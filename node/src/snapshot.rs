//! State snapshots for the network: one canonical encoding of a
//! [`StateSnapshot`], cut into fixed-size chunks described by a
//! [`SnapshotManifest`], and put back together and verified on arrival.
//!
//! The store makes and installs snapshots ([`crate::store::ChainStore::export_snapshot`],
//! [`crate::store::ChainStore::install_snapshot`]); this module only moves
//! them. The serving side is [`SnapshotChunks`], the receiving side
//! [`SnapshotAssembler`].
//!
//! # Encoding
//!
//! A sequence of frames, each a 4-byte little-endian length followed by
//! that many bytes of [`phalanx_crypto::codec`]:
//!
//! 1. the header: chain id, height, block, certificate, app hash, and the
//!    number of entries;
//! 2. one frame per entry, `(key, value)`, in key order.
//!
//! Framing each entry on its own keeps every decoded value under the codec's
//! [`DECODE_LIMIT_BYTES`], so a state larger than that still round-trips.
//! The encoding is deterministic: equal snapshots encode to equal bytes, so
//! the manifest's digest names the snapshot.
//!
//! # What is verified
//!
//! [`SnapshotAssembler::finish`] checks that the bytes are the ones the
//! manifest's digest names and that they decode to a snapshot at the
//! manifest's height, block and round, with sorted entries. It cannot check
//! that the manifest itself is honest: that is the caller's business (verify
//! the snapshot's certificate, and in Raft mode trust the leader that
//! served it). The digest covers the whole encoding, so a corrupt chunk is
//! detected, but not which one: the whole snapshot is fetched again.

use crate::store::StateSnapshot;
use bytes::Bytes;
use phalanx_consensus::types::{Block, BlockId, Certificate, Height};
use phalanx_crypto::codec::DECODE_LIMIT_BYTES;
use phalanx_crypto::{Hash, codec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes of a frame's length prefix.
const FRAME_LEN_BYTES: usize = 4;

/// Why a snapshot could not be cut into chunks, or put back together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// [`SnapshotChunks::new`] was asked for chunks of 0 bytes.
    #[error("a snapshot chunk must hold at least one byte; chunk_bytes is 0")]
    ZeroChunkSize,
    /// The encoding needs more than `u32::MAX` chunks of the size asked for.
    #[error(
        "the snapshot encodes to {total_bytes} bytes: more than 2^32 - 1 chunks of {chunk_bytes} bytes; use larger chunks"
    )]
    TooManyChunks {
        /// Length of the encoding.
        total_bytes: u64,
        /// The chunk size asked for.
        chunk_bytes: u32,
    },
    /// One part of the snapshot encodes to more than a decoder accepts.
    #[error("{what} encodes to {bytes} bytes, more than the {limit} bytes a decoder accepts; it cannot be shipped")]
    TooLarge {
        /// Which part: the header, or an entry and its key.
        what: String,
        /// Its encoded length.
        bytes: usize,
        /// [`DECODE_LIMIT_BYTES`].
        limit: usize,
    },
    /// A manifest whose numbers do not add up (from a confused or hostile
    /// peer).
    #[error("inconsistent snapshot manifest: {reason}")]
    BadManifest {
        /// Which numbers disagree.
        reason: String,
    },
    /// A chunk index at or past the manifest's chunk count.
    #[error("chunk {index} is out of range: the snapshot has {chunks} chunks (0 to {})", chunks.saturating_sub(1))]
    ChunkOutOfRange {
        /// The index received.
        index: u32,
        /// The manifest's chunk count.
        chunks: u32,
    },
    /// A chunk of another length than the manifest implies.
    #[error("chunk {index} has {got} bytes; the manifest implies {expected}")]
    WrongChunkSize {
        /// The chunk's index.
        index: u32,
        /// Its length.
        got: usize,
        /// The length the manifest implies for it.
        expected: usize,
    },
    /// `finish` before every chunk arrived.
    #[error("{missing} of {chunks} snapshot chunks have not arrived yet (the first missing is chunk {first})")]
    Incomplete {
        /// How many are missing.
        missing: u32,
        /// The manifest's chunk count.
        chunks: u32,
        /// The lowest missing index.
        first: u32,
    },
    /// The chunks put together are not the bytes the manifest names.
    #[error(
        "the snapshot's digest is {got}, the manifest says {expected}: a chunk is corrupt or from another snapshot; \
         fetch the snapshot again"
    )]
    DigestMismatch {
        /// The manifest's digest.
        expected: Hash,
        /// The digest of the bytes received.
        got: Hash,
    },
    /// The bytes are not the encoding of a snapshot.
    #[error("the snapshot does not decode: {reason}")]
    Malformed {
        /// What is wrong, and where.
        reason: String,
    },
    /// The snapshot decoded, but is not the one the manifest describes.
    #[error("the snapshot does not match its manifest: {reason}")]
    ManifestMismatch {
        /// Which field differs.
        reason: String,
    },
}

/// What a receiver learns before the chunks: enough to fetch them, check
/// each one's size, and verify the whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    /// The snapshot's committed height.
    pub height: Height,
    /// The id of the block at that height.
    pub block_id: BlockId,
    /// That block's round: its term in Raft mode, its round in HotStuff.
    pub term_or_round: u64,
    /// Length of the whole encoding.
    pub total_bytes: u64,
    /// Length of every chunk but the last (which holds the rest, 1 to
    /// `chunk_bytes` bytes).
    pub chunk_bytes: u32,
    /// How many chunks: `total_bytes` divided by `chunk_bytes`, rounded up.
    pub chunks: u32,
    /// [`Hash::digest`] of the whole encoding.
    pub digest: Hash,
}

impl SnapshotManifest {
    /// Checks that the numbers add up: at least one byte and one chunk, and
    /// `chunks` = ⌈`total_bytes` / `chunk_bytes`⌉.
    pub fn check(&self) -> Result<(), SnapshotError> {
        let bad = |reason: String| Err(SnapshotError::BadManifest { reason });
        if self.chunk_bytes == 0 {
            return bad("chunk_bytes is 0".into());
        }
        if self.total_bytes == 0 {
            return bad("total_bytes is 0; an encoded snapshot is never empty".into());
        }
        let expected = self.total_bytes.div_ceil(u64::from(self.chunk_bytes));
        if u64::from(self.chunks) != expected {
            return bad(format!(
                "{} bytes in chunks of {} make {expected} chunks, not {}",
                self.total_bytes, self.chunk_bytes, self.chunks
            ));
        }
        Ok(())
    }

    /// The length chunk `index` must have, or `None` if there is no such
    /// chunk. Assumes [`SnapshotManifest::check`] passed.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        if index >= self.chunks {
            return None;
        }
        let start = u64::from(index) * u64::from(self.chunk_bytes);
        let len = (self.total_bytes - start).min(u64::from(self.chunk_bytes));
        Some(usize::try_from(len).expect("a chunk's length fits in a u32"))
    }
}

/// The first frame of the encoding, as written (borrowing the snapshot).
#[derive(Serialize)]
struct HeaderOut<'a> {
    chain_id: &'a str,
    height: Height,
    block: &'a Block,
    cert: &'a Certificate,
    app_hash: &'a Hash,
    entries: u64,
}

/// The first frame of the encoding, as read. Same encoding as
/// [`HeaderOut`]: the codec encodes `&T` as `T` and `&str` as `String`.
#[derive(Deserialize)]
struct HeaderIn {
    chain_id: String,
    height: Height,
    block: Block,
    cert: Certificate,
    app_hash: Hash,
    entries: u64,
}

/// Appends one frame holding `bytes`.
fn push_frame(out: &mut Vec<u8>, what: impl FnOnce() -> String, bytes: &[u8]) -> Result<(), SnapshotError> {
    if bytes.len() > DECODE_LIMIT_BYTES {
        return Err(SnapshotError::TooLarge { what: what(), bytes: bytes.len(), limit: DECODE_LIMIT_BYTES });
    }
    let len = u32::try_from(bytes.len()).expect("the decode limit is below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The canonical encoding of `s` (see the module documentation). Fails
/// only if one part is too large for any decoder to accept.
pub fn encode(s: &StateSnapshot) -> Result<Vec<u8>, SnapshotError> {
    let header = HeaderOut {
        chain_id: &s.chain_id,
        height: s.height,
        block: &s.block,
        cert: &s.cert,
        app_hash: &s.app_hash,
        entries: s.entries.len() as u64,
    };
    let mut out = Vec::new();
    push_frame(&mut out, || "the snapshot header".into(), &codec::encode(&header))?;
    let mut entry = Vec::new();
    for (k, v) in &s.entries {
        entry.clear();
        codec::encode_into(&(k, v), &mut entry);
        push_frame(&mut out, || format!("the entry of key {}", hex::encode(k)), &entry)?;
    }
    Ok(out)
}

/// Reads frames off a byte string.
struct Frames<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Frames<'a> {
    /// The next frame and its offset, `None` at the end.
    fn next_frame(&mut self) -> Result<Option<(usize, &'a [u8])>, SnapshotError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let at = self.offset;
        let malformed = |reason: String| SnapshotError::Malformed { reason: format!("at byte {at}: {reason}") };
        let Some((len, body)) = self.rest.split_first_chunk::<FRAME_LEN_BYTES>() else {
            return Err(malformed(format!("{} bytes left, too few for a frame length", self.rest.len())));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > body.len() {
            return Err(malformed(format!("a frame of {len} bytes, but only {} bytes follow", body.len())));
        }
        let (frame, rest) = body.split_at(len);
        self.rest = rest;
        self.offset += FRAME_LEN_BYTES + len;
        Ok(Some((at, frame)))
    }
}

/// Decodes a snapshot from its canonical encoding. Refuses anything that
/// is not exactly one: a bad frame, a value that does not decode, a wrong
/// entry count, entries out of key order or repeated, trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<StateSnapshot, SnapshotError> {
    let mut frames = Frames { rest: bytes, offset: 0 };
    let malformed = |at: usize, reason: String| SnapshotError::Malformed { reason: format!("at byte {at}: {reason}") };
    let Some((at, frame)) = frames.next_frame()? else {
        return Err(SnapshotError::Malformed { reason: "it is empty".into() });
    };
    let header: HeaderIn = codec::decode(frame).map_err(|e| malformed(at, format!("the header: {e}")))?;
    // Each entry takes at least a frame length and two length bytes, so a
    // count beyond that is a lie; do not let it size an allocation.
    let plausible = (bytes.len() / (FRAME_LEN_BYTES + 2)) as u64;
    if header.entries > plausible {
        return Err(malformed(at, format!("the header claims {} entries in {} bytes", header.entries, bytes.len())));
    }
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(header.entries as usize);
    while let Some((at, frame)) = frames.next_frame()? {
        let index = entries.len();
        if index as u64 == header.entries {
            return Err(malformed(at, format!("more than the {} entries the header announces", header.entries)));
        }
        let entry: (Vec<u8>, Vec<u8>) =
            codec::decode(frame).map_err(|e| malformed(at, format!("entry {index}: {e}")))?;
        if let Some((last, _)) = entries.last()
            && *last >= entry.0
        {
            return Err(malformed(
                at,
                format!("entry {index} (key {}) is not after key {}", hex::encode(&entry.0), hex::encode(last)),
            ));
        }
        entries.push(entry);
    }
    if entries.len() as u64 != header.entries {
        return Err(SnapshotError::Malformed {
            reason: format!("the header announces {} entries, {} follow", header.entries, entries.len()),
        });
    }
    Ok(StateSnapshot {
        chain_id: header.chain_id,
        height: header.height,
        block: header.block,
        cert: header.cert,
        app_hash: header.app_hash,
        entries,
    })
}

/// The serving side: one snapshot encoded once and handed out chunk by
/// chunk (cheap clones of one buffer).
#[derive(Clone, Debug)]
pub struct SnapshotChunks {
    manifest: SnapshotManifest,
    bytes: Bytes,
}

impl SnapshotChunks {
    /// Encodes `snapshot` and cuts it into chunks of `chunk_bytes` (the last
    /// one shorter). Fails for `chunk_bytes` 0, for more than `u32::MAX`
    /// chunks, and for a part too large to decode (see [`encode`]).
    pub fn new(snapshot: &StateSnapshot, chunk_bytes: u32) -> Result<SnapshotChunks, SnapshotError> {
        if chunk_bytes == 0 {
            return Err(SnapshotError::ZeroChunkSize);
        }
        let bytes = encode(snapshot)?;
        let total_bytes = bytes.len() as u64;
        let chunks = u32::try_from(total_bytes.div_ceil(u64::from(chunk_bytes)))
            .map_err(|_| SnapshotError::TooManyChunks { total_bytes, chunk_bytes })?;
        let manifest = SnapshotManifest {
            height: snapshot.height,
            block_id: snapshot.block.id(),
            term_or_round: snapshot.block.round(),
            total_bytes,
            chunk_bytes,
            chunks,
            digest: Hash::digest(&bytes),
        };
        Ok(SnapshotChunks { manifest, bytes: Bytes::from(bytes) })
    }

    /// What to send a receiver first.
    pub fn manifest(&self) -> &SnapshotManifest {
        &self.manifest
    }

    /// Chunk `index`, or `None` past the last one.
    pub fn chunk(&self, index: u32) -> Option<Bytes> {
        let len = self.manifest.chunk_len(index)?;
        let start = index as usize * self.manifest.chunk_bytes as usize;
        Some(self.bytes.slice(start..start + len))
    }
}

/// The receiving side: collects chunks in any order, then verifies and
/// decodes the whole.
///
/// Memory grows with the chunks received, not with what the manifest
/// claims; a caller should still refuse a manifest whose `total_bytes` is
/// more than it is willing to hold.
#[derive(Clone, Debug)]
pub struct SnapshotAssembler {
    manifest: SnapshotManifest,
    chunks: BTreeMap<u32, Bytes>,
}

impl SnapshotAssembler {
    /// Starts collecting the chunks `manifest` describes; refuses a manifest
    /// whose numbers do not add up ([`SnapshotManifest::check`]).
    pub fn new(manifest: SnapshotManifest) -> Result<SnapshotAssembler, SnapshotError> {
        manifest.check()?;
        Ok(SnapshotAssembler { manifest, chunks: BTreeMap::new() })
    }

    /// The manifest being assembled.
    pub fn manifest(&self) -> &SnapshotManifest {
        &self.manifest
    }

    /// Takes chunk `index`. Refuses an index past the last chunk and a chunk
    /// of another length than the manifest implies (nothing is kept). A
    /// chunk that already arrived is ignored: the first copy is kept, and
    /// `Ok` is returned (retransmissions are harmless).
    pub fn add(&mut self, index: u32, bytes: Bytes) -> Result<(), SnapshotError> {
        let chunks = self.manifest.chunks;
        let expected = self.manifest.chunk_len(index).ok_or(SnapshotError::ChunkOutOfRange { index, chunks })?;
        if bytes.len() != expected {
            return Err(SnapshotError::WrongChunkSize { index, got: bytes.len(), expected });
        }
        self.chunks.entry(index).or_insert(bytes);
        Ok(())
    }

    /// How many distinct chunks have arrived.
    pub fn received(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// True once every chunk has arrived.
    pub fn is_complete(&self) -> bool {
        self.received() == self.manifest.chunks
    }

    /// The indexes still to fetch, ascending.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.manifest.chunks).filter(|i| !self.chunks.contains_key(i))
    }

    /// Puts the chunks together, checks the digest, decodes, and checks the
    /// snapshot is the one the manifest names (height, block id, round).
    pub fn finish(self) -> Result<StateSnapshot, SnapshotError> {
        let m = &self.manifest;
        if let Some(first) = self.missing().next() {
            return Err(SnapshotError::Incomplete { missing: m.chunks - self.received(), chunks: m.chunks, first });
        }
        let mut bytes = Vec::with_capacity(self.chunks.values().map(Bytes::len).sum());
        for chunk in self.chunks.values() {
            bytes.extend_from_slice(chunk);
        }
        let got = Hash::digest(&bytes);
        if got != m.digest {
            return Err(SnapshotError::DigestMismatch { expected: m.digest, got });
        }
        let s = decode(&bytes)?;
        let mismatch = |reason: String| Err(SnapshotError::ManifestMismatch { reason });
        if s.height != m.height || s.block.height() != m.height {
            return mismatch(format!(
                "the manifest names height {}, the snapshot is at height {} with a block at height {}",
                m.height,
                s.height,
                s.block.height()
            ));
        }
        if s.block.id() != m.block_id {
            return mismatch(format!(
                "the manifest names block {}, the snapshot carries block {}",
                m.block_id.to_hex(),
                s.block.id().to_hex()
            ));
        }
        if s.block.round() != m.term_or_round {
            return mismatch(format!(
                "the manifest names term or round {}, the snapshot's block is of {}",
                m.term_or_round,
                s.block.round()
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_consensus::types::{BlockHeader, payload_root};
    use phalanx_crypto::Keypair;

    /// A Raft-style snapshot at height 7, term 3, with `n` entries.
    fn snapshot(n: usize) -> StateSnapshot {
        let key = Keypair::from_seed(&[9; 32]);
        let genesis = Block::genesis("snapshot-test", 0, Hash::digest(b"genesis"), key.public());
        let txs = vec![Bytes::from_static(b"tx-1"), Bytes::from_static(b"tx-2")];
        let header = BlockHeader {
            chain_id: "snapshot-test".into(),
            height: 7,
            round: 3,
            parent: Hash::digest(b"block 6"),
            parent_round: 3,
            payload_root: payload_root(&txs),
            app_height: 6,
            app_hash: Hash::digest(b"app 6"),
            proposer: key.public(),
            time_ms: 1_000,
        };
        let block = Block::sign(header, Certificate::Raft { term: 3, index: 6 }, txs, &key);
        assert_ne!(block.id(), genesis.id());
        StateSnapshot {
            chain_id: "snapshot-test".into(),
            height: 7,
            block,
            cert: Certificate::Raft { term: 3, index: 7 },
            app_hash: Hash::digest(b"app 7"),
            entries: (0..n).map(|i| (format!("key-{i:04}").into_bytes(), vec![i as u8; i % 5])).collect(),
        }
    }

    /// Every chunk of `chunks`, by index.
    fn all_chunks(chunks: &SnapshotChunks) -> Vec<(u32, Bytes)> {
        (0..chunks.manifest().chunks).map(|i| (i, chunks.chunk(i).unwrap())).collect()
    }

    #[test]
    fn encoding_round_trips_and_is_deterministic() {
        for n in [0, 1, 40] {
            let s = snapshot(n);
            let bytes = encode(&s).unwrap();
            assert_eq!(encode(&s.clone()).unwrap(), bytes);
            assert_eq!(decode(&bytes), Ok(s));
        }
    }

    #[test]
    fn manifest_describes_the_chunks() {
        let s = snapshot(40);
        let total = encode(&s).unwrap().len() as u64;
        let chunks = SnapshotChunks::new(&s, 64).unwrap();
        let m = chunks.manifest();
        assert_eq!(
            *m,
            SnapshotManifest {
                height: 7,
                block_id: s.block.id(),
                term_or_round: 3,
                total_bytes: total,
                chunk_bytes: 64,
                chunks: total.div_ceil(64) as u32,
                digest: Hash::digest(&encode(&s).unwrap()),
            }
        );
        m.check().unwrap();
        let got = all_chunks(&chunks);
        assert!(got[..got.len() - 1].iter().all(|(_, c)| c.len() == 64));
        assert_eq!(got.last().unwrap().1.len() as u64, total - 64 * (u64::from(m.chunks) - 1));
        assert_eq!(got.iter().flat_map(|(_, c)| c.to_vec()).collect::<Vec<u8>>(), encode(&s).unwrap());
        assert_eq!(chunks.chunk(m.chunks), None);

        let one = SnapshotChunks::new(&s, u32::MAX).unwrap();
        assert_eq!((one.manifest().chunks, one.chunk(0).map(|c| c.len() as u64)), (1, Some(total)));
        assert_eq!(SnapshotChunks::new(&s, 0).unwrap_err(), SnapshotError::ZeroChunkSize);
    }

    #[test]
    fn chunks_out_of_order_and_duplicated_assemble() {
        let s = snapshot(40);
        let chunks = SnapshotChunks::new(&s, 37).unwrap();
        let mut a = SnapshotAssembler::new(chunks.manifest().clone()).unwrap();
        let mut order = all_chunks(&chunks);
        order.reverse();
        order.swap(1, 4);
        let n = order.len() as u32;
        for (k, (i, c)) in order.iter().enumerate() {
            assert!(!a.is_complete());
            a.add(*i, c.clone()).unwrap();
            a.add(*i, c.clone()).unwrap(); // a retransmission
            assert_eq!(a.received(), k as u32 + 1);
        }
        assert!(a.is_complete() && a.missing().next().is_none());
        assert_eq!(a.received(), n);
        assert_eq!(a.finish(), Ok(s));
    }

    #[test]
    fn a_corrupted_chunk_is_detected() {
        let s = snapshot(40);
        let chunks = SnapshotChunks::new(&s, 50).unwrap();
        for victim in [0, 1, chunks.manifest().chunks - 1] {
            let mut a = SnapshotAssembler::new(chunks.manifest().clone()).unwrap();
            for (i, c) in all_chunks(&chunks) {
                let c = if i == victim {
                    let mut bad = c.to_vec();
                    bad[c.len() / 2] ^= 0x01;
                    Bytes::from(bad)
                } else {
                    c
                };
                a.add(i, c).unwrap();
            }
            match a.finish() {
                Err(e @ SnapshotError::DigestMismatch { .. }) => {
                    assert!(e.to_string().contains("fetch the snapshot again"), "{e}")
                }
                other => panic!("chunk {victim} corrupted, yet: {other:?}"),
            }
        }
    }

    #[test]
    fn a_duplicate_keeps_the_first_copy() {
        let s = snapshot(10);
        let chunks = SnapshotChunks::new(&s, 16).unwrap();
        let mut a = SnapshotAssembler::new(chunks.manifest().clone()).unwrap();
        let first = chunks.chunk(0).unwrap();
        a.add(0, first.clone()).unwrap();
        a.add(0, Bytes::from(vec![0xee; first.len()])).unwrap();
        for (i, c) in all_chunks(&chunks).into_iter().skip(1) {
            a.add(i, c).unwrap();
        }
        assert_eq!(a.finish(), Ok(s));
    }

    #[test]
    fn bad_indexes_and_sizes_are_refused() {
        let chunks = SnapshotChunks::new(&snapshot(10), 16).unwrap();
        let m = chunks.manifest().clone();
        let mut a = SnapshotAssembler::new(m.clone()).unwrap();
        let c0 = chunks.chunk(0).unwrap();
        let e = a.add(m.chunks, c0.clone()).unwrap_err();
        assert_eq!(e, SnapshotError::ChunkOutOfRange { index: m.chunks, chunks: m.chunks });
        assert!(e.to_string().contains("out of range"), "{e}");
        assert!(matches!(a.add(u32::MAX, c0.clone()), Err(SnapshotError::ChunkOutOfRange { .. })));
        let short = c0.slice(..15);
        assert_eq!(a.add(0, short), Err(SnapshotError::WrongChunkSize { index: 0, got: 15, expected: 16 }));
        if !m.total_bytes.is_multiple_of(16) {
            let e = a.add(m.chunks - 1, c0.clone()).unwrap_err();
            assert!(matches!(e, SnapshotError::WrongChunkSize { got: 16, .. }), "{e}");
        }
        assert_eq!(a.received(), 0, "refused chunks are not kept");
        a.add(1, chunks.chunk(1).unwrap()).unwrap();
        assert_eq!(a.missing().take(3).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(a.finish(), Err(SnapshotError::Incomplete { missing: m.chunks - 1, chunks: m.chunks, first: 0 }));
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        let m = SnapshotChunks::new(&snapshot(10), 16).unwrap().manifest().clone();
        let cases = [
            SnapshotManifest { chunk_bytes: 0, ..m.clone() },
            SnapshotManifest { total_bytes: 0, chunks: 0, ..m.clone() },
            SnapshotManifest { chunks: m.chunks + 1, ..m.clone() },
            SnapshotManifest { chunks: m.chunks - 1, ..m.clone() },
            SnapshotManifest { chunks: 0, ..m.clone() },
            SnapshotManifest { total_bytes: u64::MAX, ..m.clone() },
        ];
        for bad in cases {
            assert!(matches!(SnapshotAssembler::new(bad.clone()), Err(SnapshotError::BadManifest { .. })), "{bad:?}");
        }
    }

    /// Bytes that match their digest but are not the snapshot the manifest
    /// names: another height, block or round; or not a snapshot at all.
    #[test]
    fn a_snapshot_other_than_the_manifest_names_is_refused() {
        let s = snapshot(5);
        let chunks = SnapshotChunks::new(&s, 32).unwrap();
        let m = chunks.manifest().clone();
        let assemble = |m: SnapshotManifest, chunks: Vec<(u32, Bytes)>| {
            let mut a = SnapshotAssembler::new(m).unwrap();
            for (i, c) in chunks {
                a.add(i, c).unwrap();
            }
            a.finish()
        };
        let renamed = [
            (SnapshotManifest { height: 8, ..m.clone() }, "height 8"),
            (SnapshotManifest { block_id: Hash::digest(b"other"), ..m.clone() }, "block"),
            (SnapshotManifest { term_or_round: 4, ..m.clone() }, "term or round 4"),
        ];
        for (bad, says) in renamed {
            match assemble(bad, all_chunks(&chunks)) {
                Err(e @ SnapshotError::ManifestMismatch { .. }) => assert!(e.to_string().contains(says), "{e}"),
                other => panic!("expected ManifestMismatch naming {says}, got {other:?}"),
            }
        }

        let garbage = b"not a snapshot at all".to_vec();
        let m = SnapshotManifest {
            total_bytes: garbage.len() as u64,
            chunk_bytes: 8,
            chunks: 3,
            digest: Hash::digest(&garbage),
            ..m
        };
        let pieces = garbage.chunks(8).enumerate().map(|(i, c)| (i as u32, Bytes::copy_from_slice(c))).collect();
        assert!(matches!(assemble(m, pieces), Err(SnapshotError::Malformed { .. })));
    }

    #[test]
    fn malformed_encodings_are_refused() {
        let s = snapshot(3);
        let good = encode(&s).unwrap();
        let refuse = |bytes: &[u8], says: &str| match decode(bytes) {
            Err(e @ SnapshotError::Malformed { .. }) => assert!(e.to_string().contains(says), "{says}: {e}"),
            other => panic!("{says}: expected Malformed, got {other:?}"),
        };
        refuse(&[], "empty");
        refuse(&good[..good.len() - 1], "only");
        refuse(&[good.as_slice(), &[0, 0]].concat(), "too few for a frame length");

        let mut unsorted = s.clone();
        unsorted.entries.swap(0, 2);
        refuse(&encode(&unsorted).unwrap(), "is not after key");
        let mut repeated = s.clone();
        repeated.entries[1] = repeated.entries[0].clone();
        refuse(&encode(&repeated).unwrap(), "is not after key");

        let mut fewer = s.clone();
        fewer.entries.pop();
        let header_of_fewer = encode(&fewer).unwrap();
        let extra = &good[header_of_fewer.len()..]; // the last entry's frame
        let mut more = encode(&StateSnapshot { entries: Vec::new(), ..s.clone() }).unwrap();
        more.extend_from_slice(extra);
        refuse(&more, "more than the 0 entries");
        let header_len = FRAME_LEN_BYTES + u32::from_le_bytes(good[..4].try_into().unwrap()) as usize;
        refuse(&good[..header_len], "announces 3 entries, 0 follow");
    }
}
