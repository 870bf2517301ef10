//! Leases from a backend's side (the keeper's is `keeper`): taking one, waiting in the server's
//! queue when asked to; renewing; releasing and validating under the lease's fence; listing;
//! and the gate every lockhier request passes while the leases held before a restart are not
//! yet held again. See `docs/leases.md`.

use super::handoff;
use super::table::find;
use crate::engine::acquire::{self, Refused};
use crate::engine::holders;
use crate::pg::lockmgr::{self, Fence, Hold};
use crate::pg::{clock, dropped_databases, keeper_process, lease_area, roles, subxact, xact};
use lockhier_core::conflict::{Among, Conflict};
use lockhier_core::error::LockhierError;
use lockhier_core::lease::restore::{RestoreEvent, RestoreState};
use lockhier_core::lease::{
    shown_owner, Answer, Ask, Failure, FixedRequest, Lease, Owner, Wanted, WantedMany,
};
use lockhier_core::many;
use lockhier_core::plan::{Plan, Step};
use lockhier_core::{Request, Wait};
use std::time::{Duration, Instant};

/// Whether `_PG_init` runs as the server starts, with lockhier in shared_preload_libraries:
/// the only time leases can be set up.
pub fn preloading() -> bool {
    lease_area::preloading()
}

/// Called from `_PG_init` while lockhier is being preloaded: ask for the shared memory of
/// `capacity` leases and register the keeper. Otherwise leases stay unavailable.
pub fn install(capacity: usize) {
    if !preloading() {
        return;
    }
    lease_area::request(capacity, || super::journal_file::holds_live_leases(clock::now()));
    keeper_process::register();
    dropped_databases::register(forget_database);
}

/// A dropped database's leases guard nothing and can no longer be reached to be released:
/// the keeper lets them go at once rather than at their expiry. Runs after the drop committed,
/// where nothing may wait or raise, so the keeper is told, through slots of their own, not
/// asked. (Dropped while no keeper runs, in the second after one exited, they are held again
/// from the journal until their expiry: documented.)
fn forget_database(database: u32) {
    if let Some(area) = lease_area::area() {
        if !area.tell_dropped(database) {
            keeper_process::log(
                &format!("lockhier: the leases of dropped database {database} are kept until they expire: too many databases were dropped at once"),
                true,
            );
        }
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
    let Some(area) = lease_area::area() else { return Ok(()) };
    match area.restore_state() {
        RestoreState::Restored => return Ok(()),
        _ if xact::in_recovery() => return Ok(()),
        RestoreState::GivenUp => return Err(LockhierError::LeasesNotRestored),
        RestoreState::Restoring => {}
    }
    let started = Instant::now();
    while area.restore_state() != RestoreState::Restored {
        if started.elapsed() > RESTORE_WAIT {
            area.on_restore(RestoreEvent::WaitedTooLong);
            return Err(LockhierError::LeasesNotRestored);
        }
        pgrx::check_for_interrupts!();
        lease_area::wait_on_my_latch(Duration::from_millis(10));
    }
    Ok(())
}

/// The shared-memory area the keeper answers in, once leases can be asked for here: lockhier
/// preloaded, no recovery, the leases of before a restart held again, a keeper running.
fn area_with_keeper() -> Result<&'static lease_area::Area, LockhierError> {
    let area = lease_area::area().ok_or(LockhierError::LeasesNotLoaded)?;
    if xact::in_recovery() {
        return Err(LockhierError::LeasesInRecovery);
    }
    gate()?;
    wait_for_keeper(area)?;
    Ok(area)
}

/// The longest a lease call waits for a keeper to be running: the server starts it just after
/// it accepts connections, and restarts it a second after it exits.
const KEEPER_WAIT: Duration = Duration::from_secs(3);

/// A call made in the moment between the server's start (or a keeper's exit) and the keeper
/// announcing itself waits for it, as it waits for a restore, instead of failing.
fn wait_for_keeper(area: &lease_area::Area) -> Result<(), LockhierError> {
    let started = Instant::now();
    while area.keeper_pid().is_none() {
        if started.elapsed() > KEEPER_WAIT {
            return Err(LockhierError::KeeperNotRunning);
        }
        pgrx::check_for_interrupts!();
        lease_area::wait_on_my_latch(Duration::from_millis(10));
    }
    Ok(())
}

