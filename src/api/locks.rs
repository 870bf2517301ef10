//! The lock functions: `lock_*`, `try_lock_*`, `session_lock_*`, `try_session_lock_*`,
//! `session_unlock_*` at each level, in a `class text` and a `classes text[]` overload, and
//! `session_unlock_all()`.
//!
//! None is STRICT: a NULL id must be refused by name, not turn the call into a silent no-op.
//! All are VOLATILE and PARALLEL UNSAFE: they take locks for this backend.

use super::args::{self, many_classes, one_class, request, Parsed};
use super::errors::{self, or_report};
use crate::engine::lock;
use lockhier_core::{Hold, Request};
use pgrx::prelude::*;

/// What a lock function returns: `lock_*` return nothing and raise on a conflict; `try_*`
/// return whether they took the request.
pub(super) trait Outcome {
    const REFUSAL_IS_AN_ERROR: bool;
    fn from_taken(taken: bool) -> Self;
}

impl Outcome for () {
    const REFUSAL_IS_AN_ERROR: bool = true;
    fn from_taken(_: bool) {}
}

impl Outcome for bool {
    const REFUSAL_IS_AN_ERROR: bool = false;
    fn from_taken(taken: bool) -> bool {
        taken
    }
}

/// The body of every lock function.
pub(super) fn take<T: Outcome>(request: Parsed<Request>, wait: Option<Interval>, hold: Hold) -> T {
    let request = or_report(request);
    let wait = or_report(args::wait(wait));
    let taken = or_report(lock::lock(request, wait, hold, T::REFUSAL_IS_AN_ERROR));
    if taken && hold == Hold::Transaction && !lock::in_transaction_block() {
        errors::warn_outside_transaction_block();
    }
    T::from_taken(taken)
}

/// The body of every `session_unlock_*`.
pub(super) fn session_unlock(request: Parsed<Request>) -> bool {
    let request = or_report(request);
    let released = lock::session_unlock(&request);
    if !released {
        errors::warn_not_held(&request);
    }
    released
}

/// Release every session lock taken through lockhier (and no other advisory lock); returns
/// how many request holds were released, counting a request held twice as two.
#[pg_extern(volatile, parallel_unsafe)]
fn session_unlock_all() -> i32 {
    lock::session_unlock_all()
}

/// `()` for a function declared without a return type (pgrx maps that to `void`).
macro_rules! outcome {
    () => {
        ()
    };
    ($ret:ty) => {
        $ret
    };
}

/// One lock function (see `overloads!`); `$ret`, when given, is `bool` (see `Outcome`).
macro_rules! lock_fn {
    ($name:tt, ($($sql:tt)*), ($($id:ident : $ty:ty),*), $node:ident, ($($classes:tt)*), $parse:expr, $hold:expr $(, $ret:ty)?) => {
        pastey::paste! {
            #[pg_extern(volatile, parallel_unsafe $($sql)*)]
            fn $name(
                $($id: $ty,)*
                $($classes)*,
                mode: default!(Option<&str>, "'exclusive'"),
                wait: default!(Option<Interval>, "'0'"),
            ) $(-> $ret)? {
                take::<outcome!($($ret)?)>(request(args::$node($($id),*), $parse, mode), wait, $hold)
            }
        }
    };
}

macro_rules! session_unlock_fn {
    ($name:tt, ($($sql:tt)*), ($($id:ident : $ty:ty),*), $node:ident, ($($classes:tt)*), $parse:expr) => {
        pastey::paste! {
            #[pg_extern(volatile, parallel_unsafe $($sql)*)]
            fn $name(
                $($id: $ty,)*
                $($classes)*,
                mode: default!(Option<&str>, "'exclusive'"),
            ) -> bool {
                session_unlock(request(args::$node($($id),*), $parse, mode))
            }
        }
    };
}

/// Every lock function of one level, in both overloads.
macro_rules! lock_functions {
    ($level:ident $ids:tt) => {
        overloads!(lock_fn, lock, $level $ids, Hold::Transaction);
        overloads!(lock_fn, try_lock, $level $ids, Hold::Transaction, bool);
        overloads!(lock_fn, session_lock, $level $ids, Hold::Session);
        overloads!(lock_fn, try_session_lock, $level $ids, Hold::Session, bool);
        overloads!(session_unlock_fn, session_unlock, $level $ids);
    };
}

for_each_scope!(lock_functions);
