//! Leases from a backend's side (the keeper's is `keeper`): taking one, waiting in the server's
//! queue when asked to; renewing; releasing and validating under the lease's fence; listing;
//! and the gate every lockhier request passes while the leases held before a restart are not
//! yet held again. See `docs/leases.md`.

use super::acquire::{self, Refused};
use super::holders;
use super::lease_table::find;
use crate::pg::lockmgr::{self, Fence, Hold};
use crate::pg::{clock, dropped_databases, keeper_process, roles, shmem, subxact, xact};
use lockhier_core::error::{Conflict, LockhierError};
use lockhier_core::lease::{Answer, Ask, Failure, FixedRequest, Lease, Owner};
use lockhier_core::plan::Plan;
use lockhier_core::{Request, Wait};
use std::time::{Duration, Instant};

/// Whether `_PG_init` runs as the server starts, with lockhier in shared_preload_libraries:
/// the only time leases can be set up.
pub fn preloading() -> bool {
    shmem::preloading()
}

/// Called from `_PG_init` while lockhier is being preloaded: ask for the shared memory of
/// `capacity` leases and register the keeper. Otherwise leases stay unavailable.
pub fn install(capacity: usize) {
    if !preloading() {
        return;
    }
    shmem::request(capacity, || super::journal_file::holds_live_leases(clock::now()));
    keeper_process::register(super::keeper::run);
    dropped_databases::register(forget_database);
}

/// A dropped database's leases guard nothing and can no longer be reached to be released:
/// the keeper lets them go at once rather than at their expiry. Runs after the drop committed,
/// where nothing may wait or raise, so the keeper is told, not asked. (Dropped while no keeper
/// runs, in the second after one exited, they are held again from the journal until their
/// expiry: documented.)
fn forget_database(database: u32) {
    if let Some(area) = shmem::area() {
        area.tell(Ask::ForgetDatabase { database });
    }
}

/// The name of a role, for the `leases` view (`None` if it was dropped).
pub fn role_name(role: u32) -> Option<String> {
    roles::name(role)
}

/// How long a lockhier request waits for the leases held before a restart to be held again.
const RESTORE_WAIT: Duration = Duration::from_secs(10);

/// Every lockhier request passes here before it takes anything: one atomic read once the
/// leases are restored, nothing at all without `shared_preload_libraries`.
pub fn gate() -> Result<(), LockhierError> {
    let Some(area) = shmem::area() else { return Ok(()) };
    if area.restored() || xact::in_recovery() {
        return Ok(());
    }
    if area.restore_given_up() {
        return Err(LockhierError::LeasesNotRestored);
    }
    let started = Instant::now();
    while !area.restored() {
        if started.elapsed() > RESTORE_WAIT {
            area.give_up_restore();
            return Err(LockhierError::LeasesNotRestored);
        }
        pgrx::check_for_interrupts!();
        shmem::wait_on_my_latch(Duration::from_millis(10));
    }
    Ok(())
}

/// The shared area, once leases can be asked for here.
fn keeper() -> Result<&'static shmem::Area, LockhierError> {
    let area = shmem::area().ok_or(LockhierError::LeasesNotLoaded)?;
    if xact::in_recovery() {
        return Err(LockhierError::LeasesInRecovery);
    }
    gate()?;
    area.keeper_pid().ok_or(LockhierError::KeeperNotRunning)?;
    Ok(area)
}

fn ask(area: &shmem::Area, question: Ask) -> Result<Answer, LockhierError> {
    match area.ask(question) {
        None => Err(LockhierError::KeeperNotRunning),
        Some(Answer::Failed(failure)) => Err(match failure {
            Failure::TooManyLeases(n) => LockhierError::TooManyLeases(n),
            Failure::LockTableFull => LockhierError::LockTableFull,
            Failure::Journal(why) => LockhierError::JournalFailed(why.as_str().to_string()),
            Failure::Internal(why) => LockhierError::KeeperFailed(why.as_str().to_string()),
        }),
        Some(answer) => Ok(answer),
    }
}

/// Renewing, releasing and validating a lease need the privileges of the role that took it.
fn permitted(lease: &Lease) -> Result<(), LockhierError> {
    if roles::may_act_as(lease.role) {
        Ok(())
    } else {
        Err(LockhierError::LeasePermission { token: lease.token, owner: lease.owner.as_str().to_string() })
    }
}

