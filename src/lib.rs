//! lockhier: hierarchical, classed, shareable locks on PostgreSQL's own advisory-lock manager.
//!
//! The contract is `design/lock-model.md`; the README is the user guide.

// Each unsafe block does one unsafe thing and says why it is sound.
#![warn(clippy::multiple_unsafe_ops_per_block, clippy::undocumented_unsafe_blocks)]
// pgrx's CaughtError (a PostgreSQL error caught on its way out) is large; it is only ever
// returned on the error path, where its size costs nothing.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod acquire;
mod activity;
mod api;
mod error;
mod holders;
mod inspect;
mod key;
mod lockmgr;
mod lockmode;
mod model;
mod plan;
#[cfg(test)]
mod plan_timing;
mod registry;
mod relations;
mod rowcache;
mod rows;
mod subxact;
mod tuplelock;
mod version;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/lockhier.sql", name = "lockhier_sql");
extension_sql_file!("../sql/rows.sql", name = "rows_sql");

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    registry::install_callbacks();
    rowcache::install_callbacks();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
