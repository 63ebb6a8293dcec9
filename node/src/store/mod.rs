//! The chain store: committed blocks, their certificates, the transaction
//! index, the application state, the safety state and evidence.
//!
//! [`ChainStore`] is the one interface; [`SledStore`] keeps it on disk (one
//! sled database under `<home>/data/`) and [`MemStore`] keeps it in memory for
//! tests of the node's other parts. Both run the same conformance suite
//! (`suite.rs`), so they cannot drift apart.
//!
//! # Layout
//!
//! One sled tree per kind of record. Keys are raw bytes chosen so that sled's
//! byte order is the order we scan in; every value is encoded with the one
//! canonical codec, [`phalanx_crypto::codec`], and nothing else.
//!
//! What grows with a block's size is the exception: block bodies and each
//! block's results larger than [`block_file::INLINE_MAX`] are appended to
//! the block file beside sled ([`block_file`], which says why), and
//! `blocks` and `results` hold where.
//! The store's own values left in sled are small (the transaction index's
//! chunks hold at most [`tx_index::CHUNK_ENTRIES`] entries), so that no
//! sled page passes the size at which sled stops counting it in its cache;
//! `state` values are the application's, as large as it writes them.
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `blocks` | block id (32 bytes) | [`block_file::Stored`]: the encoded [`Block`], or its location in the block file (`<data>/blockfile/`) if larger than 6 KiB; every stored block, committed or not |
//! | `heights` | height (u64 big-endian) | [`BlockId`] of the committed block |
//! | `certs` | height (u64 big-endian) | [`Certificate`] of the committed block ([`Certificate::Genesis`] at 0): below the tip, the `justify` of the block above it, as the engine commits it (leader reputation reads the signers back, [`ChainStore::committed_history`]) |
//! | `app_hashes` | height (u64 big-endian) | application [`struct@Hash`] after that height |
//! | `results` | height (u64 big-endian) | [`block_file::Stored`]: the encoded `Vec<TxOutcome>` (inline or in the block file, as for `blocks`), the result of each of the block's transactions, in block order |
//! | `tx_index`, `tx_runs` | see [`tx_index`] | the transaction index: tx hash → (height, index in the block), as sorted runs written one per commit and merged in the background (no per-transaction B-tree insert) |
//! | `state` | application key | application value (`Vec<u8>`) |
//! | `pending` | height (u64 BE) ‖ block id | none (empty): blocks saved by `save_block` and not yet committed |
//! | `meta` | `schema_version`, `chain_id`, `genesis_id`, `committed_height`, `base_height` | `u32`, `String`, [`BlockId`], [`Height`], [`Height`] |
//! | `safety` | `safety` | [`SafetyState`] |
//! | `evidence` | round (u64 BE) ‖ digest of the encoded evidence | [`Evidence`] |
//!
//! The `pending` index lets [`ChainStore::recovery`] and
//! [`ChainStore::prune_forks`] find uncommitted blocks without decoding the
//! whole chain: a commit removes the entries of the blocks it commits, so what
//! is left at or below the committed height is an abandoned fork.
//!
//! `base_height` is written only by [`ChainStore::install_snapshot`]; a store
//! without it has base height 0 (it holds every block from genesis). Adding
//! the key changed no existing key or value, so the schema version stayed 2.
//!
//! # State snapshots
//!
//! [`ChainStore::export_snapshot`] reads a [`StateSnapshot`]: the committed
//! tip block, its certificate, its app hash and the whole `state` tree, all
//! of one height (no commit runs while it reads).
//! [`ChainStore::install_snapshot`] makes a store that is behind jump to a
//! snapshot's height: in one atomic transaction it replaces the whole
//! `state` tree, deletes every committed block, certificate and app hash
//! (all below the snapshot's height) and every uncommitted block at or below
//! it, writes the snapshot's block, certificate and app hash, and moves
//! `committed_height` and `base_height` to the snapshot's height; then it
//! flushes. From then on the store holds blocks from the base height up:
//! [`ChainStore::block_at`], [`ChainStore::cert_at`] and
//! [`ChainStore::app_hash_at`] answer `None` below it, and
//! [`ChainStore::recovery`] reports app hashes from it. The transaction
//! index and `results` keep what they had: a transaction committed before
//! the snapshot and indexed here still names its height and result, though
//! that height's block is no longer held.
//!
//! # Promises
//!
//! - **Atomic commits.** [`ChainStore::commit`] writes every record of a batch
//!   (blocks, heights, certificates, app hashes, results, the batch's tx
//!   index run, state writes, committed height) in one sled transaction: after a crash the store holds
//!   all of a batch or none of it.
//! - **Durable commits.** `commit` flushes (sled `flush`, which fsyncs) before
//!   it returns `Ok`, so a client told "committed" never loses its
//!   transaction. The crash test (`sled_store.rs`) kills a writer process
//!   with SIGKILL and checks this; survival of a power loss rests on the
//!   fsync.
//! - **Safety state is durable only after [`ChainStore::flush`].**
//!   `save_safety` writes; the driver flushes before sending any message that
//!   follows a `PersistSafety` action. The safety state has its own tree so
//!   the driver's safety writes never conflict with a commit transaction.
//! - **The committed chain only grows.** A commit must extend the committed
//!   tip by height and parent; anything else is refused before a byte is
//!   written. A replayed transaction keeps its first index entry. A snapshot
//!   is installed only above the committed tip, only of this store's chain,
//!   and atomically and durably like a commit.
//!
//! # What the store must never do
//!
//! - Misread a database written by another schema: opening checks
//!   `schema_version` and refuses any other version, naming both
//!   ([`StoreError::Schema`]); a non-empty database without a version is
//!   version 0 and refused too.
//! - Return a partially applied commit, or acknowledge a commit that is not
//!   yet on disk.
//! - Serve data that fails to decode as if it were absent: a bad value is
//!   [`StoreError::Corrupt`], naming the tree and the key. (The one exception
//!   is the `StateView` and [`BlockSource`] impls, whose traits have no
//!   error channel; see [`ChainStore`].)
//! - Open a data directory that another process holds, or that belongs to
//!   another chain.

