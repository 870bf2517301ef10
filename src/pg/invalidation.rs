//! Cache invalidation callbacks: a relation's definition changed, or some schema did.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::OnceLock;

/// What the callbacks are told.
pub struct Callbacks {
    /// A relation changed (`InvalidOid`: every relation may have).
    pub relation_changed: fn(pg_sys::Oid),
    /// A schema was created, renamed or dropped.
    pub schema_changed: fn(),
}

static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

/// Called once, from `_PG_init`. The callbacks may only note what changed: they run while
/// invalidation messages are processed, where no real work may be done.
pub fn register(callbacks: Callbacks) {
    if CALLBACKS.set(callbacks).is_err() {
        return;
    }
    // SAFETY: registering callbacks that live as long as the loaded library, which is never
    // unloaded; they only call the Rust functions registered above.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relation_change), pg_sys::Datum::from(0)) };
    let namespaces = pg_sys::SysCacheIdentifier::NAMESPACEOID as i32;
    // SAFETY: as above.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(namespaces, Some(on_schema_change), pg_sys::Datum::from(0))
    };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relation_change(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if let Some(callbacks) = CALLBACKS.get() {
        (callbacks.relation_changed)(relid);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_schema_change(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    if let Some(callbacks) = CALLBACKS.get() {
        (callbacks.schema_changed)();
    }
}
