//! [`SledStore`]: the chain store on disk, one sled database per node.
//!
//! The layout (trees, keys, values) is in the parent module's documentation.
//! This file owns the mapping of the [`ChainStore`] operations onto sled:
//!
//! - `commit` and `init_genesis` are one multi-tree sled transaction each,
//!   then one `flush` (fsync); only then does the in-memory committed tip
//!   move, so [`ChainStore::committed_tip`] never names an unflushed block.
//! - `save_block` and `prune_forks` are small transactions over `blocks` and
//!   `pending`, so the pending index and the blocks it names never disagree.
//! - Block bodies and each block's results are appended to the block file
//!   (`block_file.rs`) and synced before the sled write that names them, so
//!   sled never holds a location whose bytes may be missing after a crash.
//! - The safety state and evidence are single-key writes in their own trees,
//!   outside any transaction.
//! - The transaction index (`tx_index.rs`) gets one run per commit inside
//!   the commit's transaction; its merges run on a `tx-index` thread that
//!   the store starts at open and stops (joins) when it is dropped.
//! - `install_snapshot` is one multi-tree transaction too (it replaces the
//!   `state` tree, so it first lists the keys to delete), then one flush;
//!   only then do the cached tip and base height move.
//! - Commits, genesis and snapshot installs take the write side of one
//!   read-write lock (`commit_lock`), so they are serialized and the cached
//!   tip is updated in commit order; `export_snapshot` takes its read side,
//!   so no commit or install runs while it reads the tip and walks the
//!   `state` tree, and what it returns is of one height. (sled offers no
//!   consistent snapshot of a tree scan, hence the lock.)
//!
//! Opening refuses a directory held by another process, a path that is not a
//! directory, and a database of another schema version.
//!
//! The lock is sled's exclusive `flock` on `<path>/db`, taken through a new
//! open file description on every open, so a second open of the same path
//! fails with [`StoreError::Locked`] even inside the process that holds the
//! first. It is released when sled closes that file, which can be a moment
//! after the last handle is dropped (sled's I/O thread pool may still hold
//! it), so reopening a path in the same process can briefly report `Locked`.
//! A node opens its store once per process; the tests that reopen wait for
//! the lock.

use super::block_file::{self, BlockFile, ReadError, Stored};
use super::tx_index::{IndexEntry, TxIndex};
use super::{
    ChainStore, CommitRecord, SCHEMA_VERSION, StateSnapshot, StoreError, TxRecord, check_batch, check_snapshot,
    describe_chain, evidence_key, height_key, hex, pending_key, source_block, source_committed_block,
    source_committed_cert, source_committed_height, view_state,
};
use parking_lot::RwLock;
use phalanx_consensus::hotstuff::BlockSource;
use phalanx_consensus::smr::{StateView, TxOutcome};
use phalanx_consensus::types::{Block, BlockId, Certificate, CertifiedBlock, Evidence, Height};
use phalanx_consensus::{Recovery, SafetyState};
use phalanx_crypto::{Hash, codec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::info;

/// Tree names, as they appear on disk.
mod tree {
    pub const BLOCKS: &str = "blocks";
    pub const HEIGHTS: &str = "heights";
    pub const CERTS: &str = "certs";
    pub const APP_HASHES: &str = "app_hashes";
    pub const RESULTS: &str = "results";
    pub const STATE: &str = "state";
    pub const PENDING: &str = "pending";
    pub const META: &str = "meta";
    pub const SAFETY: &str = "safety";
    pub const EVIDENCE: &str = "evidence";
}

/// sled's page cache, in bytes. Recent blocks, the tx index and the state
/// are read through it; the operating system's page cache still holds the
/// files. sled counts the cache in on-disk bytes, and a node's memory is
/// many times this figure: at 2x the saturation rate for 60 s the default
/// 1 GiB let each node reach about 950 MiB, 64 MiB about the same, 16 MiB
/// about 550 MiB (docs/benchmarks.md), at the same throughput.
pub const CACHE_BYTES: u64 = 16 << 20;

/// Keys of the `meta` tree.
const META_SCHEMA_VERSION: &[u8] = b"schema_version";
const META_CHAIN_ID: &[u8] = b"chain_id";
const META_GENESIS_ID: &[u8] = b"genesis_id";
const META_COMMITTED_HEIGHT: &[u8] = b"committed_height";
/// Written by `install_snapshot` only; absent means 0.
const META_BASE_HEIGHT: &[u8] = b"base_height";
/// The one key of the `safety` tree.
const SAFETY_KEY: &[u8] = b"safety";

/// The chain store on a sled database. See the module documentation.
pub struct SledStore {
    /// Declared first so it stops (and lets go of the index's trees) before
    /// the database closes.
    compactor: Compactor,
    /// The transaction index (`tx_index` and `tx_runs`; see `tx_index.rs`).
    index: Arc<TxIndex>,
    path: PathBuf,
    db: sled::Db,
    t: Trees,
    /// Block bodies and results (`<path>/blockfile/`).
    file: BlockFile,
    /// Records up to this size stay in sled ([`block_file::INLINE_MAX`];
    /// tests lower it).
    inline_max: usize,
    /// The committed tip, `None` until genesis is written. Moves only after
    /// a commit transaction and its flush succeeded.
    tip: RwLock<Option<(Height, BlockId)>>,
    /// The base height as recorded in `meta` (0 if absent). Moves only after
    /// an install transaction and its flush succeeded.
    base: AtomicU64,
    /// Write side: `commit`, `init_genesis` and `install_snapshot`, which
    /// it serializes (so `tip` is updated in commit order). Read side:
    /// `export_snapshot`, which must see no commit in the middle of its read.
    commit_lock: RwLock<()>,
    /// A test store's directory, deleted after the database is closed (fields
    /// drop in declaration order).
    #[cfg(test)]
    temp_dir: Option<tempfile::TempDir>,
}

/// The open trees.
struct Trees {
    blocks: sled::Tree,
    heights: sled::Tree,
    certs: sled::Tree,
    app_hashes: sled::Tree,
    results: sled::Tree,
    state: sled::Tree,
    pending: sled::Tree,
    meta: sled::Tree,
    safety: sled::Tree,
    evidence: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> sled::Result<Trees> {
        Ok(Trees {
            blocks: db.open_tree(tree::BLOCKS)?,
            heights: db.open_tree(tree::HEIGHTS)?,
            certs: db.open_tree(tree::CERTS)?,
            app_hashes: db.open_tree(tree::APP_HASHES)?,
            results: db.open_tree(tree::RESULTS)?,
            state: db.open_tree(tree::STATE)?,
            pending: db.open_tree(tree::PENDING)?,
            meta: db.open_tree(tree::META)?,
            safety: db.open_tree(tree::SAFETY)?,
            evidence: db.open_tree(tree::EVIDENCE)?,
        })
    }
}

/// What a transaction closure returns on error.
type TxAbort = ConflictableTransactionError<StoreError>;

impl SledStore {
    /// Opens (creating if absent) the store under `path`.
    ///
    /// Fails with [`StoreError::Locked`] if another process holds it,
    /// [`StoreError::Io`] if `path` is not a usable directory, and
    /// [`StoreError::Schema`] if it was written by another schema version.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        check_directory(path)?;
        // The default mode (LowSpace) rather than HighThroughput: a node
        // writes one fsync'd transaction per commit, so its write rate is set
        // by consensus, not by sled, while the chain only grows. Space is the
        // scarcer resource; HighThroughput mostly defers segment cleaning.
        //
        // The page cache is capped at CACHE_BYTES: with sled's default
        // (1 GiB) a node's memory grew with the chain to about 1 GiB.
        let db = sled::Config::new().path(path).cache_capacity(CACHE_BYTES).open().map_err(|e| open_error(path, e))?;
        let t = Trees::open(&db).map_err(|e| sled_error(path, e))?;
        check_schema(&db, &t.meta, path)?;
        let index = Arc::new(TxIndex::open(&db, path, sled_error)?);
        // Opened after sled, whose lock on the directory covers it too, and
        // after the schema check, so a refused store gains no block file.
        let file = BlockFile::open(&path.join(block_file::DIR)).map_err(|e| StoreError::Io {
            path: path.join(block_file::DIR),
            message: format!("cannot open the block file: {e}"),
        })?;
        let store = SledStore {
            compactor: Compactor::spawn(index.clone()).map_err(|e| StoreError::Io {
                path: path.to_path_buf(),
                message: format!("cannot start the tx-index thread: {e}"),
            })?,
            index,
            path: path.to_path_buf(),
            db,
            t,
            file,
            inline_max: block_file::INLINE_MAX,
            tip: RwLock::new(None),
            base: AtomicU64::new(0),
            commit_lock: RwLock::new(()),
            #[cfg(test)]
            temp_dir: None,
        };
        let tip = store.read_tip()?;
        *store.tip.write() = tip;
        let base = store.read_value::<Height>(&store.t.meta, META_BASE_HEIGHT)?.unwrap_or(0);
        store.base.store(base, Ordering::Release);
        let committed_height = tip.map(|(h, _)| h);
        info!(path = %path.display(), committed_height, base_height = base, "opened the chain store");
        Ok(store)
    }

    /// A fresh store in a temporary directory, deleted on drop.
    #[cfg(test)]
    pub(super) fn open_temporary() -> SledStore {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let mut store = SledStore::open(dir.path()).expect("open a fresh store");
        store.temp_dir = Some(dir);
        store
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The committed tip as recorded in `meta` and `heights`.
    fn read_tip(&self) -> Result<Option<(Height, BlockId)>, StoreError> {
        let Some(height) = self.read_value::<Height>(&self.t.meta, META_COMMITTED_HEIGHT)? else { return Ok(None) };
        match self.read_value::<BlockId>(&self.t.heights, &height_key(height))? {
            Some(id) => Ok(Some((height, id))),
            None => Err(missing_tip(height)),
        }
    }

    fn sled_error(&self, e: sled::Error) -> StoreError {
        sled_error(&self.path, e)
    }

    fn tx_error(&self, e: TransactionError<StoreError>) -> StoreError {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => self.sled_error(e),
        }
    }

    /// Reads and decodes one value.
    fn read_value<T: DeserializeOwned>(&self, tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| self.sled_error(e))? {
            None => Ok(None),
            Some(bytes) => decode_value(&tree_name(tree), key, &bytes).map(Some),
        }
    }

    /// The value sled keeps for a record: the record if small, else its
    /// location after appending it to the block file (not yet synced).
    fn put_record(&self, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        if bytes.len() <= self.inline_max {
            return Ok(codec::encode(&Stored::Inline(bytes)));
        }
        let at = self.file.append(&bytes).map_err(|e| self.file_error("cannot append to the block file", e))?;
        Ok(codec::encode(&Stored::File(at)))
    }

    /// Makes every appended record durable; called before any sled write
    /// that names one (cheap when nothing was appended).
    fn sync_file(&self) -> Result<(), StoreError> {
        self.file.sync().map_err(|e| self.file_error("cannot sync the block file", e))
    }

    fn file_error(&self, what: &str, e: std::io::Error) -> StoreError {
        StoreError::Io { path: self.path.join(block_file::DIR), message: format!("{what}: {e}") }
    }

    /// Reads and decodes the record `tree` holds under `key`, inline or in
    /// the block file.
    fn read_record<T: DeserializeOwned>(&self, tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
        let at = match self.read_value::<Stored>(tree, key)? {
            None => return Ok(None),
            Some(Stored::Inline(bytes)) => return decode_value(&tree_name(tree), key, &bytes).map(Some),
            Some(Stored::File(at)) => at,
        };
        let name = tree_name(tree);
        let bytes = self.file.read(&at).map_err(|e| match e {
            ReadError::Io { path, error } => {
                StoreError::Io { path, message: format!("cannot read the block file: {error}") }
            }
            ReadError::Bad(why) => StoreError::Corrupt {
                what: format!("tree `{name}` {} names a bad record: {why}", describe_key(&name, key)),
            },
        })?;
        decode_value(&name, key, &bytes).map(Some)
    }

    /// Encodes and writes one value outside any transaction.
    fn write_value<T: Serialize>(&self, tree: &sled::Tree, key: &[u8], value: &T) -> Result<(), StoreError> {
        tree.insert(key, codec::encode(value)).map(|_| ()).map_err(|e| self.sled_error(e))
    }
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore").field("path", &self.path).field("tip", &*self.tip.read()).finish()
    }
}

