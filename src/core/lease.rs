//! Leases as data: who owns one and for how long, the request it holds in a fixed-size form
//! (shared memory holds no heap data), what the keeper decides for a new lease request, and
//! the journal that keeps leases across restarts.

use crate::class::{ClassName, Classes, MAX_CLASSES};
use crate::path::{Path, MAX_DEPTH, MAX_NAME_LEN};
use crate::request::{Mode, Request};
use crate::scope::{Node, Scope};
pub use crate::text::invisible_kind;
use crate::text::shown;
use std::fmt::{self, Write};
use std::time::Duration;

/// The longest owner name, in bytes (a chat server's 255-byte room id fits, with a worker's
/// name above it).
pub const MAX_OWNER_LEN: usize = 1024;

/// The longest ttl a lease may be taken or renewed for.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
#[error("invalid lease owner \"{owner}\": {reason}")]
pub struct InvalidOwner {
    pub owner: String,
    pub reason: OwnerProblem,
}

#[derive(Debug, thiserror::Error)]
#[error("ttl must be positive and at most {hours} h: \"{0}\"", hours = MAX_TTL.as_secs() / 3600)]
pub struct InvalidTtl(pub String);

/// Who holds a lease: a name of 1 to 1,024 bytes, compared exactly, that shows as what it is
/// (see [`Owner::parse`]): leases are listed by owner in the `leases` view and named by owner in
/// errors, where an invisible character could make one owner pass for another.
///
/// An owner may be a path of names separated by `/` (`worker9/task-3`): an owner *covers*
/// itself and every owner under it ([`Owner::covers`]), so `release_leases('worker9')` ends the
/// leases of all its tasks, while re-entrance stays per exact owner (two tasks are two owners).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    len: u16,
    bytes: [u8; MAX_OWNER_LEN],
}

/// Why an owner name was refused; the text completes "invalid lease owner ...: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerProblem {
    Empty,
    TooLong,
    ControlCharacter,
    /// A character that is invisible or changes how the text around it is shown: a
    /// bidirectional control, a zero-width character, a line or paragraph separator.
    Invisible(char),
    /// Only white space.
    Blank,
    /// White space at the start or the end.
    EdgeSpace,
}

impl fmt::Display for OwnerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerProblem::Empty => f.write_str("it is empty"),
            OwnerProblem::TooLong => write!(f, "it is longer than {MAX_OWNER_LEN} bytes"),
            OwnerProblem::ControlCharacter => f.write_str("it contains a control character"),
            OwnerProblem::Invisible(c) => {
                write!(
                    f,
                    "it contains U+{:04X}, {}",
                    *c as u32,
                    invisible_kind(*c).unwrap_or("an invisible character")
                )
            }
            OwnerProblem::Blank => f.write_str("it is blank"),
            OwnerProblem::EdgeSpace => f.write_str("it starts or ends with white space"),
        }
    }
}

/// `raw` as an error message quotes it: cut short as [`shown`] does, with each control or
/// invisible character written as its escape (`\u202E`, as in an `E''` string), so the message
/// shows what was passed instead of being reordered or cut by it.
pub fn shown_owner(raw: &str) -> String {
    let mut quoted = String::new();
    for c in shown(raw).chars() {
        if c.is_control() || invisible_kind(c).is_some() {
            let _ = write!(quoted, "\\u{:04X}", c as u32);
        } else {
            quoted.push(c);
        }
    }
    quoted
}

