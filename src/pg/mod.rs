//! The only home of `unsafe`: PostgreSQL's lock manager, internal subtransactions, tuple
//! headers, the backend status array, relations and types, array arguments, transaction and
//! cache-invalidation callbacks, dropped databases, the drops lockhier refuses, shared memory
//! and the lease keeper's process, and what differs between PostgreSQL versions (behind `cfg`,
//! in `version`). Each unsafe block does one thing and says why it is sound.
//! It may use lockhier-core, and nothing else of lockhier.

pub mod activity;
pub mod array;
pub mod clock;
pub mod drop_hook;
pub mod dropped_databases;
pub mod invalidation;
pub mod jsonb;
pub mod keeper_process;
pub mod lease_area;
pub mod lockmgr;
pub mod relations;
pub mod roles;
pub mod subxact;
pub mod tuplelock;
pub mod version;
pub mod xact;