/// Shortest time between two rounds of transaction index merges.
const MERGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Merges the transaction index's runs on its own thread (`tx-index`),
/// woken after each commit that added a run, so no commit waits for a merge.
struct Compactor {
    wake: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Compactor {
    fn spawn(index: Arc<TxIndex>) -> std::io::Result<Compactor> {
        let (wake, woken) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("tx-index".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while woken.recv().is_ok() {
                    // At most one round per MERGE_PAUSE: under many small
                    // commits, runs gather and merge in one pass.
                    let resume = last + MERGE_PAUSE;
                    while let Some(wait) = resume.checked_duration_since(std::time::Instant::now()) {
                        if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) = woken.recv_timeout(wait) {
                            return;
                        }
                    }
                    loop {
                        match index.compact_once() {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => {
                                tracing::error!(error = %e, "cannot merge transaction index runs; lookups stay right but slow down");
                                break;
                            }
                        }
                    }
                    last = std::time::Instant::now();
                }
            })?;
        let c = Compactor { wake: Some(wake), thread: Some(thread) };
        c.wake(); // runs may be due from before a restart
        Ok(c)
    }

    fn wake(&self) {
        if let Some(w) = &self.wake {
            let _ = w.try_send(());
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The tx index entries of one committed block.
fn index_entries(r: &CommitRecord) -> impl Iterator<Item = IndexEntry> + '_ {
    let height = r.block.block.height();
    r.tx_hashes.iter().enumerate().map(move |(index, hash)| IndexEntry {
        hash: hash.0,
        height,
        index: u32::try_from(index).expect("a block carries fewer than 2^32 transactions"),
    })
}

// ---- errors and encodings ------------------------------------------------

/// A path that exists must be a directory; sled creates a missing one.
fn check_directory(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::Io { path: path.to_path_buf(), message: "it exists and is not a directory".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io { path: path.to_path_buf(), message: e.to_string() }),
    }
}

/// Refuses a database written by another schema version, or a non-empty
/// one that carries no version at all (version 0). Stamps an empty one with
/// [`SCHEMA_VERSION`] at once, so that whatever is written before genesis
/// (a safety state, say) is never in an unversioned database.
fn check_schema(db: &sled::Db, meta: &sled::Tree, path: &Path) -> Result<(), StoreError> {
    let found = match meta.get(META_SCHEMA_VERSION).map_err(|e| sled_error(path, e))? {
        Some(bytes) => decode_value::<u32>(tree::META, META_SCHEMA_VERSION, &bytes)?,
        None if holds_anything(db, path)? => 0,
        None => {
            meta.insert(META_SCHEMA_VERSION, codec::encode(&SCHEMA_VERSION)).map_err(|e| sled_error(path, e))?;
            return Ok(());
        }
    };
    if found != SCHEMA_VERSION {
        return Err(StoreError::Schema { path: path.to_path_buf(), found, expected: SCHEMA_VERSION });
    }
    Ok(())
}

