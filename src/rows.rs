//! Row-lock helpers: `SELECT ... FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE` on the rows
//! whose key is in an array, with NOWAIT or a bounded wait, and the same "operation in
//! progress" errors as the advisory API.
//!
//! The statement runs through SPI as the calling user (the functions are not SECURITY
//! DEFINER), so PostgreSQL's own privilege and row-security checks apply. Each session
//! prepares it once per table, key column, strength and ids type (see `rowcache`); a saved
//! plan is still checked against the caller's privileges each time it runs. Identifiers are
//! quoted by `format('%I')` and the ids travel as a parameter, never as text. The SQL
//! declarations live in `sql/rows.sql`, where `regclass`, `anyarray` and `name` are spelled out.

use crate::activity;
use crate::api::wait;
use crate::error::{LockhierError, RowConflict, RowLocker, TableLocked};
use crate::holders;
use crate::lockmgr;
use crate::model::{required, RowMode, Wait};
use crate::relations;
use crate::rowcache;
use crate::subxact::{self, LockTimeoutOverride};
use crate::tuplelock;
use pgrx::datum::{AnyArray, DatumWithOid};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgOid;
use pgrx::prelude::*;
use pgrx::spi::SpiError;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

/// Locks the rows and returns how many it locked; raises 55P03 on a conflict.
#[pg_extern(volatile, parallel_unsafe, sql = false)]
fn lock_rows(
    rel: Option<pg_sys::Oid>,
    ids: Option<AnyArray>,
    mode: Option<&str>,
    wait: Option<Interval>,
    key_column: Option<&CStr>,
) -> i64 {
    match lock(rel, ids, mode, wait, key_column) {
        Ok(count) => count,
        Err(error) => error.report(),
    }
}

/// Like `lock_rows`, but false instead of the conflict error; the transaction stays usable.
#[pg_extern(volatile, parallel_unsafe, sql = false)]
fn try_lock_rows(
    rel: Option<pg_sys::Oid>,
    ids: Option<AnyArray>,
    mode: Option<&str>,
    wait: Option<Interval>,
    key_column: Option<&CStr>,
) -> bool {
    match lock(rel, ids, mode, wait, key_column) {
        Ok(_) => true,
        Err(LockhierError::RowConflict(_) | LockhierError::TableLocked(_)) => false,
        Err(error) => error.report(),
    }
}

/// The table and key column a call locks rows of.
pub struct Target {
    relid: pg_sys::Oid,
    /// `"My App"."Field Rows"`, for the statement.
    qualified: String,
    /// As `regclass` shows it, for messages.
    shown: String,
    column: String,
    /// The column, quoted for the statement.
    column_sql: String,
    column_type: String,
    /// `OPERATOR(pg_catalog.=)`, or the schema of the column type's own equality operator.
    equals: String,
}

/// Names, kind, primary key and key column of a relation, in one catalog read. `$2` is the key
/// column asked for, or NULL for the primary key's.
///
/// Every function, operator and type is qualified with `pg_catalog`: the statement runs with
/// the caller's search_path and privileges, and an unqualified name would let a look-alike in
/// a schema earlier on that path (or a better-matching one anywhere on it) run as the caller.
const TARGET_QUERY: &str = "
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
       c.oid::pg_catalog.regclass::pg_catalog.text,
       c.relkind::pg_catalog.text,
       pk.columns,
       key.attname::pg_catalog.text,
       pg_catalog.quote_ident(key.attname),
       pg_catalog.format_type(key.atttypid, key.atttypmod),
       key.atttypid
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN LATERAL (
        SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.position) AS columns
          FROM pg_catalog.pg_index i
         CROSS JOIN pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
         WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary) pk ON true
  LEFT JOIN pg_catalog.pg_attribute key
    ON key.attrelid OPERATOR(pg_catalog.=) c.oid AND NOT key.attisdropped
   AND key.attnum OPERATOR(pg_catalog.>) 0
   AND key.attname OPERATOR(pg_catalog.=) coalesce($2::pg_catalog.name,
         CASE WHEN pg_catalog.cardinality(pk.columns) OPERATOR(pg_catalog.=) 1
              THEN pk.columns[1]::pg_catalog.name END)
 WHERE c.oid OPERATOR(pg_catalog.=) $1";