impl Owner {
    /// An owner name as a lease function takes it: 1 to 1,024 bytes; no control characters; none
    /// of the invisible characters of [`invisible_kind`] (bidirectional controls, zero-width
    /// characters, line and paragraph separators); not blank, and no white space at either end
    /// (`"job "` would pass for `"job"`). Anything else is kept as written: punctuation, inner
    /// spaces, every script, emoji.
    pub fn parse(raw: &str) -> Result<Owner, InvalidOwner> {
        let owner = Owner::stored(raw)?;
        let invalid = |reason| InvalidOwner { owner: shown_owner(raw), reason };
        if let Some(c) = raw.chars().find(|&c| invisible_kind(c).is_some()) {
            return Err(invalid(OwnerProblem::Invisible(c)));
        }
        if raw.chars().all(char::is_whitespace) {
            return Err(invalid(OwnerProblem::Blank));
        }
        if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
            return Err(invalid(OwnerProblem::EdgeSpace));
        }
        Ok(owner)
    }

    /// An owner name as the journal keeps it: the rule of lockhier 0.2.0 (not empty, no control
    /// characters; 0.2.0 allowed at most 200 bytes, 0.3.0 1,024), so that a lease taken before [`Owner::parse`] refused invisible
    /// characters and white space at the edges is still held again after an upgrade.
    pub fn stored(raw: &str) -> Result<Owner, InvalidOwner> {
        let invalid = |reason| InvalidOwner { owner: shown_owner(raw), reason };
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
        Ok(Owner { len: raw.len() as u16, bytes })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("owners are UTF-8 by construction")
    }

    /// Whether `other` is this owner or an owner under it: `worker9` covers `worker9` and
    /// `worker9/task-3`, not `worker90` (names are compared whole, at a `/`).
    pub fn covers(&self, other: &Owner) -> bool {
        let (mine, theirs) = (self.as_str(), other.as_str());
        theirs == mine || (theirs.starts_with(mine) && theirs.as_bytes().get(mine.len()) == Some(&b'/'))
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A ttl argument: positive and at most [`MAX_TTL`]. `micros` is the interval's length (as
/// for waits); `shown` is the interval as written, for the error.
pub fn ttl_from_micros(micros: i128, shown: impl FnOnce() -> String) -> Result<Duration, InvalidTtl> {
    if micros <= 0 || micros > MAX_TTL.as_micros() as i128 {
        return Err(InvalidTtl(shown()));
    }
    Ok(Duration::from_micros(micros as u64))
}

/// A request with no heap data, as shared memory and the journal hold it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedRequest {
    scope: FixedScope,
    mode: Mode,
    /// `None`: all classes.
    count: Option<u8>,
    classes: [ClassName; MAX_CLASSES],
}

/// A scope with no heap data: a node, or a path's names end to end.
// It lives in fixed-size shared-memory slots: boxing the path would put it on one process's heap.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum FixedScope {
    Tree(Node),
    Path(FixedPath),
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FixedPath {
    depth: u8,
    /// Where each name ends in `bytes`.
    ends: [u16; MAX_DEPTH],
    bytes: [u8; MAX_DEPTH * MAX_NAME_LEN],
}

impl FixedPath {
    fn of(path: &Path) -> FixedPath {
        let mut fixed = FixedPath {
            depth: path.depth() as u8,
            ends: [0; MAX_DEPTH],
            bytes: [0; MAX_DEPTH * MAX_NAME_LEN],
        };
        let mut at = 0;
        for (i, name) in path.names().iter().enumerate() {
            fixed.bytes[at..at + name.len()].copy_from_slice(name.as_bytes());
            at += name.len();
            fixed.ends[i] = at as u16;
        }
        fixed
    }

    fn path(&self) -> Path {
        let mut start = 0;
        let names = self.ends[..self.depth as usize].iter().map(|&end| {
            let name = std::str::from_utf8(&self.bytes[start..end as usize])
                .expect("names are UTF-8 by construction");
            start = end as usize;
            name
        });
        Path::parse(names).expect("a fixed path was a valid path")
    }
}

