//! The transaction index on sled: transaction hash → (height, index in the
//! block), kept as sorted runs rather than one B-tree entry per transaction.
//!
//! # Why runs
//!
//! A sled insert of a random 32-byte key costs 7–40 µs on the project's
//! 2-core machine once the index outgrows the page cache (measured with
//! `cargo bench -p phalanx-node --bench store`, docs/benchmarks.md). One
//! insert per committed transaction therefore capped a validator at a few
//! tens of thousands of transactions per second on its own, on the
//! committer's critical path. Here a commit batch writes its entries as one
//! *run*: sorted, packed into a few large chunk values, written inside the
//! commit's own sled transaction (so the index is exactly as durable and as
//! atomic as the commit). A background thread merges runs of similar size
//! once eight of a size have gathered, so a lookup probes few runs (an LSM tree's size-tiered
//! compaction, with sled as the block store).
//!
//! # Layout
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `tx_index` | run id (u64 BE) ‖ first hash of the chunk (32 bytes) | up to [`CHUNK_ENTRIES`] entries of [`ENTRY_BYTES`] each: hash (32) ‖ height (u64 BE) ‖ index (u32 BE), sorted by hash |
//! | `tx_runs` | run id (u64 BE) | [`RunMeta`]: how many entries the run holds |
//!
//! # Invariants
//!
//! - A run lists each hash at most once, with the lowest (height, index) it
//!   was given: a replayed transaction keeps its first entry, and a lookup
//!   takes the lowest over all runs.
//! - A run is visible (listed in `tx_runs` and in memory) only once all its
//!   chunks are written. A commit writes both in one transaction; a merge
//!   writes its chunks first, then swaps the run list in one transaction,
//!   then deletes the merged runs' chunks. Chunks of a run that is not
//!   listed (a merge cut short by a crash) are deleted at open.
//! - The in-memory run list changes only under its write lock, and lookups
//!   hold its read lock, so a lookup never probes a run whose chunks are
//!   being deleted.

use super::StoreError;
use parking_lot::RwLock;
use phalanx_consensus::types::Height;
use phalanx_crypto::{Hash, codec};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tree names, as they appear on disk.
pub(super) const CHUNKS_TREE: &str = "tx_index";
pub(super) const RUNS_TREE: &str = "tx_runs";

/// Bytes of one packed entry: hash, height, index.
pub const ENTRY_BYTES: usize = 32 + 8 + 4;
/// Entries per chunk value at most (5.5 KiB). Kept small for sled: a leaf
/// holds up to 17 values, and sled stores a page larger than about 128 KiB
/// as a blob it never evicts from memory (see `block_file.rs`); with 4,096
/// entries (176 KiB) every chunk stayed in memory.
pub const CHUNK_ENTRIES: usize = 128;
/// A size class is merged once it holds this many runs.
pub const FANOUT: usize = 8;
/// Most runs merged at once: a class that filled up between two merge
/// rounds (many small commits) is merged in one pass, not eight at a time,
/// since a merge's cost is mostly per run and per pass.
pub const MERGE_RUNS_MAX: usize = 64;
/// Runs this large are not merged further: a lookup then probes one run per
/// this many transactions, and no merge rewrites more than this at once.
pub const MAX_MERGED_ENTRIES: u64 = 1 << 22;

/// One indexed transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexEntry {
    pub hash: [u8; 32],
    pub height: Height,
    pub index: u32,
}

impl IndexEntry {
    fn pack(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
    }

    fn unpack(b: &[u8]) -> IndexEntry {
        IndexEntry {
            hash: b[..32].try_into().expect("32 bytes"),
            height: u64::from_be_bytes(b[32..40].try_into().expect("8 bytes")),
            index: u32::from_be_bytes(b[40..44].try_into().expect("4 bytes")),
        }
    }
}

/// What `tx_runs` records of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    pub entries: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    id: u64,
    entries: u64,
}

/// A run prepared outside a transaction, written inside one by
/// [`NewRun::write`] and made visible by [`TxIndex::publish`].
pub(super) struct NewRun {
    run: Run,
    chunks: Vec<([u8; 40], Vec<u8>)>,
    meta: Vec<u8>,
}

