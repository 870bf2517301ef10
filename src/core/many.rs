//! Several requests in one call (`lock_many`, `session_lock_many`, `lease_many`): a JSON array of
//! request objects, read into [`Request`]s, every one checked before anything is taken.
//!
//! ```json
//! [{"path": ["rooms", "!abc:example.org"], "classes": ["typing"], "mode": "share"},
//!  {"application": 7, "table": 12, "class": "field__deletion"}]
//! ```
//!
//! A request names its scope by `path`, by `application` (then `table`, then `field`), or as
//! `"global": true`; its classes by `class` or `classes`; its mode by `mode` (default
//! exclusive). Anything else is refused, naming the element as a JSON path (`requests[1].table`)
//! so a caller who built the array by hand can find it. The input is refused past
//! [`MAX_BYTES`] before it is read, and a `jsonb` argument (`pg::jsonb`) is read no further
//! than its [`MAX_REQUESTS`]th request, so what it costs is bounded whatever the caller sends.

use crate::class::{ClassError, Classes};
use crate::path::{Path, PathError};
use crate::request::{Mode, Request, UnknownMode};
use crate::scope::{Node, Scope};
use crate::text::shown;
use serde_json::{Map, Value};
use std::fmt;

/// The most requests one call takes: as many as a plan of one request may have classes.
pub const MAX_REQUESTS: usize = 64;
/// The largest input, in bytes of its text (and of jsonb's stored form, checked before it is
/// read): 64 requests on paths of 8 names of 255 bytes fit, with room to spare.
pub const MAX_BYTES: usize = 256 * 1024;

/// What a reader of binary JSON (`jsonb`) puts in place of a number it will not print: one
/// too large to print cheaply, and one with a fraction too small to show in a double. Shown
/// as they are (not quoted) when refused.
pub const UNPRINTED_NUMBERS: [&str; 2] = ["a number of 1e20 or more", "a number with a fraction"];

/// The keys a request object may have, for the error that names an unknown one.
const KEYS: &str = "path, application, table, field, global, class, classes, mode";

/// Where in the input a problem is: the whole input, or one request (and one of its keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Input,
    Request(usize),
    Key(usize, &'static str),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Input => f.write_str("requests"),
            Place::Request(index) => write!(f, "requests[{index}]"),
            Place::Key(index, key) => write!(f, "requests[{index}].{key}"),
        }
    }
}

