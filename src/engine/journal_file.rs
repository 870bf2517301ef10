//! The lease journal on disk: `lockhier/leases.journal` in the data directory (every server
//! process runs there). Only the keeper writes it; each record is flushed (`fdatasync`) before
//! the keeper answers, so a lease granted is a lease kept. Compaction writes a fresh file,
//! flushes it and renames it over the old one, then flushes the directory.

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
}

impl JournalFile {
    /// Open the journal (made if missing) and read what it holds; a torn last record is cut
    /// off, so the next record starts on a line of its own.
    pub fn open() -> io::Result<(JournalFile, Replayed)> {
        fs::create_dir_all(DIRECTORY)?;
        let text = match fs::read(PATH) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let replayed = journal::replay(&text);
        let file = OpenOptions::new().create(true).append(true).open(PATH)?;
        if replayed.good_len < text.len() {
            file.set_len(replayed.good_len as u64)?;
            file.sync_data()?;
        }
        let records = replayed.records;
        Ok((JournalFile { file, records }, replayed))
    }

    /// Add a record and flush it to disk.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        self.file.write_all(journal::line(record).as_bytes())?;
        self.file.sync_data()?;
        self.records += 1;
        Ok(())
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Replace the journal with one holding only `leases` and the token counter.
    pub fn compact<'a>(
        &mut self,
        origin: Origin,
        leases: impl IntoIterator<Item = &'a Lease>,
        next_token: i64,
    ) -> io::Result<()> {
        let text = journal::snapshot(origin, leases, next_token);
        let mut fresh = File::create(FRESH)?;
        fresh.write_all(text.as_bytes())?;
        fresh.sync_all()?;
        fs::rename(FRESH, PATH)?;
        File::open(DIRECTORY)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(PATH)?;
        self.records = text.lines().count();
        Ok(())
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
