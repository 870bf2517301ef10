//! A request from start to end: taken all or nothing (for a session request with the sentinel
//! the registry needs), recorded, or refused with who is in the way; session requests given
//! back one hold at a time or all together.

use super::acquire::{self, Refused};
use super::lease::{backend, handoff};
use super::{holders, registry};
use crate::pg::lockmgr::Hold;
use crate::pg::xact;
use lockhier_core::conflict::Conflict;
use lockhier_core::error::LockhierError;
use lockhier_core::plan::Plan;
use lockhier_core::{Request, Wait};
use pgrx::prelude::*;
use std::time::Instant;

/// Take `request` for `hold`: `Ok(true)` when taken, `Ok(false)` when refused and the caller
/// asked for `false`, or the conflict (naming who is in the way) as an error.
pub fn lock(
    request: Request,
    wait: Wait,
    hold: Hold,
    refusal_is_an_error: bool,
) -> Result<bool, LockhierError> {
    // Until the leases held before a restart (or before the keeper was restarted) are held
    // again, nothing may be granted that they would refuse.
    backend::gate()?;
    let plan = Plan::of(&request);
    let take = |wait: Wait| match hold {
        Hold::Transaction => acquire::take(&plan, hold, wait),
        Hold::Session => take_session(&plan, wait),
    };
    // A lease request waiting in the server's queue goes first (`handoff`). Without one
    // announced (the usual case) this costs one atomic read, and no clock.
    let taken = if !handoff::any_announced() {
        take(wait)
    } else {
        let started = Instant::now();
        if handoff::queue_behind_handoffs(&request, wait, started) {
            take(wait.left_after(started.elapsed()))
        } else {
            Err(Refused { waited: (wait != Wait::No).then(|| started.elapsed()) })
        }
    };
    match taken {
        Ok(()) => {
            drop(plan);
            registry::record(request, hold);
            Ok(true)
        }
        Err(Refused { .. }) if !refusal_is_an_error => Ok(false),
        Err(Refused { waited }) => {
            let blockers = holders::find(&plan);
            drop(plan);
            Err(LockhierError::Conflict(Box::new(Conflict { request, blockers, waited })))
        }
    }
}

/// A session request, with the sentinel lock the registry needs (see `registry`) held before
/// the request's first lock and given back if the request is refused or raises.
fn take_session(plan: &Plan, wait: Wait) -> Result<(), Refused> {
    registry::before_session_lock();
    let taken = PgTryBuilder::new(|| acquire::take(plan, Hold::Session, wait))
        .catch_others(|error| {
            registry::after_refused_session_lock();
            error.rethrow()
        })
        .execute();
    if taken.is_err() {
        registry::after_refused_session_lock();
    }
    taken
}

/// Give back one hold of a session request; false if this session does not hold it.
pub fn session_unlock(request: &Request) -> bool {
    if !registry::forget_session(request) {
        return false;
    }
    acquire::release(Plan::of(request).steps(), Hold::Session);
    true
}

/// Give back every session request taken through lockhier (and no other advisory lock);
/// returns how many holds, counting a request held twice as two.
pub fn session_unlock_all() -> i32 {
    let mut released = 0;
    for (request, count) in registry::session_requests() {
        let plan = Plan::of(&request);
        for _ in 0..count {
            acquire::release(plan.steps(), Hold::Session);
        }
        registry::forget_session_entirely(&request);
        released += count as i32;
    }
    released
}

/// Whether a transaction block is open (see `pg::xact::in_transaction_block`): outside one, a
/// transaction lock ends with the statement that took it.
pub fn in_transaction_block() -> bool {
    xact::in_transaction_block()
}
