//! Named scopes: a path of text names under the global scope (`ARRAY['sites', 'c0a8f5e2',
//! 'backups']`), for what users name with text (a UUID, a room id, a file path) rather than with
//! the three bigint levels. A path covers every path under it as an application covers its
//! tables, by the same plans (`plan.rs`), and never shares a key with a numeric scope
//! (`key.rs`): the two trees meet only at the global scope, which covers both.

use crate::text::{invisible_kind, shown};
use std::fmt::{self, Write};

/// The deepest path: as deep as the oracle is proven for (`plan.rs`).
pub const MAX_DEPTH: usize = 8;
/// The longest name, in bytes: a room id or a file name fits; its length takes one byte of a key.
pub const MAX_NAME_LEN: usize = 255;

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a path has 1 to {MAX_DEPTH} names, not {0}")]
    Depth(usize),
    #[error("path must not contain NULL")]
    NullName,
    #[error("name {position} of the path is empty")]
    EmptyName { position: usize },
    #[error("name {position} of the path, \"{name}\", is longer than {MAX_NAME_LEN} bytes")]
    LongName { position: usize, name: String },
    #[error("name {position} of the path, \"{name}\", contains a control character")]
    ControlCharacter { position: usize, name: String },
}

/// A path of 1 to [`MAX_DEPTH`] names of 1 to [`MAX_NAME_LEN`] bytes each, compared exactly (case
/// and all). Any character but control characters: a name is shown escaped wherever it
/// appears ([`Path`]'s `Display`), so no name can pass for another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    names: Vec<String>,
}

impl Path {
    /// Reads no more than one name past [`MAX_DEPTH`], however many are passed.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Path, PathError> {
        let mut parsed = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            let position = index + 1;
            if position > MAX_DEPTH {
                return Err(PathError::Depth(position));
            }
            if name.is_empty() {
                return Err(PathError::EmptyName { position });
            }
            if name.len() > MAX_NAME_LEN {
                return Err(PathError::LongName { position, name: escaped(&shown(name)) });
            }
            if name.chars().any(char::is_control) {
                return Err(PathError::ControlCharacter { position, name: escaped(&shown(name)) });
            }
            parsed.push(name.to_string());
        }
        if parsed.is_empty() {
            return Err(PathError::Depth(0));
        }
        Ok(Path { names: parsed })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn depth(&self) -> usize {
        self.names.len()
    }

    /// The path itself, as a place of the tree.
    pub fn whole(&self) -> PathPrefix<'_> {
        PathPrefix { names: &self.names }
    }

    /// Its proper ancestors that are paths, root first (the global scope is above them all).
    pub fn ancestors(&self) -> impl Iterator<Item = PathPrefix<'_>> {
        (1..self.names.len()).map(move |depth| PathPrefix { names: &self.names[..depth] })
    }

    /// Nothing can be under a path of the greatest depth: its plans need no markers.
    pub fn is_leaf(&self) -> bool {
        self.names.len() == MAX_DEPTH
    }

    /// One path is a prefix of (or equal to) the other.
    pub fn overlaps(&self, other: &Path) -> bool {
        let common = self.depth().min(other.depth());
        self.names[..common] == other.names[..common]
    }
}

/// A path, or the first names of one: where a key of a path's plan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathPrefix<'p> {
    names: &'p [String],
}

impl<'p> PathPrefix<'p> {
    pub fn names(&self) -> &'p [String] {
        self.names
    }
}

/// `"sites/c0a8f5e2/backups"`: quoted, names joined by `/`, and in each name `"`, `\` and `/`
/// escaped with a backslash and control or invisible characters as `\u202E`, so that the text
/// shows the path it names and no other.
impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                f.write_char('/')?;
            }
            f.write_str(&escaped(name))?;
        }
        f.write_char('"')
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.whole().fmt(f)
    }
}

/// A name as messages show it (see [`PathPrefix`]'s `Display`).
fn escaped(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' | '\\' | '/' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || invisible_kind(c).is_some() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(names: &[&str]) -> Path {
        Path::parse(names.iter().copied()).unwrap()
    }

    #[test]
    fn names_are_text_of_any_character_but_controls() {
        let p = path(&["sites", "c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b", "backups"]);
        assert_eq!(p.depth(), 3);
        assert_eq!(p.to_string(), r#""sites/c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b/backups""#);
        assert_ne!(path(&["Room"]), path(&["room"]), "case-sensitive");
        assert_eq!(path(&["!abc:example.org", "typing"]).to_string(), r#""!abc:example.org/typing""#);
        assert_eq!(path(&["x".repeat(255).as_str()]).depth(), 1);
        assert_eq!(path(&["a"; MAX_DEPTH]).depth(), MAX_DEPTH);
    }

    #[test]
    fn bad_paths_say_which_name_and_why() {
        let err = |names: &[&str]| Path::parse(names.iter().copied()).unwrap_err();
        assert_eq!(err(&[]), PathError::Depth(0));
        assert_eq!(err(&["a"; MAX_DEPTH + 1]), PathError::Depth(9));
        assert_eq!(err(&["a", ""]), PathError::EmptyName { position: 2 });
        assert!(matches!(err(&["x".repeat(256).as_str()]), PathError::LongName { position: 1, .. }));
        assert_eq!(
            err(&["a", "b\nc"]).to_string(),
            r#"name 2 of the path, "b\u000Ac", contains a control character"#
        );
        assert_eq!(err(&[]).to_string(), "a path has 1 to 8 names, not 0");
    }

    #[test]
    fn a_path_of_millions_of_names_is_read_no_further_than_the_cap() {
        let mut read = 0;
        let names = std::iter::repeat_with(|| {
            read += 1;
            "a"
        })
        .take(5_000_000);
        assert_eq!(Path::parse(names), Err(PathError::Depth(MAX_DEPTH + 1)));
        assert_eq!(read, MAX_DEPTH + 1);
    }

    #[test]
    fn what_could_spoof_a_path_is_escaped() {
        // A slash inside a name is not a separator, a quote does not end the text, and a bidi
        // override cannot reorder it.
        assert_eq!(path(&["a/b"]).to_string(), r#""a\/b""#);
        assert_ne!(path(&["a/b"]).to_string(), path(&["a", "b"]).to_string());
        assert_eq!(path(&["say \"hi\""]).to_string(), r#""say \"hi\"""#);
        assert_eq!(path(&["back\\slash"]).to_string(), r#""back\\slash""#);
        assert_eq!(path(&["job-1\u{202E}2-boj"]).to_string(), r#""job-1\u202E2-boj""#);
        assert_eq!(path(&["zero\u{200B}width"]).to_string(), r#""zero\u200Bwidth""#);
    }

    #[test]
    fn paths_overlap_along_one_line_of_descent() {
        let (sites, site, backups) =
            (path(&["sites"]), path(&["sites", "a"]), path(&["sites", "a", "backups"]));
        assert!(sites.overlaps(&backups) && backups.overlaps(&sites) && site.overlaps(&site));
        assert!(!path(&["sites", "b"]).overlaps(&backups));
        assert!(!path(&["site"]).overlaps(&sites), "names compare whole");
        let ancestors: Vec<String> = backups.ancestors().map(|p| p.to_string()).collect();
        assert_eq!(ancestors, [r#""sites""#, r#""sites/a""#]);
    }
}
