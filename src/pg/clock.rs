//! The time, as PostgreSQL keeps it: microseconds since 2000-01-01 UTC (`timestamptz`).

use pgrx::pg_sys;

pub fn now() -> i64 {
    // SAFETY: GetCurrentTimestamp only reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}
