//! Operation classes: validated, case-insensitive names, or `all`.

use crate::text::shown;
use std::fmt;

pub const MAX_CLASS_LEN: usize = 63;
pub const MAX_CLASSES: usize = 64;
const ALL_CLASSES: &str = "all";

/// The ways a class argument can be wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    #[error("invalid class name \"{class}\": {reason}")]
    Invalid { class: String, reason: ClassProblem },

    #[error("classes must not be empty")]
    Empty,

    #[error("classes must not contain NULL")]
    NullElement,

    #[error("too many classes: more than {MAX_CLASSES} distinct names in one request")]
    TooMany,
}

/// A validated, lower-case class name, stored inline so that parsing a request allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassName {
    len: u8,
    bytes: [u8; MAX_CLASS_LEN],
}

impl ClassName {
    /// Fills unused places in fixed-size arrays of class names.
    pub const PLACEHOLDER: ClassName = ClassName { len: 0, bytes: [0; MAX_CLASS_LEN] };

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes pass validation.
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("class names are ASCII")
    }

    fn parse(raw: &str) -> Result<ClassName, ClassError> {
        let invalid = |reason| ClassError::Invalid { class: shown(raw), reason };
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
    pub fn parse_one(raw: &str) -> Result<Classes, ClassError> {
        let class = ClassName::parse(raw)?;
        Ok(if class.is_all() { Classes::All } else { Classes::One(class) })
    }

    /// `None` elements are SQL NULLs. Duplicates merge; `all` beside other classes means `all`.
    ///
    /// Reads the elements one at a time and keeps only the distinct names, so a huge array
    /// costs no memory here: it is refused at its 65th distinct name, and a name repeated a
    /// million times is stored once.
    pub fn parse_many<'a>(raw: impl IntoIterator<Item = Option<&'a str>>) -> Result<Classes, ClassError> {
        let mut names: Vec<ClassName> = Vec::new();
        let mut all = false;
        let mut any = false;
        for element in raw {
            let class = ClassName::parse(element.ok_or(ClassError::NullElement)?)?;
            any = true;
            if class.is_all() {
                all = true;
                continue;
            }
            if let Err(slot) = names.binary_search(&class) {
                if names.len() == MAX_CLASSES {
                    return Err(ClassError::TooMany);
                }
                names.insert(slot, class);
            }
        }
        if !any {
            return Err(ClassError::Empty);
        }
        if all {
            return Ok(Classes::All);
        }
        Ok(match names.as_slice() {
            [only] => Classes::One(*only),
            _ => Classes::Many(names),
        })
    }

    /// From names already validated, sorted and distinct (as `names()` gives them).
    pub fn from_sorted(names: &[ClassName]) -> Classes {
        match names {
            [only] => Classes::One(*only),
            _ => Classes::Many(names.to_vec()),
        }
    }

    /// The named classes, sorted; empty for `all`.
    pub fn names(&self) -> &[ClassName] {
        match self {
            Classes::All => &[],
            Classes::One(class) => std::slice::from_ref(class),
            Classes::Many(classes) => classes,
        }
    }

    /// The class names as the views, `held()` and the journal list them: `["all"]` for all
    /// classes.
    pub fn listed(&self) -> Vec<String> {
        match self.names() {
            [] => vec![ALL_CLASSES.to_string()],
            names => names.iter().map(|c| c.as_str().to_string()).collect(),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Classes::All)
    }

    /// They share a name, or either is `all`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_lower_cased_and_validated() {
        assert_eq!(Classes::parse_one("Field__Update").unwrap().to_string(), "\"field__update\"");
        assert_eq!(Classes::parse_one("ALL").unwrap(), Classes::All);
        for ok in ["a", "snapshot", "app.task:v2-x_y", &"x".repeat(63)] {
            assert!(Classes::parse_one(ok).is_ok(), "{ok} should be valid");
        }
        let problem = |raw: &str| match Classes::parse_one(raw) {
            Err(ClassError::Invalid { reason, .. }) => reason,
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
        assert!(matches!(many(&[]), Err(ClassError::Empty)));
        assert!(matches!(many(&[Some("a"), None]), Err(ClassError::NullElement)));
        let too_many: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("c{i}")).collect();
        assert!(matches!(
            Classes::parse_many(too_many.iter().map(|c| Some(c.as_str()))),
            Err(ClassError::TooMany)
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
        assert!(matches!(Classes::parse_many(counted), Err(ClassError::TooMany)));
        assert_eq!(read.get(), MAX_CLASSES + 1, "stops at the 65th distinct name");

        let repeated = std::iter::repeat_n(Some("same"), 3_000_000).chain([Some("other")]);
        assert_eq!(Classes::parse_many(repeated).unwrap().to_string(), "\"same\", \"other\"");
    }
}
