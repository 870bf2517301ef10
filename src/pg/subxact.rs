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
        let saved = unsafe { pg_sys::LockTimeout };
        // SAFETY: as above.
        unsafe { pg_sys::LockTimeout = millis };
        LockTimeoutOverride { saved }
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
    run(f, |_| true)
}

/// As [`in_subtransaction`], and also rolled back when `f` returns `Err`: a refusal keeps
/// nothing of what was taken on the way to it.
pub fn kept_if_ok<T, E>(f: impl FnOnce() -> Result<T, E> + UnwindSafe) -> Result<Result<T, E>, CaughtError> {
    run(f, Result::is_ok)
}

/// Run `f` and roll back whatever it did, locks included, whether it returns or raises: for
/// looking (who holds these rows?) without keeping anything the look took.
pub fn probe<T>(f: impl FnOnce() -> T + UnwindSafe) -> Result<T, CaughtError> {
    run(f, |_| false)
}

fn run<T>(f: impl FnOnce() -> T + UnwindSafe, keep: impl FnOnce(&T) -> bool) -> Result<T, CaughtError> {
    // SAFETY: reading the current memory context, to restore it after.
    let memory_context = unsafe { pg_sys::CurrentMemoryContext };
    // SAFETY: reading the current resource owner, to restore it after.
    let resource_owner = unsafe { pg_sys::CurrentResourceOwner };
    // SAFETY: the calling SQL function runs inside a transaction and outside parallel mode
    // (lockhier's functions are PARALLEL UNSAFE), where internal subtransactions are allowed.
    unsafe { pg_sys::BeginInternalSubTransaction(std::ptr::null()) };
    // SAFETY: the caller's memory context outlives the subtransaction; results allocated in it
    // survive the rollback, as PL/pgSQL arranges.
    unsafe { pg_sys::MemoryContextSwitchTo(memory_context) };

    let result = PgTryBuilder::new(|| Ok(f())).catch_others(Err).execute();

    // By now PgTryBuilder has flushed the error state, as must happen before a rollback.
    match &result {
        // SAFETY: ends the subtransaction begun above, keeping its work in the caller's.
        Ok(value) if keep(value) => unsafe { pg_sys::ReleaseCurrentSubTransaction() },
        // SAFETY: ends the subtransaction begun above, undoing its work.
        _ => unsafe { pg_sys::RollbackAndReleaseCurrentSubTransaction() },
    }
    // SAFETY: puts back the caller's memory context and resource owner, as PL/pgSQL does.
    unsafe { pg_sys::MemoryContextSwitchTo(memory_context) };
    // SAFETY: as above.
    unsafe { pg_sys::CurrentResourceOwner = resource_owner };
    result
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
    // SAFETY: reading the current resource owner, to restore it after.
    let _restore = Restore(unsafe { pg_sys::CurrentResourceOwner });
    // SAFETY: `owner` is a live resource owner of this transaction (the caller's), which
    // outlives the call; this backend is single-threaded.
    unsafe { pg_sys::CurrentResourceOwner = owner };
    f()
}
