//! The lock functions: `lock_*`, `try_lock_*`, `session_lock_*`, `try_session_lock_*`,
//! `session_unlock_*` at each level, in a `class text` and a `classes text[]` overload, and
//! `session_unlock_all()`.
//!
//! None is STRICT: a NULL id must be refused by name, not turn the call into a silent no-op.
//! All are VOLATILE and PARALLEL UNSAFE: they take locks for this backend.

use super::args::{self, application, field, global, many_classes, one_class, request, table, Parsed};
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

/// One lock function. `($($classes:tt)*)` is the class parameter (`class text` or
/// `classes text[]`), `$parse` turns it into classes, and `$ret`, when given, is `bool` (see
/// `Outcome`).
macro_rules! lock_fn {
    ($name:ident $(= $sql:literal)?, ($($id:ident),*), $node:ident, ($($classes:tt)*), $parse:expr, $hold:expr $(, $ret:ty)?) => {
        #[pg_extern(volatile, parallel_unsafe $(, name = $sql)?)]
        fn $name(
            $($id: Option<i64>,)*
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) $(-> $ret)? {
            take::<outcome!($($ret)?)>(request($node($($id),*), $parse, mode), wait, $hold)
        }
    };
}

macro_rules! session_unlock_fn {
    ($name:ident $(= $sql:literal)?, ($($id:ident),*), $node:ident, ($($classes:tt)*), $parse:expr) => {
        #[pg_extern(volatile, parallel_unsafe $(, name = $sql)?)]
        fn $name(
            $($id: Option<i64>,)*
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
        ) -> bool {
            session_unlock(request($node($($id),*), $parse, mode))
        }
    };
}

/// Every lock function of one level, in its `class text` and `classes text[]` overloads.
/// The Rust names differ (they name the C symbols); the SQL names are those of the contract.
macro_rules! level_lock_functions {
    (
        $node:ident ( $($id:ident),* ),
        $lock:ident, $lock_many:ident = $lock_sql:literal,
        $try_lock:ident, $try_lock_many:ident = $try_lock_sql:literal,
        $session_lock:ident, $session_lock_many:ident = $session_lock_sql:literal,
        $try_session_lock:ident, $try_session_lock_many:ident = $try_session_lock_sql:literal,
        $session_unlock:ident, $session_unlock_many:ident = $session_unlock_sql:literal $(,)?
    ) => {
        lock_fn!($lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Transaction);
        lock_fn!($lock_many = $lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Transaction);
        lock_fn!($try_lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Transaction, bool);
        lock_fn!($try_lock_many = $try_lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Transaction, bool);
        lock_fn!($session_lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Session);
        lock_fn!($session_lock_many = $session_lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Session);
        lock_fn!($try_session_lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Session, bool);
        lock_fn!($try_session_lock_many = $try_session_lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Session, bool);
        session_unlock_fn!($session_unlock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class));
        session_unlock_fn!($session_unlock_many = $session_unlock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes));
    };
}

level_lock_functions!(
    global(),
    lock_global,
    lock_global_classes = "lock_global",
    try_lock_global,
    try_lock_global_classes = "try_lock_global",
    session_lock_global,
    session_lock_global_classes = "session_lock_global",
    try_session_lock_global,
    try_session_lock_global_classes = "try_session_lock_global",
    session_unlock_global,
    session_unlock_global_classes = "session_unlock_global",
);

level_lock_functions!(
    application(application_id),
    lock_application,
    lock_application_classes = "lock_application",
    try_lock_application,
    try_lock_application_classes = "try_lock_application",
    session_lock_application,
    session_lock_application_classes = "session_lock_application",
    try_session_lock_application,
    try_session_lock_application_classes = "try_session_lock_application",
    session_unlock_application,
    session_unlock_application_classes = "session_unlock_application",
);

level_lock_functions!(
    table(application_id, table_id),
    lock_table,
    lock_table_classes = "lock_table",
    try_lock_table,
    try_lock_table_classes = "try_lock_table",
    session_lock_table,
    session_lock_table_classes = "session_lock_table",
    try_session_lock_table,
    try_session_lock_table_classes = "try_session_lock_table",
    session_unlock_table,
    session_unlock_table_classes = "session_unlock_table",
);

level_lock_functions!(
    field(application_id, table_id, field_id),
    lock_field,
    lock_field_classes = "lock_field",
    try_lock_field,
    try_lock_field_classes = "try_lock_field",
    session_lock_field,
    session_lock_field_classes = "session_lock_field",
    try_session_lock_field,
    try_session_lock_field_classes = "try_session_lock_field",
    session_unlock_field,
    session_unlock_field_classes = "session_unlock_field",
);
