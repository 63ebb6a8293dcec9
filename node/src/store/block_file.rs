//! The block file: large block bodies and per-block results on disk beside
//! sled, appended to segment files; sled's `blocks` and `results` trees keep
//! where each one is ([`Stored::File`]), or the record itself if small
//! ([`Stored::Inline`]).
//!
//! # Why not in sled
//!
//! sled 0.34 writes any tree page larger than about 128 KiB (a quarter of
//! its 512 KiB log segment) as a *blob*, a file of its own, and its page
//! cache counts such a page at the size of the pointer to it, not of its
//! contents. A leaf of the `blocks` tree holds up to 17 blocks, so with
//! blocks of a few hundred KiB to 4 MiB:
//!
//! - every block stayed in memory for the life of the process (after 30 s
//!   at 8,000 noop tx/s, encoded blocks were 118 MB of a node's 167 MB heap
//!   peak, and RSS grew with the chain whatever `cache_capacity` said);
//! - each rewrite of a leaf wrote all its blocks again: a node wrote about
//!   40 MB/s for 6.7 MB/s of committed payload.
//!
//! Here a block is written once, by one append, and read back with one
//! positioned read; nothing of it stays in memory.
//!
//! # Why direct I/O
//!
//! Appends bypass the page cache (`O_DIRECT`) where the file system allows
//! it. A buffered append copies every byte into freshly allocated
//! page-cache pages, and on the project's 2-core virtual machine each new
//! page is a fault on the host (the guest returns idle memory): 2.7 ms of
//! kernel CPU per MB written, where a direct write of the same MB costs
//! 0.4 ms (`dd`, 400 MB in 4 MiB writes). At 35,000 noop tx/s each
//! validator appends about 19 MB/s, and the buffered `pwrite` alone was
//! 9 % of the machine's CPU and half of the consensus thread's. Block
//! bodies are rarely read back (a peer catching up, an RPC query,
//! recovery), so keeping them out of the page cache costs little; reads go
//! through an ordinary descriptor. Where `O_DIRECT` is refused (tmpfs,
//! some FUSE file systems) appends are buffered, as before.
//!
//! Small records stay in sled ([`Stored::Inline`], up to [`INLINE_MAX`]
//! bytes): 17 of them and their keys make a leaf of at most 105 KiB, under
//! the blob size, and a block file append costs one more `fdatasync` before
//! the sled write that names it. Raft's blocks under closed-loop load
//! (about 18 signed transactions) stay in sled: with every block in the
//! file, 64 closed-loop clients got 1,200 tx/s instead of 1,800–2,000.
//!
//! # Format
//!
//! `<data>/blockfile/<segment>.seg`, segments numbered from 0 (eight decimal
//! digits). A record is the length of its bytes (u32 big-endian), their
//! CRC-32 (u32 big-endian), then the bytes (the block, codec-encoded).
//! Written with direct I/O, a record starts at a multiple of
//! [`DIRECT_ALIGN`] bytes and is followed by zeros up to the next multiple;
//! buffered, records follow each other. Readers go by the location sled
//! holds, so segments written either way read the same. A new segment
//! starts once a record would take the current one past [`SEGMENT_BYTES`];
//! records never straddle segments.
//!
//! # Durability and order
//!
//! Appended records are durable once [`BlockFile::sync`] returns, and the
//! store syncs before every sled write that names a record (`save_block`,
//! a commit, genesis, a snapshot install). So a `blocks` or `results` entry
//! that sled has made durable, by its own flush or by ours, names bytes
//! that are on disk. A crash in the middle of an append leaves a torn record
//! at the end of the segment that nothing names; appends continue after it.
//!
//! Space of records nothing names any more (pruned forks, history below an
//! installed snapshot) is not reclaimed.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// The directory under the data directory.
pub const DIR: &str = "blockfile";
/// A segment is closed once the next record would take it past this size.
pub const SEGMENT_BYTES: u64 = 256 << 20;
/// Length and CRC-32 before each record's bytes.
const HEADER_BYTES: u64 = 8;
/// Offset, length and memory alignment of a direct write: a multiple of
/// every logical block size in use (512 or 4,096 bytes).
pub const DIRECT_ALIGN: u64 = 4096;

/// How appends reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// `O_DIRECT` where the file system allows it, else buffered.
    Direct,
    /// Through the page cache.
    Buffered,
}

/// Records up to this many bytes stay inline in sled (see the module
/// documentation for the bound).
pub const INLINE_MAX: usize = 6 << 10;