impl NewRun {
    /// Writes the run's chunks and its `tx_runs` record; idempotent, so a
    /// transaction closure may run it more than once.
    pub(super) fn write(
        &self,
        chunks: &TransactionalTree,
        runs: &TransactionalTree,
    ) -> Result<(), UnabortableTransactionError> {
        for (k, v) in &self.chunks {
            chunks.insert(&k[..], v.as_slice())?;
        }
        runs.insert(&self.run.id.to_be_bytes(), self.meta.as_slice())?;
        Ok(())
    }
}

/// The index: its two trees and the list of visible runs.
pub(super) struct TxIndex {
    chunks: sled::Tree,
    runs_tree: sled::Tree,
    runs: RwLock<Vec<Run>>,
    next_id: AtomicU64,
    /// Maps a sled error to a store error naming the data directory.
    err: fn(&std::path::Path, sled::Error) -> StoreError,
    path: std::path::PathBuf,
}

fn chunk_key(run: u64, first: &[u8; 32]) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&run.to_be_bytes());
    k[8..].copy_from_slice(first);
    k
}

/// Size class of a run: runs within a factor of [`FANOUT`] share one.
fn class(entries: u64) -> u32 {
    entries.max(1).ilog(FANOUT as u64)
}

/// Cuts sorted entries (each hash once) into chunk values.
struct ChunkWriter {
    run: u64,
    first: Option<[u8; 32]>,
    buf: Vec<u8>,
    count: u64,
}

impl ChunkWriter {
    fn new(run: u64) -> ChunkWriter {
        ChunkWriter { run, first: None, buf: Vec::with_capacity(CHUNK_ENTRIES * ENTRY_BYTES), count: 0 }
    }

    /// Adds `e`; returns a full chunk to write.
    fn push(&mut self, e: &IndexEntry) -> Option<([u8; 40], Vec<u8>)> {
        self.first.get_or_insert(e.hash);
        e.pack(&mut self.buf);
        self.count += 1;
        if self.buf.len() >= CHUNK_ENTRIES * ENTRY_BYTES { self.take() } else { None }
    }

    /// The last, partial chunk, if any.
    fn take(&mut self) -> Option<([u8; 40], Vec<u8>)> {
        let first = self.first.take()?;
        let value = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_ENTRIES * ENTRY_BYTES));
        Some((chunk_key(self.run, &first), value))
    }
}

