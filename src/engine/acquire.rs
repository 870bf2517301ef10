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
    /// The step that could not be taken (for several requests, it says whose).
    pub at: usize,
}

/// Take every step of `plan`, or none. A conflict (or the wait for one running out) is
/// `Err(Refused)`; a cancel, a deadlock or any other error is raised after the release.
pub fn take(plan: &Plan, hold: Hold, wait: Wait) -> Result<(), Refused> {
    take_steps(plan.steps(), hold, wait)
}

/// Take every one of `steps`, in order, or none, with one wait for them all (`take`).
pub fn take_steps(steps: &[Step], hold: Hold, wait: Wait) -> Result<(), Refused> {
    all_or_none(
        steps,
        |step| {
            lockmgr::unlock(step.key, step.mode, hold);
        },
        |taken| {
            let mut started: Option<Instant> = None;
            for (at, step) in steps.iter().enumerate() {
                if lockmgr::try_lock(step.key, step.mode, hold) {
                    taken.one_more();
                    continue;
                }
                let began = *started.get_or_insert_with(Instant::now);
                let timeout = wait.remaining(began.elapsed());
                if timeout == Some(Duration::ZERO) {
                    return Err(Refused { waited: (wait != Wait::No).then(|| began.elapsed()), at });
                }
                match lockmgr::lock_waiting(step.key, step.mode, hold, timeout) {
                    Ok(()) => taken.one_more(),
                    Err(error) if lockmgr::is_lock_timeout(&error) => {
                        return Err(Refused { waited: Some(began.elapsed()), at })
                    }
                    Err(error) => error.rethrow(),
                }
            }
            Ok(())
        },
    )
}

/// How many steps of a plan have been taken, so that exactly those are given back.
pub struct Taken(Cell<usize>);

impl Taken {
    pub fn one_more(&self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Run `take`, which takes the steps of `steps` in order and counts each one it took in
/// `Taken`; if it returns `Err` or raises, give back exactly those, leaf first, with
/// `give_back` (then raise again). The one all-or-nothing of lockhier, for a backend's
/// requests and the keeper's leases alike: for session locks a transaction abort would not
/// give them back, and the keeper's are all session locks.
pub fn all_or_none<T, E>(
    steps: &[Step],
    give_back: impl Fn(&Step),
    take: impl FnOnce(&Taken) -> Result<T, E>,
) -> Result<T, E> {
    let taken = Taken(Cell::new(0));
    // Unwind-safe: the count always matches the locks held, at every point a panic can start.
    let give_back_taken = AssertUnwindSafe(|| {
        for step in steps[..taken.0.replace(0)].iter().rev() {
            give_back(step);
        }
    });
    PgTryBuilder::new(AssertUnwindSafe(|| {
        let outcome = take(&taken);
        if outcome.is_err() {
            (*give_back_taken)();
        }
        outcome
    }))
    .catch_others(|error| {
        (*give_back_taken)();
        error.rethrow()
    })
    .execute()
}

/// Give back one hold of each step, leaf first.
pub fn release(steps: &[Step], hold: Hold) {
    for step in steps.iter().rev() {
        lockmgr::unlock(step.key, step.mode, hold);
    }
}