/// True if any tree in the database (ours or not) has an entry.
fn holds_anything(db: &sled::Db, path: &Path) -> Result<bool, StoreError> {
    for name in db.tree_names() {
        if !db.open_tree(&name).map_err(|e| sled_error(path, e))?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Errors of `sled::Config::open`: sled reports a held lock as an io error
/// of kind `Other` whose message says "could not acquire lock" (fs2's
/// `WouldBlock` is folded into the message), so both are checked.
fn open_error(path: &Path, e: sled::Error) -> StoreError {
    match &e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::Locked { path: path.to_path_buf() }
        }
        _ => sled_error(path, e),
    }
}

fn sled_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::Io { path: path.to_path_buf(), message: io.to_string() },
        sled::Error::Corruption { .. } => {
            StoreError::Corrupt { what: format!("sled found corrupt data in {}: {e}", path.display()) }
        }
        other => StoreError::Io { path: path.to_path_buf(), message: format!("sled: {other}") },
    }
}

fn tree_name(tree: &sled::Tree) -> String {
    String::from_utf8_lossy(&tree.name()).into_owned()
}

/// A key as a person reads it: heights as numbers, names as text, else hex.
fn describe_key(tree: &str, key: &[u8]) -> String {
    let height_tree = [tree::HEIGHTS, tree::CERTS, tree::APP_HASHES, tree::RESULTS].contains(&tree);
    if let (true, Ok(b)) = (height_tree, <[u8; 8]>::try_from(key)) {
        return format!("height {}", u64::from_be_bytes(b));
    }
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        return format!("`{}`", String::from_utf8_lossy(key));
    }
    hex(key)
}

fn decode_value<T: DeserializeOwned>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Corrupt {
        what: format!("tree `{tree}`, key {}: the value does not decode ({e})", describe_key(tree, key)),
    })
}

fn missing_tip(height: Height) -> StoreError {
    StoreError::Corrupt {
        what: format!("tree `meta` names committed height {height}, but tree `heights` has no block at that height"),
    }
}

/// Reads and decodes one value inside a transaction.
fn tx_get<T: DeserializeOwned>(t: &TransactionalTree, tree: &str, key: &[u8]) -> Result<Option<T>, TxAbort> {
    match t.get(key)? {
        None => Ok(None),
        Some(bytes) => decode_value(tree, key, &bytes).map(Some).map_err(ConflictableTransactionError::Abort),
    }
}

/// The committed tip, read inside a transaction.
fn tx_tip(meta: &TransactionalTree, heights: &TransactionalTree) -> Result<(Height, BlockId), TxAbort> {
    let abort = ConflictableTransactionError::Abort;
    let height: Height = tx_get(meta, tree::META, META_COMMITTED_HEIGHT)?.ok_or(abort(StoreError::NotInitialized))?;
    let id: BlockId = tx_get(heights, tree::HEIGHTS, &height_key(height))?.ok_or_else(|| abort(missing_tip(height)))?;
    Ok((height, id))
}

