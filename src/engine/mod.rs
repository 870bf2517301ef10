//! Taking requests: plans taken all or nothing in the server's lock manager, the per-backend
//! registry of what this backend holds through lockhier, who is in the way of a request, and
//! leases (the keeper that holds them, and a backend's side of them).
//! It may use the pg layer and lockhier-core; it raises nothing itself (refusals and errors
//! come back as data for the SQL layer to report).

pub mod acquire;
pub mod drop_guard;
mod handoff;
pub mod holders;
mod journal_file;
pub mod keeper;
pub mod lease_table;
pub mod leases;
pub mod lock;
pub mod registry;