impl FixedRequest {
    pub fn of(request: &Request) -> FixedRequest {
        let names = request.classes.names();
        let mut classes = [ClassName::PLACEHOLDER; MAX_CLASSES];
        classes[..names.len()].copy_from_slice(names);
        let scope = match &request.scope {
            Scope::Tree(node) => FixedScope::Tree(*node),
            Scope::Path(path) => FixedScope::Path(FixedPath::of(path)),
        };
        FixedRequest {
            scope,
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
        let scope = match &self.scope {
            FixedScope::Tree(node) => Scope::Tree(*node),
            FixedScope::Path(path) => Scope::Path(path.path()),
        };
        Request { scope, classes, mode: self.mode }
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
    /// Whether the keeper holds its locks. False only for a lease of the journal that could not
    /// be taken again after a restart (another session holds one of its locks, or the lock
    /// table is full): it is still a promise, so conflicting leases are refused, and the keeper
    /// takes its locks as soon as they are free, until it expires; `lease_valid` says false
    /// meanwhile.
    pub held: bool,
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

/// A new lease asked for.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    pub database: u32,
    pub owner: Owner,
    pub request: FixedRequest,
    pub role: u32,
    pub ttl: Duration,
    /// The asking backend's pid: its own announced handoff is not in its way.
    pub asker: i32,
}

/// The most leases one `lease_many` asks for at once: as many as one call may pass.
pub const MAX_GROUP: usize = crate::many::MAX_REQUESTS;

/// Several new leases asked for together (`lease_many`), granted all or none. The requests
/// themselves do not fit in a request slot (one `FixedRequest` is about 6 kB): the backend puts
/// them in a group slot of their own (`group`, claimed under `claim`), which the keeper copies
/// out as it takes the question.
#[derive(Clone, Copy, Debug)]
pub struct WantedMany {
    pub database: u32,
    pub owner: Owner,
    pub role: u32,
    pub ttl: Duration,
    /// The asking backend's pid: its own announced handoff is not in its way.
    pub asker: i32,
    /// The group slot holding the requests.
    pub group: u8,
    /// How many requests it holds (1 to [`MAX_GROUP`]).
    pub count: u8,
    /// The claim the backend took the group slot under: only that claim frees it.
    pub claim: u64,
}

/// What a backend asks the lease keeper, through shared memory.
// It lives in a fixed-size shared-memory slot: boxing the large variant would put its data on
// one process's heap, out of the keeper's reach.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Ask {
    Grant(Wanted),
    /// Several leases, all or none (`WantedMany`).
    GrantMany(WantedMany),
    Renew {
        database: u32,
        token: i64,
        ttl: Option<Duration>,
    },
    /// `fenced`: the asker holds the lease's fence in exclusive mode, so no transaction has
    /// validated it. Otherwise (the asker could not take the fence: the lock table is full) the
    /// keeper takes it without waiting, on the hold it keeps from the grant, and answers
    /// `Fenced` when a validating transaction is still open.
    Release {
        database: u32,
        token: i64,
        fenced: bool,
    },
}

/// What the keeper answers.
// It lives in a fixed-size shared-memory slot: boxing the tokens of `GrantedMany` would put
// them on the keeper's heap, out of the asker's reach.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Granted {
        token: i64,
    },
    /// Not taken: a lease is in the way (by the oracle), or a lock of its plan was not free.
    Refused,
    /// Every lease of a `GrantMany`: the first `count` tokens, one per request in the order
    /// asked (a request the owner already held gets that lease's token back).
    GrantedMany {
        count: u8,
        tokens: [i64; MAX_GROUP],
    },
    /// None of a `GrantMany`'s leases: the request at `index` (in the order asked) was refused.
    RefusedAt {
        index: u8,
    },
    /// The new expiry, or `None` when the lease is not held (expired or released).
    Renewed(Option<Timestamp>),
    /// Whether the lease was held.
    Released(bool),
    /// Not released: a transaction that validated the lease is still open (ask again later).
    Fenced,
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