impl TxIndex {
    /// Opens the index's trees, loads the run list and deletes the chunks
    /// of runs that are not listed.
    pub(super) fn open(
        db: &sled::Db,
        path: &std::path::Path,
        err: fn(&std::path::Path, sled::Error) -> StoreError,
    ) -> Result<TxIndex, StoreError> {
        let e = |x| err(path, x);
        let chunks = db.open_tree(CHUNKS_TREE).map_err(e)?;
        let runs_tree = db.open_tree(RUNS_TREE).map_err(e)?;
        let mut runs = Vec::new();
        for item in runs_tree.iter() {
            let (k, v) = item.map_err(e)?;
            let id = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes).map_err(|_| StoreError::Corrupt {
                what: format!("tree `{RUNS_TREE}` has a key of {} bytes, not 8", k.len()),
            })?;
            let meta: RunMeta = codec::decode(&v).map_err(|x| StoreError::Corrupt {
                what: format!("tree `{RUNS_TREE}`, run {id}: the value does not decode ({x})"),
            })?;
            runs.push(Run { id, entries: meta.entries });
        }
        let next_id = runs.iter().map(|r| r.id + 1).max().unwrap_or(0);
        let index = TxIndex {
            chunks,
            runs_tree,
            runs: RwLock::new(runs),
            next_id: AtomicU64::new(next_id),
            err,
            path: path.to_path_buf(),
        };
        index.delete_unlisted()?;
        Ok(index)
    }

    fn sled_error(&self, e: sled::Error) -> StoreError {
        (self.err)(&self.path, e)
    }

    /// Deletes chunks whose run is not listed: what a merge cut short left.
    fn delete_unlisted(&self) -> Result<(), StoreError> {
        let listed: std::collections::HashSet<u64> = self.runs.read().iter().map(|r| r.id).collect();
        let mut from = 0u64;
        loop {
            let Some(item) = self.chunks.range(from.to_be_bytes()..).next() else { return Ok(()) };
            let (k, _) = item.map_err(|e| self.sled_error(e))?;
            let id = <[u8; 8]>::try_from(&k[..8.min(k.len())]).map(u64::from_be_bytes).map_err(|_| {
                StoreError::Corrupt { what: format!("tree `{CHUNKS_TREE}` has a key of {} bytes", k.len()) }
            })?;
            if !listed.contains(&id) {
                self.delete_run_chunks(id)?;
            }
            match id.checked_add(1) {
                Some(next) => from = next,
                None => return Ok(()),
            }
        }
    }

    fn delete_run_chunks(&self, id: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for k in self.chunks.range(id.to_be_bytes()..).keys() {
            let k = k.map_err(|e| self.sled_error(e))?;
            if k[..8] != id.to_be_bytes() {
                break;
            }
            batch.remove(k);
        }
        self.chunks.apply_batch(batch).map_err(|e| self.sled_error(e))
    }

    /// Sorts `entries` into a run (each hash once, at its lowest height and
    /// index), or `None` if there are none.
    pub(super) fn prepare(&self, mut entries: Vec<IndexEntry>) -> Option<NewRun> {
        if entries.is_empty() {
            return None;
        }
        entries.sort_unstable();
        entries.dedup_by(|later, first| later.hash == first.hash);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut w = ChunkWriter::new(id);
        let mut chunks: Vec<_> = entries.iter().filter_map(|e| w.push(e)).collect();
        chunks.extend(w.take());
        let run = Run { id, entries: entries.len() as u64 };
        Some(NewRun { run, chunks, meta: codec::encode(&RunMeta { entries: run.entries }) })
    }

    /// Makes a run written by a committed transaction visible to lookups.
    pub(super) fn publish(&self, run: &NewRun) {
        self.runs.write().push(run.run);
    }

    /// Where `hash` was first committed, if it was.
    pub(super) fn get(&self, hash: &Hash) -> Result<Option<(Height, u32)>, StoreError> {
        let runs = self.runs.read();
        let mut best: Option<(Height, u32)> = None;
        for run in runs.iter() {
            if let Some(found) = self.find_in(run.id, &hash.0)? {
                best = Some(best.map_or(found, |b| b.min(found)));
            }
        }
        Ok(best)
    }

    fn find_in(&self, run: u64, hash: &[u8; 32]) -> Result<Option<(Height, u32)>, StoreError> {
        let upper = chunk_key(run, hash);
        let Some(item) = self.chunks.range(chunk_key(run, &[0; 32])..=upper).next_back() else { return Ok(None) };
        let (k, v) = item.map_err(|e| self.sled_error(e))?;
        if k[..8] != run.to_be_bytes() {
            return Ok(None);
        }
        let (entries, rest) = v.as_chunks::<ENTRY_BYTES>();
        if !rest.is_empty() {
            return Err(StoreError::Corrupt {
                what: format!("tree `{CHUNKS_TREE}`, run {run}: a chunk of {} bytes is not whole entries", v.len()),
            });
        }
        Ok(entries.binary_search_by(|e| e[..32].cmp(&hash[..])).ok().map(|i| {
            let e = IndexEntry::unpack(&entries[i]);
            (e.height, e.index)
        }))
    }

    /// The chunk and run trees, for a commit's transaction.
    pub(super) fn trees(&self) -> (&sled::Tree, &sled::Tree) {
        (&self.chunks, &self.runs_tree)
    }

    /// Runs visible to lookups.
    #[cfg(test)]
    pub(super) fn run_count(&self) -> usize {
        self.runs.read().len()
    }

    /// The oldest runs (up to [`MERGE_RUNS_MAX`]) of the smallest size class
    /// that holds at least [`FANOUT`], leaving runs of
    /// [`MAX_MERGED_ENTRIES`] or more alone.
    fn due(&self) -> Option<Vec<Run>> {
        let runs = self.runs.read();
        let mut by_class: std::collections::BTreeMap<u32, Vec<Run>> = Default::default();
        for r in runs.iter().filter(|r| r.entries < MAX_MERGED_ENTRIES) {
            by_class.entry(class(r.entries)).or_default().push(*r);
        }
        by_class.into_values().find(|v| v.len() >= FANOUT).map(|mut v| {
            v.sort_by_key(|r| r.id);
            v.truncate(MERGE_RUNS_MAX);
            v
        })
    }

    /// Merges one group of runs if one is due; returns whether it did.
    pub(super) fn compact_once(&self) -> Result<bool, StoreError> {
        let Some(picked) = self.due() else { return Ok(false) };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut cursors = Vec::with_capacity(picked.len());
        for r in &picked {
            cursors.push(Cursor::new(&self.chunks, r.id));
        }
        let mut heap = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(e) = c.next().map_err(|e| self.sled_error(e))? {
                heap.push(Reverse((e, i)));
            }
        }
        let mut w = ChunkWriter::new(id);
        let mut last: Option<[u8; 32]> = None;
        while let Some(Reverse((e, i))) = heap.pop() {
            if let Some(n) = cursors[i].next().map_err(|e| self.sled_error(e))? {
                heap.push(Reverse((n, i)));
            }
            // Entries come in (hash, height, index) order: the first of a
            // hash is its lowest.
            if last == Some(e.hash) {
                continue;
            }
            last = Some(e.hash);
            if let Some((k, v)) = w.push(&e) {
                self.chunks.insert(&k[..], v).map_err(|e| self.sled_error(e))?;
            }
        }
        let entries = w.count;
        if let Some((k, v)) = w.take() {
            self.chunks.insert(&k[..], v).map_err(|e| self.sled_error(e))?;
        }
        let meta = codec::encode(&RunMeta { entries });
        {
            let mut runs = self.runs.write();
            let mut batch = sled::Batch::default();
            batch.insert(&id.to_be_bytes(), meta);
            for r in &picked {
                batch.remove(&r.id.to_be_bytes());
            }
            self.runs_tree.apply_batch(batch).map_err(|e| self.sled_error(e))?;
            runs.retain(|r| !picked.contains(r));
            runs.push(Run { id, entries });
        }
        for r in &picked {
            self.delete_run_chunks(r.id)?;
        }
        Ok(true)
    }
}

