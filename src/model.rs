//! What a user locks: requests of (scope, classes, mode), parsed and validated.
//!
//! Pure Rust: nothing here calls PostgreSQL, so every rule is unit-tested without a server.
//! The semantics (the oracle of `design/lock-model.md`) live here too, as
//! [`Request::conflicts_with`], so the planner can be checked against them.

use crate::error::LockhierError;
use std::fmt;
use std::time::Duration;

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
    pub fn from_path(path: &[i64]) -> Result<Node, LockhierError> {
        if path.len() > 3 {
            return Err(LockhierError::PathTooLong(path.len()));
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
    #[cfg(test)]
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

pub const MAX_CLASS_LEN: usize = 63;
pub const MAX_CLASSES: usize = 64;
const ALL_CLASSES: &str = "all";

/// A validated, lower-case class name, stored inline so that parsing a request allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassName {
    len: u8,
    bytes: [u8; MAX_CLASS_LEN],
}

impl ClassName {
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes pass validation.
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("class names are ASCII")
    }

    fn parse(raw: &str) -> Result<ClassName, LockhierError> {
        let invalid = |reason| LockhierError::InvalidClass { class: shown(raw), reason };
        if raw.is_empty() {
            return Err(invalid(ClassProblem::Empty));
        }
        if raw.len() > MAX_CLASS_LEN {
            return Err(invalid(ClassProblem::TooLong));
        }
        let mut bytes = [0u8; MAX_CLASS_LEN];
        for (slot, byte) in bytes.iter_mut().zip(raw.bytes()) {
            let lower = byte.to_ascii_lowercase();
            if !matches!(lower, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b':' | b'-') {
                return Err(invalid(ClassProblem::BadCharacter));
            }
            *slot = lower;
        }
        Ok(ClassName { len: raw.len() as u8, bytes })
    }

    fn is_all(&self) -> bool {
        self.as_str() == ALL_CLASSES
    }
}

impl fmt::Debug for ClassName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Why a class name was refused; the text completes "invalid class name ...: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassProblem {
    Empty,
    TooLong,
    BadCharacter,
}

impl fmt::Display for ClassProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClassProblem::Empty => "it is empty",
            ClassProblem::TooLong => "it is longer than 63 bytes",
            ClassProblem::BadCharacter => "only a-z, 0-9, '_', '.', ':' and '-' are allowed",
        })
    }
}

/// `all`, or a set of named classes (sorted, no duplicates).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Classes {
    All,
    One(ClassName),
    Many(Vec<ClassName>),
}

impl Classes {
    pub fn parse_one(raw: &str) -> Result<Classes, LockhierError> {
        let class = ClassName::parse(raw)?;
        Ok(if class.is_all() { Classes::All } else { Classes::One(class) })
    }

    /// `None` elements are SQL NULLs. Duplicates merge; `all` beside other classes means `all`.
    ///
    /// Reads the elements one at a time and keeps only the distinct names, so a huge array
    /// costs no memory here: it is refused at its 65th distinct name, and a name repeated a
    /// million times is stored once.
    pub fn parse_many<'a>(raw: impl IntoIterator<Item = Option<&'a str>>) -> Result<Classes, LockhierError> {
        let mut names: Vec<ClassName> = Vec::new();
        let mut all = false;
        let mut any = false;
        for element in raw {
            let class = ClassName::parse(element.ok_or(LockhierError::NullClassElement)?)?;
            any = true;
            if class.is_all() {
                all = true;
                continue;
            }
            if let Err(slot) = names.binary_search(&class) {
                if names.len() == MAX_CLASSES {
                    return Err(LockhierError::TooManyClasses);
                }
                names.insert(slot, class);
            }
        }
        if !any {
            return Err(LockhierError::EmptyClasses);
        }
        if all {
            return Ok(Classes::All);
        }
        Ok(match names.as_slice() {
            [only] => Classes::One(*only),
            _ => Classes::Many(names),
        })
    }

    /// The named classes, sorted; empty for `all`.
    pub fn names(&self) -> &[ClassName] {
        match self {
            Classes::All => &[],
            Classes::One(class) => std::slice::from_ref(class),
            Classes::Many(classes) => classes,
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Classes::All)
    }

    #[cfg(test)]
    pub fn overlaps(&self, other: &Classes) -> bool {
        self.is_all() || other.is_all() || self.names().iter().any(|class| other.names().contains(class))
    }
}

