//! The SQL functions: thin wrappers that parse arguments and hand over to the engine.
//!
//! None of them is STRICT: a NULL id must be refused by name, not turn the call into a silent
//! no-op. All are VOLATILE and PARALLEL UNSAFE, since they take locks for this backend.

use crate::acquire::{self, Refused};
use crate::error::{warn_not_held, Conflict, LockhierError};
use crate::holders;
use crate::inspect;
use crate::lockmgr::Hold;
use crate::model::{required, Classes, Mode, Node, Request, Wait};
use crate::plan::Plan;
use crate::registry;
use crate::subxact;
use pgrx::prelude::*;

type Parsed<T> = Result<T, LockhierError>;

fn global() -> Parsed<Node> {
    Ok(Node::GLOBAL)
}

fn application(application_id: Option<i64>) -> Parsed<Node> {
    Ok(Node::application(required(application_id, "application_id")?))
}

fn table(application_id: Option<i64>, table_id: Option<i64>) -> Parsed<Node> {
    Ok(Node::table(required(application_id, "application_id")?, required(table_id, "table_id")?))
}

fn field(application_id: Option<i64>, table_id: Option<i64>, field_id: Option<i64>) -> Parsed<Node> {
    Ok(Node::field(
        required(application_id, "application_id")?,
        required(table_id, "table_id")?,
        required(field_id, "field_id")?,
    ))
}

pub fn one_class(class: Option<&str>) -> Parsed<Classes> {
    Classes::parse_one(required(class, "class")?)
}

pub fn many_classes(classes: Option<Array<&str>>) -> Parsed<Classes> {
    Classes::parse_many(required(classes, "classes")?.iter())
}

/// Arguments are checked in the order they are written: ids, class(es), mode, then wait.
pub fn request(node: Parsed<Node>, classes: Parsed<Classes>, mode: Option<&str>) -> Parsed<Request> {
    Ok(Request { node: node?, classes: classes?, mode: Mode::parse(required(mode, "mode")?)? })
}

pub fn wait(wait: Option<Interval>) -> Parsed<Wait> {
    Wait::from_micros(wait.map(|w| w.as_micros()), || wait.map(|w| w.to_string()).unwrap_or_default())
}

