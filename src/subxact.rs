//! Running something that may wait for a lock so that giving up is safe: an internal
//! subtransaction to roll it back, and a `lock_timeout` that applies to it alone.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::panic::UnwindSafe;
use std::time::Duration;

/// Sets the server's `lock_timeout` for the duration of one wait (or one statement) and restores
/// it when dropped, which also happens while an ERROR unwinds through the wait.
pub struct LockTimeoutOverride {
    saved: i32,
}

impl LockTimeoutOverride {
    pub fn set(limit: Duration) -> LockTimeoutOverride {
        // lock_timeout counts whole milliseconds; 0 would mean "no limit".
        let millis = limit.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32;
        // SAFETY: LockTimeout is the GUC variable behind lock_timeout, read by ProcSleep when a
        // wait begins; this backend is single-threaded and nothing else runs in between.
        unsafe {
            let saved = pg_sys::LockTimeout;
            pg_sys::LockTimeout = millis;
            LockTimeoutOverride { saved }
        }
    }
}

impl Drop for LockTimeoutOverride {
    fn drop(&mut self) {
        // SAFETY: see `set`.
        unsafe { pg_sys::LockTimeout = self.saved };
    }
}

/// Run `f` as a PL/pgSQL block with an EXCEPTION clause runs its body: if it raises, everything
/// it did, transaction-level locks included, is rolled back and the error is returned.
pub fn in_subtransaction<T>(f: impl FnOnce() -> T + UnwindSafe) -> Result<T, CaughtError> {
    // SAFETY: the calling SQL function runs inside a transaction and outside parallel mode
    // (lockhier's functions are PARALLEL UNSAFE), where internal subtransactions are allowed.
    // The memory context and resource owner are restored on both paths, as PL/pgSQL does.
    unsafe {
        let memory_context = pg_sys::CurrentMemoryContext;
        let resource_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory_context);

        let result = PgTryBuilder::new(|| Ok(f())).catch_others(Err).execute();

        // By now PgTryBuilder has flushed the error state, as must happen before a rollback.
        match result {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(memory_context);
        pg_sys::CurrentResourceOwner = resource_owner;
        result
    }
}

/// Run `f` with `owner` as the current resource owner, so that transaction locks it takes
/// belong to `owner`; the previous owner is back afterwards, also if `f` raises.
pub fn with_resource_owner<T>(owner: pg_sys::ResourceOwner, f: impl FnOnce() -> T) -> T {
    struct Restore(pg_sys::ResourceOwner);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back the owner that was current when `with_resource_owner` began.
            unsafe { pg_sys::CurrentResourceOwner = self.0 };
        }
    }
    // SAFETY: `owner` is a live resource owner of this transaction (the caller's), which
    // outlives the call; this backend is single-threaded.
    let _restore = unsafe {
        let previous = pg_sys::CurrentResourceOwner;
        pg_sys::CurrentResourceOwner = owner;
        Restore(previous)
    };
    f()
}
