//! The lease keeper: holds every lease as session locks (see `docs/leases.md`). It restores
//! the leases of its journal when it starts, then works in turns: it takes every question
//! waiting, decides them in order, writes their journal records with one flush (group commit),
//! answers them all, and releases each lease whose ttl has run out.
//!
//! Nothing it catches ends it (its exit would let go of every lease), and each turn runs in a
//! memory context emptied afterwards, so that an error caught leaves nothing behind. Releases
//! and expiries need neither a new lock-table entry nor the journal: they happen on a full lock
//! table and a full disk.

mod held;
mod locks;
mod restore;

use super::journal_file::{Durability, JournalFile};
use crate::pg::clock;
use crate::pg::keeper_process::{self, TurnMemory};
use crate::pg::lease_area::{self, Taken};
use crate::pg::lockmgr::{self, Fence, Hold};
use held::Held;
use lockhier_core::lease::journal::{Granted, Group, Origin, Record, TokenCounter};
use lockhier_core::lease::{
    Answer, Ask, Decision, Failure, FixedRequest, Lease, ShortText, Timestamp, Wanted, WantedMany, MAX_GROUP,
};
use locks::Taking;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// The longest the keeper sleeps; it wakes earlier for an expiry or a question.
const LONGEST_SLEEP: Duration = Duration::from_secs(1);
/// While an expired lease is kept by a transaction that validated it, look again this often.
const RETRY: Duration = Duration::from_millis(100);
/// Compact the journal once it has this many records and four times more than leases held. A
/// compaction (with the zeroed room it makes again) stalls the next request about 2 ms: with a
/// few leases renewed in a loop, every 1,000 records was 2.5% of a single client's time.
const COMPACT_AFTER: usize = 10_000;
/// After a turn that answered one question, how long the keeper looks for the next before it
/// sleeps: about a client's round trip with its next request (see `pg::lease_area::asks`).
const LOOK_FOR_NEXT: Duration = Duration::from_micros(250);
/// The same warning is logged at most this often, however often its cause recurs.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// `lockhier.fence_timeout`: how long past its expiry a lease may be kept by a transaction
/// that validated it before the keeper terminates that transaction's backend.
pub static FENCE_TIMEOUT: pgrx::GucSetting<i32> = pgrx::GucSetting::<i32>::new(300);

struct Keeper {
    area: &'static lease_area::Area,
    /// The leases held, with the keeper's indexes of them.
    held: Held,
    journal: JournalFile,
    /// The server history the journal's leases belong to.
    origin: Origin,
    /// Tokens only grow, across restarts and server histories (`lockhier_core::lease::journal`).
    tokens: TokenCounter,
    /// An expired lease is still fenced by a validating transaction: look again soon.
    retry_expiry: bool,
    /// Records of the keeper's start not written yet (a full disk): written before any other.
    preamble: Vec<Record>,
    /// When each kind of warning was last logged.
    warned: HashMap<&'static str, Instant>,
    /// Some leases of the journal are not held again yet (see `restore`): try again soon.
    waiting: bool,
    /// Leases whose wait to be held again was logged.
    waiting_logged: BTreeSet<i64>,
}

/// What a question came to before the turn's records are flushed.
// One per question of a turn (at most 64), short-lived: the size of an answer is no cost.
#[allow(clippy::large_enum_variant)]
enum Decided {
    /// Answered whatever the flush does (a refusal, a failure, a release: releases are made
    /// even when their record cannot be written).
    Final(Answer),
    /// A new lease, taken and listed: answered once its record is on disk, undone otherwise.
    Granted(Box<Lease>),
    /// A renewal (or a re-entrant grant, `granted`), made once its record is on disk.
    Extended { token: i64, renewed_at: Timestamp, expires_at: Timestamp, granted: bool },
    /// Every lease of a group: `tokens` in the order asked; `new` taken and listed, `extended`
    /// (leases the owner held already) made once on disk. Answered once the records are on
    /// disk, all undone otherwise.
    GrantedMany { tokens: Vec<i64>, new: Vec<Lease>, extended: Vec<(i64, Timestamp, Timestamp)> },
}

