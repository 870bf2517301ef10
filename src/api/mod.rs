//! The SQL surface, thin: each function parses its arguments, hands over to the engine (or to
//! the row helpers), and reports what comes back through the one mapping of errors to SQLSTATE,
//! message, DETAIL and HINT (`errors`). It may use the engine, the row helpers and
//! lockhier-core, never the pg layer directly.

mod args;
mod errors;
mod inspect;
pub mod leases;
mod locks;
mod paths;
mod rows;
