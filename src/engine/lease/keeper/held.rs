//! The leases the keeper holds, as the keeper sees them: the shared table that backends read
//! (with its token index), and indexes of the keeper's own, so that no request and no turn
//! scans every lease:
//!
//! - by lock key and mode: two requests conflict only if their plans take a common key in
//!   conflicting modes (the planner is proven against the oracle on that), so a request is
//!   checked against the leases holding its plan's keys in a mode that conflicts with its own;
//! - by owner, role and request: the same owner asking again for an identical request gets its
//!   lease back (re-entrant acquire);
//! - by expiry: the next lease due, and those due now.
//!
//! Every change to the leases goes through here, so the indexes and the table never disagree.

use crate::pg::lease_area;
use lockhier_core::lease::{Decision, Lease, Owner, Timestamp};
use lockhier_core::lockmode::LockMode;
use lockhier_core::plan::Plan;
use lockhier_core::Request;
use std::collections::{BTreeSet, HashMap, HashSet};

const MODES: [LockMode; 4] =
    [LockMode::RowShare, LockMode::RowExclusive, LockMode::Share, LockMode::Exclusive];

pub struct Held {
    area: &'static lease_area::Area,
    by_key: HashMap<(u32, i64, LockMode), HashSet<i64>>,
    by_request: HashMap<(u32, u32, Owner, Request), i64>,
    by_expiry: BTreeSet<(Timestamp, i64)>,
    /// Leases of the journal not held again yet (`Lease::held` false).
    waiting: BTreeSet<i64>,
}

fn steps_of(lease: &Lease) -> Vec<(i64, LockMode)> {
    let request = lease.request.request();
    Plan::of(&request).steps().iter().map(|step| (step.key, step.mode)).collect()
}

impl Held {
    pub fn new(area: &'static lease_area::Area) -> Held {
        Held {
            area,
            by_key: HashMap::new(),
            by_request: HashMap::new(),
            by_expiry: BTreeSet::new(),
            waiting: BTreeSet::new(),
        }
    }

    /// The lease `token` of `database`.
    pub fn find(&self, database: u32, token: i64) -> Option<Lease> {
        self.area.find(token).filter(|lease| lease.database == database)
    }

    /// What the keeper decides for a new lease request (as `lockhier_core::lease::decide`,
    /// through the indexes): the first conflict found is enough to refuse.
    pub fn decide(&self, database: u32, owner: &Owner, role: u32, request: &Request) -> Decision {
        if let Some(&token) = self.by_request.get(&(database, role, *owner, request.clone())) {
            return Decision::Reentrant(token);
        }
        let plan = Plan::of(request);
        for step in plan.steps() {
            for held_mode in MODES.into_iter().filter(|m| step.mode.conflicts_with_any(1 << m.number())) {
                let Some(tokens) = self.by_key.get(&(database, step.key, held_mode)) else { continue };
                for &token in tokens {
                    // The planner's proof says every one of them conflicts; the oracle decides.
                    let conflicts = self
                        .area
                        .find(token)
                        .is_some_and(|lease| lease.request.request().conflicts_with(request));
                    if conflicts {
                        return Decision::Conflicts(vec![token]);
                    }
                }
            }
        }
        Decision::Free
    }

    pub fn len(&self) -> usize {
        self.by_expiry.len()
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.area.capacity()
    }

    pub fn capacity(&self) -> usize {
        self.area.capacity()
    }

    pub fn add(&mut self, lease: Lease) {
        for (key, mode) in steps_of(&lease) {
            self.by_key.entry((lease.database, key, mode)).or_default().insert(lease.token);
        }
        self.by_request
            .insert((lease.database, lease.role, lease.owner, lease.request.request()), lease.token);
        self.by_expiry.insert((lease.expires_at, lease.token));
        if !lease.held {
            self.waiting.insert(lease.token);
        }
        self.area.write(|table| table.push(lease));
    }

    pub fn remove(&mut self, token: i64) -> Option<Lease> {
        let lease = self.area.write(|table| table.remove(token))?;
        for (key, mode) in steps_of(&lease) {
            let index = (lease.database, key, mode);
            if let Some(tokens) = self.by_key.get_mut(&index) {
                tokens.remove(&token);
                if tokens.is_empty() {
                    self.by_key.remove(&index);
                }
            }
        }
        self.by_request.remove(&(lease.database, lease.role, lease.owner, lease.request.request()));
        self.by_expiry.remove(&(lease.expires_at, token));
        self.waiting.remove(&token);
        Some(lease)
    }

    /// A renewal: the lease's new expiry.
    pub fn extend(&mut self, token: i64, renewed_at: Timestamp, expires_at: Timestamp) {
        let old = self.area.write(|table| {
            table.get_mut(token).map(|lease| {
                let old = lease.expires_at;
                lease.renewed_at = renewed_at;
                lease.expires_at = expires_at;
                old
            })
        });
        if let Some(old) = old {
            self.by_expiry.remove(&(old, token));
            self.by_expiry.insert((expires_at, token));
        }
    }

    /// A waiting lease whose locks the keeper has now taken.
    pub fn mark_held(&mut self, token: i64) {
        self.area.write(|table| {
            if let Some(lease) = table.get_mut(token) {
                lease.held = true;
            }
        });
        self.waiting.remove(&token);
    }

    /// When the next lease is due.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.by_expiry.first().map(|&(at, _)| at)
    }

    /// The leases due at `now`.
    pub fn due(&self, now: Timestamp) -> Vec<Lease> {
        self.by_expiry.range(..=(now, i64::MAX)).filter_map(|&(_, token)| self.area.find(token)).collect()
    }

    /// The leases not held again yet.
    pub fn waiting(&self) -> Vec<Lease> {
        self.waiting.iter().filter_map(|&token| self.area.find(token)).collect()
    }

    /// The leases of `database` (a drop: rare, so a scan).
    pub fn in_database(&self, database: u32) -> Vec<Lease> {
        self.area.read(|leases| leases.iter().filter(|l| l.database == database).copied().collect())
    }

    /// Every lease (for a compaction, off the request path).
    pub fn all(&self) -> Vec<Lease> {
        self.area.read(|leases| leases.to_vec())
    }

    pub fn clear(&mut self) {
        self.area.write(|table| table.clear());
        self.by_key.clear();
        self.by_request.clear();
        self.by_expiry.clear();
        self.waiting.clear();
    }
}
