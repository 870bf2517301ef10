//! lockhier: hierarchical, classed, shareable locks on PostgreSQL's own advisory-lock manager.
//! The contract is `docs/lock-model.md`.
//!
//! Layers, each allowed to use only those after it (checked by `scripts/check_layers.py`):
//! `api` (the SQL functions) -> `rows` (row-lock helpers) -> `engine` (taking requests) ->
//! `pg` (the only `unsafe`: PostgreSQL's internals); all may use `lockhier_core` (pure Rust,
//! a crate of its own in `src/core`).

// Each unsafe block does one unsafe thing and says why it is sound.
#![warn(clippy::multiple_unsafe_ops_per_block, clippy::undocumented_unsafe_blocks)]
// pgrx's CaughtError (a PostgreSQL error caught on its way out) is large; it is only ever
// returned on the error path, where its size costs nothing.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod api;
mod engine;
mod pg;
mod rows;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/lockhier.sql", name = "lockhier_sql");
extension_sql_file!("../sql/rows.sql", name = "rows_sql");

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    engine::registry::install_callbacks();
    rows::cache::install_callbacks();
    api::leases::init();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // Leases need lockhier's shared memory and lease keeper.
        vec!["shared_preload_libraries = 'lockhier'"]
    }
}
