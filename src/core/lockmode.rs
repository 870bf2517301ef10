//! The lock manager's modes that lockhier uses, and PostgreSQL's conflict table.
//!
//! The table is copied from `LockConflicts` in PostgreSQL's `lock.c` (it has not changed since
//! 8.2), so the planner can be proven against the oracle without a server and the error path
//! can tell which holders are in the way from `pg_locks`-style hold masks.

/// The four multi-granularity roles of the design, as PostgreSQL lock modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LockMode {
    /// IS, intention share.
    RowShare = 2,
    /// IX, intention exclusive.
    RowExclusive = 3,
    /// S, what `pg_advisory_xact_lock_shared` takes.
    Share = 5,
    /// X, what `pg_advisory_xact_lock` takes.
    Exclusive = 7,
}

/// Bit `m` set means mode `m` (1..=8) is held or wanted, as in PostgreSQL's `LOCKMASK`.
pub type LockMask = u32;

const fn bit(mode: u8) -> LockMask {
    1 << mode
}

/// `CONFLICTS[m]`: the modes that conflict with mode `m`.
const CONFLICTS: [LockMask; 9] = [
    0,
    // AccessShareLock
    bit(8),
    // RowShareLock
    bit(7) | bit(8),
    // RowExclusiveLock
    bit(5) | bit(6) | bit(7) | bit(8),
    // ShareUpdateExclusiveLock
    bit(4) | bit(5) | bit(6) | bit(7) | bit(8),
    // ShareLock
    bit(3) | bit(4) | bit(6) | bit(7) | bit(8),
    // ShareRowExclusiveLock
    bit(3) | bit(4) | bit(5) | bit(6) | bit(7) | bit(8),
    // ExclusiveLock
    bit(2) | bit(3) | bit(4) | bit(5) | bit(6) | bit(7) | bit(8),
    // AccessExclusiveLock
    bit(1) | bit(2) | bit(3) | bit(4) | bit(5) | bit(6) | bit(7) | bit(8),
];

const NAMES: [&str; 9] = [
    "",
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

impl LockMode {
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The name `pg_locks.mode` shows.
    pub fn pg_name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The role in the design's multi-granularity scheme.
    pub fn role(self) -> &'static str {
        match self {
            LockMode::RowShare => "IS",
            LockMode::RowExclusive => "IX",
            LockMode::Share => "S",
            LockMode::Exclusive => "X",
        }
    }

    pub fn conflicts_with(self, other: LockMode) -> bool {
        self.conflicts_with_any(bit(other as u8))
    }

    /// Does this mode conflict with any mode in `mask`?
    pub fn conflicts_with_any(self, mask: LockMask) -> bool {
        CONFLICTS[self as usize] & mask != 0
    }
}

/// Name of any lock mode number (1..=8), for holders that took a mode lockhier never uses.
pub fn pg_mode_name(mode: u8) -> &'static str {
    NAMES.get(mode as usize).copied().unwrap_or("unknown lock mode")
}

/// The strongest mode in `mask` that conflicts with `wanted`, if any.
pub fn strongest_conflicting(mask: LockMask, wanted: LockMode) -> Option<u8> {
    strongest_conflicting_mode(mask, wanted.number())
}

/// As [`strongest_conflicting`], for any mode number (1..=8), such as a relation lock's.
pub fn strongest_conflicting_mode(mask: LockMask, wanted: u8) -> Option<u8> {
    (1..=8u8).rev().find(|&m| mask & bit(m) != 0 && modes_conflict(m, wanted))
}

/// PostgreSQL's conflict table for two mode numbers (1..=8): `DoLockModesConflict`.
pub fn modes_conflict(a: u8, b: u8) -> bool {
    CONFLICTS.get(a as usize).is_some_and(|conflicts| conflicts & bit(b) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::*;

    #[test]
    fn multi_granularity_matrix() {
        // Gray et al.: IS-X, IX-S, IX-X, S-IX, S-X, X-everything conflict; nothing else does.
        let conflicting = [
            (RowShare, Exclusive),
            (RowExclusive, Share),
            (RowExclusive, Exclusive),
            (Share, Exclusive),
            (Exclusive, Exclusive),
        ];
        let modes = [RowShare, RowExclusive, Share, Exclusive];
        for a in modes {
            for b in modes {
                let expected = conflicting.contains(&(a, b)) || conflicting.contains(&(b, a));
                assert_eq!(a.conflicts_with(b), expected, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn table_is_symmetric() {
        for a in 1..=8u8 {
            for b in 1..=8u8 {
                assert_eq!(CONFLICTS[a as usize] & bit(b) != 0, CONFLICTS[b as usize] & bit(a) != 0);
            }
        }
    }

    #[test]
    fn strongest_conflicting_mode_in_a_mask() {
        let mask = bit(2) | bit(5);
        assert_eq!(strongest_conflicting(mask, RowExclusive), Some(5));
        assert_eq!(strongest_conflicting(mask, Exclusive), Some(5));
        assert_eq!(strongest_conflicting(mask, RowShare), None);
        assert_eq!(pg_mode_name(5), "ShareLock");
    }
}