/// Take a lease: its token; `None` when it is refused and the caller asked for no error; else
/// the conflict, naming who is in the way. When the keeper refuses, the call waits (as `wait`
/// allows) in the server's queue for the plan's locks to be free, gives them back at once, and
/// asks again.
pub fn take(
    request: Request,
    owner: Owner,
    ttl: Duration,
    wait: Wait,
    refusal_is_an_error: bool,
) -> Result<Option<i64>, LockhierError> {
    let area = keeper()?;
    let question = Ask::Grant {
        database: lockmgr::my_database(),
        owner,
        request: FixedRequest::of(&request),
        role: roles::current(),
        ttl,
    };
    let plan = Plan::of(&request);
    let started = Instant::now();
    let mut waited = None;
    loop {
        match ask(area, question)? {
            Answer::Granted { token } => return Ok(Some(token)),
            Answer::Refused => {}
            other => return Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
        }
        // This session's own locks would be granted to it at once: waiting cannot help.
        let in_my_way = holders::find_for_lease(&plan).iter().any(|b| b.is_me);
        let left = match wait {
            Wait::No => None,
            Wait::UpTo(limit) => {
                limit.checked_sub(started.elapsed()).filter(|left| !left.is_zero()).map(Wait::UpTo)
            }
            Wait::Unbounded => Some(Wait::Unbounded),
        };
        let free = match left {
            Some(left) if !in_my_way => {
                waited = Some(started.elapsed());
                wait_until_free(&plan, left)
            }
            _ => false,
        };
        if !free {
            if !refusal_is_an_error {
                return Ok(None);
            }
            let waited = waited.map(|_| started.elapsed());
            let blockers = holders::find_for_lease(&plan);
            drop(plan);
            return Err(LockhierError::Conflict(Box::new(Conflict { request, blockers, waited })));
        }
    }
}

/// Queue for the plan's locks as a transaction request would, and give them back as soon as
/// they are all granted (a subtransaction that is always rolled back): true then, false when
/// the wait ran out. A cancel or deadlock is raised.
fn wait_until_free(plan: &Plan, wait: Wait) -> bool {
    match subxact::probe(|| acquire::take(plan, Hold::Transaction, wait)) {
        Ok(Ok(())) => true,
        Ok(Err(Refused { .. })) => false,
        Err(error) => error.rethrow(),
    }
}

/// Renew a lease: true with its expiry moved to now + `ttl` (its own ttl when `None`), false
/// when it is no longer held.
pub fn renew(token: i64, ttl: Option<Duration>) -> Result<bool, LockhierError> {
    let area = keeper()?;
    let Some(lease) = find(area, token) else { return Ok(false) };
    permitted(&lease)?;
    match ask(area, Ask::Renew { database: lease.database, token, ttl })? {
        Answer::Renewed(expiry) => Ok(expiry.is_some()),
        other => Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
    }
}

/// Holds a lease's fence until dropped.
struct FenceHeld {
    database: u32,
    token: i64,
    fence: Fence,
    hold: Hold,
}

impl Drop for FenceHeld {
    fn drop(&mut self) {
        lockmgr::release_fence(self.database, self.token, self.fence, self.hold);
    }
}

fn take_fence(database: u32, token: i64, fence: Fence, hold: Hold) -> FenceHeld {
    if !lockmgr::try_fence(database, token, fence, hold) {
        if let Err(error) = lockmgr::fence_waiting(database, token, fence, hold) {
            error.rethrow();
        }
    }
    FenceHeld { database, token, fence, hold }
}

/// Release a lease: true if it was held. Waits, in the server's queue, for the transactions
/// that validated it to end.
pub fn release(token: i64) -> Result<bool, LockhierError> {
    let area = keeper()?;
    let Some(lease) = find(area, token) else { return Ok(false) };
    permitted(&lease)?;
    let _fence = take_fence(lease.database, token, Fence::Exclusive, Hold::Session);
    match ask(area, Ask::Release { database: lease.database, token })? {
        Answer::Released(was_held) => Ok(was_held),
        other => Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
    }
}

/// Release every lease `owner` holds in this database: how many. All or none: every lease's
/// fence is taken (waiting for the transactions that validated it) before any is released, so
/// a wait that is cancelled or runs out of `lock_timeout` releases nothing.
pub fn release_all(owner: Owner) -> Result<i32, LockhierError> {
    let area = keeper()?;
    let database = lockmgr::my_database();
    let mut owned: Vec<Lease> = area.read(|leases| {
        leases.iter().filter(|l| l.database == database && l.owner == owner).copied().collect()
    });
    owned.iter().try_for_each(permitted)?;
    // One order for every caller, so that two of them do not each wait for the other's fence.
    owned.sort_by_key(|lease| lease.token);
    let mut fences = Vec::with_capacity(owned.len());
    for lease in &owned {
        fences.push(take_fence(lease.database, lease.token, Fence::Exclusive, Hold::Session));
    }
    let mut released = 0;
    for lease in &owned {
        match ask(area, Ask::Release { database: lease.database, token: lease.token })? {
            Answer::Released(true) => released += 1,
            Answer::Released(false) => {}
            other => return Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
        }
    }
    drop(fences);
    Ok(released)
}

/// Whether the lease is held now. When it is, it stays held (neither released nor expired)
/// until the calling transaction ends: its fence is held in share mode until then.
pub fn valid(token: i64) -> Result<bool, LockhierError> {
    let area = keeper()?;
    let Some(lease) = find(area, token) else { return Ok(false) };
    permitted(&lease)?;
    let fence = take_fence(lease.database, token, Fence::Share, Hold::Transaction);
    let held = find(area, token).is_some();
    if held {
        // Kept to the end of the transaction, as transaction locks are.
        std::mem::forget(fence);
    }
    Ok(held)
}