/// What is wrong there.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("is not valid JSON ({0})")]
    Json(String),
    #[error("must be a JSON array of request objects, not {0}")]
    NotAnArray(&'static str),
    #[error("must hold at least one request")]
    Empty,
    #[error("holds more than {MAX_REQUESTS} requests")]
    TooMany,
    #[error("is {0} bytes, more than the {MAX_BYTES} a call may pass")]
    TooLarge(usize),
    #[error("nests arrays and objects more than {MAX_NESTING} deep: a request's values are names, ids and class names")]
    TooDeep,
    #[error("holds text that is not UTF-8")]
    NotUtf8,
    #[error("must be an object, not {0}")]
    NotAnObject(&'static str),
    #[error("unknown key \"{0}\"; a request has {KEYS}")]
    UnknownKey(String),
    #[error("names no scope: give path, application (with table and field below it), or \"global\": true")]
    NoScope,
    #[error("names two scopes: give path, application (with table and field below it), or \"global\": true, only one of them")]
    TwoScopes,
    #[error("needs \"{0}\" above it")]
    MissingParent(&'static str),
    #[error("must be an integer from -9223372036854775808 to 9223372036854775807, not {0}")]
    NotAnId(String),
    #[error("must be true (leave it out for any other scope), not {0}")]
    NotTrue(String),
    #[error("must be {0}, not {1}")]
    WrongType(&'static str, &'static str),
    #[error("names no classes: give \"class\" or \"classes\"")]
    NoClasses,
    #[error("gives both \"class\" and \"classes\"; give one")]
    TwoClassKeys,
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Class(#[from] ClassError),
    #[error(transparent)]
    Mode(#[from] UnknownMode),
    /// Two leases of one `lease_many` would conflict: one owner's leases never do (the keeper
    /// refuses the second), so the call could never be granted.
    #[error("conflicts with requests[{0}]: the leases of one owner cannot conflict with each other")]
    ConflictsWith(usize),
}

/// A request array refused: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct ManyError {
    pub place: Place,
    pub problem: Problem,
}

fn at(place: Place) -> impl FnOnce(Problem) -> ManyError {
    move |problem| ManyError { place, problem }
}

/// Read a JSON array of requests from text (JSON of at most [`MAX_BYTES`]).
pub fn parse(text: &str) -> Result<Vec<Request>, ManyError> {
    if text.len() > MAX_BYTES {
        return Err(at(Place::Input)(Problem::TooLarge(text.len())));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| at(Place::Input)(Problem::Json(e.to_string())))?;
    from_value(&value)
}

/// Read a JSON array of requests, already parsed (from a jsonb argument, read within the
/// limits of [`MAX_BYTES`] and [`MAX_NESTING`]).
pub fn from_value(value: &Value) -> Result<Vec<Request>, ManyError> {
    let Value::Array(elements) = value else {
        return Err(at(Place::Input)(Problem::NotAnArray(kind(value))));
    };
    if elements.is_empty() {
        return Err(at(Place::Input)(Problem::Empty));
    }
    if elements.len() > MAX_REQUESTS {
        return Err(at(Place::Input)(Problem::TooMany));
    }
    elements.iter().enumerate().map(|(index, element)| request(index, element)).collect()
}

/// The deepest nesting of arrays and objects a valid input has (the array of requests, a
/// request, its path or classes); a jsonb argument is not read past it.
pub const MAX_NESTING: usize = 3;

/// Why a jsonb argument was not read through (`pg::jsonb` stops there): too large, nested
/// too deeply, too many requests, or text that is not UTF-8.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    TooLarge(usize),
    TooDeep,
    TooMany,
    NotUtf8,
}

/// The error for a jsonb argument that was not read through.
pub fn unread(why: Unread) -> ManyError {
    at(Place::Input)(match why {
        Unread::TooLarge(bytes) => Problem::TooLarge(bytes),
        Unread::TooDeep => Problem::TooDeep,
        Unread::TooMany => Problem::TooMany,
        Unread::NotUtf8 => Problem::NotUtf8,
    })
}

fn request(index: usize, element: &Value) -> Result<Request, ManyError> {
    let Value::Object(object) = element else {
        return Err(at(Place::Request(index))(Problem::NotAnObject(kind(element))));
    };
    if let Some(unknown) = object.keys().find(|key| !KEYS.split(", ").any(|known| known == key.as_str())) {
        return Err(at(Place::Request(index))(Problem::UnknownKey(shown(unknown))));
    }
    let scope = scope(index, object)?;
    let classes = classes(index, object)?;
    let mode = match object.get("mode") {
        None => Mode::Exclusive,
        Some(Value::String(mode)) => {
            Mode::parse(mode).map_err(|e| at(Place::Key(index, "mode"))(e.into()))?
        }
        Some(other) => {
            return Err(at(Place::Key(index, "mode"))(Problem::WrongType("a string", kind(other))))
        }
    };
    Ok(Request { scope, classes, mode })
}

fn scope(index: usize, object: &Map<String, Value>) -> Result<Scope, ManyError> {
    let has = |key: &str| object.contains_key(key);
    let named = [has("path"), has("application"), has("global")].into_iter().filter(|&h| h).count();
    if named > 1 {
        return Err(at(Place::Request(index))(Problem::TwoScopes));
    }
    if let Some(path) = object.get("path") {
        if has("table") || has("field") {
            return Err(at(Place::Request(index))(Problem::TwoScopes));
        }
        return Ok(Scope::Path(names(index, path)?));
    }
    if let Some(global) = object.get("global") {
        if has("table") || has("field") {
            return Err(at(Place::Request(index))(Problem::TwoScopes));
        }
        return match global {
            Value::Bool(true) => Ok(Scope::Tree(Node::GLOBAL)),
            other => Err(at(Place::Key(index, "global"))(Problem::NotTrue(other.to_string()))),
        };
    }
    let id = |key: &'static str| -> Result<Option<i64>, ManyError> {
        match object.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Value::String(s)) if UNPRINTED_NUMBERS.contains(&s.as_str()) => {
                Err(at(Place::Key(index, key))(Problem::NotAnId(s.clone())))
            }
            Some(other) => Err(at(Place::Key(index, key))(Problem::NotAnId(shown(&other.to_string())))),
        }
    };
    let node = match (id("application")?, id("table")?, id("field")?) {
        (None, None, None) => return Err(at(Place::Request(index))(Problem::NoScope)),
        (Some(a), None, None) => Node::application(a),
        (Some(a), Some(t), None) => Node::table(a, t),
        (Some(a), Some(t), Some(f)) => Node::field(a, t, f),
        (None, _, _) => {
            return Err(at(Place::Key(index, if has("table") { "table" } else { "field" }))(
                Problem::MissingParent("application"),
            ))
        }
        (Some(_), None, Some(_)) => {
            return Err(at(Place::Key(index, "field"))(Problem::MissingParent("table")))
        }
    };
    Ok(Scope::Tree(node))
}

