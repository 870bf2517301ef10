//! The one mapping of lockhier's errors to what PostgreSQL reports: SQLSTATE, message (the
//! error's own text), DETAIL and HINT; and the two warnings lockhier raises.

use lockhier_core::class::ClassError;
use lockhier_core::many::{ManyError, Problem};
use lockhier_core::path::PathError;
use lockhier_core::request::NullArgument as Null;
use lockhier_core::scope::IdPathError;
use lockhier_core::{LockhierError, Request};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// Raise the error as a PostgreSQL ERROR. Never returns. The error's source location (shown
/// with `\set VERBOSITY verbose`) is where it was raised from, not this function.
#[track_caller]
pub fn report(error: LockhierError) -> ! {
    let mut report = ErrorReport::new(sqlstate(&error), error.to_string(), function_name!());
    if let Some(detail) = detail(&error) {
        report = report.set_detail(detail);
    }
    if let Some(hint) = hint(&error) {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// The value, or the error raised.
#[track_caller]
pub fn or_report<T, E: Into<LockhierError>>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => report(error.into()),
    }
}

pub fn sqlstate(error: &LockhierError) -> PgSqlErrorCode {
    use LockhierError::*;
    match error {
        NullArgument(_)
        | IdPath(IdPathError::NullElement)
        | InvalidPath(PathError::NullName)
        | Class(ClassError::NullElement)
        | NullIdsElement => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        UnknownMode(_)
        | Class(ClassError::Invalid { .. } | ClassError::Empty | ClassError::TooMany)
        | NegativeWait(_)
        | IdPath(IdPathError::TooLong(_))
        | InvalidPath(PathError::Depth(_) | PathError::EmptyName { .. } | PathError::LongName { .. })
        | InvalidPath(PathError::ControlCharacter { .. })
        | UnknownRowMode(_)
        | NoPrimaryKey(_)
        | CompositePrimaryKey { .. }
        | InvalidOwner(_)
        | InvalidTtl(_)
        | Many(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        NoSuchRelation(_) => PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
        NoSuchColumn { .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        IdsTypeMismatch { .. } => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        NotATable { .. } => PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
        ForeignTable(_) => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        Conflict(_) | RowConflict(_) | TableLocked(_) => PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE,
        LeasesNotLoaded | KeeperNotRunning | LeasesNotRestored => {
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
        }
        LeasesInRecovery => PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
        TooManyLeases(_) => PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
        LeasePermission { .. } => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        NotLeaseOwner { .. } => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        JournalFailed(_) => PgSqlErrorCode::ERRCODE_IO_ERROR,
        LockTableFull => PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        KeeperFailed(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        ExtensionHasLeases(_) | RoleHasLeases { .. } => PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
    }
}

pub fn detail(error: &LockhierError) -> Option<String> {
    match error {
        LockhierError::Conflict(conflict) => Some(conflict.detail()),
        LockhierError::RowConflict(conflict) => Some(conflict.detail()),
        LockhierError::TableLocked(locked) => Some(locked.detail()),
        LockhierError::ExtensionHasLeases(held) | LockhierError::RoleHasLeases { held, .. } => {
            Some(held.to_string())
        }
        LockhierError::NotLeaseOwner { owner, asked, .. } => {
            Some(format!("The lease is held by owner \"{owner}\", not by \"{asked}\" nor an owner above it."))
        }
        _ => None,
    }
}

pub fn hint(error: &LockhierError) -> Option<String> {
    use LockhierError::*;
    let hint = match error {
        NullArgument(Null("class")) => "Pass 'all' to lock every class of the scope.",
        NullArgument(Null("mode")) => "Pass 'share' or 'exclusive'.",
        NullArgument(Null("classes")) => "Pass at least one class name, or 'all'.",
        NullArgument(Null("path")) => {
            "Pass the path: its names to a *_path function (ARRAY['sites', 'c0a8f5e2']), or the ids of a node to key() and marker_key() ('{}' for global, '{7}', '{7,12}' or '{7,12,99}')."
        }
        NullArgument(Null("rel")) => "Pass the table whose rows to lock, such as 'database_field'.",
        NullArgument(Null("ids")) => "Pass an array of key values; an empty array locks nothing.",
        NullArgument(Null("owner")) => {
            "Pass the name of the job or worker that holds the lease, such as 'csv-import #55'."
        }
        NullArgument(Null("ttl")) => "Pass how long the lease lasts unless it is renewed, such as '2 min'.",
        NullArgument(Null("token")) => "Pass the token that lease_* returned.",
        NullArgument(Null("requests")) => {
            "Pass a JSON array of requests, such as '[{\"application\": 7, \"table\": 12, \"class\": \"field__deletion\"}]'."
        }
        Many(ManyError { problem: Problem::ConflictsWith(_), .. }) => {
            "Leave one of the two out, or take them under two owners; nothing was taken."
        }
        Many(_) => {
            "A request is an object such as {\"path\": [\"rooms\", \"r1\"], \"classes\": [\"typing\"], \"mode\": \"share\"} or {\"application\": 7, \"table\": 12, \"class\": \"field__deletion\"}; nothing was taken."
        }
        NullArgument(_) => "A NULL id would lock nothing; pass the id of the node to lock.",
        Class(ClassError::Invalid { .. }) => {
            "Class names are names such as field__update or app.backup; case is ignored."
        }
        Class(ClassError::Empty | ClassError::NullElement) => "Pass at least one class name, or 'all'.",
        Class(ClassError::TooMany) => "Lock the scope for all classes, or split the request.",
        InvalidOwner(_) => "Name the owner as a job or a worker would be named, such as 'csv-import #55'.",
        InvalidTtl(_) => "Pass a ttl such as '2 min', and renew the lease before it runs out.",
        LeasesNotLoaded => {
            "Add lockhier to shared_preload_libraries in postgresql.conf and restart the server; every other lockhier function works without it."
        }
        LeasesInRecovery => "Take leases on the primary.",
        KeeperNotRunning => {
            "The lease keeper is a background worker started with the server: see the server log for why it is not running."
        }
        LeasesNotRestored => {
            "The lease keeper is holding again the leases it held before it restarted; retry in a moment, and see the server log if this lasts."
        }
        TooManyLeases(_) => "Release leases that are no longer needed, or raise lockhier.max_leases (it needs a restart).",
        LeasePermission { .. } => {
            "A lease is renewed, released and validated by the role that took it, its members, or a superuser."
        }
        NotLeaseOwner { .. } => {
            "Nothing was released or renewed. Pass the owner that took the lease (or one above it: \"worker9\" for \"worker9/task-3\"), or no owner."
        }
        LockTableFull => "You might need to increase max_locks_per_transaction.",
        ExtensionHasLeases(_) => "Release them first (lockhier.release_leases(owner)), or wait for them to expire.",
        RoleHasLeases { .. } => {
            "Release them first (lockhier.release_leases(owner) in their database, as that role or a superuser), or wait for them to expire."
        }
        NullIdsElement => "Leave the NULLs out: a NULL id matches no row.",
        InvalidPath(PathError::NullName) => return None,
        InvalidPath(_) => {
            "A path is 1 to 8 names of 1 to 255 bytes each, without control characters, such as ARRAY['sites', 'c0a8f5e2', 'backups']."
        }
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
        // A lease request its own session is in the way of (no wait can end that).
        Conflict(conflict) if conflict.blockers.iter().any(|b| b.is_me) => OWN_SESSION,
        Conflict(conflict) if conflict.waited.is_some() => RETRY_LONGER,
        RowConflict(conflict) if conflict.waited.is_some() => RETRY_LONGER,
        TableLocked(locked) if locked.waited.is_some() => RETRY_LONGER,
        Conflict(_) | RowConflict(_) | TableLocked(_) => RETRY_OR_WAIT,
        _ => return None,
    };
    match error {
        Conflict(conflict) if conflict.among.is_some() => {
            let of = conflict.among.map_or(0, |among| among.of);
            Some(format!("None of the {of} requests was taken. {hint}"))
        }
        _ => Some(hint.to_string()),
    }
}

const RETRY_OR_WAIT: &str =
    "Retry when the operation in progress has finished, or pass wait => '10 s' to wait for it.";
const RETRY_LONGER: &str = "Retry when the operation in progress has finished, or pass a longer wait.";
const OWN_SESSION: &str = "This session holds what is in the way, so waiting cannot help: release it first (COMMIT, session_unlock_*), or take the lease from another session.";

/// Warn, with SQLSTATE 25P01 as `SET LOCAL` does, that a transaction lock was just taken outside
/// a transaction block (in autocommit): it is released when the statement ends, before the work
/// it was meant to protect runs.
pub fn warn_outside_transaction_block() {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
        "lockhier transaction lock taken outside a transaction block",
        function_name!(),
    )
    .set_detail("It is released when this statement ends, before any later statement runs.")
    .set_hint("Take it after BEGIN, in the transaction whose work it protects; session_lock_* locks last across transactions.")
    .report(PgLogLevel::WARNING);
}

/// Raise a WARNING that a session lock to release was not held (SQLSTATE 01000).
pub fn warn_not_held(request: &Request) {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_WARNING,
        format!(
            "lockhier session lock not held: {} for {} in {} mode",
            request.scope.place(),
            request.classes,
            request.mode.name()
        ),
        function_name!(),
    )
    .set_hint("Unlock exactly the scope, classes and mode that were locked; lockhier.held() lists them.")
    .report(PgLogLevel::WARNING);
}

/// Raise a WARNING that a lease to renew or release is not held (SQLSTATE 01000).
pub fn warn_lease_not_held(token: i64) {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, format!("lockhier lease {token} is not held"), function_name!())
        .set_hint("It expired or was released, or never existed in this database; lockhier.leases lists the leases held.")
        .report(PgLogLevel::WARNING);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_error_has_the_right_sqlstate() {
        use LockhierError::*;
        let invalid = PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE;
        use lockhier_core::request::{NegativeWait as Negative, UnknownMode as Unknown};
        assert_eq!(
            sqlstate(&NullArgument(Null("application_id"))),
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED
        );
        for error in [
            UnknownMode(Unknown("x".into())),
            Class(ClassError::Empty),
            Class(ClassError::TooMany),
            NegativeWait(Negative("-1".into())),
        ] {
            assert_eq!(sqlstate(&error), invalid, "{error}");
        }
        // One rule for NULL: wherever it is, 22004.
        for error in [
            NullArgument(Null("class")),
            IdPath(IdPathError::NullElement),
            Class(ClassError::NullElement),
            NullIdsElement,
        ] {
            assert_eq!(sqlstate(&error), PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "{error}");
        }
        assert_eq!(
            UnknownMode(Unknown("Shared".into())).to_string(),
            "unknown lock mode \"Shared\": expected share or exclusive"
        );
    }

    #[test]
    fn drops_refused_for_leases_say_which_and_what_to_do() {
        use lockhier_core::lease::in_use::{HeldLease, HeldLeases};
        let held = || {
            Box::new(HeldLeases {
                count: 1,
                named: vec![HeldLease { token: 7, owner: "nightly".into(), database: Some("app".into()) }],
            })
        };
        for error in [
            LockhierError::ExtensionHasLeases(held()),
            LockhierError::RoleHasLeases { role: "alice".into(), held: held() },
        ] {
            assert_eq!(sqlstate(&error), PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST, "{error}");
            assert_eq!(detail(&error).unwrap(), "Held: lease 7 of owner \"nightly\" in database \"app\".");
            assert!(
                hint(&error).unwrap().starts_with("Release them first (lockhier.release_leases(owner)"),
                "{error}"
            );
        }
    }
}
