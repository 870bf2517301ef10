//! The lease keeper's process: a background worker started with the server when lockhier is
//! in shared_preload_libraries, connected to no database, restarted a second after it exits
//! (whether it stopped on an error or on pg_terminate_backend).
//! What it does is the engine's: the worker's entry point, `lockhier_lease_keeper_main`, is in
//! `engine::lease::keeper`, and calls `start` and `exit` here around its work.

use super::lease_area;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

/// The C symbol of the keeper's entry point (`engine::lease::keeper`).
const ENTRY_POINT: &str = "lockhier_lease_keeper_main";

/// Called from `_PG_init` while shared libraries are preloaded.
pub fn register() {
    BackgroundWorkerBuilder::new("lockhier lease keeper")
        .set_type("lockhier lease keeper")
        .set_library("lockhier")
        .set_function(ENTRY_POINT)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

/// The keeper process's start, before its work: signals, the connection, and the exit callback
/// that marks the leases not held.
pub fn start() {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // No database: the lock manager takes any database's id in a lock tag, and the keeper reads
    // no catalog. This still sets up what taking locks needs (the process's PGPROC).
    BackgroundWorker::connect_worker_to_spi(None, None);
    ignore_cancel();
    // SAFETY: registered after the connection's own exit callback, so it runs before it: the
    // leases are marked not held before the keeper's locks are released.
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0)) };
}

/// The keeper process's end, after its work (it does not return).
pub fn exit() {
    // Exit status 1, not the 0 a returning worker exits with: the postmaster unregisters a
    // worker that exits with 0, and a keeper stopped by pg_terminate_backend must come back
    // (a second later) to hold the leases again. At a server shutdown it is not restarted.
    // SAFETY: ends this process as a returning worker would, running its exit callbacks.
    unsafe { pg_sys::proc_exit(1) };
}

/// A worker with a connection is given the statement-cancel handler for SIGINT, and a cancel
/// would end the keeper with an ERROR, letting go of every lease while transactions that
/// validated one are still open. PostgreSQL's own long-lived processes (the background writer,
/// the WAL writer) ignore SIGINT; so does the keeper: `pg_cancel_backend` on it does nothing.
fn ignore_cancel() {
    // SAFETY: sets this process's disposition for SIGINT; nothing else here handles it.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
}

/// A memory context for one turn of the keeper's loop, emptied after the turn: whatever a turn
/// allocates (an error it caught and copied, a message) is gone with it, so the keeper's memory
/// stays flat however many errors it meets.
pub struct TurnMemory {
    context: pg_sys::MemoryContext,
}

impl TurnMemory {
    pub fn new() -> TurnMemory {
        // SAFETY: reads the process's top memory context, set at process start.
        let top = unsafe { pg_sys::TopMemoryContext };
        // SAFETY: TopMemoryContext lives as long as the process; the name is a static string.
        let context = unsafe {
            pg_sys::AllocSetContextCreateExtended(
                top,
                c"lockhier lease keeper turn".as_ptr(),
                0,
                8 * 1024,
                8 * 1024 * 1024,
            )
        };
        TurnMemory { context }
    }

    /// Run one turn in the context, then empty it (also when the turn unwinds).
    pub fn turn<R>(&mut self, f: impl FnOnce() -> R) -> R {
        struct Emptied(pg_sys::MemoryContext, pg_sys::MemoryContext);
        impl Drop for Emptied {
            fn drop(&mut self) {
                // SAFETY: back to the context current before the turn, which outlives it.
                unsafe { pg_sys::MemoryContextSwitchTo(self.1) };
                // SAFETY: the turn's context is no longer current; nothing kept points into it
                // (the keeper's own state is Rust heap and shared memory).
                unsafe { pg_sys::MemoryContextReset(self.0) };
            }
        }
        // SAFETY: the context made in `new`, alive for the process's life.
        let previous = unsafe { pg_sys::MemoryContextSwitchTo(self.context) };
        let _emptied = Emptied(self.context, previous);
        f()
    }
}

impl Default for TurnMemory {
    fn default() -> Self {
        Self::new()
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    if let Some(area) = lease_area::area() {
        area.retire_keeper();
    }
}

/// Sleep until a backend sets the keeper's latch or `timeout` passes; false once the server
/// asks the keeper to stop. A reload (SIGHUP) is applied here, between turns.
pub fn wait(timeout: Duration) -> bool {
    let go_on = BackgroundWorker::wait_latch(Some(timeout));
    if BackgroundWorker::sighup_received() {
        // SAFETY: re-reads the configuration files, as every process does on SIGHUP, between
        // two turns of the keeper's loop (no lock or state of its own is half-changed).
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
    go_on
}

/// End a backend as `pg_terminate_backend` does (SIGTERM): for a transaction that validated a
/// lease and then kept it past `lockhier.fence_timeout`.
pub fn terminate(pid: i32) -> bool {
    // SAFETY: sends a signal; `pid` comes from the lock table, a backend of this server.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

/// Write a line to the server log (LOG level, or WARNING).
pub fn log(message: &str, warning: bool) {
    let level = if warning { PgLogLevel::WARNING } else { PgLogLevel::LOG };
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
        message.to_string(),
        "lockhier lease keeper",
    )
    .report(level);
}

/// This server's history: its system identifier and the timeline it writes WAL on. The keeper
/// runs once recovery has finished, when the timeline is settled.
pub fn origin() -> lockhier_core::lease::journal::Origin {
    // SAFETY: reads the control file's system identifier, fixed for the cluster's life.
    let system = unsafe { pg_sys::GetSystemIdentifier() };
    // SAFETY: reads the WAL insertion timeline from shared memory; settled once recovery ended.
    let timeline = unsafe { pg_sys::GetWALInsertionTimeLine() };
    lockhier_core::lease::journal::Origin { system, timeline }
}

/// The server's `fsync` setting: whether files are to be flushed to disk. The keeper reads it
/// when it opens its journal; a change made by a reload applies from its next start.
pub fn fsync_enabled() -> bool {
    // SAFETY: reads a setting of this process.
    unsafe { pg_sys::enableFsync }
}
