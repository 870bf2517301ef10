//! The lease keeper: holds every lease as session locks (see `docs/leases.md`). It restores
//! the leases of its journal when it starts, then answers backends' questions (grant, renew,
//! release) one at a time and releases each lease when its ttl runs out.

mod locks;
mod restore;

use super::journal_file::JournalFile;
use crate::pg::keeper_process;
use crate::pg::lockmgr::{self, Fence, Hold};
use crate::pg::{clock, shmem};
use lockhier_core::lease::journal::{Granted, Origin, Record};
use lockhier_core::lease::{
    self, Answer, Ask, Decision, Failure, FixedRequest, Lease, Owner, ShortText, Timestamp,
};
use locks::Taking;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// The longest the keeper sleeps; it wakes earlier for an expiry or a question.
const LONGEST_SLEEP: Duration = Duration::from_secs(1);
/// While an expired lease is kept by a transaction that validated it, look again this often.
const RETRY: Duration = Duration::from_millis(100);
/// Compact the journal once it has this many records and four times more than leases held.
const COMPACT_AFTER: usize = 1000;

struct Keeper {
    area: &'static shmem::Area,
    journal: JournalFile,
    /// The server history the journal's leases belong to.
    origin: Origin,
    next_token: i64,
    /// An expired lease is still fenced by a validating transaction: look again soon.
    retry_expiry: bool,
}

/// The keeper process's life; registered with `pg::keeper_process`.
pub fn run() {
    let Some(area) = shmem::area() else { return };
    let (mut journal, replayed) = match JournalFile::open(keeper_process::fsync_enabled()) {
        Ok(opened) => opened,
        Err(e) => {
            keeper_process::log(&format!("lockhier cannot read its lease journal: {e}"), true);
            return;
        }
    };
    for problem in &replayed.problems {
        keeper_process::log(&format!("lockhier lease journal: damaged record skipped ({problem})"), true);
    }
    let here = keeper_process::origin();
    let leases = replayed.leases_for(here);
    if replayed.origin != Some(here) {
        if !replayed.leases.is_empty() {
            keeper_process::log(
                &format!(
                    "lockhier: {} leases of the journal were granted in another server history (a promoted standby or a restored backup) and are not held here",
                    replayed.leases.len()
                ),
                false,
            );
        }
        if let Err(e) = journal.append(&Record::Origin(here)) {
            keeper_process::log(&format!("lockhier cannot write its lease journal: {e}"), true);
            return;
        }
    }
    let mut keeper =
        Keeper { area, journal, origin: here, next_token: replayed.next_token, retry_expiry: false };
    area.announce_keeper();
    if !keeper.restore(leases) {
        return;
    }
    // Questions asked during the restore are answered at once, not after the first sleep.
    loop {
        area.answer_all(|ask| keeper.answer(ask));
        keeper.housekeeping();
        if !keeper_process::wait(keeper.sleep()) {
            return;
        }
    }
}

impl Keeper {
    /// Until the next expiry, at most a second.
    fn sleep(&self) -> Duration {
        if self.retry_expiry {
            return RETRY;
        }
        let now = clock::now();
        let next = self.area.read(|leases| leases.iter().map(|l| l.expires_at).min());
        match next {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => Duration::from_micros((at - now) as u64).min(LONGEST_SLEEP),
            None => LONGEST_SLEEP,
        }
    }

    fn answer(&mut self, ask: Ask) -> Answer {
        let answered = PgTryBuilder::new(AssertUnwindSafe(|| match ask {
            Ask::Grant { database, owner, request, role, ttl } => {
                self.grant(database, owner, request, role, ttl)
            }
            Ask::Renew { database, token, ttl } => self.renew(database, token, ttl),
            Ask::Release { database, token } => self.release(database, token),
            Ask::ForgetDatabase { database } => self.forget_database(database),
        }))
        .catch_others(|error| Answer::Failed(Failure::Internal(ShortText::new(&message_of(&error)))))
        .execute();
        answered
    }

    /// Expiries and compaction. An error here (the lock table full as the keeper takes a
    /// lease's fence) must not end the keeper, whose exit would let go of every lease: it is
    /// logged and the work tried again soon.
    fn housekeeping(&mut self) {
        let done = PgTryBuilder::new(AssertUnwindSafe(|| {
            self.expire();
            self.compact_if_large();
            true
        }))
        .catch_others(|error| {
            keeper_process::log(&format!("lockhier lease keeper: {}", message_of(&error)), true);
            false
        })
        .execute();
        if !done {
            self.retry_expiry = true;
        }
    }

