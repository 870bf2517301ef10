//! Looking without locking: the plan of a request, the key of a target, who is in the way of a
//! request, and what this session holds.

use crate::api::{one_class, or_report, wait};
use crate::error::LockhierError;
use crate::holders;
use crate::key::{self, KeyKind, Target};
use crate::model::{required, Mode, Node, Request};
use crate::plan::Plan;
use crate::registry;
use pgrx::datum::Inet;
use pgrx::prelude::*;

/// Columns as `api`'s `plan_fn!` names them.
pub type PlanRows = TableIterator<
    'static,
    (i32, i64, String, String, String, String, Option<String>, pg_sys::Oid, pg_sys::Oid),
>;

/// One row per lock of the plan, in the order they are taken; `classid`/`objid` are the
/// `pg_locks` columns of the key (with `locktype = 'advisory'` and `objsubid = 1`).
pub fn plan_rows(request: Result<Request, LockhierError>) -> PlanRows {
    let request = or_report(request);
    let plan = Plan::of(&request);
    let rows: Vec<_> = plan
        .steps()
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (classid, objid) = key::split(step.key);
            (
                i as i32 + 1,
                step.key,
                step.mode.pg_name().to_string(),
                step.mode.role().to_string(),
                step.target.node.to_string(),
                step.target.kind.name().to_string(),
                match step.target.kind {
                    KeyKind::Class(class) => Some(class.as_str().to_string()),
                    _ => None,
                },
                pg_sys::Oid::from_u32(classid),
                pg_sys::Oid::from_u32(objid),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Columns as `api`'s `blockers_fn!` names them.
pub type BlockerRows = TableIterator<
    'static,
    (
        i32,
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
    ),
>;

/// Who would refuse the request right now, without taking any lock. The `description` column
/// is, word for word, what the conflict error's DETAIL says of that process.
pub fn blocker_rows(request: Result<Request, LockhierError>, wait_for: Option<Interval>) -> BlockerRows {
    let request = or_report(request);
    // Validated like lock_*'s, so a call copied from one to the other behaves alike.
    or_report(wait(wait_for));
    let plan = Plan::of(&request);
    let rows: Vec<_> = holders::find(&plan)
        .into_iter()
        .map(|blocker| {
            let details = blocker.backend.as_ref().and_then(|b| b.details.clone());
            (
                blocker.pid,
                blocker.backend.as_ref().map(|b| b.application_name.clone()),
                details.as_ref().and_then(|d| d.client_addr.clone()).map(Inet),
                blocker.conflict.clone(),
                blocker.lock_mode.to_string(),
                blocker.key,
                blocker.granted,
                details
                    .as_ref()
                    .and_then(|d| d.xact_start)
                    .and_then(|t| TimestampWithTimeZone::try_from(t).ok()),
                details.as_ref().and_then(|d| d.xact_age()).and_then(|age| Interval::try_from(age).ok()),
                details.as_ref().and_then(|d| d.state).map(str::to_string),
                blocker.describe(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Everything this session holds through lockhier, transaction requests first.
// pgrx reads the columns' names off this signature, so the row type is spelled out here.
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
    let rows: Vec<_> = registry::held()
        .into_iter()
        .map(|held| {
            let node = held.request.node;
            let classes = match held.request.classes.names() {
                [] => vec!["all".to_string()],
                names => names.iter().map(|c| c.as_str().to_string()).collect(),
            };
            (
                held.hold.name().to_string(),
                node.level().name().to_string(),
                node.application_id(),
                node.table_id(),
                node.field_id(),
                classes,
                held.request.mode.name().to_string(),
                held.count as i32,
                node.to_string(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

fn path_node(path: Option<Array<i64>>) -> Result<Node, LockhierError> {
    let ids: Option<Vec<i64>> = required(path, "path")?.iter().collect();
    Node::from_path(&ids.ok_or(LockhierError::NullPathElement)?)
}

/// The key of a class (or of `all`) at the node named by `path` (`'{}'` for global,
/// `'{7}'`, `'{7,12}'`, `'{7,12,99}'`), as `pg_advisory_xact_lock(bigint)` takes it.
#[pg_extern(immutable, parallel_safe)]
fn key(path: Option<Array<i64>>, class: default!(Option<&str>, "'all'")) -> i64 {
    let node = or_report(path_node(path));
    let classes = or_report(one_class(class));
    let kind = match classes.names() {
        [] => KeyKind::All,
        [class] => KeyKind::Class(class),
        _ => unreachable!("one class name parses to one class"),
    };
    Target { node, kind }.key()
}

/// The key of a node's share or exclusive marker (see the README's model section).
#[pg_extern(immutable, parallel_safe)]
fn marker_key(path: Option<Array<i64>>, mode: Option<&str>) -> i64 {
    let node = or_report(path_node(path));
    let kind = match or_report(required(mode, "mode").and_then(Mode::parse)) {
        Mode::Share => KeyKind::ShareMarker,
        Mode::Exclusive => KeyKind::ExclusiveMarker,
    };
    Target { node, kind }.key()
}
