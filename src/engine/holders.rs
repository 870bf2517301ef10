//! Who is in the way of a request right now, read from the lock table and the backend status
//! array: on the error path and by `lockhier.blockers_*()`, which then word it alike
//! (`lockhier_core::holder`).

use super::lease;
use crate::pg::{activity, clock, lease_area, lockmgr};
use lockhier_core::holder::{describe_conflict, describe_lease, Blocker, Expiry, LeaseHolder};
use lockhier_core::key;
use lockhier_core::lockmode::{
    modes_conflict, pg_mode_name, strongest_conflicting, strongest_conflicting_mode,
};
use lockhier_core::plan::Plan;
use std::time::Duration;

/// Everyone in the way of `plan` right now, holders first; one entry per process (or lease),
/// for the first key of the plan (root to leaf) where it is in the way. This session is left
/// out: its own locks never stand in the way of its transaction and session requests.
pub fn find(plan: &Plan) -> Vec<Blocker> {
    find_including(plan, false)
}

/// As `find`, for a lease request: the lease will be the keeper's, so this session's own locks
/// are in its way too, and are listed (`is_me`).
pub fn find_for_lease(plan: &Plan) -> Vec<Blocker> {
    find_including(plan, true)
}

fn find_including(plan: &Plan, me_too: bool) -> Vec<Blocker> {
    let mut keys: Vec<i64> = plan.steps().iter().map(|s| s.key).collect();
    keys.push(key::SENTINEL);
    let me = lockmgr::my_pid();
    let keeper = lease_area::area().and_then(|area| area.keeper_pid());
    let mut blockers: Vec<Blocker> = Vec::new();
    let entries = lockmgr::holders_of(&keys);
    let session_holders: Vec<i32> =
        entries.iter().filter(|e| e.key == key::SENTINEL && e.held != 0).map(|e| e.pid).collect();
    let mut keeper_in_the_way = false;
    for step in plan.steps() {
        for entry in entries.iter().filter(|e| e.key == step.key && (me_too || e.pid != me)) {
            let held = strongest_conflicting(entry.held, step.mode);
            let awaited = entry.awaited.filter(|&m| step.mode.conflicts_with_any(1 << m));
            let Some((mode, granted)) = held.map(|m| (m, true)).or(awaited.map(|m| (m, false))) else {
                continue;
            };
            if Some(entry.pid) == keeper {
                keeper_in_the_way = true;
                continue;
            }
            if blockers.iter().any(|b| b.pid == entry.pid) {
                continue;
            }
            blockers.push(Blocker {
                pid: entry.pid,
                granted,
                lock_mode: pg_mode_name(mode),
                key: step.key,
                conflict: describe_conflict(&step.target, mode),
                process: None,
                holds_session_locks: session_holders.contains(&entry.pid),
                prepared_xid: entry.prepared_xid,
                is_me: entry.pid == me,
                lease: None,
            });
        }
    }
    if let (true, Some(keeper)) = (keeper_in_the_way, keeper) {
        blockers.extend(leases_in_the_way(plan, keeper));
    }
    with_backends(blockers)
}

/// The leases whose locks are in the way of `plan`: for each, the first key of the plan where
/// one of its locks conflicts.
fn leases_in_the_way(plan: &Plan, keeper: i32) -> Vec<Blocker> {
    let now = clock::now();
    let ago = |t: i64| Duration::from_micros((now - t).max(0) as u64);
    let mut found = Vec::new();
    for lease in lease::table::list() {
        let request = lease.request.request();
        let theirs = Plan::of(&request);
        let first = plan.steps().iter().find_map(|step| {
            let held =
                theirs.steps().iter().find(|t| t.key == step.key && step.mode.conflicts_with(t.mode))?;
            Some((step, held.mode))
        });
        let Some((step, mode)) = first else { continue };
        found.push(Blocker {
            pid: keeper,
            granted: true,
            lock_mode: mode.pg_name(),
            key: step.key,
            conflict: describe_lease(&request),
            process: None,
            holds_session_locks: true,
            prepared_xid: None,
            is_me: false,
            lease: Some(LeaseHolder {
                token: lease.token,
                owner: lease.owner.as_str().to_string(),
                held_for: ago(lease.acquired_at),
                expiry: if lease.expires_at > now {
                    Expiry::In(Duration::from_micros((lease.expires_at - now) as u64))
                } else {
                    Expiry::RanOut(ago(lease.expires_at))
                },
            }),
        });
    }
    found
}

/// Everyone holding, or queued ahead for, a lock on relation `relid` that conflicts with
/// `wanted` (a PostgreSQL lock mode number).
pub fn of_relation(relid: pgrx::pg_sys::Oid, wanted: u8) -> Vec<Blocker> {
    let me = lockmgr::my_pid();
    let blockers = lockmgr::relation_holders(relid)
        .into_iter()
        .filter(|entry| entry.pid != me)
        .filter_map(|entry| {
            let held = strongest_conflicting_mode(entry.held, wanted);
            let awaited = entry.awaited.filter(|&m| modes_conflict(m, wanted));
            let (mode, granted) = held.map(|m| (m, true)).or(awaited.map(|m| (m, false)))?;
            Some(Blocker {
                pid: entry.pid,
                granted,
                lock_mode: pg_mode_name(mode),
                key: entry.key,
                conflict: format!("in {} mode", pg_mode_name(mode)),
                process: None,
                holds_session_locks: false,
                prepared_xid: entry.prepared_xid,
                is_me: false,
                lease: None,
            })
        })
        .collect();
    with_backends(blockers)
}

fn with_backends(mut blockers: Vec<Blocker>) -> Vec<Blocker> {
    let pids: Vec<i32> = blockers.iter().filter(|b| b.lease.is_none()).map(|b| b.pid).collect();
    let mut processes = activity::processes(&pids);
    for blocker in blockers.iter_mut().filter(|b| b.lease.is_none()) {
        blocker.process = processes.remove(&blocker.pid);
    }
    blockers.sort_by_key(|b| (!b.granted, b.pid));
    blockers
}
