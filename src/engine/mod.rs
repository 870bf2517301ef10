//! Taking requests: plans taken all or nothing in the server's lock manager, the per-backend
//! registry of what this backend holds through lockhier, who is in the way of a request, and
//! leases (`lease`: a backend's side of them, and the keeper that holds them).
//! It may use the pg layer and lockhier-core; it raises nothing itself (refusals and errors
//! come back as data for the SQL layer to report).

pub mod acquire;
pub mod holders;
pub mod lease;
pub mod lock;
pub mod many;
pub mod registry;
