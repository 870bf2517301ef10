//! Who a process is: what `pg_stat_activity` would show of it, read from the backend status
//! array directly (no SPI) and with the same visibility rules. Error path and diagnostics only.

use pgrx::pg_sys;
use std::collections::HashMap;
use std::ffi::CStr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A process as `pg_stat_activity` shows it to the current user.
#[derive(Clone, Debug)]
pub struct Backend {
    pub application_name: String,
    /// The rest is NULL in `pg_stat_activity` unless the current user may see this backend's
    /// details (same role, or a member of `pg_read_all_stats`), and so it is here.
    pub details: Option<BackendDetails>,
}

#[derive(Clone, Debug)]
pub struct BackendDetails {
    pub client_addr: Option<String>,
    /// NULL in `pg_stat_activity` for a state it has no name for.
    pub state: Option<&'static str>,
    /// Microseconds since 2000-01-01 (a `timestamptz`), when it is in a transaction.
    pub xact_start: Option<i64>,
}

impl BackendDetails {
    /// How long its current transaction has run, if it is in one.
    pub fn xact_age(&self) -> Option<std::time::Duration> {
        // SAFETY: GetCurrentTimestamp only reads the clock.
        let now = unsafe { pg_sys::GetCurrentTimestamp() };
        self.xact_start.map(|start| std::time::Duration::from_micros((now - start).max(0) as u64))
    }
}

/// The processes among `pids` that are still there.
pub fn backends(pids: &[i32]) -> HashMap<i32, Backend> {
    let mut found = HashMap::new();
    // SAFETY: the status functions copy the shared backend status array into backend-local
    // memory; clearing first makes the copy current rather than the one taken earlier in this
    // transaction. Entries are read by index within the count the copy reports.
    unsafe {
        pg_sys::pgstat_clear_backend_activity_snapshot();
        let me = pg_sys::GetUserId();
        let read_all_stats =
            pg_sys::has_privs_of_role(me, pg_sys::Oid::from_u32(pg_sys::ROLE_PG_READ_ALL_STATS));
        for index in 1..=pg_sys::pgstat_fetch_stat_numbackends() {
            let local = pg_sys::pgstat_fetch_stat_local_beentry(index);
            if local.is_null() {
                continue;
            }
            let status = &(*local).backendStatus;
            if !pids.contains(&status.st_procpid) {
                continue;
            }
            let visible = read_all_stats || pg_sys::has_privs_of_role(me, status.st_userid);
            let details = visible.then(|| BackendDetails {
                client_addr: client_addr(&status.st_clientaddr),
                state: state_name(status.st_state),
                xact_start: (status.st_xact_start_timestamp != 0).then_some(status.st_xact_start_timestamp),
            });
            found.insert(
                status.st_procpid,
                Backend { application_name: c_string(status.st_appname), details },
            );
        }
    }
    found
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn c_string(ptr: *const std::ffi::c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: the caller promises a NUL-terminated string.
        unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }
}

/// As `pg_stat_activity.state` spells it.
fn state_name(state: pg_sys::BackendState::Type) -> Option<&'static str> {
    use pg_sys::BackendState::*;
    Some(match state {
        STATE_IDLE => "idle",
        STATE_RUNNING => "active",
        STATE_IDLEINTRANSACTION => "idle in transaction",
        STATE_FASTPATH => "fastpath function call",
        STATE_IDLEINTRANSACTION_ABORTED => "idle in transaction (aborted)",
        STATE_DISABLED => "disabled",
        _ => return None,
    })
}

/// The client's IP address; `None` for Unix-socket and background processes, as in
/// `pg_stat_activity.client_addr`.
fn client_addr(addr: &pg_sys::SockAddr) -> Option<String> {
    if addr.salen == 0 {
        return None;
    }
    // SAFETY: sockaddr_storage is large enough for, and aligned like, every sockaddr_* type;
    // the family field tells which one the kernel wrote.
    let bytes: &[u8; 128] = unsafe { &*(&addr.addr as *const pg_sys::sockaddr_storage).cast() };
    match i32::from(addr.addr.ss_family) {
        libc::AF_INET => Some(Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]).to_string()),
        libc::AF_INET6 => {
            let octets: [u8; 16] = bytes[8..24].try_into().expect("16 bytes");
            Some(Ipv6Addr::from(octets).to_string())
        }
        _ => None,
    }
}
