//! Taking a plan all or nothing.
//!
//! Each lock is first tried without waiting, so an uncontended request costs one `LockAcquire`
//! per step and nothing else. Only a lock that is not available at once is waited for (when
//! the request may wait), in the lock manager's own queue. Whenever the request is refused or
//! raises, every lock it already took is given back before control returns to the caller:
//! for session locks a transaction abort would not do that.

use crate::pg::lockmgr::{self, Hold};
use lockhier_core::plan::{Plan, Step};
use lockhier_core::Wait;
use pgrx::prelude::*;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// Why a request was not taken, when that is a conflict rather than an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// How long it waited before giving up; `None` if it did not wait.
    pub waited: Option<Duration>,
}

/// Take every step of `plan`, or none. A conflict (or the wait for one running out) is
/// `Err(Refused)`; a cancel, a deadlock or any other error is raised after the release.
pub fn take(plan: &Plan, hold: Hold, wait: Wait) -> Result<(), Refused> {
    let steps = plan.steps();
    // Unwind-safe: the count always matches the locks held, at every point a panic can start.
    let taken = AssertUnwindSafe(Cell::new(0));
    PgTryBuilder::new(|| {
        let mut started: Option<Instant> = None;
        for step in steps {
            if lockmgr::try_lock(step.key, step.mode, hold) {
                taken.set(taken.get() + 1);
                continue;
            }
            let began = *started.get_or_insert_with(Instant::now);
            let timeout = match wait {
                Wait::No => return refuse(steps, &taken, hold, None),
                Wait::Unbounded => None,
                Wait::UpTo(limit) => match limit.checked_sub(began.elapsed()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return refuse(steps, &taken, hold, Some(began.elapsed())),
                },
            };
            match lockmgr::lock_waiting(step.key, step.mode, hold, timeout) {
                Ok(()) => taken.set(taken.get() + 1),
                Err(error) if lockmgr::is_lock_timeout(&error) => {
                    return refuse(steps, &taken, hold, Some(began.elapsed()))
                }
                Err(error) => error.rethrow(),
            }
        }
        Ok(())
    })
    .catch_others(|error| {
        release(&steps[..taken.get()], hold);
        error.rethrow()
    })
    .execute()
}

fn refuse(steps: &[Step], taken: &Cell<usize>, hold: Hold, waited: Option<Duration>) -> Result<(), Refused> {
    release(&steps[..taken.replace(0)], hold);
    Err(Refused { waited })
}

/// Give back one hold of each step, leaf first.
pub fn release(steps: &[Step], hold: Hold) {
    for step in steps.iter().rev() {
        lockmgr::unlock(step.key, step.mode, hold);
    }
}
