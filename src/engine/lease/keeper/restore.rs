//! Holding the journal's leases again when the keeper starts (after a restart, a crash, or the
//! keeper alone restarted), before any lockhier request is let in; and, afterwards, the leases
//! that could not be held again at once.
//!
//! The restore is one pass, whatever other sessions hold: a lease whose lock someone else took
//! while no keeper ran (a request queued behind it when the previous keeper exited, a plain
//! advisory lock on one of lockhier's keys), or that the lock table has no room for, is kept
//! as *waiting* (`Lease::held` false) rather than holding every lockhier call up. The keeper
//! takes its locks as soon as they are free, until it expires.

use super::locks::{self, Taking};
use super::Keeper;
use crate::engine::lease::journal_file::Durability;
use crate::pg::{clock, keeper_process};
use lockhier_core::lease::journal::Record;
use lockhier_core::lease::restore::RestoreEvent;
use lockhier_core::lease::{Decision, Lease};

impl Keeper {
    /// Take the locks of every lease of the journal that has not expired, each on its own, then
    /// let lockhier requests in. False when the server asks the keeper to stop first.
    pub(super) fn restore(&mut self, mut leases: Vec<Lease>) -> bool {
        let started = std::time::Instant::now();
        self.held.clear();
        leases.sort_by_key(|l| l.token);
        let mut released = Vec::new();
        for mut lease in leases {
            if let Some(why) = self.not_restorable(&lease) {
                keeper_process::log(
                    &format!("lockhier: lease {} is not held again: {why}", lease.token),
                    true,
                );
                released.push(Record::Release { token: lease.token });
                continue;
            }
            lease.held = self.take_again(&lease);
            self.held.add(lease);
        }
        let _ = self.write(released, Durability::Written);
        self.area.on_restore(RestoreEvent::KeeperRestored);
        if self.held.len() > 0 {
            keeper_process::log(
                &format!(
                    "lockhier: {} leases held again in {} ms",
                    self.held.len(),
                    started.elapsed().as_millis()
                ),
                false,
            );
        }
        true
    }

    /// Try once more to hold each waiting lease; drop those whose ttl ran out meanwhile. True
    /// while some are still waiting.
    pub(super) fn hold_waiting(&mut self) -> bool {
        let mut still_waiting = false;
        for lease in self.held.waiting() {
            if lease.expires_at <= clock::now() {
                continue; // Expired: `expire` lets it go.
            }
            if self.take_again(&lease) {
                self.held.mark_held(lease.token);
                keeper_process::log(&format!("lockhier: lease {} is held again", lease.token), false);
            } else {
                still_waiting = true;
            }
        }
        still_waiting
    }

    /// Take a lease's locks again; logs (once per lease) why it waits when it cannot.
    fn take_again(&mut self, lease: &Lease) -> bool {
        let why = match locks::take(lease) {
            Taking::Taken => return true,
            Taking::LockTableFull => "the lock table to have room",
            Taking::Busy => "a lock another session took while no keeper ran",
        };
        if self.waiting_logged.insert(lease.token) {
            keeper_process::log(
                &format!(
                    "lockhier: lease {} is not held yet: it waits for {why}; other requests proceed, and it is held as soon as it can be, until it expires",
                    lease.token
                ),
                true,
            );
        }
        false
    }

    /// Why a lease of the journal is not taken again: its ttl ran out while the server was
    /// down; it conflicts with one kept before it (the journal's replay already drops such
    /// pairs, but the oracle is checked rather than assumed, through the keeper's index); or
    /// `lockhier.max_leases` is full (lowered across the restart: the lowest tokens are kept).
    fn not_restorable(&self, lease: &Lease) -> Option<String> {
        if lease.expires_at <= clock::now() {
            return Some("its ttl ran out while the server was down".to_string());
        }
        let request = lease.request.request();
        let in_the_way = match self.held.decide(lease.database, &lease.owner, lease.role, &request) {
            Decision::Free => None,
            Decision::Reentrant(token) => Some(token),
            Decision::Conflicts(tokens) => tokens.first().copied(),
        };
        if let Some(token) = in_the_way {
            return Some(format!("it conflicts with lease {token}, held again before it"));
        }
        let capacity = self.held.capacity();
        (self.held.len() >= capacity).then(|| format!("lockhier.max_leases ({capacity}) leases are held"))
    }
}
