//! Leases as data: who owns one and for how long, the request it holds in a fixed-size form
//! (shared memory holds no heap data), what the keeper decides for a new lease request, and
//! the journal that keeps leases across restarts.

use crate::class::{ClassName, Classes, MAX_CLASSES};
use crate::error::LockhierError;
use crate::request::{Mode, Request};
use crate::scope::Node;
use crate::text::shown;
use std::fmt;
use std::time::Duration;

/// The longest owner name, in bytes.
pub const MAX_OWNER_LEN: usize = 200;

/// The longest ttl a lease may be taken or renewed for.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Who holds a lease: a name of 1 to 200 bytes with no control characters, compared exactly.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    len: u8,
    bytes: [u8; MAX_OWNER_LEN],
}

/// Why an owner name was refused; the text completes "invalid lease owner ...: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerProblem {
    Empty,
    TooLong,
    ControlCharacter,
}

impl fmt::Display for OwnerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OwnerProblem::Empty => "it is empty",
            OwnerProblem::TooLong => "it is longer than 200 bytes",
            OwnerProblem::ControlCharacter => "it contains a control character",
        })
    }
}

impl Owner {
    pub fn parse(raw: &str) -> Result<Owner, LockhierError> {
        let invalid = |reason| LockhierError::InvalidOwner { owner: shown(raw), reason };
        if raw.is_empty() {
            return Err(invalid(OwnerProblem::Empty));
        }
        if raw.len() > MAX_OWNER_LEN {
            return Err(invalid(OwnerProblem::TooLong));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid(OwnerProblem::ControlCharacter));
        }
        let mut bytes = [0u8; MAX_OWNER_LEN];
        bytes[..raw.len()].copy_from_slice(raw.as_bytes());
        Ok(Owner { len: raw.len() as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("owners are UTF-8 by construction")
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A ttl argument: positive and at most [`MAX_TTL`]. `micros` is the interval's length (as
/// for waits); `shown` is the interval as written, for the error.
pub fn ttl_from_micros(micros: i128, shown: impl FnOnce() -> String) -> Result<Duration, LockhierError> {
    if micros <= 0 || micros > MAX_TTL.as_micros() as i128 {
        return Err(LockhierError::InvalidTtl(shown()));
    }
    Ok(Duration::from_micros(micros as u64))
}

/// A request with no heap data, as shared memory and the journal hold it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedRequest {
    node: Node,
    mode: Mode,
    /// `None`: all classes.
    count: Option<u8>,
    classes: [ClassName; MAX_CLASSES],
}

impl FixedRequest {
    pub fn of(request: &Request) -> FixedRequest {
        let names = request.classes.names();
        let mut classes = [ClassName::PLACEHOLDER; MAX_CLASSES];
        classes[..names.len()].copy_from_slice(names);
        FixedRequest {
            node: request.node,
            mode: request.mode,
            count: (!request.classes.is_all()).then_some(names.len() as u8),
            classes,
        }
    }

    pub fn request(&self) -> Request {
        let classes = match self.count {
            None => Classes::All,
            Some(count) => Classes::from_sorted(&self.classes[..count as usize]),
        };
        Request { node: self.node, classes, mode: self.mode }
    }
}

impl fmt::Debug for FixedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.request())
    }
}

/// Microseconds since 2000-01-01 UTC: PostgreSQL's `timestamptz`.
pub type Timestamp = i64;

/// A lease, as the keeper holds it and the journal keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The OID of the database it was taken in.
    pub database: u32,
    pub token: i64,
    pub owner: Owner,
    pub request: FixedRequest,
    /// The OID of the role that took it.
    pub role: u32,
    /// What a renewal without a ttl extends it by.
    pub ttl: Duration,
    pub acquired_at: Timestamp,
    pub renewed_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What the keeper decides for a lease request from the leases it holds, before it touches
/// the lock manager (whose locks never conflict among one process's, so it cannot tell).
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The same owner, under the same role, holds this very request: that lease (its token),
    /// extended.
    Reentrant(i64),
    /// Leases that conflict with it, by the oracle.
    Conflicts(Vec<i64>),
    /// No lease is in the way.
    Free,
}