/// Reads like the error messages: `all classes`, `"import"`, `"a", "b"`.
impl fmt::Display for Classes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all classes");
        }
        for (i, class) in self.names().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{}\"", class.as_str())?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Share,
    Exclusive,
}

impl Mode {
    pub const VALID: &'static str = "share, exclusive";

    pub fn parse(raw: &str) -> Result<Mode, LockhierError> {
        if raw.eq_ignore_ascii_case("share") {
            Ok(Mode::Share)
        } else if raw.eq_ignore_ascii_case("exclusive") {
            Ok(Mode::Exclusive)
        } else {
            Err(LockhierError::UnknownMode(shown(raw)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Share => "share",
            Mode::Exclusive => "exclusive",
        }
    }
}

/// The four row-lock strengths of `SELECT ... FOR ...`, weakest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowMode {
    Update,
    NoKeyUpdate,
    Share,
    KeyShare,
}

impl RowMode {
    pub const VALID: &'static str = "update, no key update, share or key share";

    /// Case and spacing are free: `'No Key  Update'` is `no key update`.
    pub fn parse(raw: &str) -> Result<RowMode, LockhierError> {
        const SPELLINGS: [(&[&str], RowMode); 4] = [
            (&["update"], RowMode::Update),
            (&["no", "key", "update"], RowMode::NoKeyUpdate),
            (&["share"], RowMode::Share),
            (&["key", "share"], RowMode::KeyShare),
        ];
        let words = || raw.split_ascii_whitespace();
        SPELLINGS
            .iter()
            .find(|(spelling, _)| {
                words().count() == spelling.len()
                    && words()
                        .zip(spelling.iter())
                        .all(|(word, expected)| word.eq_ignore_ascii_case(expected))
            })
            .map(|&(_, mode)| mode)
            .ok_or_else(|| LockhierError::UnknownRowMode(shown(raw)))
    }

    /// As in `FOR <name>`, lower case.
    pub fn name(self) -> &'static str {
        match self {
            RowMode::Update => "update",
            RowMode::NoKeyUpdate => "no key update",
            RowMode::Share => "share",
            RowMode::KeyShare => "key share",
        }
    }
}

/// A request: taken whole or not at all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    pub node: Node,
    pub classes: Classes,
    pub mode: Mode,
}

impl Request {
    /// The oracle: two requests of different holders conflict exactly when their scopes
    /// overlap, their classes overlap and at least one of them is exclusive.
    #[cfg(test)]
    pub fn conflicts_with(&self, other: &Request) -> bool {
        self.node.overlaps(&other.node)
            && self.classes.overlaps(&other.classes)
            && (self.mode == Mode::Exclusive || other.mode == Mode::Exclusive)
    }
}

/// Reads like the error messages: `field 99 (table 12, application 7) for "field__update"`,
/// with ` in share mode` appended for share requests.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {}", self.node, self.classes)?;
        if self.mode == Mode::Share {
            f.write_str(" in share mode")?;
        }
        Ok(())
    }
}

/// How long a request may wait in the lock manager's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once (`wait => '0'`, the default).
    No,
    /// Wait up to this long in total (`wait => '5 s'`).
    UpTo(Duration),
    /// No limit of lockhier's own (`wait => NULL`); the session's timeouts still apply.
    Unbounded,
}

impl Wait {
    /// `micros` is the interval's length (months count 30 days, days 24 hours, as
    /// `EXTRACT(EPOCH ...)` does); `None` is SQL NULL. `shown` is the interval as the user wrote it.
    pub fn from_micros(micros: Option<i128>, shown: impl FnOnce() -> String) -> Result<Wait, LockhierError> {
        match micros {
            None => Ok(Wait::Unbounded),
            Some(0) => Ok(Wait::No),
            Some(m) if m < 0 => Err(LockhierError::NegativeWait(shown())),
            Some(m) => Ok(Wait::UpTo(Duration::from_micros(u64::try_from(m).unwrap_or(u64::MAX)))),
        }
    }
}

/// How much of a text argument an error message repeats: the message stays short (and memory
/// bounded) however long the argument is.
pub const SHOWN_BYTES: usize = 80;