/// One commit record, encoded before the transaction starts (its closure
/// may run more than once).
struct Encoded {
    height: [u8; 8],
    id: [u8; 32],
    id_value: Vec<u8>,
    /// The block's encoded [`Stored`] value, unless `blocks`
    /// holds it already (a HotStuff replica saved it before voting): blocks
    /// are content-addressed, so the stored value is this block.
    block: Option<Vec<u8>>,
    cert: Vec<u8>,
    app_hash: Vec<u8>,
    pending: [u8; 40],
    /// The encoded [`Stored`] value of the block's outcomes (its
    /// transactions' results, in block order).
    outcomes: Vec<u8>,
    /// State writes: key, and the encoded value or `None` to delete.
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Encoded {
    /// `block` and `outcomes` are [`Stored`] values, appended already.
    fn new(r: &CommitRecord, block: Option<Vec<u8>>, outcomes: Vec<u8>) -> Encoded {
        let id = r.block.block.id();
        let height = r.block.block.height();
        Encoded {
            height: height_key(height),
            id: id.0,
            id_value: codec::encode(&id),
            block,
            cert: codec::encode(&r.block.cert),
            app_hash: codec::encode(&r.app_hash),
            pending: pending_key(height, &id),
            outcomes,
            writes: r.writes.iter().map(|(k, v)| (k.clone(), v.as_ref().map(codec::encode))).collect(),
        }
    }
}

// ---- the store -----------------------------------------------------------

impl ChainStore for SledStore {
    fn init_genesis(
        &self,
        genesis: &Block,
        initial_state: &BTreeMap<Vec<u8>, Vec<u8>>,
        app_hash: Hash,
    ) -> Result<(), StoreError> {
        if genesis.height() != 0 {
            return Err(StoreError::InvalidRecord {
                height: genesis.height(),
                reason: "a genesis block has height 0".into(),
            });
        }
        let _commits = self.commit_lock.write();
        let id = genesis.id();
        let chain_id = genesis.header.chain_id.as_str();
        // Appended only if absent (a store initialized before holds it), so
        // reopening an initialized store adds nothing to the block file.
        let block = match self.t.blocks.contains_key(id.0).map_err(|e| self.sled_error(e))? {
            true => None,
            false => {
                let at = self.put_record(codec::encode(genesis))?;
                self.sync_file()?;
                Some(at)
            }
        };
        let t = &self.t;
        let wrote = (&t.blocks, &t.heights, &t.certs, &t.app_hashes, &t.state, &t.meta)
            .transaction(|(blocks, heights, certs, app_hashes, state, meta)| {
                if let Some(found_chain) = tx_get::<String>(meta, tree::META, META_CHAIN_ID)? {
                    let found_id: BlockId = tx_get(meta, tree::META, META_GENESIS_ID)?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt {
                            what: "tree `meta` has a chain id but no genesis id".into(),
                        })
                    })?;
                    if found_chain == chain_id && found_id == id {
                        return Ok(false);
                    }
                    return Err(ConflictableTransactionError::Abort(StoreError::WrongChain {
                        path: self.path.clone(),
                        found: describe_chain(&found_chain, &found_id),
                        expected: describe_chain(chain_id, &id),
                    }));
                }
                if let Some(block) = &block {
                    blocks.insert(&id.0, block.as_slice())?;
                }
                heights.insert(&height_key(0), codec::encode(&id))?;
                certs.insert(&height_key(0), codec::encode(&Certificate::Genesis))?;
                app_hashes.insert(&height_key(0), codec::encode(&app_hash))?;
                for (k, v) in initial_state {
                    state.insert(k.as_slice(), codec::encode(v))?;
                }
                meta.insert(META_SCHEMA_VERSION, codec::encode(&SCHEMA_VERSION))?;
                meta.insert(META_CHAIN_ID, codec::encode(&chain_id))?;
                meta.insert(META_GENESIS_ID, codec::encode(&id))?;
                meta.insert(META_COMMITTED_HEIGHT, codec::encode(&0u64))?;
                Ok(true)
            })
            .map_err(|e| self.tx_error(e))?;
        if wrote {
            self.flush()?;
            *self.tip.write() = Some((0, id));
            info!(chain_id, genesis = %id, "wrote the genesis block");
        }
        Ok(())
    }

    fn is_initialized(&self) -> bool {
        self.tip.read().is_some()
    }

    fn save_safety(&self, s: &SafetyState) -> Result<(), StoreError> {
        self.write_value(&self.t.safety, SAFETY_KEY, s)
    }

    fn load_safety(&self) -> Result<Option<SafetyState>, StoreError> {
        self.read_value(&self.t.safety, SAFETY_KEY)
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every record sled names is synced already; this makes a flush
        // cover the block file as well should that ever change.
        self.sync_file()?;
        self.db.flush().map(|_| ()).map_err(|e| self.sled_error(e))
    }

    fn save_block(&self, b: &Block) -> Result<(), StoreError> {
        let id = b.id();
        // Content-addressed: a block saved twice (a proposal received again,
        // a fetched block) is appended once.
        let value = match self.t.blocks.contains_key(id.0).map_err(|e| self.sled_error(e))? {
            true => None,
            false => {
                let at = self.put_record(codec::encode(b))?;
                self.sync_file()?;
                Some(at)
            }
        };
        let pending_key = pending_key(b.height(), &id);
        (&self.t.blocks, &self.t.pending)
            .transaction(|(blocks, pending)| {
                if let Some(value) = &value {
                    blocks.insert(&id.0, value.as_slice())?;
                }
                pending.insert(&pending_key[..], &[])?;
                Ok::<_, TxAbort>(())
            })
            .map_err(|e| self.tx_error(e))
    }

    fn commit(&self, records: &[CommitRecord]) -> Result<(), StoreError> {
        let Some(last) = records.last() else { return Ok(()) };
        let new_tip = (last.block.block.height(), last.block.block.id());
        let _commits = self.commit_lock.write();
        let mut encoded = Vec::with_capacity(records.len());
        for r in records {
            // Blocks are content-addressed, so a stored value under this id
            // is this block. Nothing removes it before the transaction below:
            // snapshot installs wait for the commit lock we hold, and
            // `prune_forks` removes only blocks at or below the tip, which
            // this one is above.
            let stored = self.t.blocks.contains_key(r.block.block.id().0).map_err(|e| self.sled_error(e))?;
            let block = if stored { None } else { Some(self.put_record(codec::encode(&r.block.block))?) };
            let outcomes = self.put_record(codec::encode(&r.outcomes))?;
            encoded.push(Encoded::new(r, block, outcomes));
        }
        self.sync_file()?;
        let run = self.index.prepare(records.iter().flat_map(index_entries).collect());
        let committed_height = codec::encode(&new_tip.0);
        let t = &self.t;
        let (chunks, runs) = self.index.trees();
        (&t.blocks, &t.heights, &t.certs, &t.app_hashes, &t.results, &t.state, &t.pending, &t.meta, chunks, runs)
            .transaction(|(blocks, heights, certs, app_hashes, results, state, pending, meta, chunks, runs)| {
                check_batch(tx_tip(meta, heights)?, records).map_err(ConflictableTransactionError::Abort)?;
                for e in &encoded {
                    if let Some(block) = &e.block {
                        blocks.insert(&e.id, block.as_slice())?;
                    }
                    heights.insert(&e.height, e.id_value.as_slice())?;
                    certs.insert(&e.height, e.cert.as_slice())?;
                    app_hashes.insert(&e.height, e.app_hash.as_slice())?;
                    results.insert(&e.height, e.outcomes.as_slice())?;
                    pending.remove(&e.pending[..])?;
                    for (k, v) in &e.writes {
                        match v {
                            Some(v) => state.insert(k.as_slice(), v.as_slice())?,
                            None => state.remove(k.as_slice())?,
                        };
                    }
                }
                if let Some(run) = &run {
                    run.write(chunks, runs)?;
                }
                meta.insert(META_COMMITTED_HEIGHT, committed_height.as_slice())?;
                Ok(())
            })
            .map_err(|e| self.tx_error(e))?;
        // If the flush fails, the batch is applied in memory but may not
        // survive a crash: the error goes back, the cached tip stays where it
        // was, and the node must stop (reopening shows what survived).
        self.flush()?;
        if let Some(run) = &run {
            self.index.publish(run);
            self.compactor.wake();
        }
        *self.tip.write() = Some(new_tip);
        Ok(())
    }

    fn committed_tip(&self) -> Result<(Height, BlockId), StoreError> {
        self.tip.read().ok_or(StoreError::NotInitialized)
    }

    fn block_by_id(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        let Some(block) = self.read_record::<Block>(&self.t.blocks, id.as_bytes())? else { return Ok(None) };
        if block.id() != *id {
            return Err(StoreError::Corrupt {
                what: format!("tree `blocks` holds, under block {}, block {}", id.to_hex(), block.id().to_hex()),
            });
        }
        Ok(Some(block))
    }

    fn block_at(&self, height: Height) -> Result<Option<Block>, StoreError> {
        if height < self.base_height() {
            return Ok(None);
        }
        let Some(id) = self.read_value::<BlockId>(&self.t.heights, &height_key(height))? else { return Ok(None) };
        match self.block_by_id(&id)? {
            Some(b) => Ok(Some(b)),
            None => Err(StoreError::Corrupt {
                what: format!(
                    "tree `heights` names block {} at height {height}, but tree `blocks` does not hold it",
                    id.to_hex()
                ),
            }),
        }
    }

    fn cert_at(&self, height: Height) -> Result<Option<Certificate>, StoreError> {
        if height < self.base_height() {
            return Ok(None);
        }
        self.read_value(&self.t.certs, &height_key(height))
    }

    fn app_hash_at(&self, height: Height) -> Result<Option<Hash>, StoreError> {
        if height < self.base_height() {
            return Ok(None);
        }
        self.read_value(&self.t.app_hashes, &height_key(height))
    }

    fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, StoreError> {
        let Some((height, index)) = self.index.get(hash)? else { return Ok(None) };
        let outcomes: Vec<TxOutcome> =
            self.read_record(&self.t.results, &height_key(height))?.ok_or_else(|| StoreError::Corrupt {
                what: format!("the tx index names height {height}, but tree `results` has nothing at that height"),
            })?;
        let outcome = outcomes.get(index as usize).ok_or_else(|| StoreError::Corrupt {
            what: format!(
                "the tx index names transaction {index} of height {height}, but that height has {} results",
                outcomes.len()
            ),
        })?;
        Ok(Some(TxRecord { height, index, code: outcome.code, log: outcome.log.clone() }))
    }

    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_value(&self.t.state, key)
    }

    fn recovery(&self, keep: usize) -> Result<Recovery, StoreError> {
        let (tip, _) = self.committed_tip()?;
        let missing =
            |what: &str| StoreError::Corrupt { what: format!("the {what} at committed height {tip} is missing") };
        let block = self.block_at(tip)?.ok_or_else(|| missing("block"))?;
        let cert = self.cert_at(tip)?.ok_or_else(|| missing("certificate"))?;
        let mut blocks = Vec::new();
        for entry in self.t.pending.range(pending_key(tip + 1, &Hash::ZERO)..) {
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            let id = pending_id(&key)?;
            let b = self.block_by_id(&id)?.ok_or_else(|| StoreError::Corrupt {
                what: format!("tree `pending` names block {}, but tree `blocks` does not hold it", id.to_hex()),
            })?;
            blocks.push(b);
        }
        let mut executed = Vec::with_capacity(keep.min(1024));
        let base = self.base_height();
        for entry in self.t.app_hashes.range(height_key(base)..=height_key(tip)).rev().take(keep) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let height = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                what: format!("tree `app_hashes` has a key of {} bytes: {}", key.len(), hex(&key)),
            })?);
            executed.push((height, decode_value(tree::APP_HASHES, &key, &value)?));
        }
        executed.reverse();
        Ok(Recovery {
            safety: self.load_safety()?,
            committed: CertifiedBlock { block, cert },
            blocks,
            executed,
            membership: None,
            history: Vec::new(),
        })
    }

    fn export_snapshot(&self) -> Result<StateSnapshot, StoreError> {
        let _no_commits = self.commit_lock.read();
        // The tip as written, not as cached: they differ only after a failed
        // flush, and then the state tree is the written one.
        let (height, _) = self.read_tip()?.ok_or(StoreError::NotInitialized)?;
        let chain_id: String = self
            .read_value(&self.t.meta, META_CHAIN_ID)?
            .ok_or_else(|| StoreError::Corrupt { what: "tree `meta` has a committed height but no chain id".into() })?;
        let missing =
            |what: &str| StoreError::Corrupt { what: format!("the {what} at committed height {height} is missing") };
        let block = self.block_at(height)?.ok_or_else(|| missing("block"))?;
        let cert = self.cert_at(height)?.ok_or_else(|| missing("certificate"))?;
        let app_hash = self.app_hash_at(height)?.ok_or_else(|| missing("app hash"))?;
        let mut entries = Vec::with_capacity(self.t.state.len());
        for entry in self.t.state.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let value: Vec<u8> = decode_value(tree::STATE, &key, &value)?;
            entries.push((key.to_vec(), value));
        }
        Ok(StateSnapshot { chain_id, height, block, cert, app_hash, entries })
    }

    fn install_snapshot(&self, snap: &StateSnapshot) -> Result<(), StoreError> {
        let _commits = self.commit_lock.write();
        let (tip, _) = self.committed_tip()?;
        let chain_id: String = self.read_value(&self.t.meta, META_CHAIN_ID)?.ok_or(StoreError::NotInitialized)?;
        check_snapshot(&chain_id, tip, snap)?;
        let height = snap.height;
        // What to delete, listed before the transaction (sled transactions
        // cannot scan). No commit runs meanwhile: we hold the write lock.
        let keys = |tree: &sled::Tree| -> Result<Vec<sled::IVec>, StoreError> {
            tree.iter().keys().collect::<Result<_, _>>().map_err(|e| self.sled_error(e))
        };
        let old_state = keys(&self.t.state)?;
        let old_heights = keys(&self.t.heights)?;
        let old_certs = keys(&self.t.certs)?;
        let old_app_hashes = keys(&self.t.app_hashes)?;
        let mut old_blocks: Vec<BlockId> = Vec::new();
        for entry in self.t.heights.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            old_blocks.push(decode_value(tree::HEIGHTS, &key, &value)?);
        }
        let mut old_pending = Vec::new();
        for entry in self.t.pending.range(..pending_key(height + 1, &Hash::ZERO)) {
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            old_blocks.push(pending_id(&key)?);
            old_pending.push(key);
        }
        let id = snap.block.id();
        let block = self.put_record(codec::encode(&snap.block))?;
        self.sync_file()?;
        let id_value = codec::encode(&id);
        let cert = codec::encode(&snap.cert);
        let app_hash = codec::encode(&snap.app_hash);
        let height_value = codec::encode(&height);
        let entries: Vec<(&[u8], Vec<u8>)> =
            snap.entries.iter().map(|(k, v)| (k.as_slice(), codec::encode(v))).collect();
        let t = &self.t;
        (&t.blocks, &t.heights, &t.certs, &t.app_hashes, &t.state, &t.pending, &t.meta)
            .transaction(|(blocks, heights, certs, app_hashes, state, pending, meta)| {
                // Every writer of the tip holds the lock we hold, so this
                // cannot fail; it keeps the deletions listed above honest
                // should that ever change.
                if tx_tip(meta, heights)?.0 != tip {
                    return Err(ConflictableTransactionError::Abort(StoreError::Corrupt {
                        what: "the committed tip moved while a snapshot was being installed".into(),
                    }));
                }
                // Deletions first: the inserts below win where keys repeat.
                for k in &old_state {
                    state.remove(k)?;
                }
                for k in &old_heights {
                    heights.remove(k)?;
                }
                for k in &old_certs {
                    certs.remove(k)?;
                }
                for k in &old_app_hashes {
                    app_hashes.remove(k)?;
                }
                for k in &old_pending {
                    pending.remove(k)?;
                }
                for b in &old_blocks {
                    blocks.remove(&b.0)?;
                }
                for (k, v) in &entries {
                    state.insert(*k, v.as_slice())?;
                }
                let h = height_key(height);
                blocks.insert(&id.0, block.as_slice())?;
                heights.insert(&h, id_value.as_slice())?;
                certs.insert(&h, cert.as_slice())?;
                app_hashes.insert(&h, app_hash.as_slice())?;
                meta.insert(META_COMMITTED_HEIGHT, height_value.as_slice())?;
                meta.insert(META_BASE_HEIGHT, height_value.as_slice())?;
                Ok(())
            })
            .map_err(|e| self.tx_error(e))?;
        // As in `commit`: on a failed flush the cached tip and base stay and
        // the node must stop.
        self.flush()?;
        *self.tip.write() = Some((height, id));
        self.base.store(height, Ordering::Release);
        info!(height, block = %id, entries = snap.entries.len(), "installed a state snapshot");
        Ok(())
    }

    fn base_height(&self) -> Height {
        self.base.load(Ordering::Acquire)
    }

    fn save_evidence(&self, e: &Evidence) -> Result<(), StoreError> {
        self.write_value(&self.t.evidence, &evidence_key(e), e)
    }

    fn evidence(&self) -> Result<Vec<Evidence>, StoreError> {
        let mut all = Vec::new();
        for entry in self.t.evidence.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            all.push(decode_value(tree::EVIDENCE, &key, &value)?);
        }
        Ok(all)
    }

    fn prune_forks(&self) -> Result<usize, StoreError> {
        let (tip, _) = self.committed_tip()?;
        // (pending key, block id, whether that block is the committed one)
        let mut stale = Vec::new();
        for entry in self.t.pending.range(..pending_key(tip + 1, &Hash::ZERO)) {
            let (key, _) = entry.map_err(|e| self.sled_error(e))?;
            let id = pending_id(&key)?;
            let height = u64::from_be_bytes(key[..8].try_into().expect("checked by pending_id"));
            let committed = self.read_value::<BlockId>(&self.t.heights, &height_key(height))? == Some(id);
            stale.push((key, id, committed));
        }
        if stale.is_empty() {
            return Ok(0);
        }
        (&self.t.blocks, &self.t.pending)
            .transaction(|(blocks, pending)| {
                let mut removed = 0;
                for (key, id, committed) in &stale {
                    pending.remove(key)?;
                    if !committed && blocks.remove(&id.0)?.is_some() {
                        removed += 1;
                    }
                }
                Ok::<_, TxAbort>(removed)
            })
            .map_err(|e| self.tx_error(e))
    }

    fn as_state(&self) -> &(dyn StateView + Sync) {
        self
    }

    fn as_block_source(&self) -> &dyn BlockSource {
        self
    }
}