/// The keeper process: the background worker's entry point (`pg::keeper_process::register`
/// names it), a direct call from the server.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn lockhier_lease_keeper_main(_arg: pgrx::pg_sys::Datum) {
    keeper_process::start();
    run();
    keeper_process::exit()
}

/// The keeper's life: restore, then turns until the server asks it to stop.
fn run() {
    let Some(area) = lease_area::area() else { return };
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
    for superseded in &replayed.superseded {
        keeper_process::log(&format!("lockhier lease journal: {superseded}; it is not held again"), true);
    }
    for group in &replayed.incomplete_groups {
        keeper_process::log(&format!("lockhier lease journal: {group}; none of them is held again"), true);
    }
    let here = keeper_process::origin();
    let leases = replayed.leases_for(here);
    let mut tokens = replayed.token_counter(here);
    let mut first = Vec::new();
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
        first.push(Record::Origin(here));
    }
    // The counter starts above what the journal proves (a new timeline's floor, a damaged last
    // line): say so on disk before the first answer. On a full disk the keeper starts all the
    // same (releases and expiries need no journal); these records go with the next ones written.
    first.extend(tokens.reservation());
    let preamble = match journal.append_all(&first, Durability::Flushed) {
        Ok(()) => {
            first.iter().for_each(|record| tokens.journaled(record));
            Vec::new()
        }
        Err(e) => {
            keeper_process::log(&format!("lockhier cannot write its lease journal: {e}"), true);
            first
        }
    };
    let mut keeper = Keeper {
        area,
        held: Held::new(area),
        journal,
        origin: here,
        tokens,
        preamble,
        retry_expiry: false,
        warned: HashMap::new(),
        waiting: false,
        waiting_logged: BTreeSet::new(),
    };
    area.announce_keeper();
    area.free_abandoned();
    let mut memory = TurnMemory::new();
    if !memory.turn(|| keeper.restore(leases)) {
        return;
    }
    // Questions asked during the restore are answered at once, not after the first sleep.
    loop {
        let answered = memory.turn(|| keeper.turn());
        // A lone asker's next question usually follows within a round trip: waiting for it
        // awake saves the wake-up (a crowd's questions are already waiting, taken together).
        // The wait still runs, without sleeping, for a stop, a reload or the postmaster's death.
        let next = answered == 1 && area.await_question(LOOK_FOR_NEXT);
        let sleep = if next { Duration::ZERO } else { keeper.sleep() };
        if !keeper_process::wait(sleep) {
            // Leaving (a shutdown): what was written without a flush is flushed now.
            let _ = keeper.journal.flush_written(None);
            return;
        }
    }
}

impl Keeper {
    /// One turn: how many questions it answered.
    fn turn(&mut self) -> usize {
        let questions = self.area.take_questions();
        let dropped = self.area.take_dropped();
        let answered = questions.len();
        if !questions.is_empty() || !dropped.is_empty() {
            self.answer_all(questions, dropped);
        }
        self.housekeeping();
        answered
    }

    /// Until the next expiry, at most a second.
    fn sleep(&self) -> Duration {
        if self.retry_expiry || self.waiting {
            return RETRY;
        }
        let now = clock::now();
        let until_expiry = match self.held.next_expiry() {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => Duration::from_micros((at - now) as u64).min(LONGEST_SLEEP),
            None => LONGEST_SLEEP,
        };
        match self.journal.flush_due() {
            Some(due) => until_expiry.min(due.saturating_duration_since(Instant::now())),
            None => until_expiry,
        }
    }