#[track_caller]
pub fn or_report<T>(parsed: Parsed<T>) -> T {
    match parsed {
        Ok(value) => value,
        Err(error) => error.report(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    Raise,
    ReturnFalse,
}

/// The body of every `lock_*`, `try_lock_*`, `session_lock_*` and `try_session_lock_*`.
fn lock(request: Parsed<Request>, wait_for: Option<Interval>, hold: Hold, on_conflict: OnConflict) -> bool {
    let request = or_report(request);
    let wait_for = or_report(wait(wait_for));
    let plan = Plan::of(&request);
    let taken = match hold {
        Hold::Transaction => acquire::take(&plan, hold, wait_for),
        Hold::Session => take_session(&plan, wait_for),
    };
    match taken {
        Ok(()) => {
            drop(plan);
            registry::record(request, hold);
            if hold == Hold::Transaction {
                subxact::warn_if_outside_transaction_block();
            }
            true
        }
        Err(Refused { .. }) if on_conflict == OnConflict::ReturnFalse => false,
        Err(Refused { waited }) => {
            let blockers = holders::find(&plan);
            drop(plan);
            LockhierError::Conflict(Box::new(Conflict { request, blockers, waited })).report()
        }
    }
}

/// A session request, with the sentinel lock the registry needs (see `registry`) held before
/// the request's first lock and given back if the request is refused or raises.
fn take_session(plan: &Plan, wait_for: Wait) -> Result<(), Refused> {
    registry::before_session_lock();
    let taken = PgTryBuilder::new(|| acquire::take(plan, Hold::Session, wait_for))
        .catch_others(|error| {
            registry::after_refused_session_lock();
            error.rethrow()
        })
        .execute();
    if taken.is_err() {
        registry::after_refused_session_lock();
    }
    taken
}

/// The body of every `session_unlock_*`.
fn session_unlock(request: Parsed<Request>) -> bool {
    let request = or_report(request);
    if !registry::forget_session(&request) {
        warn_not_held(&request);
        return false;
    }
    acquire::release(Plan::of(&request).steps(), Hold::Session);
    true
}

/// Release every session lock taken through lockhier (and no other advisory lock); returns
/// how many request holds were released, counting a request held twice as two.
#[pg_extern(volatile, parallel_unsafe)]
fn session_unlock_all() -> i32 {
    let mut released = 0;
    for (request, count) in registry::session_requests() {
        let plan = Plan::of(&request);
        for _ in 0..count {
            acquire::release(plan.steps(), Hold::Session);
        }
        registry::forget_session_entirely(&request);
        released += count as i32;
    }
    released
}

/// One `lock_*` / `try_lock_*` / `session_lock_*` / `try_session_lock_*` overload.
/// `($($classes:tt)*)` is the class parameter (`class text` or `classes text[]`) and `$parse`
/// turns it into classes.
macro_rules! lock_fn {
    (void $name:ident $(= $sql:literal)?, ($($id:ident),*), $node:ident, ($($classes:tt)*), $parse:expr, $hold:expr) => {
        #[pg_extern(volatile, parallel_unsafe $(, name = $sql)?)]
        fn $name(
            $($id: Option<i64>,)*
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) {
            lock(request($node($($id),*), $parse, mode), wait, $hold, OnConflict::Raise);
        }
    };
    (bool $name:ident $(= $sql:literal)?, ($($id:ident),*), $node:ident, ($($classes:tt)*), $parse:expr, $hold:expr) => {
        #[pg_extern(volatile, parallel_unsafe $(, name = $sql)?)]
        fn $name(
            $($id: Option<i64>,)*
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) -> bool {
            lock(request($node($($id),*), $parse, mode), wait, $hold, OnConflict::ReturnFalse)
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

/// `plan_*`: the locks a request turns into (see `inspect::plan_rows`).
macro_rules! plan_fn {
    ($name:ident $(= $sql:literal)?, ($($id:ident),*), $node:ident, ($($classes:tt)*), $parse:expr) => {
        #[pg_extern(immutable, parallel_safe $(, name = $sql)?)]
        fn $name(
            $($id: Option<i64>,)*
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
        ) -> TableIterator<
            'static,
            (
                name!(step, i32),
                name!(key, i64),
                name!(lock_mode, String),
                name!(role, String),
                name!(scope, String),
                name!(key_kind, String),
                name!(class, Option<String>),
                name!(classid, pg_sys::Oid),
                name!(objid, pg_sys::Oid),
            ),
        > {
            inspect::plan_rows(request($node($($id),*), $parse, mode))
        }
    };
}

/// `blockers_*`: who is in the way of a request right now (see `inspect::blocker_rows`).
macro_rules! blockers_fn {
    ($name:ident $(= $sql:literal)?, ($($id:ident),*), $node:ident, ($($classes:tt)*), $parse:expr) => {
        #[pg_extern(volatile, parallel_restricted $(, name = $sql)?)]
        fn $name(
            $($id: Option<i64>,)*
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) -> TableIterator<
            'static,
            (
                name!(pid, i32),
                name!(application_name, Option<String>),
                name!(client_addr, Option<pgrx::datum::Inet>),
                name!(conflict, String),
                name!(lock_mode, String),
                name!(key, i64),
                name!(granted, bool),
                name!(xact_start, Option<TimestampWithTimeZone>),
                name!(xact_age, Option<Interval>),
                name!(state, Option<String>),
                name!(description, String),
            ),
        > {
            inspect::blocker_rows(request($node($($id),*), $parse, mode), wait)
        }
    };
}

/// Every SQL function of one scope level, in its `class text` and `classes text[]` overloads.
/// `$node` turns the level's ids into a node. The Rust names differ; the SQL names are those
/// of the contract.
macro_rules! scope_functions {
    (
        $node:ident ( $($id:ident),* ),
        $lock:ident, $lock_many:ident = $lock_sql:literal,
        $try_lock:ident, $try_lock_many:ident = $try_lock_sql:literal,
        $session_lock:ident, $session_lock_many:ident = $session_lock_sql:literal,
        $try_session_lock:ident, $try_session_lock_many:ident = $try_session_lock_sql:literal,
        $session_unlock:ident, $session_unlock_many:ident = $session_unlock_sql:literal,
        $plan:ident, $plan_many:ident = $plan_sql:literal,
        $blockers:ident, $blockers_many:ident = $blockers_sql:literal $(,)?
    ) => {
        lock_fn!(void $lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Transaction);
        lock_fn!(void $lock_many = $lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Transaction);
        lock_fn!(bool $try_lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Transaction);
        lock_fn!(bool $try_lock_many = $try_lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Transaction);
        lock_fn!(void $session_lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Session);
        lock_fn!(void $session_lock_many = $session_lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Session);
        lock_fn!(bool $try_session_lock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class), Hold::Session);
        lock_fn!(bool $try_session_lock_many = $try_session_lock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes), Hold::Session);
        session_unlock_fn!($session_unlock, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class));
        session_unlock_fn!($session_unlock_many = $session_unlock_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes));
        plan_fn!($plan, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class));
        plan_fn!($plan_many = $plan_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes));
        blockers_fn!($blockers, ($($id),*), $node, (class: default!(Option<&str>, "'all'")), one_class(class));
        blockers_fn!($blockers_many = $blockers_sql, ($($id),*), $node, (classes: Option<Array<&str>>), many_classes(classes));
    };
}

scope_functions!(
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
    plan_global,
    plan_global_classes = "plan_global",
    blockers_global,
    blockers_global_classes = "blockers_global",
);

scope_functions!(
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
    plan_application,
    plan_application_classes = "plan_application",
    blockers_application,
    blockers_application_classes = "blockers_application",
);

scope_functions!(
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
    plan_table,
    plan_table_classes = "plan_table",
    blockers_table,
    blockers_table_classes = "blockers_table",
);

scope_functions!(
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
    plan_field,
    plan_field_classes = "plan_field",
    blockers_field,
    blockers_field_classes = "blockers_field",
);
