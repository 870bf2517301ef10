//! The transaction around a call: its current subtransaction, whether a transaction block is
//! open, and callbacks when a transaction or subtransaction ends.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::OnceLock;

pub type SubTransactionId = pg_sys::SubTransactionId;

/// The subtransaction the caller runs in.
pub fn current_subtransaction() -> SubTransactionId {
    // SAFETY: only reads this backend's transaction state.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

/// Whether a transaction block is open: BEGIN ... COMMIT, an implicit block (several
/// statements sent as one query string) or a subtransaction. Outside one, a transaction lock
/// ends with the statement that took it.
pub fn in_transaction_block() -> bool {
    // SAFETY: reads this backend's transaction state.
    let block = unsafe { pg_sys::IsTransactionBlock() };
    // SAFETY: as above.
    block || unsafe { pg_sys::IsSubTransaction() }
}

/// What the callbacks are told.
pub struct Callbacks {
    /// The transaction committed, aborted or was prepared.
    pub transaction_end: fn(),
    /// A subtransaction aborted.
    pub subtransaction_abort: fn(SubTransactionId),
    /// A subtransaction committed into `parent`.
    pub subtransaction_commit: fn(SubTransactionId, SubTransactionId),
    /// The transaction is about to be prepared: `Some((message, hint))` refuses it (0A000).
    pub before_prepare: fn() -> Option<(&'static str, &'static str)>,
}

static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

/// Called once, from `_PG_init`.
pub fn register(callbacks: Callbacks) {
    if CALLBACKS.set(callbacks).is_err() {
        return;
    }
    // SAFETY: registering callbacks that live as long as the loaded library, which is never
    // unloaded; they only call the Rust functions registered above.
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_event), std::ptr::null_mut()) };
    // SAFETY: as above.
    unsafe { pg_sys::RegisterSubXactCallback(Some(on_subtransaction_event), std::ptr::null_mut()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if event == XACT_EVENT_PRE_PREPARE {
        if let Some((message, hint)) = CALLBACKS.get().and_then(|callbacks| (callbacks.before_prepare)()) {
            pgrx::pg_sys::panic::ErrorReport::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                message,
                "PREPARE TRANSACTION",
            )
            .set_hint(hint)
            .report(PgLogLevel::ERROR);
        }
    }
    let ended = matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PARALLEL_ABORT
            | XACT_EVENT_PREPARE
    );
    if let (true, Some(callbacks)) = (ended, CALLBACKS.get()) {
        (callbacks.transaction_end)();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_event(
    event: pg_sys::SubXactEvent::Type,
    subxact: SubTransactionId,
    parent: SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    let Some(callbacks) = CALLBACKS.get() else { return };
    match event {
        SUBXACT_EVENT_ABORT_SUB => (callbacks.subtransaction_abort)(subxact),
        SUBXACT_EVENT_COMMIT_SUB => (callbacks.subtransaction_commit)(subxact, parent),
        _ => {}
    }
}

/// Whether the server is in recovery (a standby, or still replaying WAL after a crash).
pub fn in_recovery() -> bool {
    // SAFETY: reads shared recovery state.
    unsafe { pg_sys::RecoveryInProgress() }
}
