//! Requests of (scope, classes, mode), how long they may wait, and the oracle: when two
//! requests of different holders conflict (`docs/lock-model.md`).

use crate::class::Classes;
use crate::scope::Scope;
use crate::text::shown;
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("unknown lock mode \"{0}\": expected {valid}", valid = Mode::VALID.replace(", ", " or "))]
pub struct UnknownMode(pub String);

#[derive(Debug, thiserror::Error)]
#[error("wait must not be negative: \"{0}\"")]
pub struct NegativeWait(pub String);

/// An argument that was SQL NULL where a value is required, by the argument's name.
#[derive(Debug, thiserror::Error)]
#[error("argument \"{0}\" must not be null")]
pub struct NullArgument(pub &'static str);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Share,
    Exclusive,
}

impl Mode {
    pub const VALID: &'static str = "share, exclusive";

    pub fn parse(raw: &str) -> Result<Mode, UnknownMode> {
        if raw.eq_ignore_ascii_case("share") {
            Ok(Mode::Share)
        } else if raw.eq_ignore_ascii_case("exclusive") {
            Ok(Mode::Exclusive)
        } else {
            Err(UnknownMode(shown(raw)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Share => "share",
            Mode::Exclusive => "exclusive",
        }
    }
}

/// How long a lock is kept: to the end of the transaction, or of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hold {
    Transaction,
    Session,
}

impl Hold {
    pub fn name(self) -> &'static str {
        match self {
            Hold::Transaction => "transaction",
            Hold::Session => "session",
        }
    }
}

/// A request: taken whole or not at all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    pub scope: Scope,
    pub classes: Classes,
    pub mode: Mode,
}

impl Request {
    /// The oracle: two requests of different holders conflict exactly when their scopes
    /// overlap, their classes overlap and at least one of them is exclusive.
    pub fn conflicts_with(&self, other: &Request) -> bool {
        conflict(self.scope.overlaps(&other.scope), (&self.classes, self.mode), (&other.classes, other.mode))
    }
}

/// The oracle's rule for requests on any two scopes (numeric nodes or paths), given whether
/// their scopes overlap: their classes overlap and at least one of them is exclusive.
pub fn conflict(scopes_overlap: bool, a: (&Classes, Mode), b: (&Classes, Mode)) -> bool {
    scopes_overlap && a.0.overlaps(b.0) && (a.1 == Mode::Exclusive || b.1 == Mode::Exclusive)
}

/// Reads like the error messages: `field 99 (table 12, application 7) for "field__update"`,
/// with ` in share mode` appended for share requests.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {}", self.scope.place(), self.classes)?;
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
    /// How long it may still wait once `elapsed` of it has been spent, as a timeout: `None`
    /// for no limit, zero when nothing is left or it may not wait at all.
    pub fn remaining(self, elapsed: Duration) -> Option<Duration> {
        match self {
            Wait::No => Some(Duration::ZERO),
            Wait::UpTo(limit) => Some(limit.saturating_sub(elapsed)),
            Wait::Unbounded => None,
        }
    }

    /// Whether it may still wait once `elapsed` of it has been spent.
    pub fn has_time_left(self, elapsed: Duration) -> bool {
        self.remaining(elapsed) != Some(Duration::ZERO)
    }

    /// What is left of this wait once `elapsed` of it has been spent.
    pub fn left_after(self, elapsed: Duration) -> Wait {
        match (self, self.remaining(elapsed)) {
            (Wait::UpTo(_), Some(left)) => Wait::UpTo(left),
            _ => self,
        }
    }

    /// `micros` is the interval's length (months count 30 days, days 24 hours, as
    /// `EXTRACT(EPOCH ...)` does); `None` is SQL NULL. `shown` is the interval as the user wrote it.
    pub fn from_micros(micros: Option<i128>, shown: impl FnOnce() -> String) -> Result<Wait, NegativeWait> {
        match micros {
            None => Ok(Wait::Unbounded),
            Some(0) => Ok(Wait::No),
            Some(m) if m < 0 => Err(NegativeWait(shown())),
            Some(m) => Ok(Wait::UpTo(Duration::from_micros(u64::try_from(m).unwrap_or(u64::MAX)))),
        }
    }
}

/// An id argument: SQL NULL must be refused by name, never turned into "lock nothing".
pub fn required<T>(value: Option<T>, argument: &'static str) -> Result<T, NullArgument> {
    value.ok_or(NullArgument(argument))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &[i64], classes: &[&str], mode: Mode) -> Request {
        Request {
            scope: Scope::Tree(crate::scope::Node::from_path(path).unwrap()),
            classes: Classes::parse_many(classes.iter().map(|c| Some(*c))).unwrap(),
            mode,
        }
    }

    #[test]
    fn modes_are_case_insensitive() {
        assert_eq!(Mode::parse("SHARE").unwrap(), Mode::Share);
        assert_eq!(Mode::parse("Exclusive").unwrap(), Mode::Exclusive);
        assert!(matches!(Mode::parse("shared"), Err(UnknownMode(m)) if m == "shared"));
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
            Err(NegativeWait(s)) if s == "-1 s"
        ));
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
