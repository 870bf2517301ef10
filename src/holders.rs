//! Who is in the way of a request: read on the error path and by `lockhier.blockers_*()`, which
//! share [`Blocker::describe`] so that the error and the diagnostic function word a conflict alike.

use crate::activity::{self, Backend};
use crate::error::human_duration;
use crate::key::{self, KeyKind, Target};
use crate::lockmgr;
use crate::lockmode::{
    modes_conflict, pg_mode_name, strongest_conflicting, strongest_conflicting_mode, LockMode,
};
use crate::plan::Plan;

/// A process holding, or queued ahead for, a lock that conflicts with a request.
#[derive(Clone, Debug)]
pub struct Blocker {
    pub pid: i32,
    /// False when it does not hold the lock yet but waits for it ahead of the request.
    pub granted: bool,
    /// The PostgreSQL mode it holds or awaits on the key, as `pg_locks.mode` names it.
    pub lock_mode: &'static str,
    pub key: i64,
    /// What it holds, as far as the key tells: `a share lock on all classes for application 7`.
    pub conflict: String,
    /// `None` when the process has gone since the lock table was read.
    pub backend: Option<Backend>,
    /// Whether it holds lockhier session locks (it holds the sentinel): then the lock in the
    /// way may be one of them, whatever transaction it is in now.
    pub holds_session_locks: bool,
    /// For a prepared transaction (pid 0), its xid.
    pub prepared_xid: Option<u32>,
}

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
                backend: None,
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
                backend: None,
                holds_session_locks: false,
                prepared_xid: entry.prepared_xid,
            })
        })
        .collect();
    with_backends(blockers)
}

fn with_backends(mut blockers: Vec<Blocker>) -> Vec<Blocker> {
    let pids: Vec<i32> = blockers.iter().map(|b| b.pid).collect();
    let mut backends = activity::backends(&pids);
    for blocker in &mut blockers {
        blocker.backend = backends.remove(&blocker.pid);
    }
    blockers.sort_by_key(|b| (!b.granted, b.pid));
    blockers
}

impl Blocker {
    /// `a share lock on all classes for application 7, held by process 4242
    /// (application_name "snapshot #7") in a transaction running for 3.1 s`
    pub fn describe(&self) -> String {
        let who = self.who();
        if self.granted {
            format!("{}, held by {who}{}", self.conflict, self.since())
        } else {
            format!("{} that {who} is queued for ahead of this request", self.conflict)
        }
    }
}

impl Blocker {
    /// See [`process`].
    pub fn who(&self) -> String {
        process(self.pid, self.backend.as_ref(), self.prepared_xid)
    }
}

/// `process 4242 (application_name "snapshot #7")`, or that it has ended. Locks of prepared
/// transactions show with process id 0: `a prepared transaction (xid 741)`, whose gid
/// `pg_prepared_xacts` gives.
pub fn process(pid: i32, backend: Option<&Backend>, prepared_xid: Option<u32>) -> String {
    if pid == 0 {
        return match prepared_xid {
            Some(xid) => format!("a prepared transaction (xid {xid})"),
            None => "a prepared transaction".to_string(),
        };
    }
    match backend {
        Some(backend) => format!("process {pid} (application_name \"{}\")", backend.application_name),
        None => format!("process {pid}, which has since ended"),
    }
}

impl Blocker {
    /// What is known of how long the lock has been held: see [`since`].
    pub fn since(&self) -> String {
        since(self.backend.as_ref(), self.holds_session_locks)
    }
}

