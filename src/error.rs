//! Everything a user can get wrong or run into, and how each is reported: SQLSTATE, message,
//! DETAIL and HINT are mapped here and nowhere else.

use crate::activity::Backend;
use crate::holders::{self, Blocker};
use crate::model::{ClassProblem, Mode, Request, RowMode, MAX_CLASSES};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
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
    fn what_is_locked(&self) -> String {
        if self.locked == self.table {
            "the table".to_string()
        } else {
            format!("its partition {}", self.locked)
        }
    }

    /// `database_field is locked in AccessExclusiveLock mode by process 4242
    /// (application_name "migration") in a transaction running for 3.1 s.`
    fn detail(&self) -> String {
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
    pub backend: Option<Backend>,
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

impl LockhierError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        use LockhierError::*;
        match self {
            NullArgument(_) | NullPathElement | NullClassElement | NullIdsElement => {
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED
            }
            UnknownMode(_)
            | InvalidClass { .. }
            | EmptyClasses
            | TooManyClasses
            | NegativeWait(_)
            | PathTooLong(_)
            | UnknownRowMode(_)
            | NoPrimaryKey(_)
            | CompositePrimaryKey { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            NoSuchRelation(_) => PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            NoSuchColumn { .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            IdsTypeMismatch { .. } => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            NotATable { .. } => PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            ForeignTable(_) => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            Conflict(_) | RowConflict(_) | TableLocked(_) => PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE,
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            LockhierError::Conflict(conflict) => Some(conflict.detail()),
            LockhierError::RowConflict(conflict) => Some(conflict.detail()),
            LockhierError::TableLocked(locked) => Some(locked.detail()),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        use LockhierError::*;
        let hint = match self {
            NullArgument("class") => "Pass 'all' to lock every class of the scope.",
            NullArgument("mode") => "Pass 'share' or 'exclusive'.",
            NullArgument("classes") => "Pass at least one class name, or 'all'.",
            NullArgument("path") => "Pass the ids of the node: '{}' for global, '{7}', '{7,12}' or '{7,12,99}'.",
            NullArgument("rel") => "Pass the table whose rows to lock, such as 'database_field'.",
            NullArgument("ids") => "Pass an array of key values; an empty array locks nothing.",
            NullArgument(_) => "A NULL id would lock nothing; pass the id of the node to lock.",
            InvalidClass { .. } => {
                "Class names are names such as field__update or app.backup; case is ignored."
            }
            EmptyClasses | NullClassElement => "Pass at least one class name, or 'all'.",
            TooManyClasses => "Lock the scope for all classes, or split the request.",
            NullIdsElement => "Leave the NULLs out: a NULL id matches no row.",
            NotATable { kind: "a view", .. } => "Lock the rows of the tables the view reads.",
            NotATable { .. } => "Pass a table or a partitioned table.",
            ForeignTable(_) => {
                "The remote server decides how long a row lock waits there; lock the rows on the remote server itself."
            }
            NegativeWait(_) => {
                "Pass '0' to fail at once, a positive interval to wait up to that long, or NULL to wait without a limit of lockhier's own."
            }
            NoPrimaryKey(_) | CompositePrimaryKey { .. } | NoSuchColumn { .. } => {
                "Pass key_column => 'column' to say which column the ids are in."
            }
            IdsTypeMismatch { column_type, .. } => {
                return Some(format!(
                    "Pass the ids as an array of the column's type, e.g. ARRAY[...]::{column_type}[]."
                ))
            }
            Conflict(conflict) if conflict.waited.is_some() => RETRY_LONGER,
            RowConflict(conflict) if conflict.waited.is_some() => RETRY_LONGER,
            TableLocked(locked) if locked.waited.is_some() => RETRY_LONGER,
            Conflict(_) | RowConflict(_) | TableLocked(_) => RETRY_OR_WAIT,
            _ => return None,
        };
        Some(hint.to_string())
    }

    /// Raise this as a PostgreSQL ERROR. Never returns. The error's source location (shown
    /// with `\set VERBOSITY verbose`) is where it was raised from, not this function.
    #[track_caller]
    pub fn report(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.to_string(), function_name!());
        if let Some(detail) = self.detail() {
            report = report.set_detail(detail);
        }
        if let Some(hint) = self.hint() {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    }
}

const RETRY_OR_WAIT: &str =
    "Retry when the operation in progress has finished, or pass wait => '10 s' to wait for it.";
const RETRY_LONGER: &str = "Retry when the operation in progress has finished, or pass a longer wait.";

impl Conflict {
    fn detail(&self) -> String {
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

/// How many keys an error names before it says "and N more".
const KEYS_SHOWN: usize = 10;

fn list_keys(keys: &[String]) -> String {
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

    fn detail(&self) -> String {
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
                holders::process(locker.pid, locker.backend.as_ref(), locker.xid),
            );
            // Row locks only live in transactions.
            let since = holders::since(locker.backend.as_ref(), false);
            if since.starts_with(" in a transaction") {
                detail.push_str(&since);
            }
            detail.push('.');
        }
        append_waited(&mut detail, self.waited);
        detail
    }
}

fn append_waited(detail: &mut String, waited: Option<Duration>) {
    if let Some(waited) = waited {
        let _ = write!(detail, " Waited {}.", human_duration(waited));
    }
}

/// Raise a WARNING that a session lock to release was not held (SQLSTATE 01000).
pub fn warn_not_held(request: &Request) {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_WARNING,
        format!(
            "lockhier session lock not held: {} for {} in {} mode",
            request.node,
            request.classes,
            request.mode.name()
        ),
        function_name!(),
    )
    .set_hint("Unlock exactly the scope, classes and mode that were locked; lockhier.held() lists them.")
    .report(PgLogLevel::WARNING);
}

/// Short, human durations for messages: `250 ms`, `3.1 s`, `2 min 5 s`, `1 h 3 min`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d < Duration::from_millis(1) {
        "less than 1 ms".to_string()
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{} h {} min", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_micros(300)), "less than 1 ms");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_millis(3140)), "3.1 s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(human_duration(Duration::from_secs(3780)), "1 h 3 min");
        assert_eq!(human_duration(Duration::from_secs(90_000)), "1 d 1 h");
    }

    #[test]
    fn every_input_error_has_the_right_sqlstate() {
        use LockhierError::*;
        let invalid = PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE;
        assert_eq!(NullArgument("application_id").sqlstate(), PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED);
        for error in [UnknownMode("x".into()), EmptyClasses, TooManyClasses, NegativeWait("-1".into())] {
            assert_eq!(error.sqlstate(), invalid, "{error}");
        }
        // One rule for NULL: wherever it is, 22004.
        for error in [NullArgument("class"), NullPathElement, NullClassElement, NullIdsElement] {
            assert_eq!(error.sqlstate(), PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "{error}");
        }
        assert_eq!(
            UnknownMode("Shared".into()).to_string(),
            "unknown lock mode \"Shared\": expected share or exclusive"
        );
    }
}
