//! Looking without locking: the plan of a request, who is in the way of it, what this session
//! holds, and the key of a target. Each result row is declared once, in its function's
//! signature (pgrx reads the column names there); the rows are built beside it.

use super::args::{self, many_classes, one_class, request, Parsed};
use super::errors::or_report;
use crate::engine::{holders, registry};
use lockhier_core::key::{self, KeyKind, Target};
use lockhier_core::plan::Plan;
use lockhier_core::scope::Scope;
use lockhier_core::Request;
use pgrx::datum::Inet;
use pgrx::prelude::*;

/// `plan_*`: one row per lock of the plan, in the order they are taken; `classid`/`objid` are
/// the `pg_locks` columns of the key (with `locktype = 'advisory'` and `objsubid = 1`).
macro_rules! plan_fn {
    ($name:tt, ($($sql:tt)*), ($($id:ident : $ty:ty),*), $node:ident, ($($classes:tt)*), $parse:expr) => { pastey::paste! {
        #[allow(clippy::type_complexity)]
        #[pg_extern(immutable, parallel_safe $($sql)*)]
        fn $name(
            $($id: $ty,)*
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
            let rows = plan_rows(request(args::$node($($id),*), $parse, mode));
            TableIterator::new(rows)
        }
    }};
}

/// A row of `plan_*`: step, key, lock_mode, role, scope, key_kind, class, classid, objid.
pub(super) type PlanRow =
    (i32, i64, String, String, String, String, Option<String>, pg_sys::Oid, pg_sys::Oid);

pub(super) fn plan_rows(request: Parsed<Request>) -> Vec<PlanRow> {
    let request = or_report(request);
    let plan = Plan::of(&request);
    plan.steps()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (classid, objid) = key::split(s.key);
            (
                i as i32 + 1,
                s.key,
                s.mode.pg_name().to_string(),
                s.mode.role().to_string(),
                s.target.node.to_string(),
                s.target.kind.name().to_string(),
                match s.target.kind {
                    KeyKind::Class(class) => Some(class.as_str().to_string()),
                    _ => None,
                },
                pg_sys::Oid::from_u32(classid),
                pg_sys::Oid::from_u32(objid),
            )
        })
        .collect()
}

/// Who would refuse the request right now, without taking any lock. The `wait` argument is
/// validated like `lock_*`'s, so a call copied from one to the other behaves alike.
fn blockers_of(request: Parsed<Request>, wait: Option<Interval>) -> Vec<lockhier_core::holder::Blocker> {
    let request = or_report(request);
    or_report(args::wait(wait));
    holders::find(&Plan::of(&request))
}

/// A row of `blockers_*`: pid, application_name, client_addr, conflict, lock_mode, key, granted,
/// xact_start, xact_age, state, description.
pub(super) type BlockerRow = (
    Option<i32>,
    Option<String>,
    Option<Inet>,
    String,
    String,
    i64,
    bool,
    Option<TimestampWithTimeZone>,
    Option<Interval>,
    Option<String>,
    String,
);

pub(super) fn blocker_rows(request: Parsed<Request>, wait: Option<Interval>) -> Vec<BlockerRow> {
    blockers_of(request, wait)
        .into_iter()
        .map(|b| {
            let details = b.process.as_ref().and_then(|p| p.details.clone());
            (
                // A lease has no process: its owner and token are in the description.
                b.lease.is_none().then_some(b.pid),
                b.process.as_ref().map(|p| p.application_name.clone()),
                details.as_ref().and_then(|d| d.client_addr.clone()).map(Inet),
                b.conflict.clone(),
                b.lock_mode.to_string(),
                b.key,
                b.granted,
                details
                    .as_ref()
                    .and_then(|d| d.xact_start)
                    .and_then(|t| TimestampWithTimeZone::try_from(t).ok()),
                details.as_ref().and_then(|d| d.xact_age).and_then(|age| Interval::try_from(age).ok()),
                details.as_ref().and_then(|d| d.state).map(str::to_string),
                b.describe(),
            )
        })
        .collect()
}

