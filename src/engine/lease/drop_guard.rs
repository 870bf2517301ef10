//! Whether lockhier, or a role, may be dropped: not while leases it would strand are held (see
//! `lockhier_core::lease::in_use`). The server's drop hook asks; the SQL layer raises the
//! refusal.

use super::backend;
use crate::pg::{drop_hook, lease_area, lockmgr, roles};
use lockhier_core::error::LockhierError;
use lockhier_core::lease::in_use::{self, Dropping, HeldLeases};
use std::collections::HashMap;

/// Called from `_PG_init` while lockhier is being preloaded (without it there are no leases,
/// and nothing to refuse): `on_drop` is called as lockhier or a role is about to be dropped.
pub fn install(on_drop: fn(Dropping)) {
    if backend::preloading() {
        drop_hook::register(on_drop);
    }
}

/// The refusal of a drop, if leases are in its way. Waits, as every lockhier call does, for the
/// leases held before a restart to be held again (they are not in shared memory until then).
pub fn check(dropping: Dropping) -> Result<(), LockhierError> {
    let Some(area) = lease_area::area() else { return Ok(()) };
    backend::gate()?;
    match dropping {
        Dropping::Lockhier => {
            let database = lockmgr::my_database();
            let held = area.read(|leases| in_use::of_database(leases, database));
            match HeldLeases::of(held, |_| None) {
                None => Ok(()),
                Some(held) => Err(LockhierError::ExtensionHasLeases(Box::new(held))),
            }
        }
        Dropping::Role(role) => {
            let mut held = area.read(|leases| in_use::of_role(leases, role));
            // A dropped database's leases are let go by the keeper a moment after the drop
            // commits; meanwhile they strand nothing (they guard nothing any more).
            let mut names: HashMap<u32, Option<String>> = HashMap::new();
            held.retain(|l| {
                names.entry(l.database).or_insert_with(|| drop_hook::database_name(l.database)).is_some()
            });
            match HeldLeases::of(held, |database| names.get(&database).cloned().flatten()) {
                None => Ok(()),
                Some(held) => Err(LockhierError::RoleHasLeases {
                    role: roles::name(role).unwrap_or_else(|| format!("with OID {role}")),
                    held: Box::new(held),
                }),
            }
        }
    }
}
