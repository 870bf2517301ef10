//! Who is in the way of a request right now, read from the lock table and the backend status
//! array: on the error path and by `lockhier.blockers_*()`, which then word it alike
//! (`lockhier_core::holder`).

use crate::pg::{activity, lockmgr};
use lockhier_core::holder::{describe_conflict, Blocker};
use lockhier_core::key;
use lockhier_core::lockmode::{
    modes_conflict, pg_mode_name, strongest_conflicting, strongest_conflicting_mode,
};
use lockhier_core::plan::Plan;

/// Everyone in the way of `plan` right now, holders first; one entry per process, for the
/// first key of the plan (root to leaf) where it is in the way.
pub fn find(plan: &Plan) -> Vec<Blocker> {
    let mut keys: Vec<i64> = plan.steps().iter().map(|s| s.key).collect();
    keys.push(key::SENTINEL);
    let me = lockmgr::my_pid();
    let mut blockers: Vec<Blocker> = Vec::new();
    let entries = lockmgr::holders_of(&keys);
    let session_holders: Vec<i32> =
        entries.iter().filter(|e| e.key == key::SENTINEL && e.held != 0).map(|e| e.pid).collect();
    for step in plan.steps() {
        for entry in entries.iter().filter(|e| e.key == step.key && e.pid != me) {
            let held = strongest_conflicting(entry.held, step.mode);
            let awaited = entry.awaited.filter(|&m| step.mode.conflicts_with_any(1 << m));
            let Some((mode, granted)) = held.map(|m| (m, true)).or(awaited.map(|m| (m, false))) else {
                continue;
            };
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
            });
        }
    }
    with_backends(blockers)
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
            })
        })
        .collect();
    with_backends(blockers)
}

fn with_backends(mut blockers: Vec<Blocker>) -> Vec<Blocker> {
    let pids: Vec<i32> = blockers.iter().map(|b| b.pid).collect();
    let mut processes = activity::processes(&pids);
    for blocker in &mut blockers {
        blocker.process = processes.remove(&blocker.pid);
    }
    blockers.sort_by_key(|b| (!b.granted, b.pid));
    blockers
}
