//! The lease journal on disk: `lockhier/leases.journal` in the data directory (every server
//! process runs there). Only the keeper writes it; the records of a turn are written with one
//! write and, when one of them needs it, flushed (`fdatasync`) before the keeper answers, so a
//! lease granted is a lease kept. Records whose loss could only keep a lease longer (releases,
//! expiries) are written but flushed later, with the next flush or after `LATEST_FLUSH`:
//! written, they survive a crash of any process; only an operating-system crash can lose them
//! (see `docs/leases.md`, "What a release costs").
//! Compaction writes a fresh file, flushes it and renames it over the old one, then flushes the
//! directory.
//!
//! The file is kept longer than its records, zero-filled ahead of them (as PostgreSQL fills a
//! WAL segment before using it): a record then overwrites zeros without changing the file's
//! size, and its `fdatasync` flushes only the data, not the inode. The records end at the first
//! zero byte. The room is made again off the request path, when less than a quarter is left.
//!
//! Flushes follow the server's `fsync` setting: with `fsync = off` (data may be lost in a
//! crash, by the administrator's choice) the journal is written but not flushed, as the
//! server's own files are.
//!
//! A write or flush that fails leaves the file cut back to the records written before it
//! (`repair`), so that a record the keeper answered "failed" for never turns up later (a flush
//! that failed may still write its pages afterwards) and the next record starts on a line of
//! its own. Until a repair succeeds, nothing more is written.

use lockhier_core::lease::journal::{self, Origin, Record, Replayed};
use lockhier_core::lease::{Lease, Timestamp};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

const DIRECTORY: &str = "lockhier";
const PATH: &str = "lockhier/leases.journal";
const FRESH: &str = "lockhier/leases.journal.new";

/// Zeros kept ahead of the records.
const ROOM: u64 = 1 << 20;
/// A record written without a flush is flushed at most this long afterwards (as the WAL
/// writer flushes commits made with `synchronous_commit = off`).
pub const LATEST_FLUSH: Duration = Duration::from_millis(10);

/// Whether a turn's records must be on disk before the keeper answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flushed before the answer: grants, renewals, the token counter.
    Flushed,
    /// Written before the answer, flushed by `LATEST_FLUSH`: releases and expiries.
    Written,
}
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

pub struct JournalFile {
    file: File,
    /// Records in the file, to know when compacting pays.
    records: usize,
    /// Bytes of whole records written: where the next record starts.
    len: u64,
    /// Since when records are written but not flushed, if any are.
    unflushed_since: Option<Instant>,
    /// The file's size: zeros from `len` to here.
    allocated: u64,
    /// A write, flush or compaction failed: the file must be repaired before the next record.
    broken: bool,
    /// Flush to disk (the server's `fsync` setting).
    durable: bool,
}

