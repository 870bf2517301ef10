//! The four row-lock strengths of `SELECT ... FOR ...`.

use crate::text::shown;

#[derive(Debug, thiserror::Error)]
#[error("unknown row lock mode \"{0}\": expected {valid}", valid = RowMode::VALID)]
pub struct UnknownRowMode(pub String);

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
    pub fn parse(raw: &str) -> Result<RowMode, UnknownRowMode> {
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
            .ok_or_else(|| UnknownRowMode(shown(raw)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_modes_are_the_four_strengths_in_any_case_and_spacing() {
        assert_eq!(RowMode::parse("UPDATE").unwrap(), RowMode::Update);
        assert_eq!(RowMode::parse(" No Key\tupdate ").unwrap(), RowMode::NoKeyUpdate);
        assert_eq!(RowMode::parse("share").unwrap().name(), "share");
        assert_eq!(RowMode::parse("Key Share").unwrap(), RowMode::KeyShare);
        for bad in ["exclusive", "nokey update", "", "for update"] {
            assert!(matches!(RowMode::parse(bad), Err(UnknownRowMode(_))), "{bad:?}");
        }
    }
}
