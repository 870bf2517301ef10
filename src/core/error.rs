//! Everything a user can get wrong or run into, as plain data with its message. How each is
//! raised (SQLSTATE, DETAIL, HINT) is the SQL layer's to say, in one place.

use crate::class::{ClassProblem, MAX_CLASSES};
use crate::holder::{Blocker, Process};
use crate::lease::in_use::HeldLeases;
use crate::lease::{OwnerProblem, MAX_TTL};
use crate::request::{Mode, Request};
use crate::row_mode::RowMode;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LockhierError {
    #[error("argument \"{0}\" must not be null")]
    NullArgument(&'static str),

    #[error("unknown lock mode \"{0}\": expected {valid}", valid = Mode::VALID.replace(", ", " or "))]
    UnknownMode(String),

    #[error("invalid class name \"{class}\": {reason}")]
    InvalidClass { class: String, reason: ClassProblem },

    #[error("classes must not be empty")]
    EmptyClasses,

    #[error("classes must not contain NULL")]
    NullClassElement,

    #[error("too many classes: more than {MAX_CLASSES} distinct names in one request")]
    TooManyClasses,

    #[error("wait must not be negative: \"{0}\"")]
    NegativeWait(String),

    #[error("a path has at most 3 ids (application, table, field), not {0}")]
    PathTooLong(usize),

    #[error("path must not contain NULL")]
    NullPathElement,

    /// A path of names refused (`path.rs`).
    #[error(transparent)]
    InvalidPath(#[from] crate::path::PathError),

    #[error("operation in progress: cannot lock {}", .0.request)]
    Conflict(Box<Conflict>),

    #[error("unknown row lock mode \"{0}\": expected {valid}", valid = RowMode::VALID)]
    UnknownRowMode(String),

    #[error("relation with OID {0} does not exist")]
    NoSuchRelation(u32),

    #[error("column \"{column}\" of relation {table} does not exist")]
    NoSuchColumn { table: String, column: String },

    #[error("table {0} has no primary key")]
    NoPrimaryKey(String),

    #[error("the primary key of table {table} has {} columns ({})", .columns.len(), .columns.join(", "))]
    CompositePrimaryKey { table: String, columns: Vec<String> },

    #[error(
        "ids of type {ids_type} cannot be compared with column \"{column}\" ({column_type}) of table {table}"
    )]
    IdsTypeMismatch { ids_type: String, column: String, column_type: String, table: String },

    #[error("operation in progress: cannot lock {}", .0.what())]
    RowConflict(Box<RowConflict>),

    #[error("ids must not contain NULL")]
    NullIdsElement,

    #[error("cannot lock rows of {table}: it is {kind}, not a table")]
    NotATable { table: String, kind: &'static str },

    #[error("cannot lock rows of foreign table {0} within a bounded wait")]
    ForeignTable(String),

    #[error("operation in progress: cannot lock {} rows for {}: {} is locked", .0.table, .0.mode.name(), .0.what_is_locked())]
    TableLocked(Box<TableLocked>),

    #[error("invalid lease owner \"{owner}\": {reason}")]
    InvalidOwner { owner: String, reason: OwnerProblem },

    #[error("ttl must be positive and at most {hours} h: \"{0}\"", hours = MAX_TTL.as_secs() / 3600)]
    InvalidTtl(String),

    #[error("lockhier leases are not available: lockhier is not in shared_preload_libraries")]
    LeasesNotLoaded,

    #[error("lockhier leases are not available during recovery")]
    LeasesInRecovery,

    #[error("lockhier's lease keeper is not running")]
    KeeperNotRunning,

    #[error("the leases held before the server restarted are not restored yet")]
    LeasesNotRestored,

    #[error("too many leases: {0} are held, the most lockhier.max_leases allows")]
    TooManyLeases(usize),

    #[error("permission denied for lease {token} of owner \"{owner}\"")]
    LeasePermission { token: i64, owner: String },

    /// `release_lease` or `renew_lease` with an `owner` that is not the lease's (nor above it).
    #[error("lease {token} belongs to another owner")]
    NotLeaseOwner { token: i64, owner: String, asked: String },

    #[error("could not write lockhier's lease journal: {0}")]
    JournalFailed(String),

    #[error("out of shared memory")]
    LockTableFull,

    #[error("lockhier's lease keeper failed: {0}")]
    KeeperFailed(String),

    #[error("cannot drop extension lockhier: {} in this database", .0.are_held())]
    ExtensionHasLeases(Box<HeldLeases>),

    #[error("cannot drop role \"{role}\": it holds {}", .held.lockhier_leases())]
    RoleHasLeases { role: String, held: Box<HeldLeases> },
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

impl TableLocked {
    pub fn what_is_locked(&self) -> String {
        if self.locked == self.table {
            "the table".to_string()
        } else {
            format!("its partition {}", self.locked)
        }
    }
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

/// A request refused because other sessions hold (or queue ahead for) conflicting locks.
#[derive(Debug)]
pub struct Conflict {
    pub request: Request,
    pub blockers: Vec<Blocker>,
    /// How long the request waited before giving up; `None` when it did not wait.
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

impl RowConflict {
    /// `database_field rows with id 99, 100 for update`
    fn what(&self) -> String {
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
}
