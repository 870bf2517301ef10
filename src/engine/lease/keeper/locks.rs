//! The keeper's hold on a lease's locks: every lock of its plan, as the keeper's session locks,
//! taken without waiting, all or none; and the lease's fence, kept from the grant to the end so
//! that expiring the lease needs no new lock-table entry.

use crate::engine::acquire;
use crate::pg::lockmgr::{self, Fence, Hold};
use lockhier_core::lease::Lease;
use lockhier_core::plan::Plan;
use pgrx::prelude::*;
use std::panic::AssertUnwindSafe;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taking {
    Taken,
    /// A lock of the plan is held by someone else: none is taken.
    Busy,
    /// The server's lock table is full ("out of shared memory"): none is taken.
    LockTableFull,
}

pub fn take(lease: &Lease) -> Taking {
    let request = lease.request.request();
    let plan = Plan::of(&request);
    let steps = plan.steps();
    // Counted as they are taken: on a failure, exactly these are given back. (Checking which
    // keys the keeper holds would also give back what other leases hold in the same mode.)
    PgTryBuilder::new(AssertUnwindSafe(|| {
        acquire::all_or_none(
            steps,
            |step| {
                lockmgr::unlock_in(lease.database, step.key, step.mode);
            },
            |taken| {
                for step in steps {
                    if !lockmgr::try_lock_in(lease.database, step.key, step.mode) {
                        return Err(Taking::Busy);
                    }
                    taken.one_more();
                }
                // Nobody takes a fence in a mode that conflicts with the keeper's: only a full
                // lock table refuses it.
                if !lockmgr::try_fence(lease.database, lease.token, Fence::Kept, Hold::Session) {
                    return Err(Taking::Busy);
                }
                Ok(Taking::Taken)
            },
        )
        .unwrap_or_else(|busy| busy)
    }))
    .catch_others(|_| Taking::LockTableFull)
    .execute()
}

/// Give back every lock of the lease and its fence. Releasing never needs a new entry in the
/// lock table, so it works when the table is full.
pub fn release(lease: &Lease) {
    let request = lease.request.request();
    for step in Plan::of(&request).steps().iter().rev() {
        lockmgr::unlock_in(lease.database, step.key, step.mode);
    }
    lockmgr::release_fence(lease.database, lease.token, Fence::Kept, Hold::Session);
}
