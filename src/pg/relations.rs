//! Relations and types as the row helpers need them: relation locks taken without
//! waiting or within a bound, a table's partitions and children, names for messages, and the
//! schema of a type's equality operator. Catalog reads here go through the syscache, never SPI.

use pgrx::pg_sys;

// Not in pgrx's bindings (catalog/pg_inherits.h); the same signatures in PostgreSQL 13 to 18.
// Called through pg_guard_ffi_boundary, which turns an ERROR they raise into a Rust panic.
unsafe extern "C-unwind" {
    fn find_all_inheritors(
        parent: pg_sys::Oid,
        lockmode: pg_sys::LOCKMODE,
        numparents: *mut *mut pg_sys::List,
    ) -> *mut pg_sys::List;
    fn has_subclass(relation: pg_sys::Oid) -> bool;
}

/// The relation and every partition or inheritance child of it, parent first, as the executor
/// visits them. Nothing is locked: the caller locks each, and a child dropped meanwhile only
/// costs a lock on an OID that no longer names anything.
pub fn with_descendants(relid: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    // SAFETY: has_subclass reads pg_class.relhassubclass through the syscache; the guard
    // catches an ERROR it raises (this is the main thread).
    if !unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| has_subclass_guarded(relid)) } {
        return vec![relid];
    }
    let no_lock = pg_sys::NoLock as pg_sys::LOCKMODE;
    // SAFETY: with NoLock, find_all_inheritors only scans pg_inherits; it returns a palloc'd
    // list of OIDs in the current memory context. Guarded as above.
    let list = unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| inheritors_unlocked(relid, no_lock)) };
    oids_of(list)
}

fn has_subclass_guarded(relid: pg_sys::Oid) -> bool {
    // SAFETY: called inside pg_guard_ffi_boundary (see `with_descendants`).
    unsafe { has_subclass(relid) }
}

fn inheritors_unlocked(relid: pg_sys::Oid, no_lock: pg_sys::LOCKMODE) -> *mut pg_sys::List {
    // SAFETY: called inside pg_guard_ffi_boundary (see `with_descendants`).
    unsafe { find_all_inheritors(relid, no_lock, std::ptr::null_mut()) }
}

fn oids_of(list: *mut pg_sys::List) -> Vec<pg_sys::Oid> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-NIL List pointer points to a List.
    let list = unsafe { &*list };
    // SAFETY: a List has `length` valid cells at `elements`.
    let cells = unsafe { std::slice::from_raw_parts(list.elements, list.length as usize) };
    // SAFETY: find_all_inheritors builds an OID list (T_OidList), whose cells hold oid_value.
    cells.iter().map(|cell| unsafe { cell.oid_value }).collect()
}

/// Take `mode` on the relation if it can be had at once; never waits.
pub fn try_lock(relid: pg_sys::Oid, mode: u32) -> bool {
    // SAFETY: takes a lock owned by the current resource owner; never sleeps.
    unsafe { pg_sys::ConditionalLockRelationOid(relid, mode as pg_sys::LOCKMODE) }
}

/// Take `mode` on the relation, waiting in the lock manager's queue as long as the session's
/// `lock_timeout` (which the caller may have overridden) allows.
pub fn lock(relid: pg_sys::Oid, mode: u32) {
    // SAFETY: as for `try_lock`; a timeout, cancel or deadlock raises an ERROR, which unwinds
    // to the caller's subtransaction.
    unsafe { pg_sys::LockRelationOid(relid, mode as pg_sys::LOCKMODE) }
}

/// The relation as `regclass` shows it (schema-qualified unless on the search path).
pub fn name(relid: pg_sys::Oid) -> String {
    let regclassout = pg_sys::Oid::from_u32(pg_sys::F_REGCLASSOUT);
    // SAFETY: regclass output takes any OID (an unknown one prints as a number) and returns a
    // palloc'd C string.
    let shown = unsafe { pg_sys::OidOutputFunctionCall(regclassout, relid.into()) };
    // SAFETY: a C string, as just returned.
    unsafe { c_string(shown) }
}

/// A type as `format_type` shows it: `integer[]`, `timestamp with time zone`.
pub fn type_name(typid: pg_sys::Oid) -> String {
    // SAFETY: format_type_be returns a palloc'd C string for any OID.
    let shown = unsafe { pg_sys::format_type_be(typid) };
    // SAFETY: a C string, as just returned.
    unsafe { c_string(shown) }
}

/// # Safety
/// `ptr` is a NUL-terminated string.
unsafe fn c_string(ptr: *const std::ffi::c_char) -> String {
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

/// The schema of the default equality operator of `typid` (`pg_catalog` for built-in types,
/// enums, domains over them and composites; the extension's schema for a type such as
/// `citext`), or `None` when the type has none. The locking statement names its operator
/// with that schema, so a look-alike on the caller's search path is never chosen.
pub fn equality_operator_schema(typid: pg_sys::Oid) -> Option<String> {
    // SAFETY: lookup_type_cache returns a long-lived entry of the backend's type cache.
    let entry = unsafe { pg_sys::lookup_type_cache(typid, pg_sys::TYPECACHE_EQ_OPR as i32) };
    // SAFETY: the entry was just returned and is never freed.
    let operator = unsafe { (*entry).eq_opr };
    if operator == pg_sys::InvalidOid {
        return None;
    }
    let namespace = operator_namespace(operator)?;
    // SAFETY: get_namespace_name returns a palloc'd copy, or NULL for an unknown schema.
    let name = unsafe { pg_sys::get_namespace_name(namespace) };
    // SAFETY: non-NULL means a NUL-terminated string.
    (!name.is_null()).then(|| unsafe { c_string(name) })
}

fn operator_namespace(operator: pg_sys::Oid) -> Option<pg_sys::Oid> {
    let cache = pg_sys::SysCacheIdentifier::OPEROID as i32;
    // SAFETY: a syscache lookup by OID; the tuple is released below.
    let tuple = unsafe { pg_sys::SearchSysCache1(cache, operator.into()) };
    if tuple.is_null() {
        return None;
    }
    // SAFETY: a pg_operator tuple's data is a FormData_pg_operator.
    let form = unsafe { pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_operator>(tuple) };
    // SAFETY: `form` points into the cached tuple, valid until it is released below.
    let namespace = unsafe { (*form).oprnamespace };
    // SAFETY: releases the reference taken above.
    unsafe { pg_sys::ReleaseSysCache(tuple) };
    Some(namespace)
}
