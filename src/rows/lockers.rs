//! Who holds the rows a call wanted, read from the rows themselves (error path only).

use super::target::Target;
use crate::pg::{activity, array, lockmgr, relations, subxact, tuplelock};
use lockhier_core::conflict::RowLocker;
use pgrx::datum::AnyArray;
use pgrx::prelude::*;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

/// How many of the requested rows the error path inspects for their lockers.
const ROWS_INSPECTED: i64 = 1000;

/// Who holds the rows the call wanted, read from the rows themselves (error path only).
///
/// Looked at in a subtransaction that is always rolled back, so the look keeps no lock, and an
/// error while reading tuple headers leaves the holders unnamed rather than replacing the
/// conflict. It never waits: if the table cannot be read at once, the holders go unnamed.
pub fn lockers(target: &Target, ids: &AnyArray) -> Vec<RowLocker> {
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
                .select(query.as_str(), None, &[array::as_parameter(ids)])?
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
    let mut processes = activity::processes(&pids);
    keys_by_pid
        .into_iter()
        .map(|((pid, xid), row_keys)| {
            let mut keys: Vec<String> = Vec::new();
            for key in &row_keys {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
            RowLocker { pid, rows: row_keys.len(), keys, process: processes.remove(&pid), xid }
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
