//! A lease request that waits keeps its turn (see "A lease that waits" in `docs/leases.md`).
//!
//! PostgreSQL cannot move a granted lock to the keeper, so a waiting lease request is granted
//! its locks in the server's queue, gives them back and asks the keeper to take them. Requests
//! queued behind it would be granted in that instant, so while it waits it announces a handoff
//! and holds the handoff's lock: every lockhier request that conflicts with it first queues for
//! that lock, behind it, in the server's queue (waits bounded as usual, seen by the deadlock
//! detector). Only requests that had passed that check before the announcement can still come
//! between: a bounded number, so retries cannot starve the lease.

use crate::pg::{lease_area, lockmgr};
use lockhier_core::lease::FixedRequest;
use lockhier_core::plan::Plan;
use lockhier_core::{Request, Wait};
use std::time::Instant;

/// Whether any lease request has a handoff announced (one atomic read).
pub fn any_announced() -> bool {
    lease_area::area().is_some_and(|area| area.handoffs_announced())
}

/// Before a lockhier request takes its locks: queue behind every announced handoff it
/// conflicts with, within `wait` (counted from `started`). False when a handoff is still in
/// its way at the end of the wait (or at once, for a request that may not wait).
pub fn queue_behind_handoffs(request: &Request, wait: Wait, started: Instant) -> bool {
    let Some(area) = lease_area::area() else { return true };
    if !area.handoffs_announced() {
        return true;
    }
    let in_the_way = area.handoffs_in_the_way(lockmgr::my_database(), |theirs| {
        let theirs = theirs.request();
        theirs.conflicts_with(request) && !waits_for_me(&theirs)
    });
    for id in in_the_way {
        if !lockmgr::wait_behind_handoff(id, wait.remaining(started.elapsed())) {
            return false;
        }
    }
    true
}

/// Whether this backend holds a lock the waiting lease request `theirs` needs: then the lease
/// waits for this backend's transaction (or session) to end, and queueing behind it could only
/// end in a refusal or a deadlock. Such a request goes ahead, as PostgreSQL's own queue lets a
/// requester that holds a conflicting lock go ahead of a waiter.
fn waits_for_me(theirs: &Request) -> bool {
    Plan::of(theirs).steps().iter().any(|step| lockmgr::held_in_conflict(step.key, step.mode))
}

/// A handoff announced for this backend's waiting lease request, withdrawn when dropped.
pub struct Announced {
    id: i64,
    /// Whether its lock was taken (a full lock table may refuse it: then only withdrawn).
    locked: bool,
}

/// Announce `request`'s handoff; `None` when every handoff slot is taken (the request then
/// waits without one, as it did before handoffs existed).
pub fn announce(request: &Request) -> Option<Announced> {
    let area = lease_area::area()?;
    lease_area::withdraw_mine_at_exit();
    let id = area.announce_handoff(lockmgr::my_database(), FixedRequest::of(request))?;
    let mut announced = Announced { id, locked: false };
    lockmgr::take_handoff(id);
    announced.locked = true;
    Some(announced)
}

impl Drop for Announced {
    fn drop(&mut self) {
        if self.locked {
            lockmgr::release_handoff(self.id);
        }
        if let Some(area) = lease_area::area() {
            area.withdraw_handoff(self.id);
        }
    }
}
