//! Databases this backend dropped, told once the drop has committed (`DROP DATABASE` can still
//! fail after the object-access hook sees it, e.g. when others are connected to it).

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::sync::OnceLock;

static ON_DROPPED: OnceLock<fn(u32)> = OnceLock::new();
static mut PREVIOUS_HOOK: pg_sys::object_access_hook_type = None;

thread_local! {
    /// Dropped in the current transaction; one at a time in practice (`DROP DATABASE` runs
    /// alone, outside any transaction block).
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Called once, from `_PG_init` while lockhier is being preloaded.
pub fn register(on_dropped: fn(u32)) {
    if ON_DROPPED.set(on_dropped).is_err() {
        return;
    }
    // SAFETY: _PG_init runs once per process before any statement, so nothing reads the hook
    // while it is swapped; the previous hook is kept and called first, as hooks are chained.
    let previous = unsafe { pg_sys::object_access_hook };
    // SAFETY: as above; written once, before the hook that reads it is installed.
    unsafe { PREVIOUS_HOOK = previous };
    // SAFETY: as above.
    unsafe { pg_sys::object_access_hook = Some(on_object_access) };
    // SAFETY: a callback that lives as long as the library, which is never unloaded.
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: i32,
    arg: *mut std::ffi::c_void,
) {
    // SAFETY: set once in `register`, before this hook could run.
    if let Some(previous) = unsafe { PREVIOUS_HOOK } {
        // SAFETY: the hook that was installed before ours, called with what we were given.
        unsafe { previous(access, class_id, object_id, sub_id, arg) };
    }
    if access == pg_sys::ObjectAccessType::OAT_DROP && class_id == pg_sys::DatabaseRelationId {
        DROPPED.with_borrow_mut(|dropped| dropped.push(object_id.to_u32()));
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if !matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        return;
    }
    let dropped = DROPPED.with_borrow_mut(std::mem::take);
    if let (XACT_EVENT_COMMIT, Some(on_dropped)) = (event, ON_DROPPED.get()) {
        dropped.into_iter().for_each(on_dropped);
    }
}
