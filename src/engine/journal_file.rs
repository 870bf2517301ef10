//! The lease journal on disk: `lockhier/leases.journal` in the data directory (every server
//! process runs there). Only the keeper writes it; each record is flushed (`fdatasync`) before
//! the keeper answers, so a lease granted is a lease kept. Compaction writes a fresh file,
//! flushes it and renames it over the old one, then flushes the directory.
//!
//! Flushes follow the server's `fsync` setting: with `fsync = off` (data may be lost in a
//! crash, by the administrator's choice) the journal is written but not flushed, as the
//! server's own files are.
//!
//! A write or flush that fails leaves the file cut back to its last whole, flushed record
//! (`repair`), so that a record the keeper answered "failed" for never turns up later (a flush
//! that failed may still write its pages afterwards) and the next record starts on a line of
//! its own. Until a repair succeeds, nothing more is written.

use lockhier_core::lease::journal::{self, Origin, Record, Replayed};
use lockhier_core::lease::{Lease, Timestamp};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

const DIRECTORY: &str = "lockhier";
const PATH: &str = "lockhier/leases.journal";
const FRESH: &str = "lockhier/leases.journal.new";

pub struct JournalFile {
    file: File,
    /// Records in the file, to know when compacting pays.
    records: usize,
    /// Bytes of whole, flushed records: where the next record starts.
    len: u64,
    /// A write, flush or compaction failed: the file must be repaired before the next record.
    broken: bool,
    /// Flush to disk (the server's `fsync` setting).
    durable: bool,
}

impl JournalFile {
    /// Open the journal (made if missing) and read what it holds; a torn last record is cut
    /// off, so the next record starts on a line of its own.
    pub fn open(durable: bool) -> io::Result<(JournalFile, Replayed)> {
        fs::create_dir_all(DIRECTORY)?;
        let text = match fs::read(PATH) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let replayed = journal::replay(&text);
        let file = OpenOptions::new().create(true).append(true).open(PATH)?;
        let journal = JournalFile {
            file,
            records: replayed.records,
            len: replayed.good_len as u64,
            broken: false,
            durable,
        };
        if replayed.good_len < text.len() {
            journal.file.set_len(journal.len)?;
            journal.flush(&journal.file)?;
        }
        // The journal and its directory must survive a power loss as much as its records do.
        journal.flush_directory(DIRECTORY)?;
        journal.flush_directory(".")?;
        Ok((journal, replayed))
    }

    /// Add a record and flush it to disk.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        if self.broken {
            self.repair()?;
        }
        let line = journal::line(record);
        match self.file.write_all(line.as_bytes()).and_then(|()| self.flush(&self.file)) {
            Ok(()) => {
                self.len += line.len() as u64;
                self.records += 1;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                let _ = self.repair();
                Err(e)
            }
        }
    }

    /// Cut the file at `PATH` back to its whole, flushed records and flush that.
    fn repair(&mut self) -> io::Result<()> {
        let file = OpenOptions::new().append(true).open(PATH)?;
        file.set_len(self.len)?;
        self.flush(&file)?;
        self.flush_directory(DIRECTORY)?;
        self.file = file;
        self.broken = false;
        Ok(())
    }

    fn flush(&self, file: &File) -> io::Result<()> {
        if self.durable {
            file.sync_all()?;
        }
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
        self.flush(&fresh)?;
        fs::rename(FRESH, PATH)?;
        // From here the journal is the fresh file, whatever fails next.
        self.len = text.len() as u64;
        self.records = text.lines().count();
        self.broken = true;
        self.repair()
    }
}

/// Whether the journal holds a lease that has not expired at `now`, or cannot be read (then
/// the keeper must look). Read by the postmaster when shared memory is made, so that nothing
/// waits for a restore when there is nothing to restore.
pub fn holds_live_leases(now: Timestamp) -> bool {
    match fs::read(PATH) {
        Ok(bytes) => {
            journal::replay(&String::from_utf8_lossy(&bytes)).leases.values().any(|l| l.expires_at > now)
        }
        // Missing: no lease was ever granted here. Unreadable: the keeper must look.
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}
