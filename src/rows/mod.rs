//! Row-lock helpers: `SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE` on the rows
//! whose key is in an array, with NOWAIT or a bounded wait, and the same "operation in
//! progress" errors as the advisory API. May use the engine and pg layers and lockhier-core.
//!
//! The statement runs through SPI as the calling user (the functions are not SECURITY
//! DEFINER), so PostgreSQL's own privilege and row-security checks apply. Each session
//! prepares it once per table, key column, strength and ids type (see `cache`); a saved
//! plan is still checked against the caller's privileges each time it runs. Identifiers are
//! quoted by `format('%I')` and the ids travel as a parameter, never as text. The SQL
//! functions are in `api::rows`, declared in `sql/rows.sql`.

pub mod cache;
mod lockers;
mod target;

use crate::engine::holders;
use crate::pg::subxact::{self, LockTimeoutOverride};
use crate::pg::{array, relations};
use lockhier_core::conflict::{RowConflict, TableLocked};
use lockhier_core::{LockhierError, RowMode, Wait};
use pgrx::datum::AnyArray;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgOid;
use pgrx::prelude::*;
use pgrx::spi::SpiError;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use target::Target;

/// The lock every `SELECT ... FOR <strength>` takes on the tables it reads.
const TABLE_MODE: u32 = pg_sys::RowShareLock;

/// Where a call was when it raised: a lock-not-available error means something different in
/// each step, and a missing operator is an ids type mismatch only while preparing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    LockingRelation(pg_sys::Oid),
    Preparing,
    LockingRows,
}

/// Everything but the reporting: `Ok(rows locked)`, or the error to raise.
pub fn lock(
    rel: pg_sys::Oid,
    ids: AnyArray,
    mode: RowMode,
    wait_for: Wait,
    key_column: Option<String>,
) -> Result<i64, LockhierError> {
    if array::has_nulls(&ids) {
        return Err(LockhierError::NullIdsElement);
    }
    let target_key = (rel, key_column);
    let target = cache::target(&target_key, || Target::resolve(rel, target_key.1.clone()))?;

    let nowait = wait_for == Wait::No;
    let statement_key = (mode.name(), nowait, ids.oid());
    let started = Instant::now();
    let step = AssertUnwindSafe(Cell::new(Step::Preparing));
    let outcome = subxact::kept_if_ok(|| {
        lock_relations(target.relid, wait_for, started, &step)?;
        step.set(Step::Preparing);
        let statement = Spi::connect_mut(|client| {
            cache::statement(&target_key, statement_key, || {
                let sql = target.locking_statement(mode, nowait);
                Ok::<_, SpiError>(client.prepare_mut(sql.as_str(), &[PgOid::from(ids.oid())])?.keep())
            })
        })
        .unwrap_or_else(|error| panic!("preparing the locking statement failed: {error}"));
        step.set(Step::LockingRows);
        // `nowait` makes the statement itself fail at once for Wait::No.
        let _limit = match wait_for {
            Wait::UpTo(_) => wait_for.remaining(started.elapsed()).map(LockTimeoutOverride::set),
            Wait::No | Wait::Unbounded => None,
        };
        let count = Spi::connect_mut(|client| {
            client.update(&*statement, None, &[array::as_parameter(&ids)])?.first().get_one::<i64>()
        })
        .unwrap_or_else(|error| panic!("locking rows failed: {error}"));
        Ok(count.unwrap_or(0))
    });
    let waited = || (wait_for != Wait::No).then(|| started.elapsed());
    match outcome {
        Ok(Ok(count)) => Ok(count),
        Ok(Err(relid)) => Err(table_locked(&target, relid, mode, waited())),
        Err(error) if sqlstate(&error) == Some(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE) => {
            match step.get() {
                Step::LockingRelation(relid) => Err(table_locked(&target, relid, mode, waited())),
                Step::LockingRows => Err(LockhierError::RowConflict(Box::new(RowConflict {
                    lockers: lockers::lockers(&target, &ids),
                    table: target.shown.clone(),
                    column: target.column_sql.clone(),
                    mode,
                    waited: waited(),
                }))),
                Step::Preparing => error.rethrow(),
            }
        }
        // Preparing resolves one operator, `column = ANY(ids)`; a missing function raised later
        // (by a row security policy, a trigger, ...) is that function's own error.
        Err(error)
            if step.get() == Step::Preparing
                && sqlstate(&error) == Some(PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION) =>
        {
            Err(LockhierError::IdsTypeMismatch {
                ids_type: relations::type_name(ids.oid()),
                column: target.column.clone(),
                column_type: target.column_type.clone(),
                table: target.shown.clone(),
            })
        }
        Err(error) => error.rethrow(),
    }
}

/// Take the table lock of `SELECT ... FOR <strength>` on the table and every partition or child
/// of it, within the call's wait: the statement then finds them held and waits for rows only.
/// `Err(relid)` is a relation that could not be had in time.
fn lock_relations(
    relid: pg_sys::Oid,
    wait_for: Wait,
    started: Instant,
    step: &Cell<Step>,
) -> Result<(), pg_sys::Oid> {
    for relation in relations::with_descendants(relid) {
        step.set(Step::LockingRelation(relation));
        if relations::try_lock(relation, TABLE_MODE) {
            continue;
        }
        match wait_for.remaining(started.elapsed()) {
            Some(Duration::ZERO) => return Err(relation),
            Some(left) => {
                let _limit = LockTimeoutOverride::set(left);
                relations::lock(relation, TABLE_MODE);
            }
            None => relations::lock(relation, TABLE_MODE),
        }
    }
    Ok(())
}

fn table_locked(
    target: &Target,
    relid: pg_sys::Oid,
    mode: RowMode,
    waited: Option<Duration>,
) -> LockhierError {
    LockhierError::TableLocked(Box::new(TableLocked {
        table: target.shown.clone(),
        locked: if relid == target.relid { target.shown.clone() } else { relations::name(relid) },
        mode,
        holders: holders::of_relation(relid, TABLE_MODE as u8),
        waited,
    }))
}

fn sqlstate(error: &CaughtError) -> Option<PgSqlErrorCode> {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
            Some(report.sql_error_code())
        }
        CaughtError::RustPanic { .. } => None,
    }
}
