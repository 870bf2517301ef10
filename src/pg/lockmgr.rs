//! The only home of unsafe calls into PostgreSQL's lock manager.
//!
//! Locks live in the advisory key space of `pg_advisory_xact_lock(bigint)` (`field4 = 1`), so
//! they show in `pg_locks` like any advisory lock and are queued, deadlock-checked, timed out
//! and released at commit, abort or disconnect by the server itself.

use super::subxact;
use lockhier_core::key;
use lockhier_core::lockmode::{LockMask, LockMode};
pub use lockhier_core::request::Hold;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::time::Duration;

/// The tag `pg_advisory_xact_lock(key)` uses, in the current database.
fn advisory_tag(key: i64) -> pg_sys::LOCKTAG {
    advisory_tag_in(my_database(), key, 1)
}

/// An advisory tag of `database`: `kind` 1 is the key space of `pg_advisory_xact_lock(bigint)`
/// (lockhier's locks), 3 that of lease fences (`objsubid = 3` in `pg_locks`), which no SQL
/// function reaches.
fn advisory_tag_in(database: u32, key: i64, kind: u16) -> pg_sys::LOCKTAG {
    let (high, low) = key::split(key);
    pg_sys::LOCKTAG {
        locktag_field1: database,
        locktag_field2: high,
        locktag_field3: low,
        locktag_field4: kind,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

const FENCE: u16 = 3;

/// Take the lock if it can be had at once; never waits. A full lock table raises PostgreSQL's
/// own "out of shared memory" error (53200), with nothing of this lock taken.
pub fn try_lock(key: i64, mode: LockMode, hold: Hold) -> bool {
    try_tag(&advisory_tag(key), mode.number().into(), hold)
}

/// Give back one hold of the lock. Returns false (and the lock manager warns) if it was not held.
pub fn unlock(key: i64, mode: LockMode, hold: Hold) -> bool {
    release_tag(&advisory_tag(key), mode.number().into(), hold)
}

/// As `try_lock`, as a session lock of `database` (the lease keeper, connected to none).
pub fn try_lock_in(database: u32, key: i64, mode: LockMode) -> bool {
    try_tag(&advisory_tag_in(database, key, 1), mode.number().into(), Hold::Session)
}

/// As `unlock`, for a session lock of `database`.
pub fn unlock_in(database: u32, key: i64, mode: LockMode) -> bool {
    release_tag(&advisory_tag_in(database, key, 1), mode.number().into(), Hold::Session)
}

/// A lease's fence: validating a lease holds it in share mode to the end of the transaction;
/// releasing or expiring the lease needs it in exclusive mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    Share,
    Exclusive,
    /// The keeper's hold from the grant to the lease's end. With it the keeper's exclusive
    /// fence at expiry is a second mode on a lock it already holds, which needs no new entry
    /// in the lock table: a full lock table cannot stop an expiry. `AccessShareLock` conflicts
    /// with neither share nor exclusive.
    Kept,
}

impl Fence {
    fn mode(self) -> pg_sys::LOCKMODE {
        match self {
            Fence::Share => pg_sys::ShareLock as pg_sys::LOCKMODE,
            Fence::Exclusive => pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
            Fence::Kept => pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        }
    }
}

/// Whether this backend holds `key` in a mode that conflicts with `mode` (its own local lock
/// table: no shared memory is read).
pub fn held_in_conflict(key: i64, mode: LockMode) -> bool {
    let tag = advisory_tag(key);
    [LockMode::RowShare, LockMode::RowExclusive, LockMode::Share, LockMode::Exclusive]
        .into_iter()
        .filter(|held| mode.conflicts_with_any(1 << held.number()))
        .any(|held| super::version::lock_held_by_me(&tag, held.number().into()))
}

/// The key space of handoff locks (`objsubid = 4`): a backend whose lease request waits holds
/// its handoff's lock in exclusive mode, and a conflicting lockhier request queues for it in
/// share mode before taking its own locks (`lease_area::handoffs`).
const HANDOFF: u16 = 4;

/// Take the handoff lock `id` (unique: always available) as a session lock, so that the
/// subtransactions the wait runs in do not give it back.
pub fn take_handoff(id: i64) {
    let tag = advisory_tag_in(my_database(), id, HANDOFF);
    try_tag(&tag, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, Hold::Session);
}

pub fn release_handoff(id: i64) {
    let tag = advisory_tag_in(my_database(), id, HANDOFF);
    release_tag(&tag, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, Hold::Session);
}

/// Queue behind the handoff `id` in the server's queue (at most `timeout`), then give the lock
/// back at once: true when the handoff has ended, false when the wait ran out. A cancel or a
/// deadlock is raised.
pub fn wait_behind_handoff(id: i64, timeout: Option<Duration>) -> bool {
    let tag = advisory_tag_in(my_database(), id, HANDOFF);
    let share = pg_sys::ShareLock as pg_sys::LOCKMODE;
    if try_tag(&tag, share, Hold::Transaction) {
        release_tag(&tag, share, Hold::Transaction);
        return true;
    }
    if timeout.is_some_and(|t| t.is_zero()) {
        return false;
    }
    // SAFETY: reading the current resource owner, the one the wait's lock is handed to.
    let caller = unsafe { pg_sys::CurrentResourceOwner };
    match wait_for_tag(tag, share, Hold::Transaction, timeout, caller) {
        Ok(()) => {
            release_tag(&tag, share, Hold::Transaction);
            true
        }
        Err(error) if is_lock_timeout(&error) => false,
        Err(error) => error.rethrow(),
    }
}

/// The processes holding or awaiting the lease's fence in share mode: transactions that
/// validated it (or are validating it). Costs a pass over the whole lock table.
pub fn fence_validators(database: u32, token: i64) -> Vec<i32> {
    let (high, low) = key::split(token);
    let share = 1 << pg_sys::ShareLock;
    let mut pids = Vec::new();
    for_each_lock(|entry| {
        let tag = &entry.locktag;
        if u32::from(tag.locktag_type) == pg_sys::LockTagType::LOCKTAG_ADVISORY
            && tag.locktag_field1 == database
            && (tag.locktag_field2, tag.locktag_field3, tag.locktag_field4) == (high, low, FENCE)
            && (entry.holdMask & share != 0 || entry.waitLockMode == pg_sys::ShareLock as i32)
            && entry.pid != 0
            && !pids.contains(&entry.pid)
        {
            pids.push(entry.pid);
        }
    });
    pids
}

/// A fence held for a transaction belongs to the top transaction, not to the savepoint the
/// validation ran in: `lease_valid` promises the lease until the transaction ends, and a
/// `ROLLBACK TO` must not end that promise while the transaction goes on writing.
fn fence_owner() -> pg_sys::ResourceOwner {
    // SAFETY: the top transaction's resource owner, live while a transaction is (and fences
    // for a transaction are only taken inside one).
    unsafe { pg_sys::TopTransactionResourceOwner }
}

pub fn try_fence(database: u32, token: i64, fence: Fence, hold: Hold) -> bool {
    let tag = advisory_tag_in(database, token, FENCE);
    match hold {
        Hold::Session => try_tag(&tag, fence.mode(), hold),
        Hold::Transaction => {
            subxact::with_resource_owner(fence_owner(), || try_tag(&tag, fence.mode(), hold))
        }
    }
}

/// Wait for the fence in the lock manager's queue, as `lock_waiting` does for a key.
pub fn fence_waiting(database: u32, token: i64, fence: Fence, hold: Hold) -> Result<(), CaughtError> {
    wait_for_tag(advisory_tag_in(database, token, FENCE), fence.mode(), hold, None, fence_owner())
}

pub fn release_fence(database: u32, token: i64, fence: Fence, hold: Hold) -> bool {
    let tag = advisory_tag_in(database, token, FENCE);
    match hold {
        Hold::Session => release_tag(&tag, fence.mode(), hold),
        Hold::Transaction => {
            subxact::with_resource_owner(fence_owner(), || release_tag(&tag, fence.mode(), hold))
        }
    }
}

fn try_tag(tag: &pg_sys::LOCKTAG, mode: pg_sys::LOCKMODE, hold: Hold) -> bool {
    // SAFETY: `tag` is a valid advisory LOCKTAG that LockAcquire only reads; with dontWait the
    // call never sleeps, and an ERROR it raises becomes a Rust panic at pgrx's FFI guard.
    let result = unsafe { pg_sys::LockAcquire(tag, mode, hold == Hold::Session, true) };
    result != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

fn release_tag(tag: &pg_sys::LOCKTAG, mode: pg_sys::LOCKMODE, hold: Hold) -> bool {
    // SAFETY: as for `try_tag`; LockRelease only decrements this backend's own counts.
    unsafe { pg_sys::LockRelease(tag, mode, hold == Hold::Session) }
}

/// Wait in the lock manager's own queue for the lock, at most `timeout` (`None`: only the
/// session's `lock_timeout` applies). A timeout, cancel or deadlock comes back as the error
/// PostgreSQL raised, with nothing of this lock held.
pub fn lock_waiting(
    key: i64,
    mode: LockMode,
    hold: Hold,
    timeout: Option<Duration>,
) -> Result<(), CaughtError> {
    // SAFETY: reading the current resource owner, the one the caller's locks belong to.
    let caller = unsafe { pg_sys::CurrentResourceOwner };
    wait_for_tag(advisory_tag(key), mode.number().into(), hold, timeout, caller)
}

/// The wait runs inside an internal subtransaction, for a lock owned by that subtransaction.
/// If the wait is given up in the same instant the lock is granted, the lock manager's cleanup
/// grants it anyway (`LockErrorCleanup` -> `GrantAwaitedLock`), and the rollback releases it.
/// Once granted, the lock is taken again for whoever must own it (`owner` for a transaction
/// hold, or the session), which is immediate because this backend already holds it, and the
/// subtransaction's hold is dropped. So the hold ends up where a release will look for it.
fn wait_for_tag(
    tag: pg_sys::LOCKTAG,
    mode: pg_sys::LOCKMODE,
    hold: Hold,
    timeout: Option<Duration>,
    owner: pg_sys::ResourceOwner,
) -> Result<(), CaughtError> {
    subxact::in_subtransaction(move || {
        {
            let _limit = timeout.map(subxact::LockTimeoutOverride::set);
            // SAFETY: as for `try_tag`; this call may sleep in ProcSleep, and any ERROR
            // raised there (timeout, cancel, deadlock) unwinds to `in_subtransaction`.
            unsafe { pg_sys::LockAcquire(&tag, mode, false, false) };
        }
        // A lock_timeout that fired just as the lock was granted is still pending: raise it
        // here, where the rollback undoes the grant, rather than after the call returned.
        pg_sys::check_for_interrupts!();
        let rehomed = match hold {
            Hold::Session => try_tag(&tag, mode, Hold::Session),
            Hold::Transaction => {
                subxact::with_resource_owner(owner, || try_tag(&tag, mode, Hold::Transaction))
            }
        };
        assert!(rehomed, "a lock this backend holds is always available to it");
        release_tag(&tag, mode, Hold::Transaction);
    })
}

/// The key lockhier holds in `AccessShareLock` as a session lock while this session holds
/// any lockhier session request. `pg_advisory_unlock_all()` and `DISCARD ALL` release every
/// session advisory lock, this one included: its absence tells that lockhier's record of
/// session requests no longer matches the lock manager. `AccessShareLock` conflicts with
/// nothing an advisory lock is taken in, so every session shares the key without waiting.
const SENTINEL_MODE: u32 = pg_sys::AccessShareLock;

/// Take the sentinel. It can fail only as any lock can, with "out of shared memory" (53200)
/// when the lock table is full; no mode ever taken on an advisory key conflicts with
/// `AccessShareLock`, so the lock manager never answers "not available".
pub fn take_sentinel() {
    let tag = advisory_tag(key::SENTINEL);
    // SAFETY: as for `try_lock`.
    let result = unsafe { pg_sys::LockAcquire(&tag, SENTINEL_MODE as i32, true, true) };
    assert_ne!(
        result,
        pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL,
        "lockhier's sentinel lock conflicts with nothing and must always be available"
    );
}

pub fn drop_sentinel() {
    let tag = advisory_tag(key::SENTINEL);
    // SAFETY: as for `unlock`.
    unsafe { pg_sys::LockRelease(&tag, SENTINEL_MODE as i32, true) };
}

pub fn sentinel_held() -> bool {
    // The sentinel is only ever taken as a session lock, so held means held by the session.
    super::version::lock_held_by_me(&advisory_tag(key::SENTINEL), SENTINEL_MODE as pg_sys::LOCKMODE)
}

/// Whether the error is the lock table being full ("out of shared memory", 53200).
pub fn is_out_of_shared_memory(error: &CaughtError) -> bool {
    matches!(error, CaughtError::PostgresError(report)
        if report.sql_error_code() == PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY)
}

/// Whether the error is a lock wait running out of `lock_timeout`.
pub fn is_lock_timeout(error: &CaughtError) -> bool {
    matches!(error, CaughtError::PostgresError(report)
        if report.sql_error_code() == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE)
}

/// One process's hold on (or wait for) a lock, as a row of `pg_locks` shows it.
#[derive(Clone, Debug)]
pub struct KeyHolder {
    /// The advisory key, or the relation's OID (as an i64) for relation locks.
    pub key: i64,
    pub pid: i32,
    pub held: LockMask,
    /// The mode it is queued for on this lock, if it is waiting.
    pub awaited: Option<u8>,
    /// For a prepared transaction (pid 0), its xid.
    pub prepared_xid: Option<u32>,
}

/// Every process holding or awaiting one of `keys` in this database, read from the lock
/// manager's status data (what `pg_locks` reads). Unlike `GetLockConflicts` this sees idle
/// sessions holding session locks. Costs a pass over the whole lock table: error path only.
pub fn holders_of(keys: &[i64]) -> Vec<KeyHolder> {
    let database = my_database();
    lock_entries(|tag| {
        let advisory = u32::from(tag.locktag_type) == pg_sys::LockTagType::LOCKTAG_ADVISORY
            && tag.locktag_field1 == database
            && tag.locktag_field4 == 1;
        let key = ((u64::from(tag.locktag_field2) << 32) | u64::from(tag.locktag_field3)) as i64;
        (advisory && keys.contains(&key)).then_some(key)
    })
}

/// Every process holding or awaiting a lock on relation `relid` (of this database, or shared).
pub fn relation_holders(relid: pg_sys::Oid) -> Vec<KeyHolder> {
    let database = my_database();
    lock_entries(|tag| {
        let relation = u32::from(tag.locktag_type) == pg_sys::LockTagType::LOCKTAG_RELATION
            && (tag.locktag_field1 == database || tag.locktag_field1 == 0)
            && tag.locktag_field2 == relid.to_u32();
        relation.then_some(i64::from(relid.to_u32()))
    })
}

/// The entries `key_of` picks. A prepared transaction's entries show pid 0 and carry the
/// virtual xid of the session that prepared it; its xid is found from the lock it holds on its
/// own transaction id, which carries the same virtual xid.
fn lock_entries(mut key_of: impl FnMut(&pg_sys::LOCKTAG) -> Option<i64>) -> Vec<KeyHolder> {
    let mut found = Vec::new();
    let mut prepared_vxids = Vec::new();
    let mut prepared_xids = Vec::new();
    for_each_lock(|entry| {
        let tag = &entry.locktag;
        if entry.pid == 0 && u32::from(tag.locktag_type) == pg_sys::LockTagType::LOCKTAG_TRANSACTION {
            prepared_xids.push((super::version::virtual_xid(entry), tag.locktag_field1));
        }
        if let Some(key) = key_of(tag) {
            found.push(KeyHolder {
                key,
                pid: entry.pid,
                held: entry.holdMask as LockMask,
                awaited: (entry.waitLockMode != 0).then_some(entry.waitLockMode as u8),
                prepared_xid: None,
            });
            prepared_vxids.push((entry.pid == 0).then(|| super::version::virtual_xid(entry)));
        }
    });
    for (holder, vxid) in found.iter_mut().zip(prepared_vxids) {
        holder.prepared_xid =
            vxid.and_then(|vxid| prepared_xids.iter().find(|(v, _)| *v == vxid).map(|&(_, xid)| xid));
    }
    found
}

/// The OID of the database this backend is connected to.
pub fn my_database() -> u32 {
    // SAFETY: MyDatabaseId is set once at backend start-up, before any SQL function runs.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// The process running each of `xids` (top-level or subtransaction ids), from the lock every
/// transaction holds on its own id.
pub fn transaction_owners(xids: &[u32]) -> Vec<(u32, i32)> {
    let exclusive = 1 << pg_sys::ExclusiveLock;
    let mut owners = Vec::new();
    for_each_lock(|entry| {
        let tag = &entry.locktag;
        if u32::from(tag.locktag_type) == pg_sys::LockTagType::LOCKTAG_TRANSACTION
            && xids.contains(&tag.locktag_field1)
            && entry.holdMask & exclusive != 0
        {
            owners.push((tag.locktag_field1, entry.pid));
        }
    });
    owners
}

/// Visit a copy of every entry of the lock table.
fn for_each_lock(mut visit: impl FnMut(&pg_sys::LockInstanceData)) {
    // SAFETY: GetLockStatusData returns a palloc'd snapshot of the lock table, copied under the
    // partition locks; it is only read here, then freed.
    let data = unsafe { pg_sys::GetLockStatusData() };
    // SAFETY: `data` points to the LockData just returned.
    let status = unsafe { &*data };
    let (locks, count) = (status.locks, status.nelements);
    if count > 0 {
        // SAFETY: `locks` holds `nelements` entries.
        let entries = unsafe { std::slice::from_raw_parts(locks, count as usize) };
        // `visit` cannot raise a PostgreSQL error, so nothing leaks past the frees below.
        entries.iter().for_each(&mut visit);
    }
    if !locks.is_null() {
        // SAFETY: the array was palloc'd by GetLockStatusData and is not used after this.
        unsafe { pg_sys::pfree(locks.cast()) };
    }
    // SAFETY: as above, for the LockData itself.
    unsafe { pg_sys::pfree(data.cast()) };
}

/// PostgreSQL's own answer to "do lock modes `a` and `b` (1..=8) conflict?", for checking
/// lockhier's copy of the table against the server it runs in.
#[cfg(any(test, feature = "pg_test"))]
pub fn server_modes_conflict(a: u8, b: u8) -> bool {
    // SAFETY: DoLockModesConflict only reads the default lock method's conflict table.
    unsafe { pg_sys::DoLockModesConflict(i32::from(a), i32::from(b)) }
}

/// This backend's process id.
pub fn my_pid() -> i32 {
    // SAFETY: set once at backend start-up.
    unsafe { pg_sys::MyProcPid }
}