    fn grant(
        &mut self,
        database: u32,
        owner: Owner,
        request: FixedRequest,
        role: u32,
        ttl: Duration,
    ) -> Answer {
        let now = clock::now();
        let wanted = request.request();
        match self.area.read(|leases| lease::decide(database, &owner, role, &wanted, leases)) {
            Decision::Reentrant(token) => {
                let expires_at = self.area.read(|leases| {
                    leases.iter().find(|l| l.token == token).map(|l| l.expires_at.max(now + micros(ttl)))
                });
                let Some(expires_at) = expires_at else { return Answer::Refused };
                match self.extend(token, now, expires_at) {
                    Ok(()) => Answer::Granted { token },
                    Err(e) => journal_failed(e),
                }
            }
            Decision::Conflicts(_) => Answer::Refused,
            Decision::Free => {
                let (full, capacity) = self.area.write(|held| (held.is_full(), held.capacity()));
                if full {
                    return Answer::Failed(Failure::TooManyLeases(capacity));
                }
                let lease = Lease {
                    database,
                    token: self.next_token,
                    owner,
                    request,
                    role,
                    ttl,
                    acquired_at: now,
                    renewed_at: now,
                    expires_at: now + micros(ttl),
                };
                match locks::take(&lease) {
                    Taking::Taken => {}
                    Taking::Busy => return Answer::Refused,
                    Taking::LockTableFull => return Answer::Failed(Failure::LockTableFull),
                }
                if let Err(e) = self.journal.append(&Record::Grant(Granted::from(&lease))) {
                    locks::release(&lease);
                    return journal_failed(e);
                }
                self.next_token += 1;
                self.area.write(|held| held.push(lease));
                Answer::Granted { token: lease.token }
            }
        }
    }

    fn renew(&mut self, database: u32, token: i64, ttl: Option<Duration>) -> Answer {
        let now = clock::now();
        let Some(lease) = self.find(database, token) else { return Answer::Renewed(None) };
        let expires_at = now + micros(ttl.unwrap_or(lease.ttl));
        match self.extend(token, now, expires_at) {
            Ok(()) => Answer::Renewed(Some(expires_at)),
            Err(e) => journal_failed(e),
        }
    }

    /// Journal a renewal, then make it: a renewal not on disk is not made.
    fn extend(&mut self, token: i64, now: Timestamp, expires_at: Timestamp) -> std::io::Result<()> {
        self.journal.append(&Record::Renew { token, renewed_at: now, expires_at })?;
        self.area.write(|held| {
            if let Some(lease) = held.get_mut(token) {
                lease.renewed_at = now;
                lease.expires_at = expires_at;
            }
        });
        Ok(())
    }

    /// The asker holds the lease's fence in exclusive mode.
    fn release(&mut self, database: u32, token: i64) -> Answer {
        let Some(lease) = self.find(database, token) else { return Answer::Released(false) };
        match self.forget(&lease) {
            Ok(()) => Answer::Released(true),
            Err(e) => journal_failed(e),
        }
    }

    fn forget_database(&mut self, database: u32) -> Answer {
        let dropped: Vec<Lease> =
            self.area.read(|leases| leases.iter().filter(|l| l.database == database).copied().collect());
        for lease in &dropped {
            if let Err(e) = self.forget(lease) {
                return journal_failed(e);
            }
        }
        Answer::Released(!dropped.is_empty())
    }

    /// Journal the release, then make it: a release not on disk is not made. The lease leaves
    /// the table before its locks are given back, so that whoever is granted them next no
    /// longer finds it listed.
    fn forget(&mut self, lease: &Lease) -> std::io::Result<()> {
        self.journal.append(&Record::Release { token: lease.token })?;
        self.area.write(|held| held.remove(lease.token));
        locks::release(lease);
        Ok(())
    }

    fn find(&self, database: u32, token: i64) -> Option<Lease> {
        self.area.read(|leases| leases.iter().find(|l| l.database == database && l.token == token).copied())
    }

    /// Release every lease whose ttl has run out, unless a transaction that validated it is
    /// still open (it holds the fence): that one is looked at again soon.
    fn expire(&mut self) {
        let now = clock::now();
        let due: Vec<Lease> =
            self.area.read(|leases| leases.iter().filter(|l| l.expires_at <= now).copied().collect());
        self.retry_expiry = false;
        for lease in due {
            if !lockmgr::try_fence(lease.database, lease.token, Fence::Exclusive, Hold::Session) {
                self.retry_expiry = true;
                continue;
            }
            if let Err(e) = self.forget(&lease) {
                keeper_process::log(
                    &format!("lockhier cannot journal the expiry of lease {}: {e}", lease.token),
                    true,
                );
                self.retry_expiry = true;
            }
            lockmgr::release_fence(lease.database, lease.token, Fence::Exclusive, Hold::Session);
        }
    }

    fn compact_if_large(&mut self) {
        let count = self.area.read(|held| held.len());
        if self.journal.records() < COMPACT_AFTER || self.journal.records() < 4 * (count + 1) {
            return;
        }
        let leases: Vec<Lease> = self.area.read(|held| held.to_vec());
        if let Err(e) = self.journal.compact(self.origin, &leases, self.next_token) {
            keeper_process::log(&format!("lockhier cannot compact its lease journal: {e}"), true);
        }
    }
}

fn micros(d: Duration) -> Timestamp {
    d.as_micros() as Timestamp
}

fn journal_failed(e: std::io::Error) -> Answer {
    Answer::Failed(Failure::Journal(ShortText::new(&e.to_string())))
}

fn message_of(error: &CaughtError) -> String {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report.message().to_string(),
        CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}