/// `blockers_*`: one row per process (or lease) in the way of the request right now. `description` is,
/// word for word, what the conflict error's DETAIL says of that process.
macro_rules! blockers_fn {
    ($name:tt, ($($sql:tt)*), ($($id:ident : $ty:ty),*), $node:ident, ($($classes:tt)*), $parse:expr) => { pastey::paste! {
        #[allow(clippy::type_complexity)]
        #[pg_extern(volatile, parallel_restricted $($sql)*)]
        fn $name(
            $($id: $ty,)*
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
            TableIterator::new(blocker_rows(request(args::$node($($id),*), $parse, mode), wait))
        }
    }};
}

/// The inspection functions of one level, in both overloads.
macro_rules! inspection_functions {
    ($level:ident $ids:tt) => {
        overloads!(plan_fn, plan, $level $ids);
        overloads!(blockers_fn, blockers, $level $ids);
    };
}

for_each_scope!(inspection_functions);

/// Everything this session holds through lockhier, transaction requests first.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_restricted)]
fn held() -> TableIterator<
    'static,
    (
        name!(held_for, String),
        name!(level, String),
        name!(application_id, Option<i64>),
        name!(table_id, Option<i64>),
        name!(field_id, Option<i64>),
        name!(classes, Vec<String>),
        name!(mode, String),
        name!(count, i32),
        name!(scope, String),
    ),
> {
    TableIterator::new(registry::held().into_iter().map(|held| {
        let (level, node) = match &held.request.scope {
            Scope::Tree(node) => (node.level().name(), Some(*node)),
            Scope::Path(_) => ("path", None),
        };
        let classes = held.request.classes.listed();
        (
            held.hold.name().to_string(),
            level.to_string(),
            node.and_then(|n| n.application_id()),
            node.and_then(|n| n.table_id()),
            node.and_then(|n| n.field_id()),
            classes,
            held.request.mode.name().to_string(),
            held.count as i32,
            held.request.scope.place().to_string(),
        )
    }))
}

/// The key of a class (or of `all`) at the node named by `path` (`'{}'` for global,
/// `'{7}'`, `'{7,12}'`, `'{7,12,99}'`), as `pg_advisory_xact_lock(bigint)` takes it.
#[pg_extern(immutable, parallel_safe)]
fn key(path: Option<Array<i64>>, class: default!(Option<&str>, "'all'")) -> i64 {
    let scope = args::node_path(path).map(Scope::Tree);
    class_key(&or_report(scope), class)
}

/// The key of a node's share or exclusive marker (see the lock model).
#[pg_extern(immutable, parallel_safe)]
fn marker_key(path: Option<Array<i64>>, mode: Option<&str>) -> i64 {
    let scope = args::node_path(path).map(Scope::Tree);
    marker(&or_report(scope), mode)
}

/// The key of a class (or of `all`) at a path of names (`ARRAY['sites', 'c0a8f5e2']`).
#[pg_extern(immutable, parallel_safe)]
fn path_key(path: Option<Array<&str>>, class: default!(Option<&str>, "'all'")) -> i64 {
    class_key(&or_report(args::path(path)), class)
}

/// The key of a path's share or exclusive marker.
#[pg_extern(immutable, parallel_safe)]
fn path_marker_key(path: Option<Array<&str>>, mode: Option<&str>) -> i64 {
    marker(&or_report(args::path(path)), mode)
}

fn class_key(scope: &Scope, class: Option<&str>) -> i64 {
    let classes = or_report(one_class(class));
    let kind = match classes.names() {
        [] => KeyKind::All,
        [class] => KeyKind::Class(class),
        _ => unreachable!("one class name parses to one class"),
    };
    Target { node: scope.place(), kind }.key()
}

fn marker(scope: &Scope, mode: Option<&str>) -> i64 {
    let kind = match or_report(args::mode(mode)) {
        lockhier_core::Mode::Share => KeyKind::ShareMarker,
        lockhier_core::Mode::Exclusive => KeyKind::ExclusiveMarker,
    };
    Target { node: scope.place(), kind }.key()
}
