//! Announced handoffs: a backend whose lease request waits in the server's queue announces it
//! here (its database and request) and holds the handoff's lock (`lockmgr::handoff_*`), so that
//! lockhier requests arriving meanwhile that conflict with it queue behind it rather than in
//! front of the keeper, which takes the lease's locks once the backend gives them back (see
//! "A lease that waits" in `docs/leases.md`). Read under the area's LWLock, only while at
//! least one is announced: otherwise a request pays one atomic read.

use super::{Area, Locked};
use lockhier_core::lease::FixedRequest;
use pgrx::pg_sys;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// How many lease requests can be waiting with a handoff announced at once; more wait without
/// one, as before (and may lose their turn).
pub const HANDOFF_SLOTS: usize = 64;

pub struct HandoffSlot {
    /// The announcing backend's pid; 0 when free (changed under the exclusive LWLock).
    pid: AtomicI32,
    database: AtomicU32,
    /// The handoff lock's key: unique for the server's life.
    id: AtomicU64,
    request: UnsafeCell<MaybeUninit<FixedRequest>>,
}

impl HandoffSlot {
    pub fn new() -> HandoffSlot {
        HandoffSlot {
            pid: AtomicI32::new(0),
            database: AtomicU32::new(0),
            id: AtomicU64::new(0),
            request: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl Area {
    /// Whether any handoff is announced: one atomic read.
    pub fn handoffs_announced(&self) -> bool {
        self.handoffs_pending.load(Ordering::Acquire) != 0
    }

    /// Announce this backend's waiting lease request: the handoff's id (its lock's key), or
    /// `None` when every slot is taken.
    pub fn announce_handoff(&self, database: u32, request: FixedRequest) -> Option<i64> {
        let _locked = Locked::new(self, true);
        let slot = self.handoffs.iter().find(|slot| slot.pid.load(Ordering::Relaxed) == 0)?;
        let id = self.next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        // SAFETY: the slot is free and the exclusive lock is held: nobody reads it.
        unsafe { slot.request.get().cast::<FixedRequest>().write(request) };
        slot.database.store(database, Ordering::Relaxed);
        slot.id.store(id, Ordering::Relaxed);
        // SAFETY: MyProcPid is set at process start.
        slot.pid.store(unsafe { pg_sys::MyProcPid }, Ordering::Relaxed);
        self.handoffs_pending.fetch_add(1, Ordering::AcqRel);
        Some(id as i64)
    }

    /// Withdraw the handoff `id` (done, given up, or its backend exiting).
    pub fn withdraw_handoff(&self, id: i64) {
        let _locked = Locked::new(self, true);
        for slot in &self.handoffs {
            if slot.pid.load(Ordering::Relaxed) != 0 && slot.id.load(Ordering::Relaxed) as i64 == id {
                slot.pid.store(0, Ordering::Relaxed);
                self.handoffs_pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Whether a handoff announced in `database` by a backend other than `asker` conflicts with
    /// `request` (for the keeper, deciding a grant).
    pub fn handoff_in_the_way(&self, database: u32, asker: i32, request: &lockhier_core::Request) -> bool {
        let _locked = Locked::new(self, false);
        self.handoffs.iter().any(|slot| {
            let pid = slot.pid.load(Ordering::Relaxed);
            pid != 0
                && pid != asker
                && slot.database.load(Ordering::Relaxed) == database
                // SAFETY: as in `handoffs_in_the_way`.
                && unsafe { &*slot.request.get().cast::<FixedRequest>() }.request().conflicts_with(request)
        })
    }

    /// The ids of the handoffs announced in `database` by other backends whose requests
    /// `in_the_way` says conflict (read in place, under the shared lock).
    pub fn handoffs_in_the_way(&self, database: u32, in_the_way: impl Fn(&FixedRequest) -> bool) -> Vec<i64> {
        // SAFETY: MyProcPid is set at process start.
        let me = unsafe { pg_sys::MyProcPid };
        let _locked = Locked::new(self, false);
        self.handoffs
            .iter()
            .filter(|slot| {
                let pid = slot.pid.load(Ordering::Relaxed);
                pid != 0 && pid != me && slot.database.load(Ordering::Relaxed) == database
            })
            .filter(|slot| {
                // SAFETY: an announced slot's request was written before its pid, under the
                // exclusive lock; the shared lock held here keeps it from changing.
                in_the_way(unsafe { &*slot.request.get().cast::<FixedRequest>() })
            })
            .map(|slot| slot.id.load(Ordering::Relaxed) as i64)
            .collect()
    }
}

/// Whether this backend has registered `withdraw_mine_at_exit`.
static EXIT_CALLBACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A backend that ends while it has a handoff announced (terminated, or a FATAL error, where no
/// Rust destructor runs) withdraws it as it exits; its handoff lock, a session lock, is
/// released with its other locks. Registered once per backend, on its first announcement.
pub fn withdraw_mine_at_exit() {
    if EXIT_CALLBACK.swap(true, Ordering::Relaxed) {
        return;
    }
    // SAFETY: registers a callback run once as this process exits, while shared memory is
    // still attached.
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0)) };
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    if let Some(area) = super::area() {
        // SAFETY: MyProcPid is set at process start.
        let me = unsafe { pg_sys::MyProcPid };
        let _locked = Locked::new(area, true);
        for slot in &area.handoffs {
            if slot.pid.load(Ordering::Relaxed) == me {
                slot.pid.store(0, Ordering::Relaxed);
                area.handoffs_pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

// SAFETY: the slots are written only under the area's exclusive LWLock and read under it.
unsafe impl Sync for HandoffSlot {}