/// The block id in a `pending` key.
fn pending_id(key: &[u8]) -> Result<BlockId, StoreError> {
    match <[u8; 40]>::try_from(key) {
        Ok(k) => Ok(Hash(k[8..].try_into().expect("32 bytes"))),
        Err(_) => Err(StoreError::Corrupt {
            what: format!("tree `pending` has a key of {} bytes, not 40: {}", key.len(), hex(key)),
        }),
    }
}

impl StateView for SledStore {
    /// Committed application state. A storage error is logged and answered
    /// as `None` (see [`ChainStore`] for why).
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        view_state(self, key)
    }
}

impl BlockSource for SledStore {
    fn committed_height(&self) -> Height {
        source_committed_height(self)
    }
    fn committed_block(&self, height: Height) -> Option<Block> {
        source_committed_block(self, height)
    }
    fn committed_cert(&self, height: Height) -> Option<Certificate> {
        source_committed_cert(self, height)
    }
    fn block(&self, id: &BlockId) -> Option<Block> {
        source_block(self, id)
    }
}

#[cfg(test)]
mod tests {
    //! Properties only a disk store has: durability across reopen and
    //! crashes, the process lock, schema and path checks, corruption reports.
    //! The conformance suite runs against this store in `suite.rs`.

    use super::super::suite::{Fixture, app_hash, snapshot_source};
    use super::*;
    use phalanx_consensus::hotstuff::SafetyData;
    use phalanx_consensus::types::tx_hash;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Opens the store at `path`, waiting while the lock is held by a
    /// handle this process has already dropped.
    ///
    /// sled does not release its lock when the last `Db` handle is dropped
    /// but when the last reference to its file is: tasks queued on sled's
    /// process-wide I/O thread pool (log writes, segment truncation) hold
    /// one, and under load they may run a little after the drop. A child
    /// forked in that window (another test spawning a process) holds a copy
    /// of the locked descriptor until it execs. Either way the lock is
    /// released without anything we could wait on, so tests that reopen a
    /// path poll for it (bounded); the assertions do not depend on timing.
    fn reopen(path: &Path) -> Result<SledStore, StoreError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match SledStore::open(path) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                result => return result,
            }
        }
    }

    /// The same for a raw sled database.
    fn raw_db(path: &Path, writes: impl FnOnce(&sled::Db)) {
        let db = sled::open(path).unwrap();
        writes(&db);
        db.flush().unwrap();
    }

    /// Everything committed, saved and flushed before the handle is dropped
    /// is there after reopening.
    #[test]
    fn reopen_recovers_everything_committed() {
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture::new();
        let c = fx.chain(4);
        let evidence = fx.double_vote(3, 2);
        let s = SledStore::open(dir.path()).unwrap();
        fx.init(&s);
        s.commit(&[fx.record(&c[0], &[("a", Some("1"))])]).unwrap();
        s.commit(&[fx.record(&c[1], &[("b", Some("2"))]), fx.record(&c[2], &[("a", None)])]).unwrap();
        s.save_block(&c[3]).unwrap();
        s.save_safety(&fx.safety(&c[3])).unwrap();
        s.save_evidence(&evidence).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = reopen(dir.path()).unwrap();
        assert!(s.is_initialized());
        assert_eq!(s.committed_tip(), Ok((3, c[2].id())));
        for b in &c[..3] {
            assert_eq!(s.block_at(b.height()), Ok(Some(b.clone())));
            assert_eq!(s.cert_at(b.height()), Ok(Some(Certificate::Quorum(fx.qc(b)))));
            assert_eq!(s.app_hash_at(b.height()), Ok(Some(app_hash(b.height()))));
            assert_eq!(s.tx(&tx_hash(&b.txs[1])).unwrap().map(|r| (r.height, r.index)), Some((b.height(), 1)));
        }
        assert_eq!((s.state_get(b"a"), s.state_get(b"b")), (Ok(None), Ok(Some(b"2".to_vec()))));
        let r = s.recovery(2).unwrap();
        assert_eq!(r.safety, Some(fx.safety(&c[3])));
        assert_eq!(r.committed.block, c[2]);
        assert_eq!(r.blocks, vec![c[3].clone()]);
        assert_eq!(r.executed, vec![(2, app_hash(2)), (3, app_hash(3))]);
        assert_eq!(s.evidence(), Ok(vec![evidence]));
        let raw = s.t.meta.get(META_SCHEMA_VERSION).unwrap().unwrap();
        assert_eq!(codec::decode::<u32>(&raw), Ok(SCHEMA_VERSION));
    }

    /// An installed snapshot is durable: after reopening, the base height,
    /// the state, the tip and its certificate are there and history below
    /// the base is not; the chain continues from it; a later snapshot moves
    /// the base again, durably too.
    #[test]
    fn installed_snapshot_survives_reopen() {
        let fx = Fixture::new();
        let c = fx.chain(6);
        let source = snapshot_source(&fx, SledStore::open_temporary, &c);
        let snap = source.export_snapshot().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        fx.init(&s);
        fx.commit_each(&s, &c[..1]);
        s.install_snapshot(&snap).unwrap();
        drop(s);

        let s = reopen(dir.path()).unwrap();
        assert_eq!(s.base_height(), 3);
        let raw = s.t.meta.get(META_BASE_HEIGHT).unwrap().unwrap();
        assert_eq!(codec::decode::<Height>(&raw), Ok(3));
        assert_eq!(s.committed_tip(), Ok((3, c[2].id())));
        assert_eq!(s.export_snapshot(), Ok(snap.clone()), "state, block, certificate and app hash survive");
        assert_eq!((s.block_at(1), s.cert_at(1), s.app_hash_at(1)), (Ok(None), Ok(None), Ok(None)));
        assert_eq!(s.block_by_id(&c[0].id()), Ok(None));
        let r = s.recovery(8).unwrap();
        assert_eq!(r.committed, CertifiedBlock { block: c[2].clone(), cert: snap.cert.clone() });
        assert_eq!(r.executed, vec![(3, app_hash(3))]);
        s.commit(&[fx.record(&c[3], &[("a", Some("4"))])]).unwrap();

        source.commit(&[fx.record(&c[3], &[("a", Some("4"))]), fx.record(&c[4], &[("b", None)])]).unwrap();
        let later = source.export_snapshot().unwrap();
        s.install_snapshot(&later).unwrap();
        drop(s);
        let s = reopen(dir.path()).unwrap();
        assert_eq!((s.base_height(), s.committed_tip()), (5, Ok((5, c[4].id()))));
        assert_eq!(s.export_snapshot(), Ok(later));
        assert_eq!((s.state_get(b"a"), s.state_get(b"b")), (Ok(Some(b"4".to_vec())), Ok(None)));
        assert_eq!(s.block_at(4), Ok(None));
        assert_eq!(s.recovery(8).unwrap().executed, vec![(5, app_hash(5))]);
    }

    /// Block bodies and results above the inline size are in the block
    /// file, written once each: sled holds only their locations, a block
    /// saved again (or saved, then committed) adds nothing, and all of it
    /// reads back after reopening.
    #[test]
    fn large_blocks_and_results_live_in_the_block_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture::new();
        let c = fx.chain(3);
        let mut s = SledStore::open(dir.path()).unwrap();
        s.inline_max = 0;
        fx.init(&s);
        let segment = dir.path().join(block_file::DIR).join("00000000.seg");
        let size = || std::fs::metadata(&segment).unwrap().len();
        let after_genesis = size();
        s.save_block(&c[0]).unwrap();
        let after_save = size();
        assert!(after_save > after_genesis + codec::encode(&c[0]).len() as u64, "the block was appended");
        s.save_block(&c[0]).unwrap();
        assert_eq!(size(), after_save, "a block saved twice is appended once");
        s.commit(&[fx.record(&c[0], &[])]).unwrap();
        let outcomes_bytes = codec::encode(&fx.record(&c[0], &[]).outcomes).len() as u64;
        assert_eq!(
            size(),
            after_save + s.file.span(outcomes_bytes as u32),
            "committing a saved block appends only its results"
        );
        s.commit(&[fx.record(&c[1], &[]), fx.record(&c[2], &[])]).unwrap();
        for (stored, len) in stored_records(&s) {
            assert!(matches!(stored, Stored::File(_)) && len < 32, "{stored:?}");
        }
        drop(s);
        let s = reopen(dir.path()).unwrap();
        for b in &c {
            assert_eq!(s.block_at(b.height()), Ok(Some(b.clone())));
            assert_eq!(s.tx(&tx_hash(&b.txs[1])).unwrap().map(|r| (r.height, r.index)), Some((b.height(), 1)));
        }
    }

    /// Every value of `blocks` and `results`, decoded, with its length.
    fn stored_records(s: &SledStore) -> Vec<(Stored, usize)> {
        let mut all = Vec::new();
        for tree in [&s.t.blocks, &s.t.results] {
            for entry in tree.iter() {
                let (key, value) = entry.unwrap();
                all.push((decode_value(&tree_name(tree), &key, &value).unwrap(), value.len()));
            }
        }
        assert!(!all.is_empty());
        all
    }

    /// Small blocks and results stay in sled: nothing is appended to the
    /// block file, and they read back after reopening.
    #[test]
    fn small_blocks_and_results_stay_in_sled() {
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture::new();
        let c = fx.chain(2);
        let s = SledStore::open(dir.path()).unwrap();
        fx.init(&s);
        s.save_block(&c[0]).unwrap();
        fx.commit_each(&s, &c);
        let segment = dir.path().join(block_file::DIR).join("00000000.seg");
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), 0);
        for (stored, _) in stored_records(&s) {
            assert!(matches!(stored, Stored::Inline(_)), "{stored:?}");
        }
        drop(s);
        let s = reopen(dir.path()).unwrap();
        for b in &c {
            assert_eq!(s.block_at(b.height()), Ok(Some(b.clone())));
            assert_eq!(s.tx(&tx_hash(&b.txs[0])).unwrap().map(|r| (r.height, r.index)), Some((b.height(), 0)));
        }
    }

    /// A block file record damaged on disk is reported as corruption naming
    /// the tree, the key and the file, never returned as a block.
    #[test]
    fn damaged_block_record_is_corrupt_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture::new();
        let c = fx.chain(1);
        let mut s = SledStore::open(dir.path()).unwrap();
        s.inline_max = 0;
        fx.init(&s);
        s.commit(&[fx.record(&c[0], &[])]).unwrap();
        let raw = s.t.blocks.get(c[0].id().0).unwrap().unwrap();
        let Ok(Stored::File(at)) = codec::decode(&raw) else { panic!("the block is in the block file") };
        let segment = dir.path().join(block_file::DIR).join("00000000.seg");
        let file = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, b"\xff\xff", at.offset + 20).unwrap();
        let Err(StoreError::Corrupt { what }) = s.block_at(1) else { panic!("a damaged record must be corrupt") };
        assert!(
            what.contains("tree `blocks`") && what.contains(&c[0].id().to_hex()[..8]) && what.contains("00000000.seg"),
            "{what}"
        );
        assert!(what.contains("fails its CRC"), "{what}");
    }

    /// A store used before genesis (a safety state saved) is versioned and
    /// opens again.
    #[test]
    fn store_written_before_genesis_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture::new();
        let s = SledStore::open(dir.path()).unwrap();
        s.save_safety(&fx.safety(&fx.genesis)).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = reopen(dir.path()).unwrap();
        assert!(!s.is_initialized());
        assert_eq!(s.load_safety(), Ok(Some(fx.safety(&fx.genesis))));
    }

    /// sled takes an exclusive `flock` on `<path>/db` through a new open
    /// file description each time, so a second open is refused even inside
    /// the process that holds the first (not only from another process).
    /// The lock is free again once the first handle and sled's queued I/O
    /// for it are gone (see `reopen`).
    #[test]
    fn second_open_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open(dir.path()).unwrap_err();
        assert_eq!(err, StoreError::Locked { path: dir.path().to_path_buf() });
        let message = err.to_string();
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        assert!(message.contains("in use by another process"), "{message}");
        drop(first);
        reopen(dir.path()).expect("the lock goes with the last handle");
    }

    /// A database of another schema version is refused, naming both
    /// versions and the path.
    #[test]
    fn other_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        raw_db(dir.path(), |db| {
            db.open_tree(tree::META).unwrap().insert(META_SCHEMA_VERSION, codec::encode(&99u32)).unwrap();
        });
        let err = reopen(dir.path()).unwrap_err();
        assert_eq!(err, StoreError::Schema { path: dir.path().to_path_buf(), found: 99, expected: SCHEMA_VERSION });
        let message = err.to_string();
        assert!(message.contains("schema version 99"), "{message}");
        assert!(message.contains(&format!("reads version {SCHEMA_VERSION}")), "{message}");
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        assert!(!dir.path().join(block_file::DIR).exists(), "a refused store gains no block file");
    }

    /// A non-empty sled database without a schema version (someone else's)
    /// is version 0, and refused.
    #[test]
    fn unversioned_database_is_schema_zero() {
        let dir = tempfile::tempdir().unwrap();
        raw_db(dir.path(), |db| {
            db.open_tree("something-else").unwrap().insert(b"k", b"v").unwrap();
        });
        let err = reopen(dir.path()).unwrap_err();
        assert_eq!(err, StoreError::Schema { path: dir.path().to_path_buf(), found: 0, expected: SCHEMA_VERSION });
    }

    /// A path that is a regular file is an I/O error naming the path.
    #[test]
    fn regular_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"not a database").unwrap();
        let err = SledStore::open(&file).unwrap_err();
        assert!(matches!(&err, StoreError::Io { path, .. } if *path == file), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&file.display().to_string()) && message.contains("not a directory"), "{message}");
    }

    /// A value that does not decode is reported as corruption naming the
    /// tree and the key, never as an absent value.
    #[test]
    fn undecodable_value_is_corrupt_naming_tree_and_key() {
        let s = SledStore::open_temporary();
        let fx = Fixture::new();
        fx.init(&s);
        let gid = fx.genesis.id();
        s.t.blocks.insert(gid.as_bytes(), &b"garbage"[..]).unwrap();
        let Err(StoreError::Corrupt { what }) = s.block_by_id(&gid) else { panic!("expected Corrupt") };
        assert!(what.contains("tree `blocks`") && what.contains(&gid.to_hex()), "{what}");
        assert!(matches!(s.block_at(0), Err(StoreError::Corrupt { .. })));
        assert_eq!(BlockSource::block(&s, &gid), None, "the trait answers absent and logs");

        s.t.certs.insert(height_key(0), &b"\xff"[..]).unwrap();
        let Err(StoreError::Corrupt { what }) = s.cert_at(0) else { panic!("expected Corrupt") };
        assert!(what.contains("tree `certs`") && what.contains("height 0"), "{what}");

        s.t.state.insert(b"a", &b"\x05ab"[..]).unwrap();
        let Err(StoreError::Corrupt { what }) = s.state_get(b"a") else { panic!("expected Corrupt") };
        assert!(what.contains("tree `state`") && what.contains("`a`"), "{what}");
        assert_eq!(StateView::get(&s, b"a"), None, "the view answers absent and logs");

        s.t.safety.insert(SAFETY_KEY, &b"\x07"[..]).unwrap();
        let Err(StoreError::Corrupt { what }) = s.load_safety() else { panic!("expected Corrupt") };
        assert!(what.contains("tree `safety`") && what.contains("`safety`"), "{what}");
    }

    // ---- crash consistency ------------------------------------------------

    /// Names the directory the child writer works in; unset in normal runs.
    const CRASH_DIR_ENV: &str = "PHALANX_STORE_CRASH_WRITER_DIR";
    /// Commits a child makes at most, should nobody kill it.
    const CRASH_WRITER_MAX_COMMITS: u64 = 5_000;

    /// This test's name as the test harness knows it (the module path
    /// without the crate), so the move into `node` does not break it.
    fn crash_writer_name() -> String {
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, rest)| rest);
        format!("{module}::crash_writer_child")
    }

    /// The child half of `kill_9_loses_nothing_acknowledged`; does nothing
    /// unless `PHALANX_STORE_CRASH_WRITER_DIR` is set. It continues the
    /// chain from the store's tip like a driver would (save the blocks and
    /// the safety state, flush, print `safety <round>`; commit, print
    /// `committed <height>` per block), in batches of 1 to 3, until killed.
    #[test]
    fn crash_writer_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else { return };
        let mut s = reopen(Path::new(&dir)).unwrap();
        let fx = Fixture::new();
        if !s.is_initialized() {
            fx.init(&s);
        }
        let mut out = std::io::stdout().lock();
        let (mut tip, _) = s.committed_tip().unwrap();
        let mut parent = s.block_at(tip).unwrap().unwrap();
        let mut commits = 0;
        while commits < CRASH_WRITER_MAX_COMMITS {
            // Every other batch's blocks and results go to the block file,
            // so both ways of storing them are killed mid-write.
            s.inline_max = if commits % 2 == 0 { 0 } else { block_file::INLINE_MAX };
            let mut records = Vec::new();
            for _ in 0..1 + tip % 3 {
                let b = fx.next(&parent, 3);
                let h = b.height().to_string();
                records.push(fx.record(&b, &[("last", Some(&h)), (&format!("h{h}"), Some(&h))]));
                parent = b;
            }
            for r in &records {
                s.save_block(&r.block.block).unwrap();
            }
            let round = parent.round();
            s.save_safety(&SafetyState::HotStuff(SafetyData { last_voted_round: round, ..SafetyData::default() }))
                .unwrap();
            s.flush().unwrap();
            writeln!(out, "safety {round}").unwrap();
            s.commit(&records).unwrap();
            for r in &records {
                writeln!(out, "committed {}", r.block.block.height()).unwrap();
            }
            out.flush().unwrap();
            tip = parent.height();
            commits += 1;
        }
    }

    /// What a killed writer had acknowledged: the highest committed height
    /// and safety round it printed.
    #[derive(Default, Debug)]
    struct Acknowledged {
        height: Height,
        safety_round: u64,
        heights_seen: usize,
    }

    impl Acknowledged {
        fn take(&mut self, line: &str) {
            if let Some(h) = line.strip_prefix("committed ") {
                self.height = self.height.max(h.parse().unwrap());
                self.heights_seen += 1;
            } else if let Some(r) = line.strip_prefix("safety ") {
                self.safety_round = self.safety_round.max(r.parse().unwrap());
            }
        }
    }

    /// Kill -9 loses nothing acknowledged (sled's `test_crash_recovery`
    /// style): three times, a child process writes until it has printed
    /// some commits and is then killed with SIGKILL; the reopened store
    /// holds every height and safety round the child printed, and is
    /// consistent (see `assert_consistent`). Kill points vary by cycle but
    /// the assertions do not depend on timing.
    #[test]
    fn kill_9_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = Acknowledged::default();
        for cycle in 0..3 {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([crash_writer_name().as_str(), "--exact", "--nocapture", "--test-threads=1"])
                .env(CRASH_DIR_ENV, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (lines_tx, lines) = mpsc::channel();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    if lines_tx.send(line.unwrap()).is_err() {
                        break;
                    }
                }
            });
            // Kill on the first `safety` line after some commits: the child
            // has just flushed and is entering `commit`, so the kill tends
            // to land inside a commit transaction or its flush.
            let kill_after = acked.heights_seen + 12 + 9 * cycle;
            loop {
                match lines.recv_timeout(Duration::from_secs(30)) {
                    Ok(line) => {
                        acked.take(&line);
                        if acked.heights_seen >= kill_after && line.starts_with("safety ") {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = child.kill();
                        let mut stderr = String::new();
                        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                        panic!(
                            "the writer stopped after printing {} committed heights ({e}); its stderr:\n{stderr}",
                            acked.heights_seen
                        );
                    }
                }
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            // Lines the child printed before it died were acknowledged too.
            for line in lines.iter() {
                acked.take(&line);
            }
            reader.join().unwrap();

            let s = reopen(dir.path()).unwrap();
            assert_consistent(&s, &acked);
        }
    }

    /// The store after a crash: the tip is at or above everything
    /// acknowledged; heights are contiguous from genesis, each block chains
    /// to the one below and has its certificate and app hash; every
    /// transaction of a committed block is indexed; the state written with
    /// the tip is there (so state and tip moved together); the safety state
    /// is at least the last flushed one; recovery succeeds.
    fn assert_consistent(s: &SledStore, acked: &Acknowledged) {
        let (tip, tip_id) = s.committed_tip().unwrap();
        assert!(tip >= acked.height, "acknowledged height {} lost: the tip is {tip}", acked.height);
        let mut parent = None;
        for h in 0..=tip {
            let b = s.block_at(h).unwrap().unwrap_or_else(|| panic!("height {h} missing below tip {tip}"));
            assert_eq!(b.height(), h);
            if let Some(p) = parent {
                assert_eq!(b.parent(), p, "block {h} does not chain to block {}", h - 1);
            }
            let cert = s.cert_at(h).unwrap().unwrap_or_else(|| panic!("certificate {h} missing"));
            assert!(h == 0 || cert.as_quorum().is_some_and(|qc| qc.block_id() == b.id()), "certificate {h}");
            assert_eq!(s.app_hash_at(h), Ok(Some(app_hash(h))));
            for (i, tx) in b.txs.iter().enumerate() {
                let rec = s.tx(&tx_hash(tx)).unwrap().unwrap_or_else(|| panic!("tx {i} of block {h} not indexed"));
                assert_eq!((rec.height, rec.index), (h, i as u32));
            }
            if h > 0 {
                assert_eq!(s.state_get(format!("h{h}").as_bytes()), Ok(Some(h.to_string().into_bytes())));
            }
            parent = Some(b.id());
        }
        assert_eq!(parent, Some(tip_id));
        assert_eq!((s.block_at(tip + 1), s.app_hash_at(tip + 1)), (Ok(None), Ok(None)));
        if tip > 0 {
            assert_eq!(s.state_get(b"last"), Ok(Some(tip.to_string().into_bytes())));
        }
        let Some(SafetyState::HotStuff(safety)) = s.load_safety().unwrap() else { panic!("safety state lost") };
        assert!(safety.last_voted_round >= acked.safety_round, "{safety:?} < {acked:?}");
        let r = s.recovery(16).unwrap();
        assert_eq!(r.executed.last(), Some(&(tip, app_hash(tip))));
        assert!(r.blocks.iter().all(|b| b.height() > tip));
    }
}
