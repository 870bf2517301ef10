//! The published 64-bit key of a lock target, so any client can compute it without the server.
//!
//! ```text
//! bytes = "lockhier"                 8 bytes, ASCII
//!       | 0x01                       encoding version
//!       | level                      1 byte: 0 global, 1 application, 2 table, 3 field
//!       | ids                        one little-endian int64 per level: application, table, field
//!       | kind                       1 byte: 0 all, 1 class, 2 share marker, 3 exclusive marker
//!       | class                      the lower-case class name as UTF-8 (kind 1 only)
//! key   = XXH64(bytes, seed 0), read as a signed two's-complement int64
//! ```
//!
//! A path of names (`path.rs`) has keys of its own encoding version, so that no path shares a
//! key with a numeric scope; the global scope above both is the numeric one (level 0):
//!
//! ```text
//! bytes = "lockhier"                 8 bytes, ASCII
//!       | 0x02                       encoding version: a path
//!       | names                      per name, root first: its length in bytes (1 to 255, one
//!                                    byte), then its UTF-8 bytes
//!       | 0x00                       the end of the names (no name is empty)
//!       | kind, class                as above
//! ```
//!
//! The key is the `bigint` of `pg_advisory_xact_lock(bigint)`: `pg_locks.classid` holds its high
//! 32 bits, `objid` its low 32 bits, and `objsubid` is 1. A collision can only make two unrelated
//! requests wait for each other, never let two conflicting ones run together.

use crate::class::{ClassName, MAX_CLASS_LEN};
use crate::path::PathPrefix;
use crate::scope::{Node, Place};
use xxhash_rust::xxh64::Xxh64;

/// What a key stands for at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind<'r> {
    All,
    Class(&'r ClassName),
    ShareMarker,
    ExclusiveMarker,
}

impl KeyKind<'_> {
    fn code(&self) -> u8 {
        match self {
            KeyKind::All => 0,
            KeyKind::Class(_) => 1,
            KeyKind::ShareMarker => 2,
            KeyKind::ExclusiveMarker => 3,
        }
    }

    /// As the plan listing shows it.
    pub fn name(&self) -> &'static str {
        match self {
            KeyKind::All => "all",
            KeyKind::Class(_) => "class",
            KeyKind::ShareMarker => "share marker",
            KeyKind::ExclusiveMarker => "exclusive marker",
        }
    }
}

/// A place and what at that place a key stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target<'r> {
    pub node: Place<'r>,
    pub kind: KeyKind<'r>,
}

const PREFIX: &[u8] = b"lockhier\x01";
const PATH_PREFIX: &[u8] = b"lockhier\x02";
/// The longest encoding of a target of the numeric tree.
pub const MAX_ENCODED: usize = PREFIX.len() + 1 + 3 * 8 + 1 + MAX_CLASS_LEN;

impl Target<'_> {
    /// The exact bytes that are hashed.
    pub fn bytes(&self) -> Vec<u8> {
        match self.node {
            Place::Tree(node) => {
                let mut buf = [0u8; MAX_ENCODED];
                let len = encode_tree(node, self.kind, &mut buf);
                buf[..len].to_vec()
            }
            Place::Path(path) => {
                let mut bytes = Vec::new();
                hash_path(path, self.kind, |part| bytes.extend_from_slice(part));
                bytes
            }
        }
    }

    pub fn key(&self) -> i64 {
        match self.node {
            Place::Tree(node) => {
                let mut buf = [0u8; MAX_ENCODED];
                let len = encode_tree(node, self.kind, &mut buf);
                xxhash_rust::xxh64::xxh64(&buf[..len], 0) as i64
            }
            // Streamed: a deep path's encoding is up to 2 kB, and nothing need be copied.
            Place::Path(path) => {
                let mut hasher = Xxh64::new(0);
                hash_path(path, self.kind, |part| hasher.update(part));
                hasher.digest() as i64
            }
        }
    }
}