    /// Decide every question in order, flush their records once, then answer them all.
    fn answer_all(&mut self, questions: Vec<Taken>, dropped: Vec<u32>) {
        let mut records = Vec::new();
        let decided: Vec<(Taken, Decided)> = questions
            .into_iter()
            .map(|mut taken| {
                let requests = std::mem::take(&mut taken.requests);
                let decided = self.decide(taken.ask, &requests, &mut records);
                (taken, decided)
            })
            .collect();
        for database in dropped {
            self.forget_database(database, &mut records);
        }
        let reservation = self.tokens.reservation();
        records.extend(reservation.clone());
        let releases = records.iter().any(|r| matches!(r, Record::Release { .. }));
        let durability = durability_of(&records);
        let written = self.write(records, durability);
        if let (Ok(()), Some(reservation)) = (&written, &reservation) {
            self.tokens.journaled(reservation);
        }
        if let Err(e) = &written {
            if releases {
                self.warn(
                    "release not journaled",
                    &format!("lockhier cannot journal a lease release (it is made all the same): {e}"),
                );
            }
        }
        for (taken, decided) in decided {
            let answer = match decided {
                Decided::Final(answer) => answer,
                Decided::Granted(lease) => match &written {
                    Ok(()) => Answer::Granted { token: lease.token },
                    Err(e) => {
                        self.undo_grant(&lease);
                        journal_failed(e)
                    }
                },
                Decided::Extended { token, renewed_at, expires_at, granted } => match &written {
                    Ok(()) => {
                        self.held.extend(token, renewed_at, expires_at);
                        if granted {
                            Answer::Granted { token }
                        } else {
                            Answer::Renewed(Some(expires_at))
                        }
                    }
                    Err(e) => journal_failed(e),
                },
                Decided::GrantedMany { tokens, new, extended } => match &written {
                    Ok(()) => {
                        for (token, renewed_at, expires_at) in extended {
                            self.held.extend(token, renewed_at, expires_at);
                        }
                        let mut all = [0; MAX_GROUP];
                        all[..tokens.len()].copy_from_slice(&tokens);
                        Answer::GrantedMany { count: tokens.len() as u8, tokens: all }
                    }
                    Err(e) => {
                        for lease in new.iter().rev() {
                            self.undo_grant(lease);
                        }
                        journal_failed(e)
                    }
                },
            };
            self.area.answer(taken, answer);
        }
    }

    /// One question, with any error it raises caught: the keeper goes on whatever happens.
    fn decide(&mut self, ask: Ask, requests: &[FixedRequest], records: &mut Vec<Record>) -> Decided {
        PgTryBuilder::new(AssertUnwindSafe(|| match ask {
            Ask::Grant(wanted) => self.grant(wanted, records),
            Ask::GrantMany(many) => self.grant_many(many, requests, records),
            Ask::Renew { database, token, ttl } => self.renew(database, token, ttl, records),
            Ask::Release { database, token, fenced } => {
                Decided::Final(self.release(database, token, fenced, records))
            }
        }))
        .catch_others(|error| {
            Decided::Final(Answer::Failed(Failure::Internal(ShortText::new(&message_of(&error)))))
        })
        .execute()
    }

    /// Expiries and compaction. An error here must not end the keeper: it is logged (once a
    /// minute at most) and the work tried again soon.
    fn housekeeping(&mut self) {
        let done = PgTryBuilder::new(AssertUnwindSafe(|| {
            self.expire();
            self.waiting = self.hold_waiting();
            self.journal_upkeep();
            Ok(())
        }))
        .catch_others(|error| Err(message_of(&error)))
        .execute();
        if let Err(message) = done {
            self.warn("housekeeping", &format!("lockhier lease keeper: {message}"));
            self.retry_expiry = true;
        }
    }

