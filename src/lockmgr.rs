//! The only home of unsafe calls into PostgreSQL's lock manager, and of the internal
//! subtransaction that makes waiting in it safe to give up.
//!
//! Locks live in the advisory key space of `pg_advisory_xact_lock(bigint)` (`field4 = 1`), so
//! they show in `pg_locks` like any advisory lock and are queued, deadlock-checked, timed out
//! and released at commit, abort or disconnect by the server itself.

use crate::key;
use crate::lockmode::{LockMask, LockMode};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::panic::UnwindSafe;
use std::time::Duration;

/// How long a lock is kept: to the end of the transaction, or of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hold {
    Transaction,
    Session,
}

impl Hold {
    pub fn name(self) -> &'static str {
        match self {
            Hold::Transaction => "transaction",
            Hold::Session => "session",
        }
    }
}

/// The tag `pg_advisory_xact_lock(key)` uses, in the current database.
fn advisory_tag(key: i64) -> pg_sys::LOCKTAG {
    let (high, low) = key::split(key);
    pg_sys::LOCKTAG {
        // SAFETY: MyDatabaseId is set once at backend start-up, before any SQL function runs.
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        locktag_field2: high,
        locktag_field3: low,
        locktag_field4: 1,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

/// Take the lock if it can be had at once; never waits. Lock-table exhaustion raises
/// PostgreSQL's own "out of shared memory" error.
pub fn try_lock(key: i64, mode: LockMode, hold: Hold) -> bool {
    let tag = advisory_tag(key);
    // SAFETY: `tag` is a valid advisory LOCKTAG that LockAcquire only reads; with dontWait the
    // call never sleeps, and an ERROR it raises becomes a Rust panic at pgrx's FFI guard.
    let result =
        unsafe { pg_sys::LockAcquire(&tag, mode.number().into(), hold == Hold::Session, true) };
    result != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// Give back one hold of the lock. Returns false (and the lock manager warns) if it was not held.
pub fn unlock(key: i64, mode: LockMode, hold: Hold) -> bool {
    let tag = advisory_tag(key);
    // SAFETY: as for `try_lock`; LockRelease only decrements this backend's own counts.
    unsafe { pg_sys::LockRelease(&tag, mode.number().into(), hold == Hold::Session) }
}

/// Wait in the lock manager's own queue for the lock, at most `timeout` (`None`: only the
/// session's `lock_timeout` applies). A timeout, cancel or deadlock comes back as the error
/// PostgreSQL raised, with nothing of this lock held.
///
/// The wait always runs for a transaction-level lock inside an internal subtransaction. If the
/// wait is given up in the same instant the lock is granted, the lock manager's cleanup grants
/// it anyway (`LockErrorCleanup` -> `GrantAwaitedLock`); as a transaction lock of the
/// subtransaction, the rollback releases it. A session lock is then taken on top of the granted
/// lock, which is immediate because this backend already holds it.
pub fn lock_waiting(
    key: i64,
    mode: LockMode,
    hold: Hold,
    timeout: Option<Duration>,
) -> Result<(), CaughtError> {
    let tag = advisory_tag(key);
    in_subtransaction(move || {
        let _limit = timeout.map(LockTimeoutOverride::set);
        // SAFETY: as for `try_lock`; this call may sleep in ProcSleep, and any ERROR raised
        // there (timeout, cancel, deadlock) unwinds to `in_subtransaction`.
        unsafe { pg_sys::LockAcquire(&tag, mode.number().into(), false, false) };
        if hold == Hold::Session {
            let converted = try_lock(key, mode, Hold::Session);
            assert!(converted, "a lock this backend holds is always available to it");
            unlock(key, mode, Hold::Transaction);
        }
    })
}

/// Sets the server's `lock_timeout` for the duration of one wait and restores it when dropped,
/// which also happens while an ERROR unwinds through the wait.
struct LockTimeoutOverride {
    saved: i32,
}

impl LockTimeoutOverride {
    fn set(limit: Duration) -> LockTimeoutOverride {
        // lock_timeout counts whole milliseconds; 0 would mean "no limit".
        let millis = limit.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32;
        // SAFETY: LockTimeout is the GUC variable behind lock_timeout, read by ProcSleep when a
        // wait begins; this backend is single-threaded and nothing else runs in between.
        unsafe {
            let saved = pg_sys::LockTimeout;
            pg_sys::LockTimeout = millis;
            LockTimeoutOverride { saved }
        }
    }
}

impl Drop for LockTimeoutOverride {
    fn drop(&mut self) {
        // SAFETY: see `set`.
        unsafe { pg_sys::LockTimeout = self.saved };
    }
}

/// Run `f` as a PL/pgSQL block with an EXCEPTION clause runs its body: if it raises, everything
/// it did, transaction-level locks included, is rolled back and the error is returned.
fn in_subtransaction<T>(f: impl FnOnce() -> T + UnwindSafe) -> Result<T, CaughtError> {
    // SAFETY: the calling SQL function runs inside a transaction and outside parallel mode
    // (lockhier's functions are PARALLEL UNSAFE), where internal subtransactions are allowed.
    // The memory context and resource owner are restored on both paths, as PL/pgSQL does.
    unsafe {
        let memory_context = pg_sys::CurrentMemoryContext;
        let resource_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory_context);

        let result = PgTryBuilder::new(|| Ok(f())).catch_others(Err).execute();

        // By now PgTryBuilder has flushed the error state, as must happen before a rollback.
        match result {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(memory_context);
        pg_sys::CurrentResourceOwner = resource_owner;
        result
    }
}

/// Whether the error is a lock wait running out of `lock_timeout`.
pub fn is_lock_timeout(error: &CaughtError) -> bool {
    matches!(error, CaughtError::PostgresError(report)
        if report.sql_error_code() == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE)
}

/// One process's hold on (or wait for) an advisory key, as a row of `pg_locks` shows it.
#[derive(Clone, Debug)]
pub struct KeyHolder {
    pub key: i64,
    pub pid: i32,
    pub held: LockMask,
    /// The mode it is queued for on this key, if it is waiting.
    pub awaited: Option<u8>,
}

/// Every process holding or awaiting one of `keys` in this database, read from the lock
/// manager's status data (what `pg_locks` reads). Unlike `GetLockConflicts` this sees idle
/// sessions holding session locks. Costs a pass over the whole lock table: error path only.
pub fn holders_of(keys: &[i64]) -> Vec<KeyHolder> {
    let mut found = Vec::new();
    // SAFETY: GetLockStatusData returns a palloc'd snapshot (copied under the partition locks)
    // of `nelements` entries, which is read here and then freed.
    unsafe {
        let database = pg_sys::MyDatabaseId.to_u32();
        let data = pg_sys::GetLockStatusData();
        let entries = std::slice::from_raw_parts((*data).locks, (*data).nelements as usize);
        for entry in entries {
            let tag = &entry.locktag;
            if u32::from(tag.locktag_type) != pg_sys::LockTagType::LOCKTAG_ADVISORY
                || tag.locktag_field1 != database
                || tag.locktag_field4 != 1
            {
                continue;
            }
            let key = ((u64::from(tag.locktag_field2) << 32) | u64::from(tag.locktag_field3)) as i64;
            if keys.contains(&key) {
                found.push(KeyHolder {
                    key,
                    pid: entry.pid,
                    held: entry.holdMask as LockMask,
                    awaited: (entry.waitLockMode != 0).then_some(entry.waitLockMode as u8),
                });
            }
        }
        if !(*data).locks.is_null() {
            pg_sys::pfree((*data).locks.cast());
        }
        pg_sys::pfree(data.cast());
    }
    found
}

/// This backend's process id.
pub fn my_pid() -> i32 {
    // SAFETY: set once at backend start-up.
    unsafe { pg_sys::MyProcPid }
}