/// How the lock in the way is held, as far as the holder's state tells:
/// - ` in a transaction running for 3.1 s`: the holder has no lockhier session lock, so the
///   lock is one of its current transaction's;
/// - ` as a session lock, outside any transaction`: it is in no transaction, so the lock can
///   only be a session lock;
/// - ` as a session lock or in its current transaction, running for 3.1 s`: it holds session
///   locks and is in a transaction, and which of them is in the way cannot be told;
/// - nothing when the current user may not see the process's activity.
pub fn since(backend: Option<&Backend>, holds_session_locks: bool) -> String {
    match backend.and_then(|b| b.details.as_ref()).map(|d| d.xact_age()) {
        Some(Some(age)) if holds_session_locks => {
            format!(" as a session lock or in its current transaction, running for {}", human_duration(age))
        }
        Some(Some(age)) => format!(" in a transaction running for {}", human_duration(age)),
        Some(None) => " as a session lock, outside any transaction".to_string(),
        None => String::new(),
    }
}

/// What a holder of `mode` on the key of `target` has locked, as far as the key can tell: the
/// intention and marker keys stand for locks on a class or a node further down.
pub fn describe_conflict(target: &Target, mode: u8) -> String {
    const IS: u8 = LockMode::RowShare as u8;
    const IX: u8 = LockMode::RowExclusive as u8;
    const S: u8 = LockMode::Share as u8;
    const X: u8 = LockMode::Exclusive as u8;
    let node = target.node;
    match (target.kind, mode) {
        (KeyKind::All, S) => format!("a share lock on all classes for {node}"),
        (KeyKind::All, X) => format!("an exclusive lock on all classes for {node}"),
        (KeyKind::All, IS) => format!("a share lock within {node}"),
        (KeyKind::All, IX) => format!("an exclusive lock within {node}"),
        (KeyKind::Class(c), S) => format!("a share lock on \"{}\" for {node}", c.as_str()),
        (KeyKind::Class(c), X) => format!("an exclusive lock on \"{}\" for {node}", c.as_str()),
        (KeyKind::Class(c), IS) => format!("a share lock on \"{}\" within {node}", c.as_str()),
        (KeyKind::Class(c), IX) => format!("an exclusive lock on \"{}\" within {node}", c.as_str()),
        (KeyKind::ShareMarker, S) => format!("a share lock on some class for {node}"),
        (KeyKind::ExclusiveMarker, S) => format!("an exclusive lock on some class for {node}"),
        (KeyKind::ShareMarker, IX) => {
            format!("an exclusive lock on all classes for something inside {node}")
        }
        (KeyKind::ExclusiveMarker, IX) => {
            format!("a lock on all classes for something inside {node}")
        }
        // Not a mode lockhier takes there: someone else's advisory lock on the same key.
        (kind, other) => {
            let what = match kind {
                KeyKind::Class(c) => format!("\"{}\"", c.as_str()),
                KeyKind::All => "all classes".to_string(),
                marker => format!("the {}", marker.name()),
            };
            format!(
                "an advisory lock ({}) on the key lockhier uses for {what} of {node}",
                pg_mode_name(other)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Classes, Node};

    #[test]
    fn conflicts_read_as_what_the_holder_locked() {
        let deletion = Classes::parse_one("field__deletion").unwrap();
        let class = deletion.names()[0];
        let table = Node::table(7, 12);
        let on = |kind| Target { node: table, kind };
        assert_eq!(
            describe_conflict(&on(KeyKind::Class(&class)), 5),
            "a share lock on \"field__deletion\" for table 12 (application 7)"
        );
        assert_eq!(
            describe_conflict(&Target { node: Node::application(7), kind: KeyKind::All }, 5),
            "a share lock on all classes for application 7"
        );
        assert_eq!(
            describe_conflict(&on(KeyKind::All), 3),
            "an exclusive lock within table 12 (application 7)"
        );
        assert_eq!(
            describe_conflict(&on(KeyKind::ShareMarker), 3),
            "an exclusive lock on all classes for something inside table 12 (application 7)"
        );
        assert_eq!(
            describe_conflict(&on(KeyKind::All), 8),
            "an advisory lock (AccessExclusiveLock) on the key lockhier uses for all classes of table 12 (application 7)"
        );
    }
}
