//! The row-lock functions, declared in `sql/rows.sql` (where `regclass`, `anyarray` and `name`
//! are spelled out): `SELECT ... FOR <strength>` on the rows whose key is in an array (see
//! `crate::rows`).

use super::args;
use super::errors::{self, or_report};
use crate::engine::lock;
use lockhier_core::request::required;
use lockhier_core::{LockhierError, RowMode};
use pgrx::datum::AnyArray;
use pgrx::prelude::*;
use std::ffi::CStr;

/// The rows locked, or the refusal (a conflict, or the table locked) as an error.
fn lock(
    rel: Option<pg_sys::Oid>,
    ids: Option<AnyArray>,
    mode: Option<&str>,
    wait: Option<Interval>,
    key_column: Option<&CStr>,
) -> Result<i64, LockhierError> {
    let rel = required(rel, "rel")?;
    let ids = required(ids, "ids")?;
    let mode = RowMode::parse(required(mode, "mode")?)?;
    let wait = args::wait(wait)?;
    let key_column = key_column.map(|c| c.to_string_lossy().into_owned());
    let locked = crate::rows::lock(rel, ids, mode, wait, key_column)?;
    if !lock::in_transaction_block() {
        errors::warn_outside_transaction_block();
    }
    Ok(locked)
}

/// Locks the rows and returns how many it locked; raises 55P03 on a conflict.
#[pg_extern(volatile, parallel_unsafe, sql = false)]
fn lock_rows(
    rel: Option<pg_sys::Oid>,
    ids: Option<AnyArray>,
    mode: Option<&str>,
    wait: Option<Interval>,
    key_column: Option<&CStr>,
) -> i64 {
    or_report(lock(rel, ids, mode, wait, key_column))
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
        Err(error) => errors::report(error),
    }
}
