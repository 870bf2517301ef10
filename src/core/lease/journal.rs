//! The lease journal: what the keeper writes (and flushes) before it answers, and reads back
//! after a restart. One record per line: 16 hex digits of the XXH64 of the JSON, a space, the
//! JSON. A line torn by a crash (the last one, cut short or failing its checksum) was never
//! answered and is dropped; a damaged line elsewhere is reported and skipped.

use super::{Lease, Owner, Timestamp};
use crate::class::Classes;
use crate::request::{Mode, Request};
use crate::scope::Node;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    Grant(Granted),
    Renew {
        token: i64,
        renewed_at: Timestamp,
        expires_at: Timestamp,
    },
    Release {
        token: i64,
    },
    /// Tokens below `next` were handed out (the first line after a compaction).
    Tokens {
        next: i64,
    },
    /// The server history the records after it were written in. A journal copied with the data
    /// directory into another history (a promoted standby, a restored backup: a new timeline;
    /// another cluster: another system identifier) promises nothing there.
    Origin(Origin),
}

/// A server's history: its system identifier and its current timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub system: u64,
    pub timeline: u32,
}

/// A granted lease, spelled out in plain values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    pub database: u32,
    pub token: i64,
    pub owner: String,
    pub path: Vec<i64>,
    /// `["all"]` for all classes.
    pub classes: Vec<String>,
    pub mode: String,
    pub role: u32,
    pub ttl_us: u64,
    pub acquired_at: Timestamp,
    pub renewed_at: Timestamp,
    pub expires_at: Timestamp,
}

impl From<&Lease> for Granted {
    fn from(lease: &Lease) -> Granted {
        let request = lease.request.request();
        let classes = match request.classes.names() {
            [] => vec!["all".to_string()],
            names => names.iter().map(|c| c.as_str().to_string()).collect(),
        };
        Granted {
            database: lease.database,
            token: lease.token,
            owner: lease.owner.as_str().to_string(),
            path: request.node.path().to_vec(),
            classes,
            mode: request.mode.name().to_string(),
            role: lease.role,
            ttl_us: lease.ttl.as_micros() as u64,
            acquired_at: lease.acquired_at,
            renewed_at: lease.renewed_at,
            expires_at: lease.expires_at,
        }
    }
}

impl Granted {
    /// The lease, checked as a new request would be.
    pub fn lease(&self) -> Result<Lease, String> {
        let owner = Owner::parse(&self.owner).map_err(|e| e.to_string())?;
        let node = Node::from_path(&self.path).map_err(|e| e.to_string())?;
        let classes =
            Classes::parse_many(self.classes.iter().map(|c| Some(c.as_str()))).map_err(|e| e.to_string())?;
        let mode = Mode::parse(&self.mode).map_err(|e| e.to_string())?;
        Ok(Lease {
            database: self.database,
            token: self.token,
            owner,
            request: super::FixedRequest::of(&Request { node, classes, mode }),
            role: self.role,
            ttl: Duration::from_micros(self.ttl_us),
            acquired_at: self.acquired_at,
            renewed_at: self.renewed_at,
            expires_at: self.expires_at,
        })
    }
}

/// One line of the journal, with its newline.
pub fn line(record: &Record) -> String {
    let json = serde_json::to_string(record).expect("records serialize");
    format!("{:016x} {json}\n", xxhash_rust::xxh64::xxh64(json.as_bytes(), 0))
}

fn parse(line: &str) -> Result<Record, String> {
    let (sum, json) = line.split_once(' ').ok_or("no checksum")?;
    let sum = u64::from_str_radix(sum, 16).map_err(|_| "bad checksum")?;
    if sum != xxhash_rust::xxh64::xxh64(json.as_bytes(), 0) {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("not a record: {e}"))
}

/// What a journal says, read from its start.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The leases granted and not released, by token.
    pub leases: BTreeMap<i64, Lease>,
    /// The next token to hand out: above every token the journal has seen.
    pub next_token: i64,
    /// How many bytes of the text are whole records; anything after is a torn last line.
    pub good_len: usize,
    /// Records read.
    pub records: usize,
    /// Damaged lines skipped (not the torn last one), as "line N: why".
    pub problems: Vec<String>,
    /// The history the journal was last written in.
    pub origin: Option<Origin>,
}

impl Replayed {
    /// The leases to hold again in the history `here`: none if the journal was written in
    /// another one, whose leases were never held here.
    pub fn leases_for(&self, here: Origin) -> Vec<Lease> {
        if self.origin == Some(here) {
            self.leases.values().copied().collect()
        } else {
            Vec::new()
        }
    }
}

pub fn replay(text: &str) -> Replayed {
    let mut replayed = Replayed { next_token: 1, ..Replayed::default() };
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').enumerate().peekable();
    while let Some((number, raw)) = lines.next() {
        let last = lines.peek().is_none();
        let record =
            if raw.ends_with('\n') { parse(raw.trim_end_matches('\n')) } else { Err("cut short".into()) };
        let record = match record {
            Ok(record) => record,
            // The last line was being written when the server stopped: it was never answered.
            Err(_) if last => break,
            Err(why) => {
                replayed.problems.push(format!("line {}: {why}", number + 1));
                offset += raw.len();
                replayed.good_len = offset;
                continue;
            }
        };
        offset += raw.len();
        replayed.good_len = offset;
        replayed.records += 1;
        match record {
            Record::Grant(granted) => match granted.lease() {
                Ok(lease) => {
                    replayed.next_token = replayed.next_token.max(lease.token + 1);
                    replayed.leases.insert(lease.token, lease);
                }
                Err(why) => replayed.problems.push(format!("line {}: {why}", number + 1)),
            },
            Record::Renew { token, renewed_at, expires_at } => {
                if let Some(lease) = replayed.leases.get_mut(&token) {
                    lease.renewed_at = renewed_at;
                    lease.expires_at = expires_at;
                }
            }
            Record::Release { token } => {
                replayed.leases.remove(&token);
            }
            Record::Tokens { next } => replayed.next_token = replayed.next_token.max(next),
            Record::Origin(origin) => {
                // The leases of an earlier history were never held in this one.
                if replayed.origin != Some(origin) {
                    replayed.leases.clear();
                }
                replayed.origin = Some(origin);
            }
        }
    }
    replayed
}