/// The lock every `SELECT ... FOR <strength>` takes on the tables it reads.
const TABLE_MODE: u32 = pg_sys::RowShareLock;

impl Target {
    /// `SELECT pg_catalog.count(*) FROM (SELECT FROM <table> WHERE <column> OPERATOR(..=)
    /// ANY($1) FOR <mode>) ...`, qualified throughout for the reason given at `TARGET_QUERY`.
    fn locking_statement(&self, mode: RowMode, nowait: bool) -> String {
        format!(
            "SELECT pg_catalog.count(*) FROM (SELECT FROM {} WHERE {} {} ANY($1) FOR {}{}) AS locked",
            self.qualified,
            self.column_sql,
            self.equals,
            mode.name().to_ascii_uppercase(),
            if nowait { " NOWAIT" } else { "" },
        )
    }

    fn resolve(rel: pg_sys::Oid, key_column: Option<String>) -> Result<Target, LockhierError> {
        let asked = key_column.clone();
        let row = Spi::connect(|client| {
            let table = client.select(TARGET_QUERY, Some(1), &[rel.into(), key_column.into()])?;
            if table.is_empty() {
                return Ok(None);
            }
            let row = table.first();
            Ok::<_, pgrx::spi::SpiError>(Some((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<Vec<String>>(4)?.unwrap_or_default(),
                row.get::<String>(5)?,
                row.get::<String>(6)?,
                row.get::<String>(7)?,
                row.get::<pg_sys::Oid>(8)?,
            )))
        })
        .unwrap_or_else(|error| panic!("reading the catalog failed: {error}"));
        let Some((qualified, shown, relkind, primary_key, column, column_sql, column_type, type_oid)) = row
        else {
            return Err(LockhierError::NoSuchRelation(rel.to_u32()));
        };
        match relkind.as_str() {
            "r" | "p" => {}
            // Where the rows live decides how long a row lock waits, not lockhier's bound.
            "f" => return Err(LockhierError::ForeignTable(shown)),
            other => return Err(LockhierError::NotATable { table: shown, kind: relkind_name(other) }),
        }
        match (column, column_sql, column_type, type_oid) {
            (Some(column), Some(column_sql), Some(column_type), Some(type_oid)) => {
                let schema = relations::equality_operator_schema(type_oid).unwrap_or("pg_catalog".into());
                let equals = format!("OPERATOR({}.=)", spi::quote_identifier(&schema));
                Ok(Target { relid: rel, qualified, shown, column, column_sql, column_type, equals })
            }
            _ => Err(match asked {
                Some(column) => LockhierError::NoSuchColumn { table: shown, column },
                None if primary_key.is_empty() => LockhierError::NoPrimaryKey(shown),
                None => LockhierError::CompositePrimaryKey { table: shown, columns: primary_key },
            }),
        }
    }
}

/// `pg_class.relkind` in words, for "cannot lock rows of x: it is ..., not a table".
fn relkind_name(relkind: &str) -> &'static str {
    match relkind {
        "v" => "a view",
        "m" => "a materialized view",
        "S" => "a sequence",
        "i" | "I" => "an index",
        "c" => "a composite type",
        "t" => "a TOAST table",
        _ => "not a table",
    }
}

/// Where a call was when it raised: a lock-not-available error means something different in
/// each step, and a missing operator is an ids type mismatch only while preparing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    LockingRelation(pg_sys::Oid),
    Preparing,
    LockingRows,
}

