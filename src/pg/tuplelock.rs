//! Who holds a row lock: the transactions a heap tuple's header names as locking (or updating)
//! it, read the way contrib's pgrowlocks does. Error path only.
//!
//! The relation, the buffer pin and the buffer's content lock are each held by a guard, so
//! they are given back in the right order on every path, also when a call raises an ERROR
//! (which reaches Rust as a panic that unwinds through the guards).

use pgrx::pg_sys;

/// The in-progress top-level transactions that lock or modify the tuple at (`block`, `offset`)
/// of relation `relid`. Empty when it cannot tell: the relation is locked exclusively by
/// someone, is not a heap table, or the tuple has gone.
pub fn lockers(relid: pg_sys::Oid, block: u32, offset: u16) -> Vec<u32> {
    // Never waits: the relation lock stays until the end of the (sub)transaction, as the locks
    // of relations read by a query do.
    if !super::relations::try_lock(relid, pg_sys::AccessShareLock) {
        return Vec::new();
    }
    let relation = OpenRelation::open(relid);
    if !relation.is_heap_table() {
        return Vec::new();
    }
    let Some(tuple) = relation.fetch(block, offset) else {
        return Vec::new();
    };
    // The buffer is unpinned here: what the header says is resolved without holding it.
    let Some(header) = tuple.header_if_being_modified() else {
        return Vec::new();
    };
    let mut xids = header.lockers();
    xids.sort_unstable();
    xids.dedup();
    xids
}

/// An open relation, closed (keeping its lock) when dropped.
struct OpenRelation(pg_sys::Relation);

impl OpenRelation {
    /// The caller holds a lock on `relid`.
    fn open(relid: pg_sys::Oid) -> OpenRelation {
        // SAFETY: the caller locked the relation; NoLock opens it without taking another.
        OpenRelation(unsafe { pg_sys::relation_open(relid, pg_sys::NoLock as pg_sys::LOCKMODE) })
    }

    fn is_heap_table(&self) -> bool {
        // SAFETY: an open relation's RelationData stays valid while it is open.
        let relation = unsafe { &*self.0 };
        // SAFETY: rd_rel is the relation's pg_class row, valid while it is open.
        let form = unsafe { &*relation.rd_rel };
        form.relam == pg_sys::HEAP_TABLE_AM_OID && form.relkind as u8 != pg_sys::RELKIND_PARTITIONED_TABLE
    }

    /// The tuple at (`block`, `offset`), whatever its visibility, with its buffer pinned.
    fn fetch(&self, block: u32, offset: u16) -> Option<FetchedTuple> {
        let mut tuple = pg_sys::HeapTupleData::default();
        tuple.t_self.ip_blkid.bi_hi = (block >> 16) as u16;
        tuple.t_self.ip_blkid.bi_lo = block as u16;
        tuple.t_self.ip_posid = offset;
        let mut buffer: pg_sys::Buffer = 0;
        let any = &raw mut pg_sys::SnapshotAnyData;
        // SAFETY: heap_fetch reads the tuple of an open heap relation under SnapshotAny; when it
        // returns true it has pinned the buffer, which `FetchedTuple` unpins.
        let found = unsafe { pg_sys::heap_fetch(self.0, any, &mut tuple, &mut buffer, false) };
        found.then_some(FetchedTuple { tuple, buffer: PinnedBuffer(buffer) })
    }
}

impl Drop for OpenRelation {
    fn drop(&mut self) {
        // SAFETY: closes the relation opened in `open`; its lock stays with the transaction.
        unsafe { pg_sys::relation_close(self.0, pg_sys::NoLock as pg_sys::LOCKMODE) };
    }
}

/// A buffer pin, released when dropped.
struct PinnedBuffer(pg_sys::Buffer);

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        // SAFETY: releases the pin heap_fetch took.
        unsafe { pg_sys::ReleaseBuffer(self.0) };
    }
}

/// A share lock on a buffer's content, released when dropped.
struct SharedContent<'b>(&'b PinnedBuffer);