    fn grant(&mut self, wanted: Wanted, records: &mut Vec<Record>) -> Decided {
        let Wanted { database, owner, request, role, ttl, asker } = wanted;
        let now = clock::now();
        let wanted = request.request();
        match self.held.decide(database, &owner, role, &wanted) {
            Decision::Reentrant(token) => {
                let expires_at = self.held.find(database, token).map(|l| l.expires_at.max(now + micros(ttl)));
                let Some(expires_at) = expires_at else { return Decided::Final(Answer::Refused) };
                records.push(Record::Renew { token, renewed_at: now, expires_at });
                Decided::Extended { token, renewed_at: now, expires_at, granted: true }
            }
            Decision::Conflicts(_) => Decided::Final(Answer::Refused),
            // A lease request waiting in the server's queue for a conflicting scope goes first:
            // the asker is refused, and queues behind it (`engine::lease::handoff`).
            Decision::Free if self.area.handoff_in_the_way(database, asker, &wanted) => {
                Decided::Final(Answer::Refused)
            }
            Decision::Free => {
                if self.held.is_full() {
                    return Decided::Final(Answer::Failed(Failure::TooManyLeases(self.held.capacity())));
                }
                let Some(token) = self.tokens.issue() else {
                    return Decided::Final(Answer::Failed(Failure::Internal(ShortText::new(
                        "no token is left to hand out",
                    ))));
                };
                let lease = Lease {
                    database,
                    token,
                    owner,
                    request,
                    role,
                    ttl,
                    acquired_at: now,
                    renewed_at: now,
                    expires_at: now + micros(ttl),
                    held: true,
                };
                match locks::take(&lease) {
                    Taking::Taken => {}
                    Taking::Busy => return Decided::Final(Answer::Refused),
                    Taking::LockTableFull => return Decided::Final(Answer::Failed(Failure::LockTableFull)),
                }
                records.push(Record::Grant(Granted::from(&lease)));
                // Listed at once, so that the turn's later questions see it.
                self.held.add(lease);
                Decided::Granted(Box::new(lease))
            }
        }
    }

    /// Several leases, all or none, decided together in this turn: each as `grant` decides it
    /// (a request the owner holds gets that lease back), against the leases held and those
    /// granted before it in the turn, its group's included. The first refused or failed undoes
    /// the group's grants (its records are dropped with them) and is answered, by its index.
    /// The group's records go with the turn's, its grants one after the other, marked with the
    /// group when there are two or more (see `journal::Group`), then its renewals.
    fn grant_many(
        &mut self,
        many: WantedMany,
        requests: &[FixedRequest],
        records: &mut Vec<Record>,
    ) -> Decided {
        let WantedMany { database, owner, role, ttl, asker, count, .. } = many;
        if requests.is_empty() || requests.len() != count as usize {
            return Decided::Final(Answer::Failed(Failure::Internal(ShortText::new(
                "the requests of a lease_many did not reach the keeper",
            ))));
        }
        let mut tokens = Vec::with_capacity(requests.len());
        let mut new: Vec<Lease> = Vec::new();
        let mut extended = Vec::new();
        let mut mine = Vec::new();
        for (index, &request) in requests.iter().enumerate() {
            let wanted = Wanted { database, owner, request, role, ttl, asker };
            // An error taking one request undoes the others as a refusal does.
            let decided = PgTryBuilder::new(AssertUnwindSafe(|| self.grant(wanted, &mut mine)))
                .catch_others(|error| {
                    Decided::Final(Answer::Failed(Failure::Internal(ShortText::new(&message_of(&error)))))
                })
                .execute();
            match decided {
                Decided::Granted(lease) => {
                    tokens.push(lease.token);
                    new.push(*lease);
                }
                Decided::Extended { token, renewed_at, expires_at, .. } => {
                    tokens.push(token);
                    extended.push((token, renewed_at, expires_at));
                }
                Decided::Final(answer) => {
                    for lease in new.iter().rev() {
                        self.undo_grant(lease);
                    }
                    return Decided::Final(match answer {
                        Answer::Refused => Answer::RefusedAt { index: index as u8 },
                        other => other,
                    });
                }
                Decided::GrantedMany { .. } => unreachable!("grant decides one request"),
            }
        }
        let group = (new.len() > 1).then(|| Group { first: new[0].token, grants: new.len() as u32 });
        for record in &mut mine {
            if let Record::Grant(granted) = record {
                granted.group = group;
            }
        }
        // Stable: the grants stay in order, one after the other, before the renewals.
        mine.sort_by_key(|record| !matches!(record, Record::Grant(_)));
        records.extend(mine);
        Decided::GrantedMany { tokens, new, extended }
    }