/// Everything but the reporting: `Ok(rows locked)`, or the error to raise.
fn lock(
    rel: Option<pg_sys::Oid>,
    ids: Option<AnyArray>,
    mode: Option<&str>,
    wait_for: Option<Interval>,
    key_column: Option<&CStr>,
) -> Result<i64, LockhierError> {
    let rel = required(rel, "rel")?;
    let ids = required(ids, "ids")?;
    let mode = RowMode::parse(required(mode, "mode")?)?;
    let wait_for = wait(wait_for)?;
    if relations::array_has_nulls(ids.datum()) {
        return Err(LockhierError::NullIdsElement);
    }
    let key_column = key_column.map(|c| c.to_string_lossy().into_owned());
    let target_key = (rel, key_column);
    let target = rowcache::target(&target_key, || Target::resolve(rel, target_key.1.clone()))?;

    let nowait = wait_for == Wait::No;
    let statement_key = (mode.name(), nowait, ids.oid());
    let started = Instant::now();
    let step = AssertUnwindSafe(Cell::new(Step::Preparing));
    let outcome = subxact::kept_if_ok(|| {
        lock_relations(target.relid, wait_for, started, &step)?;
        step.set(Step::Preparing);
        let statement = Spi::connect_mut(|client| {
            rowcache::statement(&target_key, statement_key, || {
                let sql = target.locking_statement(mode, nowait);
                Ok::<_, SpiError>(client.prepare_mut(sql.as_str(), &[PgOid::from(ids.oid())])?.keep())
            })
        })
        .unwrap_or_else(|error| panic!("preparing the locking statement failed: {error}"));
        step.set(Step::LockingRows);
        let _limit = match wait_for {
            Wait::UpTo(limit) => Some(LockTimeoutOverride::set(limit.saturating_sub(started.elapsed()))),
            Wait::No | Wait::Unbounded => None,
        };
        let count = Spi::connect_mut(|client| {
            client.update(&*statement, None, &[ids_arg(&ids)])?.first().get_one::<i64>()
        })
        .unwrap_or_else(|error| panic!("locking rows failed: {error}"));
        Ok(count.unwrap_or(0))
    });
    let waited = || (wait_for != Wait::No).then(|| started.elapsed());
    match outcome {
        Ok(Ok(count)) => {
            subxact::warn_if_outside_transaction_block();
            Ok(count)
        }
        Ok(Err(relid)) => Err(table_locked(&target, relid, mode, waited())),
        Err(error) if sqlstate(&error) == Some(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE) => {
            match step.get() {
                Step::LockingRelation(relid) => Err(table_locked(&target, relid, mode, waited())),
                Step::LockingRows => Err(LockhierError::RowConflict(Box::new(RowConflict {
                    lockers: lockers(&target, &ids),
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
        match wait_for {
            Wait::No => return Err(relation),
            Wait::UpTo(limit) => {
                let left =
                    limit.checked_sub(started.elapsed()).filter(|left| !left.is_zero()).ok_or(relation)?;
                let _limit = LockTimeoutOverride::set(left);
                relations::lock(relation, TABLE_MODE);
            }
            Wait::Unbounded => relations::lock(relation, TABLE_MODE),
        }
    }
    Ok(())
}

fn table_locked(
    target: &Target,
    relid: pg_sys::Oid,
    mode: RowMode,
    waited: Option<std::time::Duration>,
) -> LockhierError {
    LockhierError::TableLocked(Box::new(TableLocked {
        table: target.shown.clone(),
        locked: if relid == target.relid { target.shown.clone() } else { relations::name(relid) },
        mode,
        holders: holders::of_relation(relid, TABLE_MODE as u8),
        waited,
    }))
}

/// The ids as the statement's parameter, borrowed for as long as the array argument lives.
fn ids_arg(ids: &AnyArray) -> DatumWithOid<'_> {
    // SAFETY: the datum is the array argument of this call, of the type PostgreSQL reported;
    // the result borrows `ids`, so it cannot outlive the call.
    unsafe { DatumWithOid::new(*ids, ids.oid()) }
}

fn sqlstate(error: &CaughtError) -> Option<PgSqlErrorCode> {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
            Some(report.sql_error_code())
        }
        CaughtError::RustPanic { .. } => None,
    }
}

/// How many of the requested rows the error path inspects for their lockers.
const ROWS_INSPECTED: i64 = 1000;

/// Who holds the rows the call wanted, read from the rows themselves (error path only).
///
/// Looked at in a subtransaction that is always rolled back, so the look keeps no lock, and an
/// error while reading tuple headers leaves the holders unnamed rather than replacing the
/// conflict. It never waits: if the table cannot be read at once, the holders go unnamed.
fn lockers(target: &Target, ids: &AnyArray) -> Vec<RowLocker> {
    let query = format!(
        "SELECT t.tableoid, t.ctid::pg_catalog.text, t.{col}::pg_catalog.text
           FROM {table} AS t WHERE t.{col} {equals} ANY($1) ORDER BY t.{col} LIMIT {ROWS_INSPECTED}",
        col = target.column_sql,
        table = target.qualified,
        equals = target.equals,
    );
    let relid = target.relid;
    let inspected = subxact::probe(AssertUnwindSafe(|| {
        let readable = relations::with_descendants(relid)
            .into_iter()
            .all(|relation| relations::try_lock(relation, pg_sys::AccessShareLock));
        if !readable {
            return Vec::new();
        }
        let rows: Vec<(pg_sys::Oid, String, String)> = Spi::connect(|client| {
            client
                .select(query.as_str(), None, &[ids_arg(ids)])?
                .map(|row| {
                    Ok((
                        row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                        row.get::<String>(2)?.unwrap_or_default(),
                        row.get::<String>(3)?.unwrap_or_default(),
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
        })
        .unwrap_or_default();
        rows.into_iter()
            .filter_map(|(relid, ctid, key)| {
                let (block, offset) = parse_ctid(&ctid)?;
                Some((tuplelock::lockers(relid, block, offset), key))
            })
            .collect::<Vec<_>>()
    }))
    .unwrap_or_default();

    // Per locking transaction, the keys of the rows it holds, in key order, one per row.
    let mut keys_by_xid: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (xids, key) in inspected {
        for xid in xids {
            keys_by_xid.entry(xid).or_default().push(key.clone());
        }
    }
    let xids: Vec<u32> = keys_by_xid.keys().copied().collect();
    let me = lockmgr::my_pid();
    // A prepared transaction shows as process 0: one entry per such transaction.
    let mut keys_by_pid: BTreeMap<(i32, Option<u32>), Vec<String>> = BTreeMap::new();
    for (xid, pid) in lockmgr::transaction_owners(&xids) {
        if pid != me {
            let prepared = (pid == 0).then_some(xid);
            keys_by_pid.entry((pid, prepared)).or_default().extend(keys_by_xid[&xid].iter().cloned());
        }
    }
    let pids: Vec<i32> = keys_by_pid.keys().map(|&(pid, _)| pid).collect();
    let mut backends = activity::backends(&pids);
    keys_by_pid
        .into_iter()
        .map(|((pid, xid), row_keys)| {
            let mut keys: Vec<String> = Vec::new();
            for key in &row_keys {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
            RowLocker { pid, rows: row_keys.len(), keys, backend: backends.remove(&pid), xid }
        })
        .collect()
}

/// `(12,3)` -> block 12, offset 3.
fn parse_ctid(ctid: &str) -> Option<(u32, u16)> {
    let (block, offset) = ctid.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
    Some((block.parse().ok()?, offset.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_ctid;

    #[test]
    fn ctids_parse() {
        assert_eq!(parse_ctid("(0,1)"), Some((0, 1)));
        assert_eq!(parse_ctid("(4294967295,65535)"), Some((u32::MAX, u16::MAX)));
        assert_eq!(parse_ctid("0,1"), None);
    }
}
