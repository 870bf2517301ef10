//! Who is in the way of a request, as plain data, and how an error and `blockers_*()` word it,
//! alike: what the holder locked (as far as the key tells), who it is, and how it holds it.

use crate::key::{KeyKind, Target};
use crate::lockmode::{pg_mode_name, LockMode};
use crate::request::{Mode, Request};
use crate::text::human_duration;
use std::time::Duration;

/// A process as `pg_stat_activity` shows it to the current user.
#[derive(Clone, Debug)]
pub struct Process {
    pub application_name: String,
    /// The rest is NULL in `pg_stat_activity` unless the current user may see this process's
    /// details (same role, or a member of `pg_read_all_stats`), and so it is here.
    pub details: Option<ProcessDetails>,
}

#[derive(Clone, Debug)]
pub struct ProcessDetails {
    pub client_addr: Option<String>,
    /// NULL in `pg_stat_activity` for a state it has no name for.
    pub state: Option<&'static str>,
    /// Microseconds since 2000-01-01 (a `timestamptz`), when it is in a transaction.
    pub xact_start: Option<i64>,
    /// How long that transaction had run when the process was read.
    pub xact_age: Option<Duration>,
}

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
    pub process: Option<Process>,
    /// Whether it holds lockhier session locks (it holds the sentinel): then the lock in the
    /// way may be one of them, whatever transaction it is in now.
    pub holds_session_locks: bool,
    /// For a prepared transaction (pid 0), its xid.
    pub prepared_xid: Option<u32>,
    /// The process is the one that asked (only a lease request can be in its own way).
    pub is_me: bool,
    /// When the holder is the lease keeper: the lease that holds the lock.
    pub lease: Option<LeaseHolder>,
}

/// A lease in the way of a request.
#[derive(Clone, Debug)]
pub struct LeaseHolder {
    pub token: i64,
    pub owner: String,
    /// How long ago it was taken.
    pub held_for: Duration,
    pub expiry: Expiry,
}

#[derive(Clone, Copy, Debug)]
pub enum Expiry {
    In(Duration),
    /// Its ttl ran out this long ago; it is being released (or a transaction that validated it
    /// is still open).
    RanOut(Duration),
}

impl Blocker {
    /// `a share lock on all classes for application 7, held by process 4242
    /// (application_name "snapshot #7") in a transaction running for 3.1 s`
    pub fn describe(&self) -> String {
        if let Some(lease) = &self.lease {
            let expiry = match lease.expiry {
                Expiry::In(left) => format!("expires in {}", human_duration(left)),
                Expiry::RanOut(ago) => format!("its ttl ran out {} ago", human_duration(ago)),
            };
            return format!(
                "{}, held by lease {} of owner \"{}\", acquired {} ago, {expiry}",
                self.conflict,
                lease.token,
                lease.owner,
                human_duration(lease.held_for)
            );
        }
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
        let who = process(self.pid, self.process.as_ref(), self.prepared_xid);
        if self.is_me {
            format!("this session's {who}")
        } else {
            who
        }
    }
}

/// `process 4242 (application_name "snapshot #7")`, or that it has ended. Locks of prepared
/// transactions show with process id 0: `a prepared transaction (xid 741)`, whose gid
/// `pg_prepared_xacts` gives.
pub fn process(pid: i32, process: Option<&Process>, prepared_xid: Option<u32>) -> String {
    if pid == 0 {
        return match prepared_xid {
            Some(xid) => format!("a prepared transaction (xid {xid})"),
            None => "a prepared transaction".to_string(),
        };
    }
    match process {
        Some(process) => format!("process {pid} (application_name \"{}\")", process.application_name),
        None => format!("process {pid}, which has since ended"),
    }
}

impl Blocker {
    /// What is known of how long the lock has been held: see [`since`].
    pub fn since(&self) -> String {
        since(self.process.as_ref(), self.holds_session_locks)
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
pub fn since(process: Option<&Process>, holds_session_locks: bool) -> String {
    match process.and_then(|p| p.details.as_ref()).map(|d| d.xact_age) {
        Some(Some(age)) if holds_session_locks => {
            format!(" as a session lock or in its current transaction, running for {}", human_duration(age))
        }
        Some(Some(age)) => in_transaction(age),
        Some(None) => " as a session lock, outside any transaction".to_string(),
        None => String::new(),
    }
}

/// How long the process's current transaction has run, when the current user may see it and
/// it is in one.
pub fn transaction_age(process: Option<&Process>) -> Option<Duration> {
    process.and_then(|p| p.details.as_ref()).and_then(|d| d.xact_age)
}

/// ` in a transaction running for 3.1 s`
pub fn in_transaction(age: Duration) -> String {
    format!(" in a transaction running for {}", human_duration(age))
}

/// What a lease holds, in its own words, whatever key of it is in the way: `an exclusive lock
/// on all classes for application 42` (a lease on application 42 in the way of the global
/// scope is named by its own scope, not by the global scope where their keys meet).
pub fn describe_lease(request: &Request) -> String {
    let mode = match request.mode {
        Mode::Share => "a share lock",
        Mode::Exclusive => "an exclusive lock",
    };
    format!("{mode} on {} for {}", request.classes, request.scope.place())
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
    use crate::class::Classes;
    use crate::scope::Node;

    #[test]
    fn a_lease_in_the_way_is_named_with_its_owner_and_times() {
        let blocker = Blocker {
            pid: 4242,
            granted: true,
            lock_mode: "ExclusiveLock",
            key: 1,
            conflict: "an exclusive lock on all classes for table 12 (application 7)".into(),
            process: None,
            holds_session_locks: true,
            prepared_xid: None,
            is_me: false,
            lease: Some(LeaseHolder {
                token: 17,
                owner: "csv-import #55".into(),
                held_for: Duration::from_secs(180),
                expiry: Expiry::In(Duration::from_secs(80)),
            }),
        };
        assert_eq!(
            blocker.describe(),
            "an exclusive lock on all classes for table 12 (application 7), held by lease 17 of owner \"csv-import #55\", acquired 3 min ago, expires in 1 min 20 s"
        );
    }

    #[test]
    fn conflicts_read_as_what_the_holder_locked() {
        let deletion = Classes::parse_one("field__deletion").unwrap();
        let class = deletion.names()[0];
        let table = Node::table(7, 12);
        let on = |kind| Target { node: table.into(), kind };
        assert_eq!(
            describe_conflict(&on(KeyKind::Class(&class)), 5),
            "a share lock on \"field__deletion\" for table 12 (application 7)"
        );
        assert_eq!(
            describe_conflict(&Target { node: Node::application(7).into(), kind: KeyKind::All }, 5),
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