/// What sled's `blocks` and `results` trees hold per block: the record
/// itself if small, else where it is in the block file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stored {
    Inline(Vec<u8>),
    File(Location),
}

/// Where a record is in the block file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub segment: u32,
    /// Offset of the record's header in the segment.
    pub offset: u64,
    /// Length of the record's bytes (header excluded).
    pub len: u32,
}

/// Why a record could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system failed the read.
    Io { path: PathBuf, error: io::Error },
    /// The record is not what its location says: missing, short or torn.
    Bad(String),
}

/// The segment being appended to.
struct Writer {
    segment: u32,
    /// The segment as appends write it (with `O_DIRECT` in direct mode).
    file: Arc<File>,
    /// The same segment opened for ordinary reads.
    reader: Arc<File>,
    /// The next record's offset: the bytes in `file`, rounded up to the
    /// alignment.
    len: u64,
    /// Whether anything was appended since the last sync.
    dirty: bool,
    /// Closed segments written since the last sync.
    closed: Vec<Arc<File>>,
    /// Where a record is laid out before its write, kept between appends
    /// (direct writes need an aligned buffer; a reused one costs no page
    /// faults).
    scratch: Vec<u8>,
}

/// Append-only block storage. See the module documentation.
pub struct BlockFile {
    dir: PathBuf,
    segment_bytes: u64,
    /// Whether appends use `O_DIRECT`.
    direct: bool,
    /// Records start at multiples of this ([`DIRECT_ALIGN`] when direct, else 1).
    align: u64,
    writer: Mutex<Writer>,
    /// Held for the whole of a sync, so a sync that finds nothing dirty
    /// returns only after a sync already under way has finished.
    syncing: Mutex<()>,
    /// Set by a failed write or sync: Linux reports a write-back error
    /// once and may drop the pages, so a retried sync could succeed
    /// without the bytes. Every later append and sync fails instead.
    failed: std::sync::atomic::AtomicBool,
}

impl BlockFile {
    /// Opens (creating if absent) the block file in `dir`; appends go to
    /// the end of its last segment.
    pub fn open(dir: &Path) -> io::Result<BlockFile> {
        BlockFile::open_with(dir, SEGMENT_BYTES, WriteMode::Direct)
    }

