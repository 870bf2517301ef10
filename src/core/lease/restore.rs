//! Whether the leases held before the server (or the keeper) restarted are held again: one
//! state, kept in shared memory, read by every lockhier request before it takes anything. Its
//! writers and their transitions are all here, so that what a request sees is decided in one
//! place (`docs/developing.md` draws them).

/// The restore state. Stored in shared memory as its `u8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RestoreState {
    /// Leases of the journal are not held yet: a request waits for the keeper to hold them
    /// again, for a while.
    Restoring = 0,
    /// A request waited for the restore as long as it may and gave up: later ones are refused
    /// at once rather than each waiting as long, until the keeper is done.
    GivenUp = 1,
    /// Every lease of the journal is held again, or there was none: requests go ahead.
    Restored = 2,
}

/// What changes the restore state after the postmaster set it first (`initial`), each with
/// its one writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreEvent {
    /// The keeper holds every lease of the journal again (after it started).
    KeeperRestored,
    /// A request waited for the restore as long as it may.
    WaitedTooLong,
    /// The keeper exits: its locks go with it, and the next keeper restores the leases again.
    KeeperExited,
}

impl RestoreState {
    /// As the postmaster makes the shared memory: `leases_to_restore` is whether the journal
    /// holds a lease that has not expired.
    pub fn initial(leases_to_restore: bool) -> RestoreState {
        if leases_to_restore {
            RestoreState::Restoring
        } else {
            RestoreState::Restored
        }
    }

    /// The state after `event`.
    pub fn after(self, event: RestoreEvent) -> RestoreState {
        use RestoreEvent::*;
        use RestoreState::*;
        match (self, event) {
            (_, KeeperRestored) => Restored,
            // A request that gives up as the keeper finishes leaves the leases restored.
            (Restoring, WaitedTooLong) => GivenUp,
            (state, WaitedTooLong) => state,
            // Requests that were refused at once go on being refused until a keeper restores.
            (Restored, KeeperExited) => Restoring,
            (state, KeeperExited) => state,
        }
    }

    pub fn from_u8(value: u8) -> RestoreState {
        match value {
            0 => RestoreState::Restoring,
            1 => RestoreState::GivenUp,
            _ => RestoreState::Restored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RestoreEvent::*;
    use super::RestoreState::*;
    use super::*;

    #[test]
    fn requests_wait_for_a_restore_give_up_once_and_go_ahead_after_it() {
        assert_eq!(RestoreState::initial(false), Restored, "nothing to restore: nobody waits");
        let restarted = RestoreState::initial(true);
        assert_eq!(restarted, Restoring);
        assert_eq!(restarted.after(WaitedTooLong), GivenUp);
        assert_eq!(restarted.after(WaitedTooLong).after(WaitedTooLong), GivenUp);
        assert_eq!(restarted.after(WaitedTooLong).after(KeeperRestored), Restored);
        assert_eq!(restarted.after(KeeperRestored), Restored);
        // Giving up just as the keeper finished changes nothing: the leases are held.
        assert_eq!(Restored.after(WaitedTooLong), Restored);
        // A keeper that exits takes the leases' locks along: the next one restores them again.
        assert_eq!(Restored.after(KeeperExited), Restoring);
        assert_eq!(GivenUp.after(KeeperExited), GivenUp);
        assert_eq!(Restoring.after(KeeperExited), Restoring);
        for state in [Restoring, GivenUp, Restored] {
            assert_eq!(RestoreState::from_u8(state as u8), state);
        }
    }
}