fn ask(area: &lease_area::Area, question: Ask) -> Result<Answer, LockhierError> {
    answered(area.ask(question))
}

/// The keeper's answer, or the error it stands for.
fn answered(answer: Option<Answer>) -> Result<Answer, LockhierError> {
    match answer {
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

/// When the caller names an owner, the lease must be that owner's or under it (a task checks
/// that the lock it ends is its own). A lease's owner never changes and its token is never
/// reused, so a check made before asking the keeper cannot be outdated by its answer.
fn owned_by(lease: &Lease, owner: Option<Owner>) -> Result<(), LockhierError> {
    match owner {
        Some(owner) if !owner.covers(&lease.owner) => Err(LockhierError::NotLeaseOwner {
            token: lease.token,
            owner: shown_owner(lease.owner.as_str()),
            asked: shown_owner(owner.as_str()),
        }),
        _ => Ok(()),
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
    let area = area_with_keeper()?;
    let question = Ask::Grant(Wanted {
        database: lockmgr::my_database(),
        owner,
        request: FixedRequest::of(&request),
        role: roles::current(),
        ttl,
        asker: lockmgr::my_pid(),
    });
    let plan = Plan::of(&request);
    let started = Instant::now();
    let mut waited = None;
    // A lease request that waits announces a handoff (`handoff`), once, after queueing behind
    // those announced before it; the keeper refuses a grant that would jump an announced one.
    let mut _announced = None;
    let mut queued_behind_handoffs = false;
    loop {
        match ask(area, question)? {
            Answer::Granted { token } => return Ok(Some(token)),
            Answer::Refused => {}
            other => return Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
        }
        // This session's own locks would be granted to it at once: waiting cannot help.
        let in_my_way = holders::find_for_lease(&plan).iter().any(|b| b.is_me);
        let may_wait = wait.has_time_left(started.elapsed());
        let free = if may_wait && !in_my_way {
            waited = Some(started.elapsed());
            let mut in_line = true;
            if !queued_behind_handoffs {
                queued_behind_handoffs = true;
                in_line = handoff::queue_behind_handoffs(&request, wait, started);
                if in_line {
                    _announced = handoff::announce(&request);
                }
            }
            in_line && wait_until_free(&plan, wait.left_after(started.elapsed()))
        } else {
            false
        };
        if !free {
            if !refusal_is_an_error {
                return Ok(None);
            }
            let waited = waited.map(|_| started.elapsed());
            let blockers = holders::find_for_lease(&plan);
            drop(plan);
            return Err(LockhierError::Conflict(Box::new(Conflict {
                request,
                blockers,
                waited,
                among: None,
            })));
        }
    }
}

/// Take several leases for `owner`, all or none: their tokens, one per request in the order of
/// `requests` (identical requests get the same lease); `None` when refused and the caller
/// asked for no error; else the conflict, naming the request refused (`requests[i] of n`).
/// The keeper decides the whole group in one turn (`keeper::grant_many`). When it refuses, the
/// call waits as `take` does, for every request's plan at once (in `many::taking_order`, with
/// one wait for them all), and asks again. It announces no handoff (docs/leases.md, "A lease
/// that waits"), but queues behind those announced, as any lockhier request does.
pub fn take_many(
    requests: Vec<Request>,
    owner: Owner,
    ttl: Duration,
    wait: Wait,
    refusal_is_an_error: bool,
) -> Result<Option<Vec<i64>>, LockhierError> {
    many::refuse_conflicting_members(&requests)?;
    let area = area_with_keeper()?;
    let (distinct, places) = many::distinct(&requests);
    let fixed: Vec<FixedRequest> = distinct.iter().map(FixedRequest::of).collect();
    let (database, role, asker) = (lockmgr::my_database(), roles::current(), lockmgr::my_pid());
    let question = |group, claim| {
        Ask::GrantMany(WantedMany {
            database,
            owner,
            role,
            ttl,
            asker,
            group,
            count: fixed.len() as u8,
            claim,
        })
    };
    let plans: Vec<Plan> = distinct.iter().map(Plan::of).collect();
    let order = many::taking_order(&distinct);
    let started = Instant::now();
    let mut waited = None;
    let mut queued_behind_handoffs = false;
    loop {
        let mut refused = match answered(area.ask_group(&fixed, question))? {
            Answer::GrantedMany { count, tokens } if count as usize == distinct.len() => {
                return Ok(Some(places.iter().map(|&place| tokens[place]).collect()));
            }
            Answer::RefusedAt { index } if (index as usize) < distinct.len() => index as usize,
            other => return Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
        };
        // This session's own locks would be granted to it at once: waiting cannot help.
        let in_my_way = plans.iter().any(|plan| holders::find_for_lease(plan).iter().any(|b| b.is_me));
        let may_wait = wait.has_time_left(started.elapsed());
        let free = if may_wait && !in_my_way {
            waited = Some(started.elapsed());
            // The error names the request the wait ended on, not the one the keeper refused.
            let mut behind = Ok(());
            if !queued_behind_handoffs {
                queued_behind_handoffs = true;
                if let Some(&k) =
                    order.iter().find(|&&k| !handoff::queue_behind_handoffs(&distinct[k], wait, started))
                {
                    behind = Err(k);
                }
            }
            match behind
                .and_then(|()| wait_until_all_free(&plans, &order, wait.left_after(started.elapsed())))
            {
                Ok(()) => true,
                Err(k) => {
                    refused = k;
                    false
                }
            }
        } else {
            false
        };
        if !free {
            if !refusal_is_an_error {
                return Ok(None);
            }
            // The first place in `requests` of the request refused.
            let index = places.iter().position(|&place| place == refused).unwrap_or(refused);
            let blockers = holders::find_for_lease(&plans[refused]);
            return Err(LockhierError::Conflict(Box::new(Conflict {
                request: requests[index].clone(),
                blockers,
                waited: waited.map(|_| started.elapsed()),
                among: Some(Among { index, of: requests.len() }),
            })));
        }
    }
}

/// `wait_until_free` for several plans at once, all or none, taken in `order` with one wait;
/// when the wait runs out, the place in `plans` of the plan it ran out on.
fn wait_until_all_free(plans: &[Plan], order: &[usize], wait: Wait) -> Result<(), usize> {
    let steps: Vec<Step> = order.iter().flat_map(|&k| plans[k].steps().iter().copied()).collect();
    let plan_of_step: Vec<usize> =
        order.iter().flat_map(|&k| std::iter::repeat_n(k, plans[k].steps().len())).collect();
    match subxact::probe(|| acquire::take_steps(&steps, Hold::Transaction, wait)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Refused { at, .. })) => Err(plan_of_step.get(at).copied().unwrap_or(order[0])),
        Err(error) => error.rethrow(),
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
pub fn renew(token: i64, ttl: Option<Duration>, owner: Option<Owner>) -> Result<bool, LockhierError> {
    let area = area_with_keeper()?;
    let Some(lease) = find(area, token) else { return Ok(false) };
    permitted(&lease)?;
    owned_by(&lease, owner)?;
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

/// The fence, taken in the server's queue; `None` when the lock table has no room for this
/// backend's hold on it (then the keeper fences instead, on the hold it keeps).
fn take_fence_unless_full(database: u32, token: i64, fence: Fence, hold: Hold) -> Option<FenceHeld> {
    let taken = match subxact::in_subtransaction(|| lockmgr::try_fence(database, token, fence, hold)) {
        Ok(true) => Ok(()),
        Ok(false) => lockmgr::fence_waiting(database, token, fence, hold),
        Err(error) => Err(error),
    };
    match taken {
        Ok(()) => Some(FenceHeld { database, token, fence, hold }),
        Err(error) if lockmgr::is_out_of_shared_memory(&error) => None,
        Err(error) => error.rethrow(),
    }
}

/// Release a lease: true if it was held. Waits, in the server's queue, for the transactions
/// that validated it to end.
pub fn release(token: i64, owner: Option<Owner>) -> Result<bool, LockhierError> {
    let area = area_with_keeper()?;
    let Some(lease) = find(area, token) else { return Ok(false) };
    permitted(&lease)?;
    owned_by(&lease, owner)?;
    let fence = take_fence_unless_full(lease.database, token, Fence::Exclusive, Hold::Session);
    release_fenced(area, &lease, fence.is_some())
}

/// Ask the keeper to release a lease. `fenced`: this backend holds the fence. Otherwise (a full
/// lock table) the keeper takes it without waiting and says `Fenced` while a transaction that
/// validated the lease is open: ask again until it has ended (a cancel or
/// `statement_timeout` ends the wait).
fn release_fenced(area: &lease_area::Area, lease: &Lease, fenced: bool) -> Result<bool, LockhierError> {
    let question = Ask::Release { database: lease.database, token: lease.token, fenced };
    loop {
        match ask(area, question)? {
            Answer::Released(was_held) => return Ok(was_held),
            Answer::Fenced if !fenced => {
                pgrx::check_for_interrupts!();
                lease_area::wait_on_my_latch(Duration::from_millis(10));
            }
            other => return Err(LockhierError::KeeperFailed(format!("unexpected answer {other:?}"))),
        }
    }
}

/// Release every lease of `owner`, and of every owner under it (`worker9/task-3` for
/// `worker9`), in this database under the caller's role (every role's, for a superuser): how
/// many. The same name used by another role is another owner, never in the way. All or none: every lease's fence is taken (waiting for the transactions that
/// validated it) before any is released, so a wait that is cancelled or runs out of
/// `lock_timeout` releases nothing. (On a full lock table, where this backend cannot hold
/// the fences, the leases are released one at a time under the keeper's.)
pub fn release_all(owner: Owner) -> Result<i32, LockhierError> {
    let area = area_with_keeper()?;
    let database = lockmgr::my_database();
    let everyone = roles::is_superuser();
    let me = roles::current();
    let mut owned: Vec<Lease> = area.read(|leases| {
        leases
            .iter()
            .filter(|l| l.database == database && owner.covers(&l.owner) && (everyone || l.role == me))
            .copied()
            .collect()
    });
    // One order for every caller, so that two of them do not each wait for the other's fence.
    owned.sort_by_key(|lease| lease.token);
    let mut fences = Vec::with_capacity(owned.len());
    for lease in &owned {
        fences.push(take_fence_unless_full(lease.database, lease.token, Fence::Exclusive, Hold::Session));
    }
    let mut released = 0;
    for (lease, fence) in owned.iter().zip(&fences) {
        if release_fenced(area, lease, fence.is_some())? {
            released += 1;
        }
    }
    drop(fences);
    Ok(released)
}

/// Whether the lease is held now. When it is, it stays held (neither released nor expired)
/// until the calling transaction ends: its fence is held in share mode until then.
pub fn valid(token: i64) -> Result<bool, LockhierError> {
    let area = area_with_keeper()?;
    let Some(lease) = find(area, token) else { return Ok(false) };
    permitted(&lease)?;
    let fence = take_fence(lease.database, token, Fence::Share, Hold::Transaction);
    // A lease of the journal not held again yet after a restart guards nothing.
    let held = find(area, token).is_some_and(|lease| lease.held);
    if held {
        // Kept to the end of the transaction, as transaction locks are.
        std::mem::forget(fence);
        FENCED.set(true);
    }
    Ok(held)
}

thread_local! {
    /// Whether this transaction validated a lease (it holds the lease's fence to its end).
    static FENCED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A transaction's end: its fences are released with its locks.
pub fn transaction_ended() {
    FENCED.set(false);
}

/// A prepared transaction keeps its locks with no backend to end it: one that validated a lease
/// would keep the lease from expiring, past `lockhier.fence_timeout` too. So it is refused.
pub fn refuse_prepare_while_fenced() -> Option<(&'static str, &'static str)> {
    FENCED.get().then_some((
        "cannot PREPARE a transaction that validated a lockhier lease",
        "A validated lease stays held until the transaction ends; commit or roll back the transaction that called lockhier.lease_valid.",
    ))
}