/// `raw` as error messages quote it: whole when short, else its first [`SHOWN_BYTES`] bytes
/// (cut at a character boundary) and `...`.
pub fn shown(raw: &str) -> String {
    if raw.len() <= SHOWN_BYTES {
        return raw.to_string();
    }
    let cut = (0..=SHOWN_BYTES).rev().find(|&i| raw.is_char_boundary(i)).unwrap_or(0);
    format!("{}...", &raw[..cut])
}

/// An id argument: SQL NULL must be refused by name, never turned into "lock nothing".
pub fn required<T>(value: Option<T>, argument: &'static str) -> Result<T, LockhierError> {
    value.ok_or(LockhierError::NullArgument(argument))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &[i64], classes: &[&str], mode: Mode) -> Request {
        Request {
            node: Node::from_path(path).unwrap(),
            classes: Classes::parse_many(classes.iter().map(|c| Some(*c))).unwrap(),
            mode,
        }
    }

    #[test]
    fn class_names_are_lower_cased_and_validated() {
        assert_eq!(Classes::parse_one("Field__Update").unwrap().to_string(), "\"field__update\"");
        assert_eq!(Classes::parse_one("ALL").unwrap(), Classes::All);
        for ok in ["a", "snapshot", "app.task:v2-x_y", &"x".repeat(63)] {
            assert!(Classes::parse_one(ok).is_ok(), "{ok} should be valid");
        }
        let problem = |raw: &str| match Classes::parse_one(raw) {
            Err(LockhierError::InvalidClass { reason, .. }) => reason,
            other => panic!("{raw:?} gave {other:?}"),
        };
        assert_eq!(problem(""), ClassProblem::Empty);
        assert_eq!(problem(&"x".repeat(64)), ClassProblem::TooLong);
        for bad in ["a b", "a/b", "é", "a\0", "a'b", "ａ"] {
            assert_eq!(problem(bad), ClassProblem::BadCharacter, "{bad:?}");
        }
    }

    #[test]
    fn class_lists_merge_duplicates_and_absorb_into_all() {
        let many = |raw: &[Option<&str>]| Classes::parse_many(raw.iter().copied());
        assert_eq!(many(&[Some("b"), Some("A"), Some("b")]).unwrap().to_string(), "\"a\", \"b\"");
        assert_eq!(many(&[Some("x"), Some("X")]).unwrap(), Classes::parse_one("x").unwrap());
        assert_eq!(many(&[Some("x"), Some("All")]).unwrap(), Classes::All);
        assert!(matches!(many(&[]), Err(LockhierError::EmptyClasses)));
        assert!(matches!(many(&[Some("a"), None]), Err(LockhierError::NullClassElement)));
        let too_many: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("c{i}")).collect();
        assert!(matches!(
            Classes::parse_many(too_many.iter().map(|c| Some(c.as_str()))),
            Err(LockhierError::TooManyClasses)
        ));
        let at_most: Vec<String> = (0..MAX_CLASSES).map(|i| format!("c{i}")).collect();
        assert_eq!(Classes::parse_many(at_most.iter().map(|c| Some(c.as_str()))).unwrap().names().len(), 64);
        let repeated = vec![Some("same"); 100];
        assert_eq!(Classes::parse_many(repeated).unwrap(), Classes::parse_one("same").unwrap());
    }

    /// A huge array is refused at its 65th distinct name without reading (or copying) the
    /// rest; repeated names are kept once however many times they come.
    #[test]
    fn class_lists_are_read_no_further_than_the_cap() {
        let read = std::cell::Cell::new(0usize);
        let names: Vec<String> = (0..3_000_000).map(|i| format!("c{i}")).collect();
        let counted = names.iter().map(|n| {
            read.set(read.get() + 1);
            Some(n.as_str())
        });
        assert!(matches!(Classes::parse_many(counted), Err(LockhierError::TooManyClasses)));
        assert_eq!(read.get(), MAX_CLASSES + 1, "stops at the 65th distinct name");

        let repeated = std::iter::repeat_n(Some("same"), 3_000_000).chain([Some("other")]);
        assert_eq!(Classes::parse_many(repeated).unwrap().to_string(), "\"same\", \"other\"");
    }

    #[test]
    fn long_arguments_are_quoted_short() {
        assert_eq!(shown("share"), "share");
        let long = "é".repeat(1_000_000);
        let quoted = shown(&long);
        assert!(quoted.len() <= SHOWN_BYTES + 3 && quoted.ends_with("..."), "{}", quoted.len());
        match Classes::parse_one(&"x".repeat(10_000_000)) {
            Err(LockhierError::InvalidClass { class, reason: ClassProblem::TooLong }) => {
                assert_eq!(class, format!("{}...", "x".repeat(SHOWN_BYTES)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(Mode::parse(&long), Err(LockhierError::UnknownMode(m)) if m == quoted));
        assert!(matches!(RowMode::parse(&long), Err(LockhierError::UnknownRowMode(m)) if m == quoted));
    }

    #[test]
    fn modes_are_case_insensitive() {
        assert_eq!(Mode::parse("SHARE").unwrap(), Mode::Share);
        assert_eq!(Mode::parse("Exclusive").unwrap(), Mode::Exclusive);
        assert!(matches!(Mode::parse("shared"), Err(LockhierError::UnknownMode(m)) if m == "shared"));
    }

    #[test]
    fn row_modes_are_the_four_strengths_in_any_case_and_spacing() {
        assert_eq!(RowMode::parse("UPDATE").unwrap(), RowMode::Update);
        assert_eq!(RowMode::parse(" No Key\tupdate ").unwrap(), RowMode::NoKeyUpdate);
        assert_eq!(RowMode::parse("share").unwrap().name(), "share");
        assert_eq!(RowMode::parse("Key Share").unwrap(), RowMode::KeyShare);
        for bad in ["exclusive", "nokey update", "", "for update"] {
            assert!(matches!(RowMode::parse(bad), Err(LockhierError::UnknownRowMode(_))), "{bad:?}");
        }
    }

    #[test]
    fn waits() {
        let shown = || "-1 s".to_string();
        assert_eq!(Wait::from_micros(None, shown).unwrap(), Wait::Unbounded);
        assert_eq!(Wait::from_micros(Some(0), shown).unwrap(), Wait::No);
        assert_eq!(
            Wait::from_micros(Some(1_500_000), shown).unwrap(),
            Wait::UpTo(Duration::from_millis(1500))
        );
        assert!(matches!(
            Wait::from_micros(Some(-1), shown),
            Err(LockhierError::NegativeWait(s)) if s == "-1 s"
        ));
    }

    #[test]
    fn nodes_describe_themselves_and_their_ancestors() {
        let field = Node::field(7, 12, 99);
        assert_eq!(field.to_string(), "field 99 (table 12, application 7)");
        let ancestors: Vec<String> = field.ancestors().map(|n| n.to_string()).collect();
        assert_eq!(ancestors, ["the global scope", "application 7", "table 12 (application 7)"]);
        assert!(Node::GLOBAL.ancestors().next().is_none());
        assert!(matches!(Node::from_path(&[1, 2, 3, 4]), Err(LockhierError::PathTooLong(4))));
    }

    #[test]
    fn oracle_follows_the_design_examples() {
        use Mode::*;
        let snapshot = request(&[7], &["all"], Share);
        let import = request(&[7, 12], &["field__deletion", "field__type_update"], Share);
        let update = request(&[7, 12, 99], &["field__update"], Exclusive);
        let deletion = request(&[7, 12, 99], &["field__deletion"], Exclusive);
        let migration = request(&[7], &["all"], Exclusive);
        let backup = request(&[], &["full_backup"], Exclusive);
        let platform_update = request(&[], &["app_task", "app_backup"], Exclusive);
        let app_task = request(&[8], &["app_task"], Exclusive);

        assert!(snapshot.conflicts_with(&update));
        assert!(!snapshot.conflicts_with(&snapshot.clone()), "snapshots run together");
        assert!(import.conflicts_with(&deletion));
        assert!(!import.conflicts_with(&update), "an import does not block a rename");
        assert!(migration.conflicts_with(&snapshot));
        assert!(!migration.conflicts_with(&request(&[8], &["all"], Exclusive)));
        assert!(backup.conflicts_with(&backup.clone()));
        assert!(!backup.conflicts_with(&update));
        assert!(platform_update.conflicts_with(&app_task));
        assert!(!platform_update.conflicts_with(&backup));
    }

    #[test]
    fn requests_read_like_the_error_messages() {
        assert_eq!(
            request(&[7, 12, 99], &["field__update"], Mode::Exclusive).to_string(),
            "field 99 (table 12, application 7) for \"field__update\""
        );
        assert_eq!(
            request(&[7], &["all"], Mode::Share).to_string(),
            "application 7 for all classes in share mode"
        );
    }
}