pub mod in_use;
pub mod index;
pub mod journal;
pub mod restore;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Classes;

    pub fn request(path: &[i64], classes: &[&str], mode: Mode) -> Request {
        Request {
            scope: Scope::Tree(Node::from_path(path).unwrap()),
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
            held: true,
        }
    }

    #[test]
    fn an_owner_covers_itself_and_the_owners_under_it() {
        let owner = |raw: &str| Owner::parse(raw).unwrap();
        let worker = owner("worker9");
        for under in ["worker9", "worker9/task-3", "worker9/task-3/step 1", "worker9//x"] {
            assert!(worker.covers(&owner(under)), "{under}");
        }
        for other in ["worker90", "worker", "worker9-task", "x/worker9", "Worker9/task-3"] {
            assert!(!worker.covers(&owner(other)), "{other}");
        }
        assert!(!owner("worker9/task-3").covers(&worker), "a task does not cover its worker");
        assert!(!owner("worker9/task-3").covers(&owner("worker9/task-30")));
    }

    #[test]
    fn owners_are_validated() {
        assert_eq!(Owner::parse("csv-import #55").unwrap().as_str(), "csv-import #55");
        assert_eq!(Owner::parse(&"x".repeat(1024)).unwrap().as_str().len(), 1024);
        let problem = |raw: &str| match Owner::parse(raw) {
            Err(InvalidOwner { reason, .. }) => reason,
            other => panic!("{raw:?}: {other:?}"),
        };
        assert_eq!(problem(""), OwnerProblem::Empty);
        assert_eq!(problem(&"x".repeat(1025)), OwnerProblem::TooLong);
        assert_eq!(problem(&"é".repeat(513)), OwnerProblem::TooLong, "bytes, not characters");
        assert_eq!(problem("job\n2"), OwnerProblem::ControlCharacter);
        assert_ne!(Owner::parse("Job").unwrap(), Owner::parse("job").unwrap(), "compared exactly");
    }

    /// Every character an owner name may not contain besides control characters, by name.
    const INVISIBLE: &[(char, &str)] = &[
        ('\u{061C}', "ARABIC LETTER MARK"),
        ('\u{200B}', "ZERO WIDTH SPACE"),
        ('\u{200C}', "ZERO WIDTH NON-JOINER"),
        ('\u{200D}', "ZERO WIDTH JOINER"),
        ('\u{200E}', "LEFT-TO-RIGHT MARK"),
        ('\u{200F}', "RIGHT-TO-LEFT MARK"),
        ('\u{2028}', "LINE SEPARATOR"),
        ('\u{2029}', "PARAGRAPH SEPARATOR"),
        ('\u{202A}', "LEFT-TO-RIGHT EMBEDDING"),
        ('\u{202B}', "RIGHT-TO-LEFT EMBEDDING"),
        ('\u{202C}', "POP DIRECTIONAL FORMATTING"),
        ('\u{202D}', "LEFT-TO-RIGHT OVERRIDE"),
        ('\u{202E}', "RIGHT-TO-LEFT OVERRIDE"),
        ('\u{2060}', "WORD JOINER"),
        ('\u{2066}', "LEFT-TO-RIGHT ISOLATE"),
        ('\u{2067}', "RIGHT-TO-LEFT ISOLATE"),
        ('\u{2068}', "FIRST STRONG ISOLATE"),
        ('\u{2069}', "POP DIRECTIONAL ISOLATE"),
        ('\u{FEFF}', "ZERO WIDTH NO-BREAK SPACE"),
    ];

    fn problem_of(raw: &str) -> Option<OwnerProblem> {
        match Owner::parse(raw) {
            Ok(owner) => {
                assert_eq!(owner.as_str(), raw, "kept as written");
                None
            }
            Err(InvalidOwner { reason, .. }) => Some(reason),
        }
    }

    #[test]
    fn owners_with_invisible_characters_are_refused() {
        for &(c, name) in INVISIBLE {
            assert!(invisible_kind(c).is_some(), "{name}");
            for raw in [
                format!("job{c}1"),
                format!("{c}job"),
                format!("job{c}"),
                c.to_string(),
                c.to_string().repeat(3),
            ] {
                assert_eq!(problem_of(&raw), Some(OwnerProblem::Invisible(c)), "{name} in {raw:?}");
            }
            // The first one found is named, wherever the others are.
            assert_eq!(problem_of(&format!("a{c}b\u{200B}")), Some(OwnerProblem::Invisible(c)), "{name}");
        }
        let message = |raw: &str| Owner::parse(raw).unwrap_err().to_string();
        assert_eq!(
            message("job-1\u{202E}2-boj"),
            "invalid lease owner \"job-1\\u202E2-boj\": it contains U+202E, a bidirectional control character"
        );
        assert_eq!(
            message("a\u{200D}b"),
            "invalid lease owner \"a\\u200Db\": it contains U+200D, a zero-width character"
        );
        assert_eq!(
            message("a\u{2028}b"),
            "invalid lease owner \"a\\u2028b\": it contains U+2028, a line or paragraph separator"
        );
        // A control character is shown escaped too: the message is one line, as it was passed.
        assert_eq!(message("job\n2"), "invalid lease owner \"job\\u000A2\": it contains a control character");
    }

    /// Every character there is, inside a name: refused exactly when it is a control character
    /// or one of `INVISIBLE`.
    #[test]
    fn every_character_is_judged_by_the_rule() {
        let mut refused_invisible = Vec::new();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            match problem_of(&format!("a{c}b")) {
                None => assert!(!c.is_control() && invisible_kind(c).is_none(), "U+{:04X}", c as u32),
                Some(OwnerProblem::ControlCharacter) => assert!(c.is_control(), "U+{:04X}", c as u32),
                Some(OwnerProblem::Invisible(found)) => {
                    assert_eq!(found, c);
                    refused_invisible.push(c);
                }
                Some(other) => panic!("U+{:04X}: {other:?}", c as u32),
            }
        }
        let listed: Vec<char> = INVISIBLE.iter().map(|&(c, _)| c).collect();
        assert_eq!(refused_invisible, listed);
    }

    #[test]
    fn owners_with_white_space_at_an_edge_are_refused() {
        for blank in [" ", "  ", "\u{00A0}", "\u{3000}", " \u{2003} "] {
            assert_eq!(problem_of(blank), Some(OwnerProblem::Blank), "{blank:?}");
        }
        for edge in [" job", "job ", " job ", "\u{00A0}job", "job\u{3000}", "\u{2003}импорт"] {
            assert_eq!(problem_of(edge), Some(OwnerProblem::EdgeSpace), "{edge:?}");
        }
        // Control characters that are white space are refused as control characters.
        assert_eq!(problem_of("\t"), Some(OwnerProblem::ControlCharacter));
        assert_eq!(problem_of("job\t"), Some(OwnerProblem::ControlCharacter));
        assert_eq!(Owner::parse(" ").unwrap_err().to_string(), "invalid lease owner \" \": it is blank");
        assert_eq!(
            Owner::parse("job ").unwrap_err().to_string(),
            "invalid lease owner \"job \": it starts or ends with white space"
        );
    }

    #[test]
    fn owners_people_name_are_kept() {
        for name in [
            "csv-import #55",
            "импорт",
            "導入",
            "インポート 7",
            "استيراد",
            "ייבוא",
            "🔒 backup",
            "nightly 🌙",
            "job\u{00A0}1",
            "a  b",
            "x",
            "!",
            "\\u202E",
        ] {
            assert_eq!(problem_of(name), None, "{name:?}");
        }
        assert_eq!(problem_of(&"導".repeat(341)), None, "1,023 bytes");
        assert_eq!(problem_of(&"導".repeat(342)), Some(OwnerProblem::TooLong), "1,026 bytes");
    }

    #[test]
    fn the_journal_reads_back_what_earlier_versions_took() {
        for old in [" ", "job ", "a\u{202E}b", "\u{200B}"] {
            assert!(Owner::parse(old).is_err(), "{old:?}");
            assert_eq!(Owner::stored(old).unwrap().as_str(), old);
        }
        for bad in ["", "a\nb"] {
            assert!(Owner::stored(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Owner::stored(&"x".repeat(201)).unwrap().as_str().len(), 201, "0.3.0 allows 1,024 bytes");
        assert!(Owner::stored(&"x".repeat(1025)).is_err());
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
            assert!(matches!(ttl_from_micros(bad, shown), Err(InvalidTtl(_))), "{bad}");
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
            scope: Scope::Tree(Node::table(1, 2)),
            classes: Classes::parse_many(many.iter().map(|c| Some(c.as_str()))).unwrap(),
            mode: Mode::Share,
        };
        assert_eq!(FixedRequest::of(&r).request(), r);
        // The longest path: 8 names of 255 bytes, beside 64 classes.
        let long = "é".repeat(127) + "x";
        let r = Request {
            scope: Scope::Path(Path::parse([long.as_str(); MAX_DEPTH]).unwrap()),
            classes: Classes::parse_many(many.iter().map(|c| Some(c.as_str()))).unwrap(),
            mode: Mode::Exclusive,
        };
        assert_eq!(FixedRequest::of(&r).request(), r);
        let short = Request {
            scope: Scope::Path(Path::parse(["a", "b"]).unwrap()),
            classes: Classes::All,
            mode: Mode::Share,
        };
        assert_eq!(FixedRequest::of(&short).request(), short);
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