    /// A grant whose record could not be written is not made.
    fn undo_grant(&mut self, lease: &Lease) {
        self.held.remove(lease.token);
        locks::release(lease);
    }

    /// A renewal not on disk is not made: its record goes with the turn's, and the new expiry
    /// applies once they are flushed.
    fn renew(
        &mut self,
        database: u32,
        token: i64,
        ttl: Option<Duration>,
        records: &mut Vec<Record>,
    ) -> Decided {
        let now = clock::now();
        let Some(lease) = self.find(database, token) else {
            return Decided::Final(Answer::Renewed(None));
        };
        let expires_at = now + micros(ttl.unwrap_or(lease.ttl));
        records.push(Record::Renew { token, renewed_at: now, expires_at });
        Decided::Extended { token, renewed_at: now, expires_at, granted: false }
    }

    /// Release a lease. When the asker holds the fence (`fenced`), no transaction has validated
    /// the lease; otherwise the keeper takes the fence itself, without waiting and on the hold
    /// it kept from the grant (no new lock-table entry), and answers `Fenced` if it cannot.
    fn release(&mut self, database: u32, token: i64, fenced: bool, records: &mut Vec<Record>) -> Answer {
        let Some(lease) = self.find(database, token) else { return Answer::Released(false) };
        if !lease.held {
            self.forget(&lease, records);
            return Answer::Released(true);
        }
        if !fenced && !lockmgr::try_fence(database, token, Fence::Exclusive, Hold::Session) {
            return Answer::Fenced;
        }
        self.forget(&lease, records);
        if !fenced {
            lockmgr::release_fence(database, token, Fence::Exclusive, Hold::Session);
        }
        Answer::Released(true)
    }

    /// A dropped database's leases guard nothing any more.
    fn forget_database(&mut self, database: u32, records: &mut Vec<Record>) {
        for lease in &self.held.in_database(database) {
            self.forget(lease, records);
        }
    }

    /// Let a lease go: out of the table first, so that whoever is granted its locks next no
    /// longer finds it listed, then its locks. Its record is written with the turn's; if that
    /// fails the release stands (at worst a restart brings the lease back until its ttl).
    fn forget(&mut self, lease: &Lease, records: &mut Vec<Record>) {
        records.push(Record::Release { token: lease.token });
        self.held.remove(lease.token);
        if lease.held {
            locks::release(lease);
        }
    }

    fn find(&self, database: u32, token: i64) -> Option<Lease> {
        self.held.find(database, token)
    }

    /// Release every lease whose ttl has run out, unless a transaction that validated it is
    /// still open (it holds the fence): that one is looked at again soon, and past
    /// `lockhier.fence_timeout` that transaction's backend is terminated.
    fn expire(&mut self) {
        let now = clock::now();
        let due = self.held.due(now);
        self.retry_expiry = false;
        let mut records = Vec::new();
        for lease in due {
            // Never held again since the restart: nobody could validate it.
            if !lease.held {
                self.forget(&lease, &mut records);
                continue;
            }
            // A second mode on the fence the keeper holds since the grant: no new entry.
            if !lockmgr::try_fence(lease.database, lease.token, Fence::Exclusive, Hold::Session) {
                self.retry_expiry = true;
                self.end_overdue_validators(&lease, now);
                continue;
            }
            self.forget(&lease, &mut records);
            lockmgr::release_fence(lease.database, lease.token, Fence::Exclusive, Hold::Session);
        }
        if let Err(e) = self.write(records, Durability::Written) {
            self.warn(
                "expiry not journaled",
                &format!("lockhier cannot journal the expiry of a lease (it expired all the same): {e}"),
            );
        }
    }