use phalanx_consensus::SafetyState;
use phalanx_consensus::hotstuff::BlockSource;
use phalanx_consensus::smr::{StateView, TxOutcome};
use phalanx_consensus::types::{Block, BlockId, Certificate, CertifiedBlock, Evidence, Height};
use phalanx_consensus::{HistoryEntry, Recovery};
use phalanx_crypto::{Hash, codec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub mod block_file;
mod mem_store;
mod sled_store;
#[cfg(test)]
mod suite;
pub mod tx_index;

pub use mem_store::MemStore;
pub use sled_store::SledStore;

/// The layout version this build reads and writes. Bump it whenever a key or
/// value encoding changes; a store of another version is refused, never
/// misread.
///
/// History: 1, the first layout; 2, the HotStuff safety state also carries
/// the highest QC and TC (a version 1 store is refused, never misread); 3,
/// the Raft hard state also carries configurations; 4,
/// the transaction index is kept as sorted runs (`tx_index`, `tx_runs`) and
/// results per block (`results`) instead of one `txs` entry per transaction;
/// 5, block bodies and results larger than 6 KiB live in the block file
/// ([`block_file`]); `blocks` and `results` hold [`block_file::Stored`];
/// 6, no layout change, but the `noop` application's app hash chains the
/// block's payload root instead of every payload's hash, so a `noop` chain
/// written before could not be replayed (a store of 5 is refused with a
/// message naming both versions rather than halting on an app hash
/// mismatch; start such a node from a fresh data dir).
pub const SCHEMA_VERSION: u32 = 6;

/// What one committed block changes, written atomically by
/// [`ChainStore::commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    /// The block and the certificate that certifies it.
    pub block: CertifiedBlock,
    /// One outcome per `block.txs` entry, same order.
    pub outcomes: Vec<TxOutcome>,
    /// Application state changes (`None` = delete).
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The application hash after this block.
    pub app_hash: Hash,
    /// The hash of each `block.txs` entry, same order: computed once by the
    /// committer (which checks the payload root with them) and used for
    /// the transaction index.
    pub tx_hashes: Vec<Hash>,
}

