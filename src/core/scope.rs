//! Scopes: the nodes of the resource tree (global > application > table > field), each named
//! by its whole path of ids.

use crate::path::{Path, PathPrefix};
use std::fmt;

/// The ways a path of ids (`lock_path`, `plan_path`, ...) can be wrong.
#[derive(Debug, thiserror::Error)]
pub enum IdPathError {
    #[error("a path has at most 3 ids (application, table, field), not {0}")]
    TooLong(usize),

    #[error("path must not contain NULL")]
    NullElement,
}

/// Levels of the resource tree, root first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Global = 0,
    Application = 1,
    Table = 2,
    Field = 3,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Global, Level::Application, Level::Table, Level::Field];

    /// How many ids name a node at this level.
    pub fn depth(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Global => "global",
            Level::Application => "application",
            Level::Table => "table",
            Level::Field => "field",
        }
    }

    fn at_depth(depth: usize) -> Level {
        Level::ALL[depth]
    }
}

/// A node of the tree, named by its whole path of ids (ids need not be unique across parents).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    level: Level,
    ids: [i64; 3],
}

impl Node {
    pub const GLOBAL: Node = Node { level: Level::Global, ids: [0; 3] };

    /// `path` holds the application, table and field ids, as far as the node goes.
    pub fn from_path(path: &[i64]) -> Result<Node, IdPathError> {
        if path.len() > 3 {
            return Err(IdPathError::TooLong(path.len()));
        }
        let mut ids = [0; 3];
        ids[..path.len()].copy_from_slice(path);
        Ok(Node { level: Level::at_depth(path.len()), ids })
    }

    pub fn application(application_id: i64) -> Node {
        Node { level: Level::Application, ids: [application_id, 0, 0] }
    }

    pub fn table(application_id: i64, table_id: i64) -> Node {
        Node { level: Level::Table, ids: [application_id, table_id, 0] }
    }

    pub fn field(application_id: i64, table_id: i64, field_id: i64) -> Node {
        Node { level: Level::Field, ids: [application_id, table_id, field_id] }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn path(&self) -> &[i64] {
        &self.ids[..self.level.depth()]
    }

    pub fn is_leaf(&self) -> bool {
        self.level == Level::Field
    }

    /// The proper ancestors, root first.
    pub fn ancestors(&self) -> impl Iterator<Item = Node> + '_ {
        (0..self.level.depth()).map(move |depth| self.prefix(depth))
    }

    fn prefix(&self, depth: usize) -> Node {
        let mut ids = [0; 3];
        ids[..depth].copy_from_slice(&self.ids[..depth]);
        Node { level: Level::at_depth(depth), ids }
    }

    /// One path is a prefix of (or equal to) the other.
    pub fn overlaps(&self, other: &Node) -> bool {
        let (a, b) = (self.path(), other.path());
        let common = a.len().min(b.len());
        a[..common] == b[..common]
    }

    pub fn application_id(&self) -> Option<i64> {
        self.path().first().copied()
    }
    pub fn table_id(&self) -> Option<i64> {
        self.path().get(1).copied()
    }
    pub fn field_id(&self) -> Option<i64> {
        self.path().get(2).copied()
    }
}

/// Reads like the error messages: `field 99 (table 12, application 7)`.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.path() {
            [] => f.write_str("the global scope"),
            [a] => write!(f, "application {a}"),
            [a, t] => write!(f, "table {t} (application {a})"),
            [a, t, fld] => write!(f, "field {fld} (table {t}, application {a})"),
            _ => unreachable!("a node has at most three ids"),
        }
    }
}

/// Where a key is: a node of the numeric tree (the global scope included), or a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place<'r> {
    Tree(Node),
    Path(PathPrefix<'r>),
}

impl Place<'_> {
    /// How far below the global scope it is (a path of one name: 1).
    pub fn depth(&self) -> usize {
        match self {
            Place::Tree(node) => node.level().depth(),
            Place::Path(path) => path.names().len(),
        }
    }
}

impl From<Node> for Place<'_> {
    fn from(node: Node) -> Self {
        Place::Tree(node)
    }
}

/// Reads like the error messages: `table 12 (application 7)`, `"sites/c0a8f5e2"`.
impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Tree(node) => node.fmt(f),
            Place::Path(path) => path.fmt(f),
        }
    }
}

/// What a request locks: a node of the numeric tree, or a path of names (`path.rs`). The two
/// trees meet only at the global scope (a node), which covers both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Tree(Node),
    Path(Path),
}

impl Scope {
    /// One scope is within (or equal to) the other.
    pub fn overlaps(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Tree(a), Scope::Tree(b)) => a.overlaps(b),
            (Scope::Path(a), Scope::Path(b)) => a.overlaps(b),
            (Scope::Tree(node), Scope::Path(_)) | (Scope::Path(_), Scope::Tree(node)) => {
                node.level() == Level::Global
            }
        }
    }

    pub fn place(&self) -> Place<'_> {
        match self {
            Scope::Tree(node) => Place::Tree(*node),
            Scope::Path(path) => Place::Path(path.whole()),
        }
    }

    /// Nothing can be under it: a field, or a path of the greatest depth.
    pub fn is_leaf(&self) -> bool {
        match self {
            Scope::Tree(node) => node.is_leaf(),
            Scope::Path(path) => path.is_leaf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_describe_themselves_and_their_ancestors() {
        let field = Node::field(7, 12, 99);
        assert_eq!(field.to_string(), "field 99 (table 12, application 7)");
        let ancestors: Vec<String> = field.ancestors().map(|n| n.to_string()).collect();
        assert_eq!(ancestors, ["the global scope", "application 7", "table 12 (application 7)"]);
        assert!(Node::GLOBAL.ancestors().next().is_none());
        assert!(matches!(Node::from_path(&[1, 2, 3, 4]), Err(IdPathError::TooLong(4))));
    }
}