/// The encoding of a path's target, part by part.
fn hash_path(path: PathPrefix, kind: KeyKind, mut put: impl FnMut(&[u8])) {
    put(PATH_PREFIX);
    for name in path.names() {
        put(&[name.len() as u8]);
        put(name.as_bytes());
    }
    put(&[0, kind.code()]);
    if let KeyKind::Class(class) = kind {
        put(class.as_str().as_bytes());
    }
}

/// The encoding of a numeric target, written into `buf`; returns how many bytes.
fn encode_tree(node: Node, kind: KeyKind, buf: &mut [u8; MAX_ENCODED]) -> usize {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(PREFIX);
    put(&[node.level() as u8]);
    for id in node.path() {
        put(&id.to_le_bytes());
    }
    put(&[kind.code()]);
    if let KeyKind::Class(class) = kind {
        put(class.as_str().as_bytes());
    }
    len
}

/// The key of the sentinel lock (see `lockmgr::take_sentinel`): XXH64 of `lockhier\x01sentinel`,
/// which no target's encoding can produce (a level byte is at most 3).
pub const SENTINEL: i64 = xxhash_rust::const_xxh64::xxh64(b"lockhier\x01sentinel", 0) as i64;

/// `pg_locks.classid` and `pg_locks.objid` of a key.
pub fn split(key: i64) -> (u32, u32) {
    ((key as u64 >> 32) as u32, key as u64 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Classes;
    use crate::path::Path;

    fn hex(target: &Target) -> String {
        target.bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Vectors computed with the reference xxHash library (Python `xxhash` 3.5.0), not with this code.
    #[test]
    fn published_test_vectors() {
        let full_backup = Classes::parse_one("full_backup").unwrap();
        let deletion = Classes::parse_one("field__deletion").unwrap();
        let update = Classes::parse_one("Field__Update").unwrap();
        let class = |c: &Classes| -> ClassName { c.names()[0] };
        let (full_backup, deletion, update) = (class(&full_backup), class(&deletion), class(&update));
        let node = |path: &[i64]| Place::Tree(Node::from_path(path).unwrap());
        let vectors: [(Target, &str, i64); 8] = [
            (Target { node: node(&[]), kind: KeyKind::All }, "6c6f636b68696572010000", -5771409078701419346),
            (
                Target { node: node(&[]), kind: KeyKind::Class(&full_backup) },
                "6c6f636b6869657201000166756c6c5f6261636b7570",
                -1684474857396732056,
            ),
            (
                Target { node: node(&[7]), kind: KeyKind::All },
                "6c6f636b686965720101070000000000000000",
                340827997704438321,
            ),
            (
                Target { node: node(&[7]), kind: KeyKind::ShareMarker },
                "6c6f636b686965720101070000000000000002",
                6670205928103592947,
            ),
            (
                Target { node: node(&[7]), kind: KeyKind::ExclusiveMarker },
                "6c6f636b686965720101070000000000000003",
                -7176058769553974328,
            ),
            (
                Target { node: node(&[7, 12]), kind: KeyKind::Class(&deletion) },
                "6c6f636b68696572010207000000000000000c00000000000000016669656c645f5f64656c6574696f6e",
                3502704119106195767,
            ),
            (
                Target { node: node(&[7, 12, 99]), kind: KeyKind::Class(&update) },
                "6c6f636b68696572010307000000000000000c000000000000006300000000000000016669656c645f5f757064617465",
                6848398145110134603,
            ),
            (
                Target { node: node(&[-1, i64::MAX, i64::MIN]), kind: KeyKind::All },
                "6c6f636b686965720103ffffffffffffffffffffffffffffff7f000000000000008000",
                9070603074411723942,
            ),
        ];
        for (target, bytes, key) in vectors {
            assert_eq!(hex(&target), bytes, "{target:?}");
            assert_eq!(target.key(), key, "{target:?}");
        }
    }

    /// Vectors computed with the reference xxHash library (Python `xxhash` 3.5.0), not with this code.
    #[test]
    fn published_path_test_vectors() {
        let backup = Classes::parse_one("backup").unwrap();
        let typing = Classes::parse_one("typing").unwrap();
        let (backup, typing) = (backup.names()[0], typing.names()[0]);
        let uuid = "c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b";
        let long = "x".repeat(255);
        let paths = [
            Path::parse(["sites"]).unwrap(),
            Path::parse(["sites", uuid]).unwrap(),
            Path::parse(["sites", uuid, "backups"]).unwrap(),
            Path::parse(["!abc:example.org"]).unwrap(),
            Path::parse(["é", "a/b"]).unwrap(),
            Path::parse([long.as_str(), "a", "b", "c", "d", "e", "f", "g"]).unwrap(),
        ];
        let at = |i: usize| Place::Path(paths[i].whole());
        let vectors: [(Target, &str, i64); 6] = [
            (Target { node: at(0), kind: KeyKind::All }, "6c6f636b68696572020573697465730000", -1594872580763752020),
            (
                Target { node: at(1), kind: KeyKind::ShareMarker },
                "6c6f636b68696572020573697465732463306138663565322d396231642d346137652d386630302d3163326433653466356136620002",
                -5925859412609587088,
            ),
            (
                Target { node: at(2), kind: KeyKind::Class(&backup) },
                "6c6f636b68696572020573697465732463306138663565322d396231642d346137652d386630302d316332643365346635613662076261636b75707300016261636b7570",
                1584738040121439578,
            ),
            (
                Target { node: at(3), kind: KeyKind::Class(&typing) },
                "6c6f636b686965720210216162633a6578616d706c652e6f72670001747970696e67",
                -8881733485851108855,
            ),
            (Target { node: at(4), kind: KeyKind::ExclusiveMarker }, "6c6f636b686965720202c3a903612f620003", -9080740644610255536),
            (Target { node: at(5), kind: KeyKind::All }, "6c6f636b6869657202ff78787878787878787878", -3971905429817713459),
        ];
        for (target, bytes, key) in vectors {
            assert!(hex(&target).starts_with(bytes), "{target:?}");
            assert_eq!(target.key(), key, "{target:?}");
        }
        assert_eq!(vectors[5].0.bytes().len(), 9 + 256 + 7 * 2 + 2, "8 names, the first of 255 bytes");
    }

    #[test]
    fn a_path_never_shares_a_key_with_its_ancestors_or_a_numeric_scope() {
        let deep = Path::parse(["a"; crate::path::MAX_DEPTH]).unwrap();
        let mut keys = std::collections::HashSet::new();
        for prefix in deep.ancestors().chain([deep.whole()]) {
            for kind in [KeyKind::All, KeyKind::ShareMarker, KeyKind::ExclusiveMarker] {
                assert!(keys.insert(Target { node: Place::Path(prefix), kind }.key()));
            }
        }
        for path in [&[][..], &[1][..], &[1, 1], &[1, 1, 1]] {
            let node = Place::Tree(Node::from_path(path).unwrap());
            for kind in [KeyKind::All, KeyKind::ShareMarker, KeyKind::ExclusiveMarker] {
                assert!(keys.insert(Target { node, kind }.key()));
            }
        }
    }

    #[test]
    fn the_sentinel_key_is_published_too() {
        // Python: xxhash.xxh64_intdigest(b"lockhier\x01sentinel") read as a signed int64.
        assert_eq!(SENTINEL, -9174082678278515691);
    }

    #[test]
    fn split_matches_pg_locks_columns() {
        assert_eq!(split(-1), (u32::MAX, u32::MAX));
        assert_eq!(split(0x0000_0001_0000_0002), (1, 2));
        assert_eq!(split(i64::MIN), (0x8000_0000, 0));
    }
}