    /// A transaction that validated `lease` keeps it past its expiry plus the fence timeout:
    /// end it, as a watchdog ends a zombie primary, so that the lease can expire.
    fn end_overdue_validators(&mut self, lease: &Lease, now: Timestamp) {
        let limit = Duration::from_secs(FENCE_TIMEOUT.get().max(0) as u64);
        if now < lease.expires_at + micros(limit) {
            return;
        }
        for pid in lockmgr::fence_validators(lease.database, lease.token) {
            keeper_process::log(
                &format!(
                    "lockhier: terminating process {pid}: its transaction validated lease {} and kept it more than lockhier.fence_timeout ({} s) past its expiry",
                    lease.token,
                    limit.as_secs()
                ),
                true,
            );
            keeper_process::terminate(pid);
        }
    }

    /// Write records with one write (and a flush if `durability` asks), after the start's
    /// records if they are still unwritten (those are always flushed).
    fn write(&mut self, records: Vec<Record>, durability: Durability) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut all = std::mem::take(&mut self.preamble);
        let preamble_len = all.len();
        let durability = if preamble_len > 0 { Durability::Flushed } else { durability };
        all.extend(records);
        let written = self.journal.append_all(&all, durability);
        match &written {
            Ok(()) => all[..preamble_len].iter().for_each(|record| self.tokens.journaled(record)),
            Err(_) => self.preamble = all.drain(..preamble_len).collect(),
        }
        written
    }

    /// Off the request path: compact the journal when it has grown well past the leases it
    /// holds, and keep zeroed room ahead of its records.
    fn journal_upkeep(&mut self) {
        if let Err(e) = self.journal.flush_written(Some(Instant::now())) {
            self.warn("journal flush", &format!("lockhier cannot flush its lease journal: {e}"));
        }
        self.compact_if_large();
        if let Err(e) = self.journal.make_room() {
            self.warn("journal room", &format!("lockhier cannot extend its lease journal: {e}"));
        }
    }

    fn compact_if_large(&mut self) {
        let count = self.held.len();
        if self.journal.records() < COMPACT_AFTER || self.journal.records() < 4 * (count + 1) {
            return;
        }
        let leases = self.held.all();
        if let Err(e) = self.journal.compact(self.origin, &leases, self.tokens.high_water()) {
            self.warn("compaction", &format!("lockhier cannot compact its lease journal: {e}"));
        }
    }

    /// Log a warning, unless the same kind was logged less than a minute ago.
    fn warn(&mut self, kind: &'static str, message: &str) {
        let now = Instant::now();
        if self.warned.get(kind).is_some_and(|last| now.duration_since(*last) < WARN_EVERY) {
            return;
        }
        self.warned.insert(kind, now);
        keeper_process::log(message, true);
    }
}

/// A turn's records are flushed before its answers unless they are all releases: a release
/// lost in an operating-system crash only brings its lease back until its ttl, never gives a
/// lease two holders, so it is answered once written and flushed by `LATEST_FLUSH` (with the
/// next grant's flush under load): a lease cycle then costs one flush, not two.
fn durability_of(records: &[Record]) -> Durability {
    if records.iter().all(|r| matches!(r, Record::Release { .. })) {
        Durability::Written
    } else {
        Durability::Flushed
    }
}

fn micros(d: Duration) -> Timestamp {
    d.as_micros() as Timestamp
}

fn journal_failed(e: &std::io::Error) -> Answer {
    Answer::Failed(Failure::Journal(ShortText::new(&e.to_string())))
}

fn message_of(error: &CaughtError) -> String {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report.message().to_string(),
        CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}