/// The application state at one committed height, with the block that ends
/// at that height: what a node that is far behind installs instead of
/// replaying every block (see the module documentation, "State snapshots").
///
/// Made by [`ChainStore::export_snapshot`], installed by
/// [`ChainStore::install_snapshot`]; `crate::snapshot` encodes it and cuts
/// it into chunks for the network.
///
/// The store checks that the parts agree with each other (chain id, height,
/// a certificate naming this block, sorted entries) but not that they are
/// true: it verifies no signature, and the application hash is a hash chain
/// over executions, not a commitment to `entries`, so the entries are
/// trusted as far as whoever served them is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// The chain this state belongs to (the genesis block's chain id).
    pub chain_id: String,
    /// The committed height the state is at; equal to `block.height()`.
    pub height: Height,
    /// The committed block at `height`.
    pub block: Block,
    /// The certificate that committed `block`.
    pub cert: Certificate,
    /// The application hash after executing `block`.
    pub app_hash: Hash,
    /// Every application key and value after `height`, sorted by key
    /// (bytewise), each key once.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Where a committed transaction is, and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Height of the block that carries it.
    pub height: Height,
    /// Position in that block's transactions.
    pub index: u32,
    /// 0 when it applied; otherwise the application's error code.
    pub code: u32,
    /// The application's explanation (empty on success).
    pub log: String,
}

/// Why the store refused or failed. Every message names the problem and,
/// where there is one, the path, and says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error(
        "data directory {} is in use by another process (is a node already running with this home?); \
         stop that process or choose another home",
        path.display()
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The data directory cannot be read or written.
    #[error(
        "cannot use data directory {}: {message}; check that it is a directory this user can read and write",
        path.display()
    )]
    Io {
        /// The data directory.
        path: PathBuf,
        /// What went wrong, from the operating system or sled.
        message: String,
    },
    /// The database was written with another layout.
    #[error(
        "data directory {} was written by store schema version {found}; this build reads version {expected}; \
         run a build that reads version {found}. Do not delete it: it holds this validator's signing (safety) \
         state, and a validator that forgets it can sign two conflicting votes",
        path.display()
    )]
    Schema {
        /// The data directory.
        path: PathBuf,
        /// The version recorded in it (0: none recorded).
        found: u32,
        /// [`SCHEMA_VERSION`].
        expected: u32,
    },
    /// The database belongs to another chain or another genesis.
    #[error(
        "data directory {} holds {found}, but this node is configured for {expected}; \
         point the node at the right home, or move the directory aside to start this chain afresh",
        path.display()
    )]
    WrongChain {
        /// The data directory.
        path: PathBuf,
        /// The chain id and genesis id stored in it.
        found: String,
        /// The chain id and genesis id the node was started with.
        expected: String,
    },
    /// A stored value failed to decode, or records that must agree do not.
    #[error(
        "the store is corrupt: {what}. Do not delete or roll back the data directory: it holds this validator's \
         signing (safety) state, and a validator restarted with an older or empty one can sign two conflicting \
         votes"
    )]
    Corrupt {
        /// What failed: the tree and key, or the records that disagree.
        what: String,
    },
    /// No genesis has been written yet.
    #[error("the store holds no chain yet: write the genesis block (init_genesis) before using it")]
    NotInitialized,
    /// A commit that does not start just above the committed tip, or skips a
    /// height.
    #[error("commit out of order: expected the block at height {expected}, got height {got}; nothing was written")]
    OutOfOrder {
        /// The height just above the committed tip.
        expected: Height,
        /// The height of the offending record.
        got: Height,
    },
    /// A commit record that cannot be part of the committed chain (a parent
    /// that is not the tip, a certificate for another block, outcomes that do
    /// not match the transactions). A bug in the caller.
    #[error("refusing to commit the block at height {height}: {reason}; nothing was written")]
    InvalidRecord {
        /// The height of the offending record.
        height: Height,
        /// What is wrong with it.
        reason: String,
    },
    /// A state snapshot that cannot be installed in this store: of another
    /// chain, not above the committed tip, or whose parts disagree.
    #[error("refusing to install the state snapshot at height {height}: {reason}; nothing was written")]
    SnapshotRefused {
        /// The snapshot's height.
        height: Height,
        /// What is wrong with it.
        reason: String,
    },
}

