//! lockhier-core: what lockhier means, in pure Rust. Requests and their parts, the oracle that
//! says when two requests conflict, the published key function, plans of (key, lock mode), the
//! lock manager's conflict table, and errors as data with their messages.
//!
//! It may use nothing of PostgreSQL: no pgrx, no server calls, no `unsafe`. So every rule here
//! is tested exhaustively with a plain `cargo test -p lockhier-core`, and a Rust client can use
//! the key function without a server.
#![forbid(unsafe_code)]

pub mod class;
pub mod conflict;
pub mod error;
pub mod holder;
pub mod key;
pub mod lease;
pub mod lockmode;
pub mod many;
pub mod path;
pub mod plan;
pub mod request;
pub mod row_mode;
pub mod scope;
pub mod text;

pub use class::{ClassName, Classes};
pub use error::LockhierError;
pub use request::{Hold, Mode, Request, Wait};
pub use row_mode::RowMode;
pub use scope::{Level, Node};