    /// [`BlockFile::open`] with another segment size or write mode (tests).
    pub fn open_with(dir: &Path, segment_bytes: u64, mode: WriteMode) -> io::Result<BlockFile> {
        std::fs::create_dir_all(dir)?;
        let mut last = None;
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            match name.strip_suffix(".seg").and_then(|n| n.parse::<u32>().ok()) {
                Some(n) => last = last.max(Some(n)),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected file {name} in the block file directory {}", dir.display()),
                    ));
                }
            }
        }
        let segment = last.unwrap_or(0);
        let reader = open_segment(dir, segment)?;
        let (file, direct) = match mode {
            WriteMode::Direct => match open_direct(dir, segment) {
                Ok(f) => (f, true),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::info!(dir = %dir.display(), "the file system refuses O_DIRECT: block file appends are buffered");
                    (reader.try_clone()?, false)
                }
                Err(e) => return Err(e),
            },
            WriteMode::Buffered => (reader.try_clone()?, false),
        };
        let align = if direct { DIRECT_ALIGN } else { 1 };
        // A torn or buffered tail ends anywhere; the next record starts at
        // the alignment after it.
        let len = reader.metadata()?.len().next_multiple_of(align);
        // The directory and the segment's entry in it are durable before
        // any record is named (cheap, once per open).
        sync_dir(dir)?;
        sync_parent(dir)?;
        Ok(BlockFile {
            dir: dir.to_path_buf(),
            segment_bytes,
            direct,
            align,
            writer: Mutex::new(Writer {
                segment,
                file: Arc::new(file),
                reader: Arc::new(reader),
                len,
                dirty: false,
                closed: Vec::new(),
                scratch: Vec::new(),
            }),
            syncing: Mutex::new(()),
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether appends bypass the page cache (`O_DIRECT`).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Bytes a record of `len` bytes takes in a segment: header, bytes and
    /// the padding to the next record.
    pub fn span(&self, len: u32) -> u64 {
        (HEADER_BYTES + u64::from(len)).next_multiple_of(self.align)
    }

    fn check_failed(&self) -> io::Result<()> {
        if self.failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(io::Error::other("an earlier write or sync of the block file failed; restart the node"));
        }
        Ok(())
    }

    fn fail(&self, e: io::Error) -> io::Error {
        self.failed.store(true, std::sync::atomic::Ordering::Release);
        e
    }

    /// Appends one record; durable after the next [`BlockFile::sync`].
    pub fn append(&self, bytes: &[u8]) -> io::Result<Location> {
        self.check_failed()?;
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a block file record is limited to 4 GiB"))?;
        let mut header = [0u8; HEADER_BYTES as usize];
        header[..4].copy_from_slice(&len.to_be_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(bytes).to_be_bytes());
        let span = self.span(len);
        let mut w = self.writer.lock();
        if w.len > 0 && w.len + span > self.segment_bytes {
            self.start_segment(&mut w)?;
        }
        // Header, bytes and padding in one write from an aligned buffer.
        let align = usize::try_from(self.align).expect("the alignment fits in memory");
        let span_bytes = usize::try_from(span).expect("a record fits in memory");
        let w = &mut *w;
        if w.scratch.capacity() < span_bytes + align {
            w.scratch = Vec::with_capacity(span_bytes + align);
        }
        w.scratch.clear();
        // No reallocation below this line: the capacity covers the lot.
        let addr = w.scratch.as_ptr().addr();
        let start = addr.next_multiple_of(align) - addr;
        w.scratch.resize(start, 0);
        w.scratch.extend_from_slice(&header);
        w.scratch.extend_from_slice(bytes);
        w.scratch.resize(start + span_bytes, 0);
        // A failed write leaves `len` where it was, and fails the file.
        w.file.write_all_at(&w.scratch[start..], w.len).map_err(|e| self.fail(e))?;
        let at = Location { segment: w.segment, offset: w.len, len };
        w.len += span;
        w.dirty = true;
        Ok(at)
    }

    fn start_segment(&self, w: &mut Writer) -> io::Result<()> {
        let next = w.segment.checked_add(1).ok_or_else(|| io::Error::other("block file segment numbers exhausted"))?;
        let reader = Arc::new(open_segment(&self.dir, next).map_err(|e| self.fail(e))?);
        let file = if self.direct {
            Arc::new(open_direct(&self.dir, next).map_err(|e| self.fail(e))?)
        } else {
            Arc::new(reader.try_clone().map_err(|e| self.fail(e))?)
        };
        // The new segment's directory entry must be durable before any
        // record in it is relied on.
        sync_dir(&self.dir).map_err(|e| self.fail(e))?;
        w.reader = reader;
        let old = std::mem::replace(&mut w.file, file);
        if w.dirty {
            w.closed.push(old);
        }
        w.segment = next;
        w.len = 0;
        Ok(())
    }

    /// Makes every record appended so far durable (`fdatasync`).
    pub fn sync(&self) -> io::Result<()> {
        let _one = self.syncing.lock();
        self.check_failed()?;
        let files = {
            let mut w = self.writer.lock();
            if !w.dirty {
                return Ok(());
            }
            w.dirty = false;
            let mut files = std::mem::take(&mut w.closed);
            files.push(w.file.clone());
            files
        };
        for f in &files {
            f.sync_data().map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Reads one record back, checking its length and CRC.
    pub fn read(&self, at: &Location) -> Result<Vec<u8>, ReadError> {
        let path = segment_path(&self.dir, at.segment);
        let io_error = |error: io::Error| ReadError::Io { path: path.clone(), error };
        let current = {
            let w = self.writer.lock();
            (w.segment == at.segment).then(|| w.reader.clone())
        };
        let file = match current {
            Some(f) => f,
            None => match File::open(&path) {
                Ok(f) => Arc::new(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ReadError::Bad(format!("segment {} does not exist", path.display())));
                }
                Err(e) => return Err(io_error(e)),
            },
        };
        let short = |what: &str| {
            ReadError::Bad(format!("{} ends before the {what} of the record at offset {}", path.display(), at.offset))
        };
        let mut header = [0u8; HEADER_BYTES as usize];
        match file.read_exact_at(&mut header, at.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(short("header")),
            Err(e) => return Err(io_error(e)),
        }
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        if len != at.len {
            return Err(ReadError::Bad(format!(
                "the record at offset {} of {} holds {len} bytes, not {}",
                at.offset,
                path.display(),
                at.len
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        match file.read_exact_at(&mut bytes, at.offset + HEADER_BYTES) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(short("end")),
            Err(e) => return Err(io_error(e)),
        }
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes) != crc {
            return Err(ReadError::Bad(format!(
                "the record at offset {} of {} fails its CRC (torn or overwritten)",
                at.offset,
                path.display()
            )));
        }
        Ok(bytes)
    }
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

fn open_segment(dir: &Path, segment: u32) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(segment_path(dir, segment))
}

/// The segment opened for direct writes (Linux's `O_DIRECT`; elsewhere
/// refused like a file system without it, so appends are buffered).
fn open_direct(dir: &Path, segment: u32) -> io::Result<File> {
    open_direct_at(&segment_path(dir, segment))
}

/// Opens (creating if absent) `path` for direct writes.
fn open_direct_at(path: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        OpenOptions::new().write(true).create(true).truncate(false).custom_flags(libc::O_DIRECT).open(path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sync_parent(dir: &Path) -> io::Result<()> {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(r: Result<Vec<u8>, ReadError>) -> String {
        match r {
            Err(ReadError::Bad(why)) => why,
            other => panic!("expected a bad record, got {other:?}"),
        }
    }

    /// Each write mode with a segment size that holds a few small records.
    const MODES: [(WriteMode, u64); 2] = [(WriteMode::Buffered, 600), (WriteMode::Direct, 3 * DIRECT_ALIGN)];

    /// Records read back as written, across segments and across reopening;
    /// appends after reopening go after what is there.
    #[test]
    fn records_survive_reopen_and_segments() {
        for (mode, segment) in MODES {
            let dir = tempfile::tempdir().unwrap();
            let records: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100 + usize::from(i) * 37]).collect();
            let f = BlockFile::open_with(dir.path(), segment, mode).unwrap();
            let mut at: Vec<Location> = records[..6].iter().map(|r| f.append(r).unwrap()).collect();
            f.sync().unwrap();
            assert!(at.last().unwrap().segment > 0, "{mode:?}: segments roll: {at:?}");
            for (a, r) in at.iter().zip(&records) {
                assert!(a.offset + f.span(a.len) <= segment || a.offset == 0, "{mode:?}: {a:?}");
                assert_eq!(&f.read(a).unwrap(), r);
            }
            drop(f);
            let f = BlockFile::open_with(dir.path(), segment, mode).unwrap();
            at.extend(records[6..].iter().map(|r| f.append(r).unwrap()));
            f.sync().unwrap();
            for (a, r) in at.iter().zip(&records) {
                assert_eq!(&f.read(a).unwrap(), r);
            }
            let mut seen: Vec<(u32, u64)> = at.iter().map(|a| (a.segment, a.offset)).collect();
            seen.dedup();
            assert_eq!(seen.len(), records.len(), "{mode:?}: no record overwrote another");
        }
    }

    /// Direct appends (where the file system takes them) start at aligned
    /// offsets with zeros between records, also after a segment written
    /// buffered (an older node's, ending anywhere), and everything reads
    /// back through either mode.
    #[test]
    fn direct_appends_are_aligned_and_follow_buffered_ones() {
        let dir = tempfile::tempdir().unwrap();
        let buffered = BlockFile::open_with(dir.path(), SEGMENT_BYTES, WriteMode::Buffered).unwrap();
        let old: Vec<Location> = [&b"one"[..], &[5u8; 5000]].iter().map(|r| buffered.append(r).unwrap()).collect();
        buffered.sync().unwrap();
        assert_eq!(old[1].offset, 8 + 3, "buffered records follow each other");
        drop(buffered);
        let f = BlockFile::open(dir.path()).unwrap();
        // Skipped only where the file system itself refuses O_DIRECT (asked
        // here directly), never because the block file failed to use it.
        let probe = dir.path().join("probe");
        let supported = open_direct_at(&probe).is_ok();
        let _ = std::fs::remove_file(&probe);
        assert_eq!(f.is_direct(), supported, "direct appends exactly where the file system takes O_DIRECT");
        if !supported {
            eprintln!("the temporary directory's file system refuses O_DIRECT; direct appends not checked");
            return;
        }
        let new: Vec<Location> = [&[7u8; 10][..], &[9u8; 9000]].iter().map(|r| f.append(r).unwrap()).collect();
        f.sync().unwrap();
        assert_eq!(new[0].offset, (old[1].offset + 8 + 5000).next_multiple_of(DIRECT_ALIGN));
        assert_eq!(new[1].offset, new[0].offset + DIRECT_ALIGN);
        let bytes = std::fs::read(segment_path(dir.path(), 0)).unwrap();
        assert_eq!(bytes.len() as u64, new[1].offset + f.span(9000));
        assert!(bytes[(new[0].offset + 8 + 10) as usize..new[1].offset as usize].iter().all(|&b| b == 0));
        for (a, r) in old
            .iter()
            .zip([vec![b'o', b'n', b'e'], vec![5u8; 5000]])
            .chain(new.iter().zip([vec![7u8; 10], vec![9u8; 9000]]))
        {
            assert_eq!(f.read(a).unwrap(), r);
        }
        drop(f);
        let buffered = BlockFile::open_with(dir.path(), SEGMENT_BYTES, WriteMode::Buffered).unwrap();
        assert_eq!(buffered.read(&new[1]).unwrap(), vec![9u8; 9000]);
        // Buffered appends after direct ones go right after the padding.
        assert_eq!(
            buffered.append(b"x").unwrap().offset,
            new[1].offset + (HEADER_BYTES + 9000).next_multiple_of(DIRECT_ALIGN)
        );
    }

    /// A record larger than a segment gets a segment of its own.
    #[test]
    fn a_record_larger_than_a_segment_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = BlockFile::open_with(dir.path(), 64, WriteMode::Buffered).unwrap();
        let small = f.append(b"small").unwrap();
        let big = f.append(&[7u8; 1000]).unwrap();
        let after = f.append(b"after").unwrap();
        assert_eq!((small.segment, big.segment, big.offset, after.segment), (0, 1, 0, 2));
        assert_eq!(f.read(&big).unwrap(), vec![7u8; 1000]);
        assert_eq!(f.read(&after).unwrap(), b"after");
    }

    /// A flipped byte, a cut-off tail, a wrong length and a missing segment
    /// are each reported as a bad record, naming the file.
    #[test]
    fn damage_is_reported_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let f = BlockFile::open(dir.path()).unwrap();
        let a = f.append(b"first record").unwrap();
        let b = f.append(b"second record").unwrap();
        f.sync().unwrap();
        let path = segment_path(dir.path(), 0);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"X", a.offset + HEADER_BYTES + 2).unwrap();
        assert!(bad(f.read(&a)).contains("fails its CRC"));
        let wrong_len = Location { len: b.len + 1, ..b };
        assert!(bad(f.read(&wrong_len)).contains("holds 13 bytes, not 14"));
        file.set_len(b.offset + HEADER_BYTES + 3).unwrap();
        let why = bad(f.read(&b));
        assert!(why.contains("ends before the end") && why.contains("00000000.seg"), "{why}");
        assert!(bad(f.read(&Location { segment: 9, ..b })).contains("does not exist"));
    }

    /// A torn tail (a crash in the middle of an append) is left alone:
    /// appends after reopening go after it and read back whole.
    #[test]
    fn appends_continue_after_a_torn_tail() {
        for (mode, _) in MODES {
            let dir = tempfile::tempdir().unwrap();
            let f = BlockFile::open_with(dir.path(), SEGMENT_BYTES, mode).unwrap();
            let a = f.append(b"kept").unwrap();
            let torn = f.append(&[1u8; 500]).unwrap();
            f.sync().unwrap();
            drop(f);
            let file = OpenOptions::new().write(true).open(segment_path(dir.path(), 0)).unwrap();
            file.set_len(torn.offset + 100).unwrap();
            let f = BlockFile::open_with(dir.path(), SEGMENT_BYTES, mode).unwrap();
            let c = f.append(b"after the crash").unwrap();
            assert_eq!(c.offset, (torn.offset + 100).next_multiple_of(f.align), "{mode:?}");
            assert_eq!(f.read(&a).unwrap(), b"kept");
            assert_eq!(f.read(&c).unwrap(), b"after the crash");
            assert!(matches!(f.read(&torn), Err(ReadError::Bad(_))));
        }
    }

    /// After a failed write or sync, every later append and sync fails (a
    /// retried fsync could succeed for pages the kernel dropped); reads of
    /// what was synced still work.
    #[test]
    fn a_failure_fails_every_later_append_and_sync() {
        let dir = tempfile::tempdir().unwrap();
        let f = BlockFile::open(dir.path()).unwrap();
        let a = f.append(b"before").unwrap();
        f.sync().unwrap();
        let _ = f.fail(io::Error::other("injected"));
        assert!(f.append(b"after").unwrap_err().to_string().contains("restart the node"));
        assert!(f.sync().unwrap_err().to_string().contains("restart the node"));
        assert_eq!(f.read(&a).unwrap(), b"before");
    }

    /// A stray file in the directory is refused at open, by name.
    #[test]
    fn stray_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
        let err = BlockFile::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
