//! A request from start to end: taken all or nothing (for a session request with the sentinel
//! the registry needs), recorded, or refused with who is in the way; session requests given
//! back one hold at a time or all together.

use super::acquire::{self, Refused};
use super::lease::{backend, handoff};
use super::{holders, registry};
use crate::pg::lockmgr::Hold;
use crate::pg::xact;
use lockhier_core::conflict::{Among, Conflict};
use lockhier_core::error::LockhierError;
use lockhier_core::many;
use lockhier_core::plan::{Plan, Step};
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
    let taken = take_behind_handoffs(&[&request], plan.steps(), hold, wait);
    drop(plan);
    match taken {
        Ok(()) => {
            registry::record(request, hold);
            Ok(true)
        }
        Err(_) if !refusal_is_an_error => Ok(false),
        Err(Refused { waited, .. }) => Err(conflict(request, waited, None)),
    }
}

/// Take several requests for `hold`, all or none, with one wait for them all: in
/// `many::taking_order`, so that two calls sharing requests queue behind each other. A
/// refusal names the request that was refused, by its place in `requests`.
pub fn lock_many(requests: Vec<Request>, wait: Wait, hold: Hold) -> Result<(), LockhierError> {
    backend::gate()?;
    let order = many::taking_order(&requests);
    let ordered: Vec<&Request> = order.iter().map(|&i| &requests[i]).collect();
    let plans: Vec<Plan> = ordered.iter().map(|request| Plan::of(request)).collect();
    let mut steps = Vec::with_capacity(plans.iter().map(|p| p.steps().len()).sum());
    // For each step, the place in `ordered` of the request it belongs to.
    let mut request_of_step = Vec::with_capacity(steps.capacity());
    for (k, plan) in plans.iter().enumerate() {
        steps.extend_from_slice(plan.steps());
        request_of_step.extend(std::iter::repeat_n(k, plan.steps().len()));
    }
    let taken = take_behind_handoffs(&ordered, &steps, hold, wait);
    drop(steps);
    drop(plans);
    drop(ordered);
    match taken {
        Ok(()) => {
            for request in requests {
                registry::record(request, hold);
            }
            Ok(())
        }
        Err(Refused { waited, at }) => {
            // A refusal before any step (a handoff in the way) is at the request it names.
            let k = request_of_step.get(at).copied().unwrap_or(at);
            let index = order[k];
            let among = Some(Among { index, of: requests.len() });
            Err(conflict(requests[index].clone(), waited, among))
        }
    }
}

/// Take `steps` (the plans of `requests`, in order) for `hold`, all or none. A lease request
/// waiting in the server's queue goes first (`handoff`): without one announced (the usual case)
/// this costs one atomic read, and no clock. A refusal by a handoff is at the index of the
/// request it was refused for, not of a step.
fn take_behind_handoffs(
    requests: &[&Request],
    steps: &[Step],
    hold: Hold,
    wait: Wait,
) -> Result<(), Refused> {
    let take = |wait: Wait| match hold {
        Hold::Transaction => acquire::take_steps(steps, hold, wait),
        Hold::Session => take_session(steps, wait),
    };
    if !handoff::any_announced() {
        return take(wait);
    }
    let started = Instant::now();
    for (at, request) in requests.iter().enumerate() {
        if !handoff::queue_behind_handoffs(request, wait, started) {
            return Err(Refused {
                waited: (wait != Wait::No).then(|| started.elapsed()),
                at: first_step_of(requests, at),
            });
        }
    }
    take(wait.left_after(started.elapsed()))
}

/// The index in the steps of `requests` of the first step of `requests[at]`.
fn first_step_of(requests: &[&Request], at: usize) -> usize {
    requests[..at].iter().map(|r| Plan::of(r).steps().len()).sum()
}

fn conflict(request: Request, waited: Option<std::time::Duration>, among: Option<Among>) -> LockhierError {
    let blockers = holders::find(&Plan::of(&request));
    LockhierError::Conflict(Box::new(Conflict { request, blockers, waited, among }))
}

/// A session request, with the sentinel lock the registry needs (see `registry`) held before
/// the request's first lock and given back if the request is refused or raises.
fn take_session(steps: &[Step], wait: Wait) -> Result<(), Refused> {
    registry::before_session_lock();
    let taken = PgTryBuilder::new(|| acquire::take_steps(steps, Hold::Session, wait))
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

/// Give back one hold of each of several session requests; how many were held (and released).
pub fn session_unlock_many(requests: &[Request]) -> Vec<bool> {
    requests.iter().map(session_unlock).collect()
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