/// The node's chain store. See the module documentation for the layout and
/// the promises every implementation keeps.
///
/// The [`BlockSource`] and `StateView` impls of both stores read through
/// these methods. Their traits cannot report errors, so a storage error there
/// is logged with `tracing::error!` and answered as "absent" (`None`, or
/// height 0). That is the least harmful answer available: a sync peer asks
/// someone else, and an application that executes against a missing value
/// computes an app hash the other replicas do not share, which halts the
/// chain (blocks carry the app hash) instead of spreading the error.
pub trait ChainStore: Send + Sync + BlockSource {
    /// Writes genesis: the block at height 0 (certificate
    /// [`Certificate::Genesis`]), the initial application state, the app hash
    /// at height 0, the chain id and the schema version, durably. If the store
    /// is already initialized: `Ok` for the same chain id and genesis block
    /// id, else [`StoreError::WrongChain`].
    fn init_genesis(
        &self,
        genesis: &Block,
        initial_state: &BTreeMap<Vec<u8>, Vec<u8>>,
        app_hash: Hash,
    ) -> Result<(), StoreError>;
    /// True once a genesis has been written.
    fn is_initialized(&self) -> bool;
    /// Writes the safety state (durable only after [`ChainStore::flush`]).
    fn save_safety(&self, s: &SafetyState) -> Result<(), StoreError>;
    /// The last safety state saved, if any.
    fn load_safety(&self) -> Result<Option<SafetyState>, StoreError>;
    /// Makes everything written so far durable (sled flush = fsync).
    fn flush(&self) -> Result<(), StoreError>;
    /// Stores an accepted block, committed or not (not durable by itself).
    fn save_block(&self, b: &Block) -> Result<(), StoreError>;
    /// Commits blocks in height order, each extending the committed tip
    /// (else [`StoreError::OutOfOrder`] or [`StoreError::InvalidRecord`], and
    /// nothing is written). All records go in one atomic transaction, then
    /// one flush, then it returns. A tx hash already indexed keeps its first
    /// record.
    fn commit(&self, records: &[CommitRecord]) -> Result<(), StoreError>;
    /// Height and id of the last committed block (cheap: cached in memory).
    fn committed_tip(&self) -> Result<(Height, BlockId), StoreError>;
    /// Any stored block by id, committed or not.
    fn block_by_id(&self, id: &BlockId) -> Result<Option<Block>, StoreError>;
    /// The committed block at `height` (`None` below [`ChainStore::base_height`]).
    fn block_at(&self, height: Height) -> Result<Option<Block>, StoreError>;
    /// The certificate of the committed block at `height` (`None` below
    /// [`ChainStore::base_height`]).
    fn cert_at(&self, height: Height) -> Result<Option<Certificate>, StoreError>;
    /// The application hash after committed height `height` (`None` below
    /// [`ChainStore::base_height`]).
    fn app_hash_at(&self, height: Height) -> Result<Option<Hash>, StoreError>;
    /// Where the committed transaction with this hash is.
    fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, StoreError>;
    /// The committed application value of `key`.
    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// What the consensus engine needs at start: the safety state, the
    /// committed tip as a [`CertifiedBlock`] (genesis: [`Certificate::Genesis`]),
    /// every stored block above the committed height, and the app hashes of
    /// the last `keep` committed heights (ascending, including the tip; none
    /// below [`ChainStore::base_height`]).
    fn recovery(&self, keep: usize) -> Result<Recovery, StoreError>;
    /// The committed blocks below the tip as HotStuff's leader reputation
    /// reads them ([`Recovery::history`]): ascending, from the newest back to
    /// the first whose round is at least `window` below the tip's once at
    /// least `min_blocks` are listed, or to the oldest held (height 1, or
    /// just above [`ChainStore::base_height`], whose parent's certificate is
    /// gone). A block's round is its certificate's; its voters are the
    /// signers of its parent's certificate, which is its own `justify` (the
    /// engine commits each block with its child's justify).
    fn committed_history(&self, window: u64, min_blocks: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let (tip, _) = self.committed_tip()?;
        let cert = |h: Height| -> Result<Option<Certificate>, StoreError> { self.cert_at(h) };
        let Some(Certificate::Quorum(tip_qc)) = cert(tip)? else { return Ok(Vec::new()) };
        let floor = tip_qc.round().saturating_sub(window);
        let lowest = self.base_height() + 1;
        let mut out = Vec::new();
        let mut h = tip;
        while h > lowest.max(1) {
            h -= 1;
            let (Some(Certificate::Quorum(own)), Some(parent)) = (cert(h)?, cert(h - 1)?) else { break };
            let voters = parent.as_quorum().map(|qc| qc.signers.clone()).unwrap_or_default();
            out.push(HistoryEntry { height: h, round: own.round(), voters });
            if own.round() <= floor && out.len() >= min_blocks {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }
    /// The committed tip block, its certificate, its app hash and every entry
    /// of the application state, all of the same height: no commit or
    /// install runs while it reads (so a large state holds commits back for
    /// as long as the read takes). [`StoreError::NotInitialized`] before
    /// genesis.
    fn export_snapshot(&self) -> Result<StateSnapshot, StoreError>;
    /// Jumps the committed chain to the snapshot's height (see the module
    /// documentation, "State snapshots"): the state becomes exactly
    /// `s.entries`; the block, certificate and app hash are stored at
    /// `s.height`, which becomes the committed tip and the base height;
    /// every committed block below it and every uncommitted block at or below
    /// it is deleted; uncommitted blocks above it and the tx index are kept.
    /// One atomic transaction, then a flush, then it returns.
    ///
    /// Refused with [`StoreError::SnapshotRefused`], writing nothing, if the
    /// snapshot is of another chain id, its block is not at `s.height` or of
    /// another chain, its certificate does not name its block, its entries
    /// are not sorted by key with each key once, or `s.height` is not above
    /// the committed tip. [`StoreError::NotInitialized`] before genesis (the
    /// store must know its chain). Checks no signature: the caller verifies
    /// the certificate.
    ///
    /// Install with the committer idle: a commit that runs after it fails
    /// (its block no longer extends the tip). As with a commit, the cached
    /// tip moves only after the flush, so a reader on another thread may for
    /// that moment see the new state under the old tip, whose records are
    /// already gone.
    fn install_snapshot(&self, s: &StateSnapshot) -> Result<(), StoreError>;
    /// The lowest height whose committed block this store holds: 0 unless a
    /// snapshot was installed, then the last installed snapshot's height.
    /// Durable with the install, cached in memory (cheap).
    fn base_height(&self) -> Height;
    /// Records evidence; identical evidence is stored once.
    fn save_evidence(&self, e: &Evidence) -> Result<(), StoreError>;
    /// All recorded evidence, by round.
    fn evidence(&self) -> Result<Vec<Evidence>, StoreError>;
    /// Deletes stored blocks at or below the committed height that are not
    /// on the committed chain (abandoned forks). Returns how many.
    fn prune_forks(&self) -> Result<usize, StoreError>;
    /// This store as the application's view of committed state (for
    /// `dyn ChainStore` callers; `StateView` is not a supertrait).
    fn as_state(&self) -> &(dyn StateView + Sync);
    /// This store as the responder's side of block sync.
    fn as_block_source(&self) -> &dyn BlockSource;
}

/// `ChainStore` is object safe: the node may hold an `Arc<dyn ChainStore>`.
const _: Option<&dyn ChainStore> = None;

// ---- shared by both implementations -------------------------------------

/// The path reported by [`MemStore`] errors.
const MEMORY_PATH: &str = "<in-memory store>";

/// Key of the height-indexed trees: big-endian, so byte order is height order.
fn height_key(height: Height) -> [u8; 8] {
    height.to_be_bytes()
}

/// Key of the `pending` tree: height then block id.
fn pending_key(height: Height, id: &BlockId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(id.as_bytes());
    k
}

/// Key of the `evidence` tree: the round, then the digest of the canonical
/// encoding, so identical evidence lands on one key and keys sort by round.
fn evidence_key(e: &Evidence) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&e.round().to_be_bytes());
    k[8..].copy_from_slice(Hash::digest(&codec::encode(e)).as_bytes());
    k
}

