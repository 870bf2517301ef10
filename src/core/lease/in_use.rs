//! Leases that keep something from being dropped. Dropping lockhier from a database where leases
//! are held would leave them held, still blocking their keys, with no view to see them and no
//! function to release them until they expire; dropping a role that holds leases would leave
//! them with no role that may renew or release them. Both drops are refused while such leases
//! are held, naming a few of them.

use super::{shown_owner, Lease};
use std::fmt::{self, Write};

/// What is being dropped, as the server's drop hook tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropping {
    /// The lockhier extension, from the database the session is connected to.
    Lockhier,
    /// A role, by OID.
    Role(u32),
}

/// The leases that keep lockhier from being dropped from `database`: all of that database's.
pub fn of_database(leases: &[Lease], database: u32) -> Vec<Lease> {
    leases.iter().filter(|l| l.database == database).copied().collect()
}

/// The leases that keep `role` from being dropped: all it took, in every database (leases live
/// in the server's shared memory with the role's OID, not in a database).
pub fn of_role(leases: &[Lease], role: u32) -> Vec<Lease> {
    leases.iter().filter(|l| l.role == role).copied().collect()
}

/// How many leases a refusal names; it counts the others.
pub const NAMED: usize = 5;

/// One lease as a refusal names it.
#[derive(Debug, PartialEq, Eq)]
pub struct HeldLease {
    pub token: i64,
    /// As messages quote owners ([`shown_owner`]).
    pub owner: String,
    /// The database it is held in, when the message says it.
    pub database: Option<String>,
}

/// The leases in the way of a drop: how many, and the first few by token.
#[derive(Debug, PartialEq, Eq)]
pub struct HeldLeases {
    pub count: usize,
    pub named: Vec<HeldLease>,
}

impl HeldLeases {
    /// `None` when no lease is in the way. `database` names a lease's database for the message
    /// (`None` leaves it out); it is asked only of the leases named.
    pub fn of(mut leases: Vec<Lease>, mut database: impl FnMut(u32) -> Option<String>) -> Option<HeldLeases> {
        if leases.is_empty() {
            return None;
        }
        leases.sort_by_key(|l| l.token);
        let named = leases
            .iter()
            .take(NAMED)
            .map(|l| HeldLease {
                token: l.token,
                owner: shown_owner(l.owner.as_str()),
                database: database(l.database),
            })
            .collect();
        Some(HeldLeases { count: leases.len(), named })
    }

    /// `1 lease is held`, `2 leases are held`.
    pub fn are_held(&self) -> String {
        match self.count {
            1 => "1 lease is held".to_string(),
            n => format!("{n} leases are held"),
        }
    }

    /// `1 lockhier lease`, `2 lockhier leases`.
    pub fn lockhier_leases(&self) -> String {
        match self.count {
            1 => "1 lockhier lease".to_string(),
            n => format!("{n} lockhier leases"),
        }
    }
}

/// The DETAIL: `Held: lease 12 of owner "csv-import #55", lease 13 of owner "nightly" in
/// database "app" and 3 more.`
impl fmt::Display for HeldLeases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::from("Held: ");
        for (i, lease) in self.named.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "lease {} of owner \"{}\"", lease.token, lease.owner);
            if let Some(database) = &lease.database {
                let _ = write!(text, " in database \"{database}\"");
            }
        }
        if self.count > self.named.len() {
            let _ = write!(text, " and {} more", self.count - self.named.len());
        }
        text.push('.');
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LockhierError;
    use crate::lease::tests::{lease, request};
    use crate::request::Mode;

    fn leases() -> Vec<Lease> {
        let r = request(&[7], &["all"], Mode::Share);
        let mut held = Vec::new();
        for (token, owner, database, role) in
            [(12, "import", 5, 10), (3, "nightly", 5, 11), (40, "other db", 6, 10), (8, "a \"b\"", 5, 10)]
        {
            held.push(Lease { database, role, ..lease(token, owner, &r) });
        }
        held
    }

    fn tokens(leases: &[Lease]) -> Vec<i64> {
        leases.iter().map(|l| l.token).collect()
    }

    #[test]
    fn a_database_is_kept_by_its_own_leases_a_role_by_its_leases_anywhere() {
        assert_eq!(tokens(&of_database(&leases(), 5)), [12, 3, 8]);
        assert_eq!(tokens(&of_database(&leases(), 6)), [40]);
        assert!(of_database(&leases(), 7).is_empty());
        assert_eq!(tokens(&of_role(&leases(), 10)), [12, 40, 8]);
        assert_eq!(tokens(&of_role(&leases(), 11)), [3]);
        assert!(of_role(&leases(), 12).is_empty());
        assert_eq!(HeldLeases::of(Vec::new(), |_| None), None);
    }

    #[test]
    fn refusals_name_a_few_leases_by_token_and_count_the_rest() {
        let held = HeldLeases::of(of_database(&leases(), 5), |_| None).unwrap();
        assert_eq!(held.count, 3);
        let refusal = LockhierError::ExtensionHasLeases(Box::new(held));
        assert_eq!(refusal.to_string(), "cannot drop extension lockhier: 3 leases are held in this database");
        let LockhierError::ExtensionHasLeases(held) = refusal else { unreachable!() };
        assert_eq!(
            held.to_string(),
            "Held: lease 3 of owner \"nightly\", lease 8 of owner \"a \"b\"\", lease 12 of owner \"import\"."
        );

        let named = |oid| Some(format!("db{oid}"));
        let one = HeldLeases::of(of_role(&leases(), 11), named).unwrap();
        assert_eq!(one.to_string(), "Held: lease 3 of owner \"nightly\" in database \"db5\".");
        let refusal = LockhierError::RoleHasLeases { role: "alice".into(), held: Box::new(one) };
        assert_eq!(refusal.to_string(), "cannot drop role \"alice\": it holds 1 lockhier lease");
        let one = HeldLeases::of(of_database(&leases(), 6), |_| None).unwrap();
        assert_eq!(
            LockhierError::ExtensionHasLeases(Box::new(one)).to_string(),
            "cannot drop extension lockhier: 1 lease is held in this database"
        );

        let r = request(&[7], &["all"], Mode::Share);
        let many: Vec<Lease> = (1..=12).rev().map(|t| lease(t, &format!("job {t}"), &r)).collect();
        let held = HeldLeases::of(many, |_| None).unwrap();
        assert_eq!(
            held.to_string(),
            "Held: lease 1 of owner \"job 1\", lease 2 of owner \"job 2\", lease 3 of owner \"job 3\", \
             lease 4 of owner \"job 4\", lease 5 of owner \"job 5\" and 7 more."
        );
        let refusal = LockhierError::RoleHasLeases { role: "bob".into(), held: Box::new(held) };
        assert_eq!(refusal.to_string(), "cannot drop role \"bob\": it holds 12 lockhier leases");
    }

    #[test]
    fn an_owner_taken_before_the_rule_is_named_escaped() {
        let r = request(&[7], &["all"], Mode::Share);
        let old = Lease { owner: crate::lease::Owner::stored("a\u{202E}b").unwrap(), ..lease(1, "x", &r) };
        let held = HeldLeases::of(vec![old], |_| None).unwrap();
        assert_eq!(held.to_string(), "Held: lease 1 of owner \"a\\u202Eb\".");
    }
}
