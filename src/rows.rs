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
use crate::error::{LockhierError, RowConflict, RowLocker};
use crate::lockmgr;
use crate::model::{required, RowMode, Wait};
use crate::rowcache;
use crate::subxact::{self, LockTimeoutOverride};
use crate::tuplelock;
use pgrx::datum::{AnyArray, DatumWithOid};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgOid;
use pgrx::prelude::*;
use pgrx::spi::SpiError;
use std::collections::BTreeMap;
use std::ffi::CStr;
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
        Err(LockhierError::RowConflict(_)) => false,
        Err(error) => error.report(),
    }
}

/// The table and key column a call locks rows of.
pub struct Target {
    /// `"My App"."Field Rows"`, for the statement.
    qualified: String,
    /// As `regclass` shows it, for messages.
    shown: String,
    column: String,
    /// The column, quoted for the statement.
    column_sql: String,
    column_type: String,
}

/// Names, primary key and key column type of a relation, in one catalog read. `$2` is the
/// key column asked for, or NULL for the primary key's.
const TARGET_QUERY: &str = "
SELECT format('%I.%I', n.nspname, c.relname),
       c.oid::regclass::text,
       pk.columns,
       key.attname::text,
       quote_ident(key.attname),
       format_type(key.atttypid, key.atttypmod)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN LATERAL (
        SELECT array_agg(a.attname::text ORDER BY k.position) AS columns
          FROM pg_catalog.pg_index i
         CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary) pk ON true
  LEFT JOIN pg_catalog.pg_attribute key
    ON key.attrelid = c.oid AND NOT key.attisdropped AND key.attnum > 0
   AND key.attname = coalesce($2::name, CASE WHEN cardinality(pk.columns) = 1 THEN pk.columns[1]::name END)
 WHERE c.oid = $1";

impl Target {
    /// `SELECT count(*) FROM (SELECT FROM <table> WHERE <column> = ANY($1) FOR <mode>) ...`
    fn locking_statement(&self, mode: RowMode, nowait: bool) -> String {
        format!(
            "SELECT count(*) FROM (SELECT FROM {} WHERE {} = ANY($1) FOR {}{}) AS locked",
            self.qualified,
            self.column_sql,
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
                row.get::<Vec<String>>(3)?.unwrap_or_default(),
                row.get::<String>(4)?,
                row.get::<String>(5)?,
                row.get::<String>(6)?,
            )))
        })
        .unwrap_or_else(|error| panic!("reading the catalog failed: {error}"));
        let Some((qualified, shown, primary_key, column, column_sql, column_type)) = row else {
            return Err(LockhierError::NoSuchRelation(rel.to_u32()));
        };
        match (column, column_sql, column_type) {
            (Some(column), Some(column_sql), Some(column_type)) => {
                Ok(Target { qualified, shown, column, column_sql, column_type })
            }
            _ => Err(match asked {
                Some(column) => LockhierError::NoSuchColumn { table: shown, column },
                None if primary_key.is_empty() => LockhierError::NoPrimaryKey(shown),
                None => LockhierError::CompositePrimaryKey { table: shown, columns: primary_key },
            }),
        }
    }
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
    let key_column = key_column.map(|c| c.to_string_lossy().into_owned());
    let target_key = (rel, key_column);
    let target = rowcache::target(&target_key, || Target::resolve(rel, target_key.1.clone()))?;

    let nowait = wait_for == Wait::No;
    let statement_key = (mode.name(), nowait, ids.oid());
    let started = Instant::now();
    let outcome = subxact::in_subtransaction(|| {
        let _limit = match wait_for {
            Wait::UpTo(limit) => Some(LockTimeoutOverride::set(limit)),
            Wait::No | Wait::Unbounded => None,
        };
        Spi::connect_mut(|client| {
            let statement = rowcache::statement(&target_key, statement_key, || {
                let sql = target.locking_statement(mode, nowait);
                Ok::<_, SpiError>(client.prepare_mut(sql.as_str(), &[PgOid::from(ids.oid())])?.keep())
            })?;
            client.update(&*statement, None, &[ids_arg(ids)])?.first().get_one::<i64>()
        })
    });
    match outcome {
        Ok(Ok(count)) => Ok(count.unwrap_or(0)),
        Ok(Err(error)) => panic!("locking rows failed: {error}"),
        Err(error) if sqlstate(&error) == Some(PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE) => {
            let waited = (wait_for != Wait::No).then(|| started.elapsed());
            Err(LockhierError::RowConflict(Box::new(RowConflict {
                lockers: lockers(&target, ids),
                table: target.shown.clone(),
                column: target.column_sql.clone(),
                mode,
                waited,
            })))
        }
        // The only operator in the statement is `column = ANY(ids)`.
        Err(error) if sqlstate(&error) == Some(PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION) => {
            Err(LockhierError::IdsTypeMismatch {
                ids_type: type_name(ids.oid()),
                column: target.column.clone(),
                column_type: target.column_type.clone(),
                table: target.shown.clone(),
            })
        }
        Err(error) => error.rethrow(),
    }
}

fn ids_arg(ids: AnyArray) -> DatumWithOid<'static> {
    // SAFETY: the datum is the array argument of this call, of the type PostgreSQL reported.
    unsafe { DatumWithOid::new(ids, ids.oid()) }
}

fn sqlstate(error: &CaughtError) -> Option<PgSqlErrorCode> {
    match error {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
            Some(report.sql_error_code())
        }
        CaughtError::RustPanic { .. } => None,
    }
}

fn type_name(oid: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>("SELECT format_type($1, NULL)", &[oid.into()])
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("type {}", oid.to_u32()))
}

/// How many of the requested rows the error path inspects for their lockers.
const ROWS_INSPECTED: i64 = 1000;

/// Who holds the rows the call wanted, read from the rows themselves (error path only).
fn lockers(target: &Target, ids: AnyArray) -> Vec<RowLocker> {
    let query = format!(
        "SELECT tableoid, ctid::text, {col}::text AS key FROM {table} WHERE {col} = ANY($1) ORDER BY {table}.{col} LIMIT {ROWS_INSPECTED}",
        col = target.column_sql,
        table = target.qualified,
    );
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

    // Per locking transaction, the keys of the rows it holds, in key order, one per row.
    let mut keys_by_xid: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (relid, ctid, key) in rows {
        let Some((block, offset)) = parse_ctid(&ctid) else { continue };
        for xid in tuplelock::lockers(relid, block, offset) {
            keys_by_xid.entry(xid).or_default().push(key.clone());
        }
    }
    let xids: Vec<u32> = keys_by_xid.keys().copied().collect();
    let me = lockmgr::my_pid();
    let mut keys_by_pid: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (xid, pid) in lockmgr::transaction_owners(&xids) {
        if pid != me {
            keys_by_pid.entry(pid).or_default().extend(keys_by_xid[&xid].iter().cloned());
        }
    }
    let pids: Vec<i32> = keys_by_pid.keys().copied().collect();
    let mut backends = activity::backends(&pids);
    keys_by_pid
        .into_iter()
        .map(|(pid, row_keys)| {
            let mut keys: Vec<String> = Vec::new();
            for key in &row_keys {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
            RowLocker { pid, rows: row_keys.len(), keys, backend: backends.remove(&pid) }
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
