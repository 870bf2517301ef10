//! Who holds a row lock: the transactions a heap tuple's header names as locking (or updating)
//! it, read the way contrib's pgrowlocks does. Error path only.

use pgrx::pg_sys;

/// The in-progress top-level transactions that lock or modify the tuple at (`block`, `offset`)
/// of relation `relid`. Empty when it cannot tell: the relation is locked exclusively by
/// someone, is not a heap table, or the tuple has gone.
pub fn lockers(relid: pg_sys::Oid, block: u32, offset: u16) -> Vec<u32> {
    let mut xids = Vec::new();
    // SAFETY: the relation is opened only after a lock on it was granted without waiting, and
    // only if it is a plain heap table. heap_fetch pins the tuple's buffer; its header is read
    // under a share lock on the buffer (as HeapTupleSatisfiesUpdate requires), then the lock
    // and the pin are dropped. The relation stays locked to the end of the transaction, as
    // relations read by a query do.
    unsafe {
        let access_share = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        if !pg_sys::ConditionalLockRelationOid(relid, access_share) {
            return xids;
        }
        let relation = pg_sys::relation_open(relid, pg_sys::NoLock as pg_sys::LOCKMODE);
        let form = &*(*relation).rd_rel;
        let is_heap = form.relam == pg_sys::HEAP_TABLE_AM_OID
            && form.relkind as u8 != pg_sys::RELKIND_PARTITIONED_TABLE;
        if is_heap {
            let mut tuple = pg_sys::HeapTupleData::default();
            tuple.t_self.ip_blkid.bi_hi = (block >> 16) as u16;
            tuple.t_self.ip_blkid.bi_lo = block as u16;
            tuple.t_self.ip_posid = offset;
            let mut buffer: pg_sys::Buffer = 0;
            let any = &raw mut pg_sys::SnapshotAnyData;
            if pg_sys::heap_fetch(relation, any, &mut tuple, &mut buffer, false) {
                pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
                let state =
                    pg_sys::HeapTupleSatisfiesUpdate(&mut tuple, pg_sys::GetCurrentCommandId(false), buffer);
                if state == pg_sys::TM_Result::TM_BeingModified {
                    let header = &*tuple.t_data;
                    let xmax = header.t_choice.t_heap.t_xmax;
                    let infomask = u32::from(header.t_infomask);
                    if infomask & pg_sys::HEAP_XMAX_IS_MULTI != 0 {
                        // A multixact of lockers (several share locks, or locks beside an update).
                        let upgraded = infomask & pg_sys::HEAP_XMAX_LOCK_ONLY != 0
                            && infomask & (pg_sys::HEAP_XMAX_EXCL_LOCK | pg_sys::HEAP_XMAX_KEYSHR_LOCK) == 0;
                        let mut members: *mut pg_sys::MultiXactMember = std::ptr::null_mut();
                        let count = pg_sys::GetMultiXactIdMembers(xmax, &mut members, upgraded, false);
                        if count > 0 {
                            for member in std::slice::from_raw_parts(members, count as usize) {
                                if pg_sys::TransactionIdIsInProgress(member.xid) {
                                    xids.push(topmost(member.xid));
                                }
                            }
                            pg_sys::pfree(members.cast());
                        }
                    } else if pg_sys::TransactionIdIsInProgress(xmax) {
                        xids.push(topmost(xmax));
                    }
                }
                pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_UNLOCK as i32);
                pg_sys::ReleaseBuffer(buffer);
            }
        }
        pg_sys::relation_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
    xids.sort_unstable();
    xids.dedup();
    xids
}

/// A row locked inside a subtransaction (a PL/pgSQL EXCEPTION block, or lockhier's own
/// `lock_rows`) names the subtransaction's id, whose lock is released when it commits; its
/// top-level transaction is the one to look for.
///
/// # Safety
/// `xid` is in progress, so pg_subtrans knows its parent.
unsafe fn topmost(xid: pg_sys::TransactionId) -> u32 {
    // SAFETY: see above.
    unsafe { pg_sys::SubTransGetTopmostTransaction(xid) }.into_inner()
}