/// How chain identity is shown in [`StoreError::WrongChain`].
fn describe_chain(chain_id: &str, genesis_id: &BlockId) -> String {
    format!("chain `{chain_id}` with genesis block {}", genesis_id.to_hex())
}

/// Lowercase hex of `bytes`, for error messages.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `records` extend the chain whose tip is `tip`, one height at a
/// time, before anything is written.
fn check_batch(tip: (Height, BlockId), records: &[CommitRecord]) -> Result<(), StoreError> {
    let (mut height, mut id) = tip;
    for r in records {
        let block = &r.block.block;
        let got = block.height();
        if got != height + 1 {
            return Err(StoreError::OutOfOrder { expected: height + 1, got });
        }
        let invalid = |reason: String| Err(StoreError::InvalidRecord { height: got, reason });
        if block.parent() != id {
            return invalid(format!(
                "its parent {} is not the committed block {} at height {height}",
                block.parent().to_hex(),
                id.to_hex()
            ));
        }
        let block_id = block.id();
        match &r.block.cert {
            Certificate::Quorum(qc) if qc.block_id() != block_id => {
                return invalid(format!(
                    "its certificate is for block {}, not {}",
                    qc.block_id().to_hex(),
                    block_id.to_hex()
                ));
            }
            Certificate::Genesis => return invalid("only the genesis block is certified by genesis".into()),
            _ => {}
        }
        if r.outcomes.len() != block.txs.len() {
            return invalid(format!("{} outcomes for {} transactions", r.outcomes.len(), block.txs.len()));
        }
        if r.tx_hashes.len() != block.txs.len() {
            return invalid(format!("{} hashes for {} transactions", r.tx_hashes.len(), block.txs.len()));
        }
        height = got;
        id = block_id;
    }
    Ok(())
}