/// Reads one run's entries in order, a chunk at a time.
struct Cursor {
    iter: sled::Iter,
    run: [u8; 8],
    chunk: sled::IVec,
    pos: usize,
}

impl Cursor {
    fn new(tree: &sled::Tree, run: u64) -> Cursor {
        Cursor { iter: tree.range(run.to_be_bytes()..), run: run.to_be_bytes(), chunk: sled::IVec::default(), pos: 0 }
    }

    fn next(&mut self) -> Result<Option<IndexEntry>, sled::Error> {
        while self.pos + ENTRY_BYTES > self.chunk.len() {
            match self.iter.next() {
                Some(item) => {
                    let (k, v) = item?;
                    if k[..8] != self.run {
                        return Ok(None);
                    }
                    self.chunk = v;
                    self.pos = 0;
                }
                None => return Ok(None),
            }
        }
        let e = IndexEntry::unpack(&self.chunk[self.pos..self.pos + ENTRY_BYTES]);
        self.pos += ENTRY_BYTES;
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(db: &sled::Db) -> TxIndex {
        TxIndex::open(db, std::path::Path::new("test"), |_, e| StoreError::Corrupt { what: e.to_string() }).unwrap()
    }

    fn entry(n: u64, height: Height, index: u32) -> IndexEntry {
        IndexEntry { hash: Hash::digest(&n.to_le_bytes()).0, height, index }
    }

    /// Writes a run as a commit does: in one transaction, then published.
    fn commit(idx: &TxIndex, entries: Vec<IndexEntry>) {
        use sled::Transactional;
        let run = idx.prepare(entries).unwrap();
        (&idx.chunks, &idx.runs_tree)
            .transaction(|(c, r)| {
                run.write(c, r)?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        idx.publish(&run);
    }

    fn temp_db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    /// Every committed entry is found, across chunk boundaries and runs,
    /// before and after merges; an unknown hash is not.
    #[test]
    fn finds_every_entry_across_runs_and_merges() {
        let db = temp_db();
        let idx = open(&db);
        let per_run = CHUNK_ENTRIES as u64 + 7; // two chunks per run
        for r in 0..(FANOUT as u64 * 2) {
            commit(&idx, (0..per_run).map(|i| entry(r * per_run + i, r + 1, i as u32)).collect());
        }
        let check = |idx: &TxIndex| {
            for r in 0..(FANOUT as u64 * 2) {
                for i in (0..per_run).step_by(97).chain([per_run - 1]) {
                    assert_eq!(idx.get(&Hash(entry(r * per_run + i, 0, 0).hash)).unwrap(), Some((r + 1, i as u32)));
                }
            }
            assert_eq!(idx.get(&Hash::digest(b"never committed")).unwrap(), None);
        };
        check(&idx);
        assert_eq!(idx.run_count(), FANOUT * 2);
        while idx.compact_once().unwrap() {}
        assert_eq!(idx.run_count(), 1, "sixteen runs of one class merge into one");
        check(&idx);
        let merged_chunks = idx.chunks.len();
        assert_eq!(merged_chunks as u64, (2 * FANOUT as u64 * per_run).div_ceil(CHUNK_ENTRIES as u64));
    }

    /// A replayed transaction keeps its first entry, inside one run, across
    /// runs, and through a merge.
    #[test]
    fn first_entry_wins() {
        let db = temp_db();
        let idx = open(&db);
        commit(&idx, vec![entry(1, 5, 3), entry(1, 4, 9), entry(2, 4, 0)]);
        assert_eq!(idx.get(&Hash(entry(1, 0, 0).hash)).unwrap(), Some((4, 9)));
        for h in 6..6 + FANOUT as u64 {
            commit(&idx, vec![entry(1, h, 0), entry(2, h, 1), entry(100 + h, h, 0)]);
        }
        assert_eq!(idx.get(&Hash(entry(2, 0, 0).hash)).unwrap(), Some((4, 0)));
        assert!(idx.compact_once().unwrap());
        assert_eq!(idx.get(&Hash(entry(1, 0, 0).hash)).unwrap(), Some((4, 9)));
        assert_eq!(idx.get(&Hash(entry(2, 0, 0).hash)).unwrap(), Some((4, 0)));
        assert_eq!(idx.get(&Hash(entry(110, 0, 0).hash)).unwrap(), Some((10, 0)));
    }

    /// A chunk that is not whole entries is reported as corrupt, naming
    /// the tree and the run, not read as if the hash were absent.
    #[test]
    fn torn_chunk_is_corrupt() {
        let db = temp_db();
        let idx = open(&db);
        commit(&idx, vec![entry(1, 1, 0)]);
        let (key, _) = idx.chunks.iter().next().unwrap().unwrap();
        idx.chunks.insert(key, vec![0u8; ENTRY_BYTES + 1]).unwrap();
        match idx.get(&Hash(entry(1, 0, 0).hash)) {
            Err(StoreError::Corrupt { what }) => {
                assert!(what.contains("tree `tx_index`, run 0") && what.contains("45 bytes"), "{what}")
            }
            other => panic!("expected a corrupt-store error, got {other:?}"),
        }
    }

    /// Chunks of a run that no record lists (a merge cut short) are deleted
    /// at open; listed runs survive a reopen.
    #[test]
    fn reopen_keeps_listed_runs_and_drops_unlisted_chunks() {
        let db = temp_db();
        {
            let idx = open(&db);
            commit(&idx, vec![entry(1, 1, 0)]);
            let orphan = idx.prepare(vec![entry(2, 2, 0)]).unwrap();
            for (k, v) in &orphan.chunks {
                idx.chunks.insert(&k[..], v.as_slice()).unwrap();
            }
            commit(&idx, vec![entry(3, 3, 0)]);
        }
        let idx = open(&db);
        assert_eq!(idx.run_count(), 2);
        assert_eq!(idx.chunks.len(), 2, "the unlisted chunk is gone");
        assert_eq!(idx.get(&Hash(entry(1, 0, 0).hash)).unwrap(), Some((1, 0)));
        assert_eq!(idx.get(&Hash(entry(2, 0, 0).hash)).unwrap(), None);
        assert_eq!(idx.get(&Hash(entry(3, 0, 0).hash)).unwrap(), Some((3, 0)));
        commit(&idx, vec![entry(4, 4, 0)]);
        assert_eq!(idx.get(&Hash(entry(4, 0, 0).hash)).unwrap(), Some((4, 0)), "new ids do not reuse listed ones");
    }
}