/// An owner's name is the owner only under the role that took the lease: the same name asked
/// for by another role is another owner, so a lease cannot be extended (re-entrant acquire)
/// by a role that may not renew it.
pub fn decide<'a>(
    database: u32,
    owner: &Owner,
    role: u32,
    request: &Request,
    held: impl IntoIterator<Item = &'a Lease>,
) -> Decision {
    let mut conflicts = Vec::new();
    for lease in held.into_iter().filter(|l| l.database == database) {
        let theirs = lease.request.request();
        if lease.owner == *owner && lease.role == role && theirs == *request {
            return Decision::Reentrant(lease.token);
        }
        if theirs.conflicts_with(request) {
            conflicts.push(lease.token);
        }
    }
    if conflicts.is_empty() {
        Decision::Free
    } else {
        Decision::Conflicts(conflicts)
    }
}

/// What a backend asks the lease keeper, through shared memory.
// It lives in a fixed-size shared-memory slot: boxing the large variant would put its data on
// one process's heap, out of the keeper's reach.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Ask {
    Grant {
        database: u32,
        owner: Owner,
        request: FixedRequest,
        role: u32,
        ttl: Duration,
    },
    Renew {
        database: u32,
        token: i64,
        ttl: Option<Duration>,
    },
    /// The asker holds the lease's fence in exclusive mode: no transaction has validated it.
    Release {
        database: u32,
        token: i64,
    },
    /// The database was dropped: its leases guard nothing any more, and nobody could reach
    /// them to release them. Answered with `Released`.
    ForgetDatabase {
        database: u32,
    },
}

/// What the keeper answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Granted {
        token: i64,
    },
    /// Not taken: a lease is in the way (by the oracle), or a lock of its plan was not free.
    Refused,
    /// The new expiry, or `None` when the lease is not held (expired or released).
    Renewed(Option<Timestamp>),
    /// Whether the lease was held.
    Released(bool),
    Failed(Failure),
}

/// Why the keeper could not grant a lease that nothing was in the way of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// As many leases as `lockhier.max_leases` are held.
    TooManyLeases(usize),
    /// The server's lock table is full.
    LockTableFull,
    /// The journal could not be written; the text says why.
    Journal(ShortText),
    /// Something else went wrong in the keeper; the text is its error.
    Internal(ShortText),
}

/// A short message with no heap data (cut at 200 bytes), to cross shared memory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    len: u8,
    bytes: [u8; 200],
}

