//! The in-memory Raft log: entries above a compaction point.
//!
//! An entry is a [`Block`]: its height is the log index, its round the term
//! of the leader that created it, and its `parent` the id of the entry
//! before it. The log is therefore a hash chain, and the Log Matching
//! property (§5.3: two logs holding an entry with the same index and term
//! hold identical entries up to it) holds structurally: equal ids at one
//! index mean equal prefixes.
//!
//! Entries at or below `base` were committed and applied, and dropped from
//! memory (they stay in the chain store); `base` itself is remembered by
//! index, term and id so appends just above it can still be checked.

use crate::types::{Block, BlockId, Height};
use std::collections::VecDeque;

/// A Raft term.
pub type Term = u64;
/// A Raft log index (the block height).
pub type Index = Height;

/// The log's compaction point: the last entry dropped from memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPoint {
    pub index: Index,
    pub term: Term,
    pub id: BlockId,
}

/// Entries above `base`, in index order.
#[derive(Clone, Debug)]
pub struct RaftLog {
    base: LogPoint,
    entries: VecDeque<Block>,
}

impl RaftLog {
    /// An empty log whose last entry is `base` (a committed block).
    pub fn new(base: &Block) -> RaftLog {
        RaftLog { base: point_of(base), entries: VecDeque::new() }
    }

    pub fn base(&self) -> LogPoint {
        self.base
    }

    pub fn last(&self) -> LogPoint {
        self.entries.back().map_or(self.base, point_of)
    }

    pub fn last_index(&self) -> Index {
        self.base.index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.last().term
    }

    /// The entry at `index`, if held in memory (not the base).
    pub fn get(&self, index: Index) -> Option<&Block> {
        if index <= self.base.index {
            return None;
        }
        self.entries.get((index - self.base.index - 1) as usize)
    }

    /// The term of the entry at `index`, if known (the base or held).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.get(index).map(|b| b.round())
    }

    /// The id of the entry at `index`, if known (the base or held).
    pub fn id_at(&self, index: Index) -> Option<BlockId> {
        if index == self.base.index {
            return Some(self.base.id);
        }
        self.get(index).map(|b| b.id())
    }

    /// Appends `block`, which must extend the last entry.
    pub fn append(&mut self, block: Block) {
        debug_assert_eq!(block.height(), self.last_index() + 1);
        debug_assert_eq!(block.parent(), self.last().id);
        self.entries.push_back(block);
    }

    /// Drops every entry above `index` (a conflicting suffix, §5.3).
    pub fn truncate_after(&mut self, index: Index) {
        let keep = index.saturating_sub(self.base.index) as usize;
        self.entries.truncate(keep);
    }

    /// Drops entries up to and including `index` (they are committed and
    /// applied), keeping the last dropped one as the base.
    pub fn compact(&mut self, index: Index) {
        while self.entries.front().is_some_and(|b| b.height() <= index) {
            let b = self.entries.pop_front().expect("checked");
            self.base = point_of(&b);
        }
    }

    /// Entries from `from` on, at most `max_entries` and about `max_bytes`
    /// of transactions (always at least one if any exists).
    pub fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Block> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut i = from;
        while let Some(b) = self.get(i) {
            if out.len() >= max_entries || (!out.is_empty() && bytes + b.payload_bytes() > max_bytes) {
                break;
            }
            bytes += b.payload_bytes();
            out.push(b.clone());
            i += 1;
        }
        out
    }

    /// The first index holding an entry of `term` (searching down from
    /// `from`), for the conflict hint of a rejected append.
    pub fn first_index_of_term(&self, term: Term, from: Index) -> Index {
        let mut i = from;
        while i > self.base.index + 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Ids of held entries above `index`.
    pub fn ids_above(&self, index: Index) -> Vec<BlockId> {
        self.entries.iter().filter(|b| b.height() > index).map(|b| b.id()).collect()
    }
}

fn point_of(b: &Block) -> LogPoint {
    LogPoint { index: b.height(), term: b.round(), id: b.id() }
}
