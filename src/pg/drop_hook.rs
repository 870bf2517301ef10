//! Drops lockhier may refuse while leases are held: of the lockhier extension and of a role.
//!
//! Seen through `object_access_hook` (OAT_DROP), not `ProcessUtility_hook`: the access hook is
//! called for the object itself however it is being dropped (`DROP EXTENSION`, `DROP SCHEMA
//! lockhier CASCADE`, `pg_restore --clean`; `DROP ROLE` of several roles), with its OID
//! already resolved, inside the dropping transaction and before its catalog row is deleted, so
//! an ERROR raised there undoes the whole statement. A utility hook would see statements, with
//! names still to resolve and the drops that come by dependency out of its sight.

use lockhier_core::lease::in_use::Dropping;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::sync::OnceLock;

static ON_DROP: OnceLock<fn(Dropping)> = OnceLock::new();
static mut PREVIOUS_HOOK: pg_sys::object_access_hook_type = None;

/// Called once, from `_PG_init` while lockhier is being preloaded: `on_drop` is called in the
/// dropping backend as lockhier or a role is about to be dropped, and may raise an ERROR to
/// refuse it.
pub fn register(on_drop: fn(Dropping)) {
    if ON_DROP.set(on_drop).is_err() {
        return;
    }
    // SAFETY: _PG_init runs once per process before any statement, so nothing reads the hook
    // while it is swapped; the previous hook is kept and called first, as hooks are chained.
    let previous = unsafe { pg_sys::object_access_hook };
    // SAFETY: as above; written once, before the hook that reads it is installed.
    unsafe { PREVIOUS_HOOK = previous };
    // SAFETY: as above.
    unsafe { pg_sys::object_access_hook = Some(on_object_access) };
}

type Hook = unsafe extern "C-unwind" fn(
    pg_sys::ObjectAccessType::Type,
    pg_sys::Oid,
    pg_sys::Oid,
    i32,
    *mut std::ffi::c_void,
);

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
        // SAFETY: the guard turns an ERROR the previous hook raises into a panic, which the
        // guard of this function raises again.
        unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                call_previous(previous, access, class_id, object_id, sub_id, arg)
            })
        };
    }
    if access != pg_sys::ObjectAccessType::OAT_DROP {
        return;
    }
    let Some(on_drop) = ON_DROP.get() else { return };
    if class_id == pg_sys::ExtensionRelationId && is_lockhier(object_id) {
        on_drop(Dropping::Lockhier);
    } else if class_id == pg_sys::AuthIdRelationId {
        on_drop(Dropping::Role(object_id.to_u32()));
    }
}

fn call_previous(
    previous: Hook,
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: i32,
    arg: *mut std::ffi::c_void,
) {
    // SAFETY: the hook that was installed before ours, called with what we were given.
    unsafe { previous(access, class_id, object_id, sub_id, arg) }
}

/// Whether the extension with this OID is lockhier (its pg_extension row is still there: the
/// hook runs before it is deleted).
fn is_lockhier(extension: pg_sys::Oid) -> bool {
    // SAFETY: get_extension_name reads pg_extension; it returns NULL for an unknown OID, else a
    // palloc'd C string.
    let name = unsafe { pg_sys::get_extension_name(extension) };
    // SAFETY: non-NULL means a NUL-terminated string.
    !name.is_null() && unsafe { CStr::from_ptr(name) } == c"lockhier"
}

/// A database's name, or `None` if no database has that OID (any more).
pub fn database_name(database: u32) -> Option<String> {
    // SAFETY: get_database_name reads pg_database (a shared catalog); it returns NULL for an
    // unknown OID, else a palloc'd C string.
    let name = unsafe { pg_sys::get_database_name(pg_sys::Oid::from_u32(database)) };
    // SAFETY: non-NULL means a NUL-terminated string.
    (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned())
}
