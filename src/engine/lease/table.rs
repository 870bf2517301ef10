//! The leases of this database as the keeper holds them in shared memory: read by a backend
//! to find one, list them, or name one in a conflict.

use crate::pg::{lease_area, lockmgr};
use lockhier_core::lease::Lease;

/// The lease `token` of this database, if the keeper holds it.
pub fn find(area: &lease_area::Area, token: i64) -> Option<Lease> {
    let database = lockmgr::my_database();
    area.find(token).filter(|lease| lease.database == database)
}

/// The leases of this database, by token (none without `shared_preload_libraries`).
pub fn list() -> Vec<Lease> {
    let Some(area) = lease_area::area() else { return Vec::new() };
    let database = lockmgr::my_database();
    let mut leases: Vec<Lease> =
        area.read(|leases| leases.iter().filter(|l| l.database == database).copied().collect());
    leases.sort_by_key(|l| l.token);
    leases
}
