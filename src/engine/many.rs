//! Several requests in one jsonb argument (`lock_many` and the like), read with bounded memory:
//! the argument's stored size is checked before it is read, and it is read no deeper than a
//! valid input nests (`lockhier_core::many`).

pub use crate::pg::jsonb::JsonbArg;
use crate::pg::jsonb::Unread;
use lockhier_core::many::{self, ManyError};
use lockhier_core::Request;

/// The requests of a `requests jsonb` argument, every one checked, or the first thing wrong.
pub fn read(requests: JsonbArg) -> Result<Vec<Request>, ManyError> {
    let value = requests.read(many::MAX_BYTES, many::MAX_NESTING).map_err(|unread| match unread {
        Unread::TooLarge(bytes) => many::unread(Some(bytes)),
        Unread::TooDeep(_) => many::unread(None),
    })?;
    many::from_value(&value)
}
