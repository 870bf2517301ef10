//! What differs between the PostgreSQL versions lockhier builds for, one function each.

use pgrx::pg_sys;

/// This backend's index in the shared backend status array.
#[cfg(any(feature = "pg15", feature = "pg16"))]
pub fn my_status_slot() -> Option<usize> {
    // PostgreSQL 15 and 16 index the array by BackendId - 1.
    // SAFETY: MyBackendId is set once at backend start-up.
    let id = unsafe { pg_sys::MyBackendId };
    usize::try_from(id - 1).ok()
}

/// This backend's index in the shared backend status array.
#[cfg(any(feature = "pg17", feature = "pg18"))]
pub fn my_status_slot() -> Option<usize> {
    // PostgreSQL 17 replaced BackendId by ProcNumber, which indexes the array directly.
    // SAFETY: MyProcNumber is set once at backend start-up.
    usize::try_from(unsafe { pg_sys::MyProcNumber }).ok()
}

/// Whether this backend holds `tag` in exactly `mode`.
pub fn lock_held_by_me(tag: &pg_sys::LOCKTAG, mode: pg_sys::LOCKMODE) -> bool {
    // PostgreSQL 17 added LockHeldByMe's `orstronger` argument (false: this mode only).
    // SAFETY: LockHeldByMe only looks the tag up in this backend's local lock table.
    #[cfg(any(feature = "pg15", feature = "pg16"))]
    let held = unsafe { pg_sys::LockHeldByMe(tag, mode) };
    // SAFETY: as above.
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    let held = unsafe { pg_sys::LockHeldByMe(tag, mode, false) };
    held
}

/// The virtual transaction id of a lock-table entry's holder, as (backend, local xid).
pub fn virtual_xid(entry: &pg_sys::LockInstanceData) -> (i32, u32) {
    // PostgreSQL 17 folded (backend, lxid) into a VirtualTransactionId with a ProcNumber.
    #[cfg(any(feature = "pg15", feature = "pg16"))]
    let vxid = (entry.backend, entry.lxid);
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    let vxid = (entry.vxid.procNumber, entry.vxid.localTransactionId);
    vxid
}
