//! Who a process is: what `pg_stat_activity` would show of it, read from the backend status
//! array directly (no SPI) and with the same visibility rules. Error path and diagnostics only.

use lockhier_core::holder::{Process, ProcessDetails};
use pgrx::pg_sys;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The processes among `pids` that are still there.
///
/// Read from the shared backend status array itself, entry by entry, with the same
/// change-count protocol as `pg_stat_activity`'s own read. The status functions would read (and
/// keep) the transaction's snapshot of that array instead: stale if the caller's transaction
/// read `pg_stat_activity` earlier, and clearing it would change what the caller's
/// `pg_stat_activity` shows for the rest of its transaction.
pub fn processes(pids: &[i32]) -> HashMap<i32, Process> {
    let mut found = HashMap::new();
    if pids.is_empty() {
        return found;
    }
    // SAFETY: GetUserId and has_privs_of_role read this backend's state and the catalogs.
    let me = unsafe { pg_sys::GetUserId() };
    let read_all_stats = pg_sys::Oid::from_u32(pg_sys::ROLE_PG_READ_ALL_STATS);
    // SAFETY: as above.
    let sees_all = unsafe { pg_sys::has_privs_of_role(me, read_all_stats) };
    // SAFETY: GetCurrentTimestamp only reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    for slot in status_slots() {
        let Some(status) = read_slot(slot) else { continue };
        if !pids.contains(&status.pid) {
            continue;
        }
        // SAFETY: as above.
        let visible = sees_all || unsafe { pg_sys::has_privs_of_role(me, status.userid) };
        let xact_start = (status.xact_start != 0).then_some(status.xact_start);
        let details = visible.then(|| ProcessDetails {
            client_addr: client_addr(&status.client_addr),
            state: state_name(status.state),
            xact_start,
            xact_age: xact_start.map(|start| Duration::from_micros((now - start).max(0) as u64)),
        });
        found.insert(status.pid, Process { application_name: status.application_name, details });
    }
    found
}

/// The entries of regular backends (client backends and background workers) in the shared
/// backend status array, found from this backend's own entry. Empty if this process has none.
fn status_slots() -> impl Iterator<Item = *const pg_sys::PgBackendStatus> {
    // SAFETY: MyBEEntry is set at backend start-up to this backend's entry of the array.
    let mine = unsafe { pg_sys::MyBEEntry }.cast_const();
    // SAFETY: MaxBackends is fixed at postmaster start.
    let count = usize::try_from(unsafe { pg_sys::MaxBackends }).unwrap_or(0);
    let first =
        super::version::my_status_slot().filter(|_| !mine.is_null()).map(|index| mine.wrapping_sub(index));
    (0..count).filter_map(move |i| first.map(|first| first.wrapping_add(i)))
}

/// A consistent copy of the fields lockhier shows, or `None` for an unused entry.
struct SlotCopy {
    pid: i32,
    userid: pg_sys::Oid,
    application_name: String,
    client_addr: pg_sys::SockAddr,
    state: pg_sys::BackendState::Type,
    xact_start: i64,
}

fn read_slot(slot: *const pg_sys::PgBackendStatus) -> Option<SlotCopy> {
    use std::ptr::read_volatile;
    use std::sync::atomic::{fence, Ordering};
    let changecount = slot
        .wrapping_byte_add(std::mem::offset_of!(pg_sys::PgBackendStatus, st_changecount))
        .cast::<std::ffi::c_int>();
    loop {
        // SAFETY: `slot` is an entry of the shared array (see `status_slots`), which lives as
        // long as the server. Its owner makes st_changecount odd before writing the entry and
        // even again after; a copy taken between two equal even counts is consistent
        // (pgstat_begin_read_activity / pgstat_end_read_activity in backend_status.h).
        let before = unsafe { read_volatile(changecount) };
        fence(Ordering::Acquire);
        // SAFETY: as above; the entry is plain data, copied whole.
        let entry = unsafe { read_volatile(slot) };
        let name = if entry.st_appname.is_null() {
            [0u8; pg_sys::NAMEDATALEN as usize]
        } else {
            // SAFETY: st_appname points to this entry's NAMEDATALEN bytes of the shared
            // application-name buffer, covered by the same change count.
            unsafe { read_volatile(entry.st_appname.cast::<[u8; pg_sys::NAMEDATALEN as usize]>()) }
        };
        fence(Ordering::Acquire);
        // SAFETY: as for `before`.
        let after = unsafe { read_volatile(changecount) };
        if before == after && before % 2 == 0 {
            if entry.st_procpid == 0 {
                return None;
            }
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            return Some(SlotCopy {
                pid: entry.st_procpid,
                userid: entry.st_userid,
                application_name: String::from_utf8_lossy(&name[..end]).into_owned(),
                client_addr: entry.st_clientaddr,
                state: entry.st_state,
                xact_start: entry.st_xact_start_timestamp,
            });
        }
        pgrx::check_for_interrupts!();
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