impl<'b> SharedContent<'b> {
    fn lock(buffer: &'b PinnedBuffer) -> SharedContent<'b> {
        // SAFETY: the buffer is pinned; a share lock is what HeapTupleSatisfiesUpdate needs.
        unsafe { pg_sys::LockBuffer(buffer.0, pg_sys::BUFFER_LOCK_SHARE as i32) };
        SharedContent(buffer)
    }
}

impl Drop for SharedContent<'_> {
    fn drop(&mut self) {
        // SAFETY: releases the content lock taken in `lock`.
        unsafe { pg_sys::LockBuffer(self.0 .0, pg_sys::BUFFER_LOCK_UNLOCK as i32) };
    }
}

struct FetchedTuple {
    tuple: pg_sys::HeapTupleData,
    buffer: PinnedBuffer,
}

/// What a tuple header says of its lockers, copied out from under the buffer lock.
struct LockerHeader {
    xmax: pg_sys::TransactionId,
    infomask: u32,
}

impl FetchedTuple {
    /// The header's locker fields if some transaction in progress locks or updates the tuple.
    fn header_if_being_modified(mut self) -> Option<LockerHeader> {
        let _content = SharedContent::lock(&self.buffer);
        // SAFETY: GetCurrentCommandId only reads this backend's transaction state.
        let command = unsafe { pg_sys::GetCurrentCommandId(false) };
        // SAFETY: the tuple is pinned and its buffer share-locked, as this check requires; it
        // may set hint bits, which a share lock allows.
        let state = unsafe { pg_sys::HeapTupleSatisfiesUpdate(&mut self.tuple, command, self.buffer.0) };
        if state != pg_sys::TM_Result::TM_BeingModified {
            return None;
        }
        // SAFETY: t_data points into the locked buffer page; the two fields are copied.
        let header = unsafe { &*self.tuple.t_data };
        // SAFETY: t_heap is the variant of t_choice that on-disk tuples use.
        let xmax = unsafe { header.t_choice.t_heap.t_xmax };
        Some(LockerHeader { xmax, infomask: u32::from(header.t_infomask) })
    }
}

impl LockerHeader {
    /// The top-level transactions behind xmax that are still running.
    fn lockers(&self) -> Vec<u32> {
        if self.infomask & pg_sys::HEAP_XMAX_IS_MULTI == 0 {
            return if in_progress(self.xmax) { vec![topmost(self.xmax)] } else { Vec::new() };
        }
        // A multixact of lockers (several share locks, or locks beside an update). An
        // upgraded pre-9.3 lock-only multixact may be older than the oldest one kept.
        let upgraded = self.infomask & pg_sys::HEAP_XMAX_LOCK_ONLY != 0
            && self.infomask & (pg_sys::HEAP_XMAX_EXCL_LOCK | pg_sys::HEAP_XMAX_KEYSHR_LOCK) == 0;
        let mut members: *mut pg_sys::MultiXactMember = std::ptr::null_mut();
        // SAFETY: reads the multixact's members into a palloc'd array, freed below.
        let count = unsafe { pg_sys::GetMultiXactIdMembers(self.xmax, &mut members, upgraded, false) };
        if count <= 0 {
            return Vec::new();
        }
        // SAFETY: GetMultiXactIdMembers returned `count` members at `members`.
        let xids: Vec<_> = unsafe { std::slice::from_raw_parts(members, count as usize) }
            .iter()
            .map(|member| member.xid)
            .collect();
        // SAFETY: the array was palloc'd by GetMultiXactIdMembers and is not used after this.
        unsafe { pg_sys::pfree(members.cast()) };
        xids.into_iter().filter(|&xid| in_progress(xid)).map(topmost).collect()
    }
}

fn in_progress(xid: pg_sys::TransactionId) -> bool {
    // SAFETY: reads the proc array and clog.
    unsafe { pg_sys::TransactionIdIsInProgress(xid) }
}

/// A row locked inside a subtransaction (a PL/pgSQL EXCEPTION block, or lockhier's own
/// `lock_rows`) names the subtransaction's id, whose lock is released when it commits; its
/// top-level transaction is the one to look for. `xid` is in progress, so pg_subtrans knows
/// its parent.
fn topmost(xid: pg_sys::TransactionId) -> u32 {
    // SAFETY: reads pg_subtrans for an xid that is in progress.
    unsafe { pg_sys::SubTransGetTopmostTransaction(xid) }.into_inner()
}
