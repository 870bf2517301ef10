//! SQL arguments into requests. Arguments are checked in the order they are written: ids,
//! class(es), mode, then wait; a NULL is refused by name, never turned into "lock nothing".

use lockhier_core::path::{Path, PathError, MAX_DEPTH};
use lockhier_core::request::required;
use lockhier_core::scope::{IdPathError, Scope};
use lockhier_core::{Classes, LockhierError, Mode, Node, Request, Wait};
use pgrx::prelude::*;

pub type Parsed<T> = Result<T, LockhierError>;

// One function per scope of `for_each_scope!` (its name), taking that scope's parameters.

pub fn global() -> Parsed<Scope> {
    Ok(Scope::Tree(Node::GLOBAL))
}

pub fn application(application_id: Option<i64>) -> Parsed<Scope> {
    Ok(Scope::Tree(Node::application(required(application_id, "application_id")?)))
}

pub fn table(application_id: Option<i64>, table_id: Option<i64>) -> Parsed<Scope> {
    Ok(Scope::Tree(Node::table(required(application_id, "application_id")?, required(table_id, "table_id")?)))
}

pub fn field(application_id: Option<i64>, table_id: Option<i64>, field_id: Option<i64>) -> Parsed<Scope> {
    Ok(Scope::Tree(Node::field(
        required(application_id, "application_id")?,
        required(table_id, "table_id")?,
        required(field_id, "field_id")?,
    )))
}

/// `'{}'`, `'{7}'`, `'{7,12}'` or `'{7,12,99}'`: a node by its ids (`key()`, `marker_key()`).
pub fn node_path(path: Option<Array<i64>>) -> Parsed<Node> {
    let ids: Option<Vec<i64>> = required(path, "path")?.iter().collect();
    Ok(Node::from_path(&ids.ok_or(IdPathError::NullElement)?)?)
}

/// `ARRAY['sites', 'c0a8f5e2', 'backups']`: 1 to 8 names. No more of the array is read than a
/// path may hold.
pub fn path(path: Option<Array<&str>>) -> Parsed<Scope> {
    let path = required(path, "path")?;
    if path.len() > MAX_DEPTH {
        return Err(PathError::Depth(path.len()).into());
    }
    let names: Option<Vec<&str>> = path.iter().collect();
    Ok(Scope::Path(Path::parse(names.ok_or(PathError::NullName)?)?))
}

pub fn one_class(class: Option<&str>) -> Parsed<Classes> {
    Ok(Classes::parse_one(required(class, "class")?)?)
}

pub fn many_classes(classes: Option<Array<&str>>) -> Parsed<Classes> {
    Ok(Classes::parse_many(required(classes, "classes")?.iter())?)
}

pub fn mode(mode: Option<&str>) -> Parsed<Mode> {
    Ok(Mode::parse(required(mode, "mode")?)?)
}

pub fn request(scope: Parsed<Scope>, classes: Parsed<Classes>, mode_arg: Option<&str>) -> Parsed<Request> {
    Ok(Request { scope: scope?, classes: classes?, mode: mode(mode_arg)? })
}

pub fn wait(wait: Option<Interval>) -> Parsed<Wait> {
    Ok(Wait::from_micros(wait.map(|w| w.as_micros()), || wait.map(|w| w.to_string()).unwrap_or_default())?)
}