fn names(index: usize, path: &Value) -> Result<Path, ManyError> {
    let fail = at(Place::Key(index, "path"));
    let Value::Array(elements) = path else {
        return Err(fail(Problem::WrongType("an array of names", kind(path))));
    };
    let mut names = Vec::with_capacity(elements.len().min(crate::path::MAX_DEPTH + 1));
    // No more than one name past the deepest path is looked at (`Path::parse`).
    for element in elements.iter().take(crate::path::MAX_DEPTH + 1) {
        match element {
            Value::String(name) => names.push(name.as_str()),
            Value::Null => return Err(fail(PathError::NullName.into())),
            other => return Err(fail(Problem::WrongType("an array of names (strings)", kind(other)))),
        }
    }
    if elements.len() > crate::path::MAX_DEPTH {
        return Err(fail(PathError::Depth(elements.len()).into()));
    }
    Path::parse(names).map_err(|e| fail(e.into()))
}

fn classes(index: usize, object: &Map<String, Value>) -> Result<Classes, ManyError> {
    match (object.get("class"), object.get("classes")) {
        (None, None) => Err(at(Place::Request(index))(Problem::NoClasses)),
        (Some(_), Some(_)) => Err(at(Place::Request(index))(Problem::TwoClassKeys)),
        (Some(Value::String(class)), None) => {
            Classes::parse_one(class).map_err(|e| at(Place::Key(index, "class"))(e.into()))
        }
        (Some(other), None) => {
            Err(at(Place::Key(index, "class"))(Problem::WrongType("a string", kind(other))))
        }
        (None, Some(Value::Array(elements))) => {
            let fail = || at(Place::Key(index, "classes"));
            let mut strings = Vec::with_capacity(elements.len().min(crate::class::MAX_CLASSES));
            for element in elements {
                match element {
                    Value::String(class) => strings.push(Some(class.as_str())),
                    Value::Null => strings.push(None),
                    other => {
                        return Err(fail()(Problem::WrongType(
                            "an array of class names (strings)",
                            kind(other),
                        )))
                    }
                }
            }
            Classes::parse_many(strings).map_err(|e| fail()(e.into()))
        }
        (None, Some(other)) => {
            Err(at(Place::Key(index, "classes"))(Problem::WrongType("an array of class names", kind(other))))
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// For `lease_many`: refuse a request that conflicts with an earlier one of the same call,
/// naming both. Leases of one owner never conflict (the keeper refuses a lease that conflicts
/// with any it holds, its owner's included), so such a group could never be granted; saying so
/// before asking beats a conflict error that names the caller's own request. Identical requests
/// are no conflict: one owner asking twice for a request gets one lease (re-entrant acquire).
pub fn refuse_conflicting_members(requests: &[Request]) -> Result<(), ManyError> {
    for (j, later) in requests.iter().enumerate() {
        for (i, earlier) in requests[..j].iter().enumerate() {
            if earlier != later && earlier.conflicts_with(later) {
                return Err(at(Place::Request(j))(Problem::ConflictsWith(i)));
            }
        }
    }
    Ok(())
}

/// The distinct requests of `requests`, in the order of their first appearance, and for each
/// request of `requests` the place of its equal among them: identical requests of one
/// `lease_many` are asked for once, and get the same token.
pub fn distinct(requests: &[Request]) -> (Vec<Request>, Vec<usize>) {
    let mut unique: Vec<Request> = Vec::with_capacity(requests.len());
    let places = requests
        .iter()
        .map(|request| match unique.iter().position(|seen| seen == request) {
            Some(place) => place,
            None => {
                unique.push(request.clone());
                unique.len() - 1
            }
        })
        .collect();
    (unique, places)
}

/// The order several requests are taken in: numeric scopes by their ids, then paths by their
/// names, then by classes and mode. Two calls that take overlapping sets take their common
/// requests in the same order, so that they queue behind each other; should they still
/// deadlock, the server's detector ends one (docs/many.md, "One order").
pub fn taking_order(requests: &[Request]) -> Vec<usize> {
    // Compared in place, without building a key: this runs on every call's success path.
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by(|&i, &j| order_key(&requests[i]).cmp(&order_key(&requests[j])));
    order
}

type OrderKey<'r> = (bool, &'r [i64], &'r [String], &'r [crate::class::ClassName], bool);

fn order_key(request: &Request) -> OrderKey<'_> {
    let (is_path, ids, names): (bool, &[i64], &[String]) = match &request.scope {
        Scope::Tree(node) => (false, node.path(), &[]),
        Scope::Path(path) => (true, &[], path.names()),
    };
    (is_path, ids, names, request.classes.names(), request.mode == Mode::Exclusive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_issues_examples() {
        let requests = parse(
            r#"[{"path": ["rooms", "!abc:example.org"], "classes": ["typing"], "mode": "share"},
                {"application": 7, "table": 12, "class": "field__deletion"},
                {"global": true, "class": "all", "mode": "SHARE"}]"#,
        )
        .unwrap();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].to_string(), "\"rooms/!abc:example.org\" for \"typing\" in share mode");
        assert_eq!(requests[1].to_string(), "table 12 (application 7) for \"field__deletion\"");
        assert_eq!(requests[2].to_string(), "the global scope for all classes in share mode");
        let field = parse(r#"[{"application": 7, "table": 12, "field": -99, "class": "x"}]"#).unwrap();
        assert_eq!(field[0].scope, Scope::Tree(Node::field(7, 12, -99)));
    }

    #[test]
    fn names_the_bad_element() {
        let cases = [
            ("{}", "requests: must be a JSON array of request objects, not an object"),
            ("[]", "requests: must hold at least one request"),
            ("[1", "requests: is not valid JSON (EOF while parsing a list at line 1 column 2)"),
            (r#"[{"application": 1, "class": "x"}, 7]"#, "requests[1]: must be an object, not a number"),
            (r#"[{"aplication": 1, "class": "x"}]"#, "requests[0]: unknown key \"aplication\"; a request has path, application, table, field, global, class, classes, mode"),
            (r#"[{"class": "x"}]"#, "requests[0]: names no scope: give path, application (with table and field below it), or \"global\": true"),
            (r#"[{"path": ["a"], "application": 1, "class": "x"}]"#, "requests[0]: names two scopes: give path, application (with table and field below it), or \"global\": true, only one of them"),
            (r#"[{"path": ["a"], "table": 1, "class": "x"}]"#, "requests[0]: names two scopes: give path, application (with table and field below it), or \"global\": true, only one of them"),
            (r#"[{"table": 1, "class": "x"}]"#, "requests[0].table: needs \"application\" above it"),
            (r#"[{"application": 1, "field": 1, "class": "x"}]"#, "requests[0].field: needs \"table\" above it"),
            (r#"[{"application": "7", "class": "x"}]"#, "requests[0].application: must be an integer from -9223372036854775808 to 9223372036854775807, not \"7\""),
            (r#"[{"application": 7.5, "class": "x"}]"#, "requests[0].application: must be an integer from -9223372036854775808 to 9223372036854775807, not 7.5"),
            (r#"[{"application": 9223372036854775808, "class": "x"}]"#, "requests[0].application: must be an integer from -9223372036854775808 to 9223372036854775807, not 9223372036854775808"),
            (r#"[{"global": false, "class": "x"}]"#, "requests[0].global: must be true (leave it out for any other scope), not false"),
            (r#"[{"application": 1}]"#, "requests[0]: names no classes: give \"class\" or \"classes\""),
            (r#"[{"application": 1, "class": "x", "classes": ["y"]}]"#, "requests[0]: gives both \"class\" and \"classes\"; give one"),
            (r#"[{"application": 1, "class": ["x"]}]"#, "requests[0].class: must be a string, not an array"),
            (r#"[{"application": 1, "classes": "x"}]"#, "requests[0].classes: must be an array of class names, not a string"),
            (r#"[{"application": 1, "classes": [1]}]"#, "requests[0].classes: must be an array of class names (strings), not a number"),
            (r#"[{"application": 1, "classes": [null]}]"#, "requests[0].classes: classes must not contain NULL"),
            (r#"[{"application": 1, "classes": []}]"#, "requests[0].classes: classes must not be empty"),
            (r#"[{"application": 1, "class": "Bad Name"}]"#, "requests[0].class: invalid class name \"Bad Name\": only a-z, 0-9, '_', '.', ':' and '-' are allowed"),
            (r#"[{"application": 1, "class": "x", "mode": "shared"}]"#, "requests[0].mode: unknown lock mode \"shared\": expected share or exclusive"),
            (r#"[{"application": 1, "class": "x", "mode": 1}]"#, "requests[0].mode: must be a string, not a number"),
            (r#"[{"path": "a/b", "class": "x"}]"#, "requests[0].path: must be an array of names, not a string"),
            (r#"[{"path": [], "class": "x"}]"#, "requests[0].path: a path has 1 to 8 names, not 0"),
            (r#"[{"path": ["a", null], "class": "x"}]"#, "requests[0].path: path must not contain NULL"),
            (r#"[{"path": ["a", 2], "class": "x"}]"#, "requests[0].path: must be an array of names (strings), not a number"),
            (r#"[{"path": ["a", ""], "class": "x"}]"#, "requests[0].path: name 2 of the path is empty"),
            (r#"[{"path": ["1","2","3","4","5","6","7","8","9","10"], "class": "x"}]"#, "requests[0].path: a path has 1 to 8 names, not 10"),
        ];
        for (input, expected) in cases {
            assert_eq!(error(input), expected, "for {input}");
        }
    }

    #[test]
    fn bounded_whatever_the_input() {
        let one = r#"{"application": 1, "class": "x"}"#;
        let many = format!("[{}]", vec![one; MAX_REQUESTS].join(","));
        assert_eq!(parse(&many).unwrap().len(), MAX_REQUESTS);
        let too_many = format!("[{}]", vec![one; MAX_REQUESTS + 1].join(","));
        assert_eq!(error(&too_many), "requests: holds more than 64 requests");
        let huge = format!("[{}]", " ".repeat(MAX_BYTES));
        assert_eq!(
            error(&huge),
            format!("requests: is {} bytes, more than the 262144 a call may pass", MAX_BYTES + 2)
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(error(&deep).starts_with("requests: is not valid JSON (recursion limit exceeded"));
        // The largest requests there are fit: 64 paths of 8 names of 255 bytes, 64 classes each.
        let name = "n".repeat(255);
        let classes: Vec<String> = (0..64).map(|c| format!("\"c{c}\"")).collect();
        let largest = format!(
            r#"{{"path": [{}], "classes": [{}], "mode": "share"}}"#,
            vec![format!("\"{name}\""); 8].join(","),
            classes.join(",")
        );
        let all = format!("[{}]", vec![largest.as_str(); MAX_REQUESTS].join(","));
        assert!(all.len() < MAX_BYTES, "{} bytes", all.len());
        assert_eq!(parse(&all).unwrap().len(), MAX_REQUESTS);
    }

    #[test]
    fn members_of_one_lease_group_must_not_conflict() {
        let check = |text: &str| refuse_conflicting_members(&parse(text).unwrap()).map_err(|e| e.to_string());
        // A table and one of its fields, both exclusive on one class: the field's lease would
        // conflict with the table's.
        assert_eq!(
            check(
                r#"[{"path": ["a"], "class": "x"}, {"application": 7, "table": 12, "class": "x"},
                    {"application": 7, "table": 12, "field": 1, "class": "x"}]"#
            ),
            Err("requests[2]: conflicts with requests[1]: the leases of one owner cannot conflict with each other"
                .to_string())
        );
        // Shares beside each other, other classes, other scopes, and identical requests are fine.
        assert_eq!(
            check(
                r#"[{"application": 7, "class": "x", "mode": "share"},
                    {"application": 7, "table": 1, "class": "x", "mode": "share"},
                    {"application": 7, "table": 1, "class": "y"},
                    {"application": 8, "class": "x"}, {"application": 8, "class": "x"}]"#
            ),
            Ok(())
        );
        // Identical exclusive requests conflict by the oracle, yet are one lease.
        let twice = parse(r#"[{"application": 8, "class": "x"}, {"application": 8, "class": "x"}]"#).unwrap();
        assert!(twice[0].conflicts_with(&twice[1]));
        assert!(refuse_conflicting_members(&twice).is_ok());
    }

    #[test]
    fn identical_requests_are_asked_for_once() {
        let requests = parse(
            r#"[{"application": 8, "class": "x"}, {"path": ["a"], "class": "x"},
                {"application": 8, "class": "x"}, {"application": 8, "class": "y"}]"#,
        )
        .unwrap();
        let (unique, places) = distinct(&requests);
        assert_eq!(unique.len(), 3);
        assert_eq!(places, vec![0, 1, 0, 2]);
        for (request, &place) in requests.iter().zip(&places) {
            assert_eq!(&unique[place], request);
        }
    }

    #[test]
    fn taking_order_is_the_same_whatever_the_order_given() {
        let a = r#"{"application": 7, "table": 12, "field": 2, "class": "x"}"#;
        let b = r#"{"application": 7, "table": 12, "field": 1, "class": "x"}"#;
        let c = r#"{"path": ["rooms", "a"], "class": "x"}"#;
        let d = r#"{"application": 3, "class": "all", "mode": "share"}"#;
        let taken = |text: String| {
            let requests = parse(&text).unwrap();
            taking_order(&requests).into_iter().map(|i| requests[i].to_string()).collect::<Vec<_>>()
        };
        let first = taken(format!("[{a},{b},{c},{d}]"));
        assert_eq!(first, taken(format!("[{c},{d},{b},{a}]")));
        assert_eq!(first[0], "application 3 for all classes in share mode");
        assert_eq!(first[3], "\"rooms/a\" for \"x\"");
    }

    #[test]
    fn numbers_a_jsonb_reader_does_not_print_are_described_not_quoted() {
        for described in UNPRINTED_NUMBERS {
            let value = serde_json::json!([{"application": described, "class": "x"}]);
            assert_eq!(
                from_value(&value).unwrap_err().to_string(),
                format!("requests[0].application: must be an integer from -9223372036854775808 to 9223372036854775807, not {described}")
            );
        }
    }

    #[test]
    fn a_jsonb_argument_not_read_through_is_refused_as_a_whole() {
        assert_eq!(unread(Unread::TooMany).to_string(), "requests: holds more than 64 requests");
        assert_eq!(unread(Unread::NotUtf8).to_string(), "requests: holds text that is not UTF-8");
        assert_eq!(
            unread(Unread::TooLarge(300_000)).to_string(),
            "requests: is 300000 bytes, more than the 262144 a call may pass"
        );
    }
}
