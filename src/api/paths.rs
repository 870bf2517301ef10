//! The functions on paths of names (`docs/paths.md`): `lock_path`, `try_lock_path`,
//! `session_lock_path`, `try_session_lock_path`, `session_unlock_path`, `plan_path`,
//! `blockers_path`, and the keys `path_key` and `path_marker_key`. Each takes `path text[]`
//! where a level's functions take its ids, with the same parameters, defaults, volatility and
//! strictness (none is STRICT: a NULL is refused by name), and shares their bodies.

use super::args::{self, many_classes, names, one_class, scoped};
use super::inspect::{blocker_rows, plan_rows};
use super::leases::take as lease;
use super::locks::{session_unlock, take};
use lockhier_core::key::{KeyKind, Target};
use lockhier_core::scope::Scope;
use lockhier_core::{Hold, Mode};
use pgrx::datum::Inet;
use pgrx::prelude::*;

use super::errors::or_report;

/// `()` for a function declared without a return type (pgrx maps that to `void`).
macro_rules! outcome {
    () => {
        ()
    };
    ($ret:ty) => {
        $ret
    };
}

/// Every lock function on paths, in the `class text` and the `classes text[]` overload.
macro_rules! path_lock_fn {
    ($name:ident, $many:ident = $sql:literal, $hold:expr $(, $ret:ty)?) => {
        #[pg_extern(volatile, parallel_unsafe)]
        fn $name(
            path: Option<Array<&str>>,
            class: default!(Option<&str>, "'all'"),
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) $(-> $ret)? {
            take::<outcome!($($ret)?)>(scoped(names(path), one_class(class), mode), wait, $hold)
        }

        #[pg_extern(volatile, parallel_unsafe, name = $sql)]
        fn $many(
            path: Option<Array<&str>>,
            classes: Option<Array<&str>>,
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) $(-> $ret)? {
            take::<outcome!($($ret)?)>(scoped(names(path), many_classes(classes), mode), wait, $hold)
        }
    };
}

path_lock_fn!(lock_path, lock_path_classes = "lock_path", Hold::Transaction);
path_lock_fn!(try_lock_path, try_lock_path_classes = "try_lock_path", Hold::Transaction, bool);
path_lock_fn!(session_lock_path, session_lock_path_classes = "session_lock_path", Hold::Session);
path_lock_fn!(
    try_session_lock_path,
    try_session_lock_path_classes = "try_session_lock_path",
    Hold::Session,
    bool
);

#[pg_extern(volatile, parallel_unsafe)]
fn session_unlock_path(
    path: Option<Array<&str>>,
    class: default!(Option<&str>, "'all'"),
    mode: default!(Option<&str>, "'exclusive'"),
) -> bool {
    session_unlock(scoped(names(path), one_class(class), mode))
}

#[pg_extern(volatile, parallel_unsafe, name = "session_unlock_path")]
fn session_unlock_path_classes(
    path: Option<Array<&str>>,
    classes: Option<Array<&str>>,
    mode: default!(Option<&str>, "'exclusive'"),
) -> bool {
    session_unlock(scoped(names(path), many_classes(classes), mode))
}

/// `plan_path`: the rows of `plan_*` (see `inspect.rs`), for a path.
macro_rules! plan_path_fn {
    ($name:ident $(= $sql:literal)?, ($($classes:tt)*), $parse:expr) => {
        #[allow(clippy::type_complexity)]
        #[pg_extern(immutable, parallel_safe $(, name = $sql)?)]
        fn $name(
            path: Option<Array<&str>>,
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
            TableIterator::new(plan_rows(scoped(names(path), $parse, mode)))
        }
    };
}

plan_path_fn!(plan_path, (class: default!(Option<&str>, "'all'")), one_class(class));
plan_path_fn!(plan_path_classes = "plan_path", (classes: Option<Array<&str>>), many_classes(classes));

/// `blockers_path`: the rows of `blockers_*` (see `inspect.rs`), for a path.
macro_rules! blockers_path_fn {
    ($name:ident $(= $sql:literal)?, ($($classes:tt)*), $parse:expr) => {
        #[allow(clippy::type_complexity)]
        #[pg_extern(volatile, parallel_restricted $(, name = $sql)?)]
        fn $name(
            path: Option<Array<&str>>,
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
            wait: default!(Option<Interval>, "'0'"),
        ) -> TableIterator<
            'static,
            (
                name!(pid, Option<i32>),
                name!(application_name, Option<String>),
                name!(client_addr, Option<Inet>),
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
            TableIterator::new(blocker_rows(scoped(names(path), $parse, mode), wait))
        }
    };
}

blockers_path_fn!(blockers_path, (class: default!(Option<&str>, "'all'")), one_class(class));
blockers_path_fn!(blockers_path_classes = "blockers_path", (classes: Option<Array<&str>>), many_classes(classes));

/// The key of a class (or of `all`) at a path, as `pg_advisory_xact_lock(bigint)` takes it.
#[pg_extern(immutable, parallel_safe)]
fn path_key(path: Option<Array<&str>>, class: default!(Option<&str>, "'all'")) -> i64 {
    let scope = or_report(names(path));
    let classes = or_report(one_class(class));
    let kind = match classes.names() {
        [] => KeyKind::All,
        [class] => KeyKind::Class(class),
        _ => unreachable!("one class name parses to one class"),
    };
    key_at(&scope, kind)
}

/// The key of a path's share or exclusive marker (see the lock model).
#[pg_extern(immutable, parallel_safe)]
fn path_marker_key(path: Option<Array<&str>>, mode: Option<&str>) -> i64 {
    let scope = or_report(names(path));
    let kind = match or_report(args::mode(mode)) {
        Mode::Share => KeyKind::ShareMarker,
        Mode::Exclusive => KeyKind::ExclusiveMarker,
    };
    key_at(&scope, kind)
}

fn key_at(scope: &Scope, kind: KeyKind) -> i64 {
    Target { node: scope.place(), kind }.key()
}

/// `lease_path` and `try_lease_path`, as `lease_L` and `try_lease_L` (see `leases.rs`).
macro_rules! path_lease_fn {
    ($name:ident, $many:ident = $sql:literal, $refusal_is_an_error:expr) => {
        #[allow(clippy::too_many_arguments)]
        #[pg_extern(volatile, parallel_unsafe)]
        fn $name(
            path: Option<Array<&str>>,
            owner: Option<&str>,
            class: default!(Option<&str>, "'all'"),
            mode: default!(Option<&str>, "'exclusive'"),
            ttl: default!(Option<Interval>, "'2 min'"),
            wait: default!(Option<Interval>, "'0'"),
        ) -> Option<i64> {
            lease(names(path), owner, one_class(class), mode, ttl, wait, $refusal_is_an_error)
        }

        #[allow(clippy::too_many_arguments)]
        #[pg_extern(volatile, parallel_unsafe, name = $sql)]
        fn $many(
            path: Option<Array<&str>>,
            owner: Option<&str>,
            classes: Option<Array<&str>>,
            mode: default!(Option<&str>, "'exclusive'"),
            ttl: default!(Option<Interval>, "'2 min'"),
            wait: default!(Option<Interval>, "'0'"),
        ) -> Option<i64> {
            lease(names(path), owner, many_classes(classes), mode, ttl, wait, $refusal_is_an_error)
        }
    };
}

path_lease_fn!(lease_path, lease_path_classes = "lease_path", true);
path_lease_fn!(try_lease_path, try_lease_path_classes = "try_lease_path", false);