/// Checks, before anything is written, that `s` can be installed in a store
/// of chain `chain_id` whose committed tip is at `tip`.
fn check_snapshot(chain_id: &str, tip: Height, s: &StateSnapshot) -> Result<(), StoreError> {
    let refuse = |reason: String| Err(StoreError::SnapshotRefused { height: s.height, reason });
    if s.chain_id != chain_id {
        return refuse(format!("it is of chain `{}`, this store holds chain `{chain_id}`", s.chain_id));
    }
    let block = &s.block;
    if block.header.chain_id != s.chain_id {
        return refuse(format!("its block is of chain `{}`, not `{}`", block.header.chain_id, s.chain_id));
    }
    if block.height() != s.height {
        return refuse(format!("its block is at height {}, not {}", block.height(), s.height));
    }
    if s.height <= tip {
        return refuse(format!("it is not above this store's committed tip at height {tip}"));
    }
    match &s.cert {
        Certificate::Genesis => return refuse("only the genesis block is certified by genesis".into()),
        Certificate::Quorum(qc) if qc.block_id() != block.id() => {
            return refuse(format!(
                "its certificate is for block {}, not its block {}",
                qc.block_id().to_hex(),
                block.id().to_hex()
            ));
        }
        Certificate::Raft { term, index } if (*term, *index) != (block.round(), block.height()) => {
            return refuse(format!(
                "its certificate is for term {term} index {index}, not its block's term {} index {}",
                block.round(),
                block.height()
            ));
        }
        _ => {}
    }
    if let Some(i) = s.entries.windows(2).position(|w| w[0].0 >= w[1].0) {
        return refuse(format!(
            "its entries are not sorted by key, each key once: entry {} (key {}) follows key {}",
            i + 1,
            hex(&s.entries[i + 1].0),
            hex(&s.entries[i].0)
        ));
    }
    Ok(())
}

/// The tx index entries of one record: (tx hash, record), in block order.
fn tx_records(r: &CommitRecord) -> impl Iterator<Item = (Hash, TxRecord)> + '_ {
    let height = r.block.block.height();
    r.tx_hashes.iter().zip(&r.outcomes).enumerate().map(move |(index, (hash, outcome))| {
        let index = u32::try_from(index).expect("a block carries fewer than 2^32 transactions");
        (*hash, TxRecord { height, index, code: outcome.code, log: outcome.log.clone() })
    })
}

/// Logs a read error that a trait without an error channel must swallow.
fn or_log<T>(what: &str, r: Result<Option<T>, StoreError>) -> Option<T> {
    r.unwrap_or_else(|e| {
        tracing::error!(error = %e, "{what} failed; answering as if absent");
        None
    })
}

/// [`StateView::get`] for any store: see [`ChainStore`] for the error policy.
fn view_state<S: ChainStore + ?Sized>(s: &S, key: &[u8]) -> Option<Vec<u8>> {
    or_log("reading application state", s.state_get(key))
}

/// [`BlockSource::committed_height`] for any store (0 if it cannot say).
fn source_committed_height<S: ChainStore + ?Sized>(s: &S) -> Height {
    or_log("reading the committed height", s.committed_tip().map(Some)).map_or(0, |(h, _)| h)
}

/// [`BlockSource::committed_block`] for any store.
fn source_committed_block<S: ChainStore + ?Sized>(s: &S, height: Height) -> Option<Block> {
    or_log("reading a committed block", s.block_at(height))
}

/// [`BlockSource::committed_cert`] for any store.
fn source_committed_cert<S: ChainStore + ?Sized>(s: &S, height: Height) -> Option<Certificate> {
    or_log("reading a committed certificate", s.cert_at(height))
}

/// [`BlockSource::block`] for any store.
fn source_block<S: ChainStore + ?Sized>(s: &S, id: &BlockId) -> Option<Block> {
    or_log("reading a block", s.block_by_id(id))
}
