//! Holding the journal's leases again when the keeper starts (after a restart, a crash, or the
//! keeper alone restarted), before any lockhier request is let in.

use super::locks::{self, Taking};
use super::Keeper;
use crate::pg::{clock, keeper_process};
use lockhier_core::lease::journal::Record;
use lockhier_core::lease::{self, Decision, Lease};
use std::collections::BTreeSet;

impl Keeper {
    /// Take the locks of every lease of the journal that has not expired, each on its own: a
    /// lease whose lock is held by someone else (a plain advisory lock on one of lockhier's
    /// keys, a request that was queued behind it when the previous keeper exited) is tried
    /// again until it is free, and its expiry still applies meanwhile. Only then are lockhier
    /// requests let in. False when the server asks the keeper to stop first.
    pub(super) fn restore(&mut self, mut leases: Vec<Lease>) -> bool {
        self.area.write(|held| held.clear());
        leases.sort_by_key(|l| l.token);
        let mut kept: Vec<Lease> = Vec::new();
        for lease in leases {
            if let Some(why) = self.not_restorable(&lease, &kept) {
                keeper_process::log(
                    &format!("lockhier: lease {} is not held again: {why}", lease.token),
                    true,
                );
                let _ = self.journal.append(&Record::Release { token: lease.token });
            } else {
                kept.push(lease);
            }
        }
        let mut waiting_logged = BTreeSet::new();
        loop {
            let now = clock::now();
            let mut pending = Vec::new();
            for lease in kept {
                if lease.expires_at <= now {
                    let _ = self.journal.append(&Record::Release { token: lease.token });
                    continue;
                }
                match locks::take(&lease) {
                    Taking::Taken => self.area.write(|held| held.push(lease)),
                    why => {
                        if waiting_logged.insert(lease.token) {
                            let what = match why {
                                Taking::LockTableFull => "the lock table to have room",
                                _ => "a lock held outside lockhier",
                            };
                            keeper_process::log(
                                &format!("lockhier: lease {} waits for {what} to be held again", lease.token),
                                true,
                            );
                        }
                        pending.push(lease);
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            kept = pending;
            if !keeper_process::wait(super::RETRY) {
                return false;
            }
        }
        self.area.set_restored(true);
        true
    }

    /// Why a lease of the journal is not taken again: its ttl ran out while the server was
    /// down; it conflicts with one kept before it (the journal never holds two such leases,
    /// but the oracle is checked rather than assumed); or `lockhier.max_leases` is full.
    fn not_restorable(&self, lease: &Lease, kept: &[Lease]) -> Option<String> {
        if lease.expires_at <= clock::now() {
            return Some("its ttl ran out while the server was down".to_string());
        }
        let request = lease.request.request();
        let in_the_way = match lease::decide(lease.database, &lease.owner, lease.role, &request, kept) {
            Decision::Free => None,
            Decision::Reentrant(token) => Some(token),
            Decision::Conflicts(tokens) => tokens.first().copied(),
        };
        if let Some(token) = in_the_way {
            return Some(format!("it conflicts with lease {token}, held again before it"));
        }
        let capacity = self.area.capacity();
        (kept.len() >= capacity).then(|| format!("lockhier.max_leases ({capacity}) leases are held"))
    }
}
