//! Several requests in one jsonb argument (`lock_many` and the like), read with bounded memory:
//! the argument's stored size is checked before it is read, and it is read no deeper than a
//! valid input nests and no further than its last request may be (`lockhier_core::many`).

pub use crate::pg::jsonb::JsonbArg;
use lockhier_core::many::{self, ManyError};
use lockhier_core::Request;

/// The requests of a `requests jsonb` argument, every one checked, or the first thing wrong.
pub fn read(requests: JsonbArg) -> Result<Vec<Request>, ManyError> {
    let value =
        requests.read(many::MAX_BYTES, many::MAX_NESTING, many::MAX_REQUESTS).map_err(many::unread)?;
    many::from_value(&value)
}