impl ShortText {
    pub fn new(text: &str) -> ShortText {
        let cut = (0..=text.len().min(200)).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let mut bytes = [0u8; 200];
        bytes[..cut].copy_from_slice(&text.as_bytes()[..cut]);
        ShortText { len: cut as u8, bytes }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

pub mod journal;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Classes;

    pub fn request(path: &[i64], classes: &[&str], mode: Mode) -> Request {
        Request {
            node: Node::from_path(path).unwrap(),
            classes: Classes::parse_many(classes.iter().map(|c| Some(*c))).unwrap(),
            mode,
        }
    }

    pub fn lease(token: i64, owner: &str, request: &Request) -> Lease {
        Lease {
            database: 5,
            token,
            owner: Owner::parse(owner).unwrap(),
            request: FixedRequest::of(request),
            role: 10,
            ttl: Duration::from_secs(120),
            acquired_at: 1_000,
            renewed_at: 1_000,
            expires_at: 121_000_000,
        }
    }

    #[test]
    fn owners_are_validated() {
        assert_eq!(Owner::parse("csv-import #55").unwrap().as_str(), "csv-import #55");
        assert_eq!(Owner::parse(&"x".repeat(200)).unwrap().as_str().len(), 200);
        let problem = |raw: &str| match Owner::parse(raw) {
            Err(LockhierError::InvalidOwner { reason, .. }) => reason,
            other => panic!("{raw:?}: {other:?}"),
        };
        assert_eq!(problem(""), OwnerProblem::Empty);
        assert_eq!(problem(&"x".repeat(201)), OwnerProblem::TooLong);
        assert_eq!(problem(&"é".repeat(101)), OwnerProblem::TooLong, "bytes, not characters");
        assert_eq!(problem("job\n2"), OwnerProblem::ControlCharacter);
        assert_ne!(Owner::parse("Job").unwrap(), Owner::parse("job").unwrap(), "compared exactly");
    }

    #[test]
    fn short_texts_are_cut_at_a_character_boundary() {
        assert_eq!(ShortText::new("No space left on device").as_str(), "No space left on device");
        let long = "é".repeat(150);
        assert_eq!(ShortText::new(&long).as_str(), "é".repeat(100));
    }

    #[test]
    fn ttls_are_positive_and_capped() {
        let shown = || "x".to_string();
        assert_eq!(ttl_from_micros(1, shown).unwrap(), Duration::from_micros(1));
        assert_eq!(ttl_from_micros(MAX_TTL.as_micros() as i128, shown).unwrap(), MAX_TTL);
        for bad in [0, -1, MAX_TTL.as_micros() as i128 + 1, i128::MAX] {
            assert!(matches!(ttl_from_micros(bad, shown), Err(LockhierError::InvalidTtl(_))), "{bad}");
        }
    }

    #[test]
    fn fixed_requests_round_trip() {
        for r in [
            request(&[], &["all"], Mode::Exclusive),
            request(&[7, 12], &["field__deletion", "field__type_update"], Mode::Share),
            request(&[7, 12, 99], &["field__update"], Mode::Exclusive),
        ] {
            assert_eq!(FixedRequest::of(&r).request(), r);
        }
        let many: Vec<String> = (0..MAX_CLASSES).map(|i| format!("c{i}")).collect();
        let r = Request {
            node: Node::table(1, 2),
            classes: Classes::parse_many(many.iter().map(|c| Some(c.as_str()))).unwrap(),
            mode: Mode::Share,
        };
        assert_eq!(FixedRequest::of(&r).request(), r);
    }

    #[test]
    fn the_keeper_decides_by_the_oracle_and_the_owner() {
        let import = request(&[7, 12], &["field__deletion"], Mode::Share);
        let held = [lease(1, "import", &import), lease(2, "snapshot", &request(&[8], &["all"], Mode::Share))];
        let owner = |name| Owner::parse(name).unwrap();
        // The same owner asking for the same request gets its lease back.
        assert_eq!(decide(5, &owner("import"), 10, &import, &held), Decision::Reentrant(1));
        // Another owner's identical share request runs beside it, and so does the same name
        // asked for by another role (another owner, which may not extend the lease).
        assert_eq!(decide(5, &owner("import 2"), 10, &import, &held), Decision::Free);
        assert_eq!(decide(5, &owner("import"), 11, &import, &held), Decision::Free);
        let exclusive_import = request(&[7, 12], &["field__deletion"], Mode::Exclusive);
        let held_exclusive = [lease(3, "import", &exclusive_import)];
        assert_eq!(
            decide(5, &owner("import"), 11, &exclusive_import, &held_exclusive),
            Decision::Conflicts(vec![3])
        );
        // A deletion of one of the table's fields conflicts, whoever asks, the same owner too.
        let deletion = request(&[7, 12, 99], &["field__deletion"], Mode::Exclusive);
        assert_eq!(decide(5, &owner("editor"), 10, &deletion, &held), Decision::Conflicts(vec![1]));
        assert_eq!(decide(5, &owner("import"), 10, &deletion, &held), Decision::Conflicts(vec![1]));
        // A rename does not; another database never does.
        let rename = request(&[7, 12, 99], &["field__rename"], Mode::Exclusive);
        assert_eq!(decide(5, &owner("editor"), 10, &rename, &held), Decision::Free);
        assert_eq!(decide(6, &owner("editor"), 10, &deletion, &held), Decision::Free);
        // A global exclusive request on all classes meets both.
        let everything = request(&[], &["all"], Mode::Exclusive);
        assert_eq!(decide(5, &owner("x"), 10, &everything, &held), Decision::Conflicts(vec![1, 2]));
    }
}
