//! Refusals because something else holds what a request needs, as data, and their DETAIL text,
//! written from that data: who holds what, and how long the request waited.

use crate::holder::{self, Blocker, Process};
use crate::request::Request;
use crate::row_mode::RowMode;
use crate::text::human_duration;
use std::fmt::Write;
use std::time::Duration;

/// A request refused because other sessions hold (or queue ahead for) conflicting locks.
#[derive(Debug)]
pub struct Conflict {
    pub request: Request,
    pub blockers: Vec<Blocker>,
    /// How long the request waited before giving up; `None` when it did not wait.
    pub waited: Option<Duration>,
    /// Which of several requests taken together (`lock_many`) it was; none of them was taken.
    pub among: Option<Among>,
}

/// A request's place among several taken all or nothing: `requests[index]` of `of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Among {
    pub index: usize,
    pub of: usize,
}

/// Rows that could not be locked because other transactions hold conflicting row locks.
#[derive(Debug)]
pub struct RowConflict {
    /// The table as `regclass` shows it.
    pub table: String,
    /// The key column, quoted where it needs to be.
    pub column: String,
    pub mode: RowMode,
    /// One entry per process found holding some of the rows.
    pub lockers: Vec<RowLocker>,
    pub waited: Option<Duration>,
}

#[derive(Debug)]
pub struct RowLocker {
    pub pid: i32,
    /// How many of the rows it holds.
    pub rows: usize,
    /// Their distinct key column values, as text, in key order.
    pub keys: Vec<String>,
    pub process: Option<Process>,
    /// The top-level transaction holding them, named when it is a prepared one.
    pub xid: Option<u32>,
}

/// Rows that could not be locked because the table (or one of its partitions) is locked in a
/// mode that keeps row locks out, such as `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`.
#[derive(Debug)]
pub struct TableLocked {
    /// The table asked for, as `regclass` shows it.
    pub table: String,
    /// The relation that is locked: the table itself, or a partition or child of it.
    pub locked: String,
    pub mode: RowMode,
    pub holders: Vec<Blocker>,
    pub waited: Option<Duration>,
}

/// How many keys an error names before it says "and N more".
const KEYS_SHOWN: usize = 10;

pub fn list_keys(keys: &[String]) -> String {
    let mut listed = keys.iter().take(KEYS_SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if keys.len() > KEYS_SHOWN {
        let _ = write!(listed, " and {} more", keys.len() - KEYS_SHOWN);
    }
    listed
}

fn append_waited(detail: &mut String, waited: Option<Duration>) {
    if let Some(waited) = waited {
        let _ = write!(detail, " Waited {}.", human_duration(waited));
    }
}

impl Conflict {
    /// What the error says it could not lock: the request, and which of several it was.
    pub fn what(&self) -> String {
        match self.among {
            None => self.request.to_string(),
            Some(Among { index, of }) => format!("{} (requests[{index}] of {of})", self.request),
        }
    }

    /// `Blocked by a share lock on all classes for application 7, held by process 4242
    /// (application_name "snapshot #7") in a transaction running for 3.1 s. Waited 2 s.`
    pub fn detail(&self) -> String {
        let mut detail = String::new();
        if self.blockers.is_empty() {
            detail.push_str("The conflicting lock was released before its holder could be identified.");
        } else {
            detail.push_str("Blocked by ");
            for (i, blocker) in self.blockers.iter().enumerate() {
                if i > 0 {
                    detail.push_str("; and by ");
                }
                detail.push_str(&blocker.describe());
            }
            detail.push('.');
        }
        append_waited(&mut detail, self.waited);
        detail
    }
}

impl RowConflict {
    /// `database_field rows with id 99, 100 for update`
    pub fn what(&self) -> String {
        let mut keys: Vec<String> = Vec::new();
        for key in self.lockers.iter().flat_map(|l| &l.keys) {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        if keys.is_empty() {
            format!("{} rows for {}", self.table, self.mode.name())
        } else {
            format!("{} rows with {} {} for {}", self.table, self.column, list_keys(&keys), self.mode.name())
        }
    }

    /// `2 rows with id 99, 100 are locked by process 4242 (application_name "import") in a
    /// transaction running for 3.1 s.`, one sentence per holder.
    pub fn detail(&self) -> String {
        let mut detail = String::new();
        if self.lockers.is_empty() {
            detail.push_str(
                "The transactions holding the rows could not be identified: they may have just ended, or the table does not keep row locks in its tuples.",
            );
        }
        for (i, locker) in self.lockers.iter().enumerate() {
            if i > 0 {
                detail.push(' ');
            }
            let (noun, verb) = if locker.rows == 1 { ("row", "is") } else { ("rows", "are") };
            let _ = write!(
                detail,
                "{} {noun} with {} {} {verb} locked by {}",
                locker.rows,
                self.column,
                list_keys(&locker.keys),
                holder::process(locker.pid, locker.process.as_ref(), locker.xid),
            );
            // Row locks only live in transactions: the holder's is named when its age is known.
            if let Some(age) = holder::transaction_age(locker.process.as_ref()) {
                detail.push_str(&holder::in_transaction(age));
            }
            detail.push('.');
        }
        append_waited(&mut detail, self.waited);
        detail
    }
}

impl TableLocked {
    pub fn what_is_locked(&self) -> String {
        if self.locked == self.table {
            "the table".to_string()
        } else {
            format!("its partition {}", self.locked)
        }
    }

    /// `database_field is locked in AccessExclusiveLock mode by process 4242
    /// (application_name "migration") in a transaction running for 3.1 s.`
    pub fn detail(&self) -> String {
        let mut detail = String::new();
        if self.holders.is_empty() {
            let _ = write!(
                detail,
                "{} was locked, but its holder released it before it could be identified.",
                self.locked
            );
        }
        for (i, holder) in self.holders.iter().enumerate() {
            if i > 0 {
                detail.push_str("; and ");
            } else {
                let _ = write!(detail, "{} is ", self.locked);
            }
            let who = holder.who();
            if holder.granted {
                let _ = write!(detail, "locked {} by {who}{}", holder.conflict, holder.since());
            } else {
                let _ = write!(detail, "awaited {} by {who}, queued ahead of this request", holder.conflict);
            }
            if i + 1 == self.holders.len() {
                detail.push('.');
            }
        }
        append_waited(&mut detail, self.waited);
        detail
    }
}