/// A fresh journal of the history `origin` holding only `leases` and the token counter: what
/// compaction writes.
pub fn snapshot<'a>(origin: Origin, leases: impl IntoIterator<Item = &'a Lease>, next_token: i64) -> String {
    let mut text = line(&Record::Tokens { next: next_token });
    text.push_str(&line(&Record::Origin(origin)));
    for lease in leases {
        text.push_str(&line(&Record::Grant(Granted::from(lease))));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lease, request};
    use super::*;

    fn two_leases() -> (Lease, Lease) {
        let import = request(&[7, 12], &["field__deletion", "field__type_update"], Mode::Share);
        let backup = request(&[], &["full_backup"], Mode::Exclusive);
        (lease(17, "csv-import #55", &import), lease(18, "nightly backup", &backup))
    }

    #[test]
    fn grants_renewals_and_releases_replay() {
        let (a, b) = two_leases();
        let mut text = line(&Record::Grant(Granted::from(&a)));
        text += &line(&Record::Grant(Granted::from(&b)));
        text += &line(&Record::Renew { token: 17, renewed_at: 5_000, expires_at: 9_000_000 });
        text += &line(&Record::Release { token: 18 });
        let replayed = replay(&text);
        assert_eq!(replayed.leases.len(), 1);
        assert_eq!(replayed.leases[&17], Lease { renewed_at: 5_000, expires_at: 9_000_000, ..a });
        assert_eq!(replayed.next_token, 19, "tokens keep growing past released leases");
        assert_eq!((replayed.records, replayed.good_len), (4, text.len()));
        assert!(replayed.problems.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_dropped_a_damaged_middle_line_is_reported() {
        let (a, b) = two_leases();
        let first = line(&Record::Grant(Granted::from(&a)));
        let second = line(&Record::Grant(Granted::from(&b)));
        // Cut in the middle of the last record, as a crash during the write would.
        let torn = format!("{first}{}", &second[..second.len() / 2]);
        let replayed = replay(&torn);
        assert_eq!(replayed.leases.keys().copied().collect::<Vec<_>>(), [17]);
        assert_eq!(replayed.good_len, first.len(), "the torn line is not counted");
        assert!(replayed.problems.is_empty());
        // Whole, but one byte of the first record changed: its checksum no longer matches.
        let damaged = format!("{}{second}", first.replacen("csv-import", "csv-imporT", 1));
        let replayed = replay(&damaged);
        assert_eq!(replayed.leases.keys().copied().collect::<Vec<_>>(), [18]);
        assert_eq!(replayed.problems, ["line 1: checksum mismatch"]);
    }

    const HERE: Origin = Origin { system: 7_310_000_000_000_000_001, timeline: 1 };

    #[test]
    fn a_snapshot_keeps_the_leases_and_the_counter() {
        let (a, b) = two_leases();
        let replayed = replay(&snapshot(HERE, [&a], 40));
        assert_eq!(replayed.leases_for(HERE), [a]);
        assert_eq!(replayed.next_token, 40);
        let empty = replay(&snapshot(HERE, std::iter::empty::<&Lease>(), 41));
        assert!(empty.leases.is_empty());
        assert_eq!(empty.next_token, 41, "all released, and still no token is handed out twice");
        assert_ne!(a, b);
    }

    #[test]
    fn leases_are_held_again_only_in_the_history_that_granted_them() {
        let (a, b) = two_leases();
        let text = snapshot(HERE, [&a], 18);
        assert_eq!(replay(&text).leases_for(HERE), [a], "a restart, a crash: same history");
        let promoted = Origin { timeline: 2, ..HERE };
        assert!(replay(&text).leases_for(promoted).is_empty(), "a promoted standby, a restored backup");
        let elsewhere = Origin { system: 42, ..HERE };
        assert!(replay(&text).leases_for(elsewhere).is_empty(), "another cluster");
        // The keeper notes a new history when it opens the journal there: the leases granted
        // before it are dropped, those granted after it are held.
        let mut moved = text.clone();
        moved += &line(&Record::Origin(promoted));
        moved += &line(&Record::Grant(Granted::from(&b)));
        let replayed = replay(&moved);
        assert_eq!(replayed.origin, Some(promoted));
        assert_eq!(replayed.leases_for(promoted), [b]);
        assert_eq!(replayed.next_token, 19, "tokens still only grow");
        let no_journal = replay("");
        assert!(no_journal.leases_for(HERE).is_empty());
        assert_eq!(no_journal.origin, None);
    }

    #[test]
    fn records_are_readable_json() {
        let (a, _) = two_leases();
        let text = line(&Record::Grant(Granted::from(&a)));
        assert!(text.contains(r#""op":"grant""#) && text.contains(r#""owner":"csv-import #55""#), "{text}");
        assert!(text.contains(r#""classes":["field__deletion","field__type_update"]"#), "{text}");
    }
}