/// The records of a journal's bytes: everything before the first zero byte.
fn records_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl JournalFile {
    /// Open the journal (made if missing) and read what it holds; a torn last record is cut
    /// off, so the next record starts on a line of its own.
    pub fn open(durable: bool) -> io::Result<(JournalFile, Replayed)> {
        fs::create_dir_all(DIRECTORY)?;
        let bytes = match fs::read(PATH) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let text = records_text(&bytes);
        let replayed = journal::replay(&text);
        let file = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(PATH)?;
        let mut journal = JournalFile {
            file,
            records: replayed.records,
            len: replayed.good_len as u64,
            unflushed_since: None,
            allocated: bytes.len() as u64,
            broken: false,
            durable,
        };
        if replayed.good_len < text.len() {
            // A torn last record: zeros over it, so the records end before it.
            journal.file.set_len(journal.len)?;
            journal.allocated = journal.len;
        }
        // A full disk does not keep the keeper from starting: the room is made again later.
        let _ = journal.make_room();
        // The journal and its directory must survive a power loss as much as its records do.
        journal.flush_directory(DIRECTORY)?;
        journal.flush_directory(".")?;
        Ok((journal, replayed))
    }

    /// Add records with one write, and one flush if `durability` asks for it (which flushes
    /// the records written before them too): a turn of the keeper writes all its records at
    /// once (group commit). Nothing of them counts unless the write (and flush) succeeded.
    pub fn append_all(&mut self, records: &[Record], durability: Durability) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.broken {
            self.repair()?;
        }
        let lines: String = records.iter().map(journal::line).collect();
        let (start, records_before) = (self.len, self.records);
        let written = self.file.write_all_at(lines.as_bytes(), start).and_then(|()| {
            self.len += lines.len() as u64;
            self.allocated = self.allocated.max(self.len);
            self.records += records.len();
            match durability {
                Durability::Flushed => self.flush(),
                Durability::Written => {
                    self.unflushed_since.get_or_insert_with(Instant::now);
                    Ok(())
                }
            }
        });
        if written.is_err() {
            // Cut these records off (the asker hears they failed); the ones written before
            // them stay, to be flushed later.
            self.len = start;
            self.records = records_before;
            self.broken = true;
            let _ = self.repair();
        }
        written
    }

    /// Flush records written without one, once `LATEST_FLUSH` has passed (or at once when
    /// `now` is `None`).
    pub fn flush_written(&mut self, now: Option<Instant>) -> io::Result<()> {
        match (self.unflushed_since, now) {
            (None, _) => Ok(()),
            (Some(since), Some(now)) if now < since + LATEST_FLUSH => Ok(()),
            _ => self.flush(),
        }
    }

    /// When records written without a flush must be flushed, if any are.
    pub fn flush_due(&self) -> Option<Instant> {
        self.unflushed_since.map(|since| since + LATEST_FLUSH)
    }

    /// Zero-fill the file ahead of its records when less than a quarter of the room is left.
    /// Called when the keeper has nothing else to do (and when the journal is opened).
    pub fn make_room(&mut self) -> io::Result<()> {
        if self.broken || self.allocated >= self.len + ROOM / 4 {
            return Ok(());
        }
        let target = self.len + ROOM;
        let mut at = self.allocated.max(self.len);
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        // The size changed: a full flush, once per ROOM of records.
        if self.durable {
            self.file.sync_all()?;
        }
        self.allocated = target;
        Ok(())
    }

    /// Cut the file at `PATH` back to its whole records written and flush that.
    fn repair(&mut self) -> io::Result<()> {
        let file = OpenOptions::new().read(true).write(true).open(PATH)?;
        file.set_len(self.len)?;
        if self.durable {
            file.sync_all()?;
        }
        self.unflushed_since = None;
        self.flush_directory(DIRECTORY)?;
        self.file = file;
        self.allocated = self.len;
        self.broken = false;
        Ok(())
    }

    /// The records' bytes only: the file's size does not change while there is room, so this
    /// flushes no inode.
    fn flush(&mut self) -> io::Result<()> {
        if self.durable {
            self.file.sync_data()?;
        }
        self.unflushed_since = None;
        Ok(())
    }

    fn flush_directory(&self, path: &str) -> io::Result<()> {
        if self.durable {
            File::open(path)?.sync_all()?;
        }
        Ok(())
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Replace the journal with one of the history `origin` holding only `leases` and the
    /// token counter.
    pub fn compact<'a>(
        &mut self,
        origin: Origin,
        leases: impl IntoIterator<Item = &'a Lease>,
        next_token: i64,
    ) -> io::Result<()> {
        let text = journal::snapshot(origin, leases, next_token);
        let mut fresh = File::create(FRESH)?;
        fresh.write_all(text.as_bytes())?;
        if self.durable {
            fresh.sync_all()?;
        }
        fs::rename(FRESH, PATH)?;
        // From here the journal is the fresh file, whatever fails next.
        self.len = text.len() as u64;
        self.records = text.lines().count();
        self.broken = true;
        self.repair()?;
        self.make_room()
    }
}

/// Whether the journal holds a lease that has not expired at `now`, or cannot be read (then
/// the keeper must look). Read by the postmaster when shared memory is made, so that nothing
/// waits for a restore when there is nothing to restore.
pub fn holds_live_leases(now: Timestamp) -> bool {
    match fs::read(PATH) {
        Ok(bytes) => journal::replay(&records_text(&bytes)).leases.values().any(|l| l.expires_at > now),
        // Missing: no lease was ever granted here. Unreadable: the keeper must look.
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}
