//! The shared memory of leases: the leases the keeper holds (read by every backend, written by
//! the keeper alone, under one LWLock), where the keeper is, and a few slots through which
//! backends ask it things and it answers.
//!
//! It exists only when lockhier is in `shared_preload_libraries`: `area()` is `None` otherwise.

use lockhier_core::lease::index::{self, Entry};
use lockhier_core::lease::restore::{RestoreEvent, RestoreState};
use lockhier_core::lease::Lease;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::mem::size_of;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

mod asks;
mod groups;
mod handoffs;

pub use asks::Taken;
use asks::{AskSlot, DropSlot, ASK_SLOTS, DROP_SLOTS};
pub use handoffs::withdraw_mine_at_exit;
use handoffs::{HandoffSlot, HANDOFF_SLOTS};

const TRANCHE: &CStr = c"lockhier";
const AREA_NAME: &CStr = c"lockhier leases";

/// The area's fixed part; `capacity` leases follow it, then the token index (`buckets`
/// entries), so that a lease is found by its token without a scan.
pub struct Area {
    lock: AtomicPtr<pg_sys::LWLock>,
    /// A `RestoreState`, changed only through `RestoreState::after` (`on_restore`).
    restore: AtomicU8,
    keeper_pid: AtomicI32,
    /// Counts keepers started since the server started: a question taken by one that has gone
    /// is told apart from one taken by the keeper running now (a pid could be reused).
    keeper_generation: AtomicU64,
    keeper_latch: AtomicPtr<pg_sys::Latch>,
    capacity: usize,
    buckets: usize,
    /// Leases held, the first `count` of the array (under `lock`).
    count: AtomicUsize,
    asks: [AskSlot; ASK_SLOTS],
    drops: [DropSlot; DROP_SLOTS],
    handoffs: [HandoffSlot; HANDOFF_SLOTS],
    /// Handoffs announced now.
    handoffs_pending: AtomicU32,
    /// The last handoff id given out.
    next_handoff: AtomicU64,
}

static AREA: AtomicPtr<Area> = AtomicPtr::new(std::ptr::null_mut());
static CAPACITY: AtomicUsize = AtomicUsize::new(0);
static PEEK: std::sync::OnceLock<fn() -> bool> = std::sync::OnceLock::new();

fn size(capacity: usize) -> usize {
    size_of::<Area>() + capacity * size_of::<Lease>() + index::buckets_for(capacity) * size_of::<Entry>()
}

/// Whether `_PG_init` runs as shared_preload_libraries are loaded (in the postmaster).
pub fn preloading() -> bool {
    // SAFETY: a flag the postmaster sets while it loads shared_preload_libraries.
    unsafe { pg_sys::process_shared_preload_libraries_in_progress }
}

/// Called from `_PG_init` while shared libraries are preloaded: asks for the area and one
/// LWLock. `leases_to_restore` is called once in the postmaster when the area is made: false
/// means no lease survives from before, so nothing needs restoring.
pub fn request(capacity: usize, leases_to_restore: fn() -> bool) {
    CAPACITY.store(capacity, Ordering::Relaxed);
    let _ = PEEK.set(leases_to_restore);
    // SAFETY: _PG_init runs single-threaded while shared_preload_libraries is processed; the
    // previous hooks are kept and chained.
    let previous_request = unsafe { pg_sys::shmem_request_hook };
    // SAFETY: as above.
    unsafe { PREVIOUS_REQUEST_HOOK = previous_request };
    // SAFETY: as above.
    unsafe { pg_sys::shmem_request_hook = Some(on_shmem_request) };
    // SAFETY: as above.
    let previous_startup = unsafe { pg_sys::shmem_startup_hook };
    // SAFETY: as above.
    unsafe { PREVIOUS_STARTUP_HOOK = previous_startup };
    // SAFETY: as above.
    unsafe { pg_sys::shmem_startup_hook = Some(on_shmem_startup) };
}

static mut PREVIOUS_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREVIOUS_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

/// Call a hook that was installed before ours, as PostgreSQL would have.
fn call_hook(hook: unsafe extern "C-unwind" fn()) {
    // SAFETY: the guard turns an ERROR the hook raises into a panic; this is the main thread.
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| call_guarded(hook)) }
}

fn call_guarded(hook: unsafe extern "C-unwind" fn()) {
    // SAFETY: a hook PostgreSQL or another library installed, called as PostgreSQL would.
    unsafe { hook() }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_shmem_request() {
    // SAFETY: the hook chain is only read here, after _PG_init set it.
    if let Some(previous) = unsafe { PREVIOUS_REQUEST_HOOK } {
        call_hook(previous);
    }
    // SAFETY: shmem_request_hook is where add-ins ask for shared memory and LWLocks.
    unsafe { pg_sys::RequestAddinShmemSpace(size(CAPACITY.load(Ordering::Relaxed)) + groups::size()) };
    // SAFETY: as above.
    unsafe { pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_shmem_startup() {
    // SAFETY: as for the request hook.
    if let Some(previous) = unsafe { PREVIOUS_STARTUP_HOOK } {
        call_hook(previous);
    }
    let capacity = CAPACITY.load(Ordering::Relaxed);
    // Read before the lock below, which every process creating add-in areas waits for: the
    // journal may be long. Only the process that makes the area uses the answer.
    let restore = RestoreState::initial(PEEK.get().is_some_and(|peek| peek()));
    let mut found = false;
    let init_lock = addin_shmem_init_lock();
    // SAFETY: AddinShmemInitLock serialises the creation of add-in areas between processes
    // (it matters under EXEC_BACKEND); ShmemInitStruct returns the area, made or found.
    unsafe { pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE) };
    // SAFETY: as above; the size is the one requested.
    let area =
        unsafe { pg_sys::ShmemInitStruct(AREA_NAME.as_ptr(), size(capacity), &mut found) }.cast::<Area>();
    if !found {
        let buckets = index::buckets_for(capacity);
        // SAFETY: the area is fresh (not found), of the requested size, and seen by no other
        // process yet; writing the fixed part initialises it. The leases after it are never
        // read beyond `count`; the index after them is zeroed below (all buckets empty).
        unsafe {
            area.write(Area {
                lock: AtomicPtr::new(std::ptr::null_mut()),
                restore: AtomicU8::new(restore as u8),
                keeper_pid: AtomicI32::new(0),
                keeper_generation: AtomicU64::new(0),
                keeper_latch: AtomicPtr::new(std::ptr::null_mut()),
                capacity,
                buckets,
                count: AtomicUsize::new(0),
                asks: std::array::from_fn(|_| AskSlot::new()),
                drops: std::array::from_fn(|_| DropSlot::new()),
                handoffs: std::array::from_fn(|_| HandoffSlot::new()),
                handoffs_pending: AtomicU32::new(0),
                next_handoff: AtomicU64::new(0),
            })
        };
        let entries = area.wrapping_add(1).cast::<Lease>().wrapping_add(capacity).cast::<Entry>();
        // SAFETY: the index's `buckets` entries lie within the area just made (see `size`);
        // all zero is every bucket empty.
        unsafe { entries.write_bytes(0, buckets) };
    }
    // SAFETY: the tranche asked for in the request hook, with one LWLock.
    let tranche = unsafe { pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr()) };
    // SAFETY: the tranche's one LWLock, in shared memory.
    let lock = unsafe { &raw mut (*tranche).lock };
    // SAFETY: `area` is initialised (above, or by the process that made it).
    let initialised = unsafe { &*area };
    initialised.lock.store(lock, Ordering::Release);
    groups::startup();
    // SAFETY: releases the lock taken above.
    unsafe { pg_sys::LWLockRelease(init_lock) };
    AREA.store(area, Ordering::Release);
}

/// `AddinShmemInitLock`, a C macro for `&MainLWLockArray[21].lock` (the same in 13 to 18).
fn addin_shmem_init_lock() -> *mut pg_sys::LWLock {
    // SAFETY: MainLWLockArray is set up before any lease_area startup hook runs.
    let array = unsafe { pg_sys::MainLWLockArray };
    // Entry 21 is AddinShmemInitLock in every supported version (lwlocknames.txt).
    let entry = array.wrapping_add(21);
    // SAFETY: `entry` is within the array of named LWLocks.
    unsafe { &raw mut (*entry).lock }
}

/// The area, when lockhier was preloaded.
pub fn area() -> Option<&'static Area> {
    let area = AREA.load(Ordering::Acquire);
    // SAFETY: set once, to shared memory that lives as long as the server (and is inherited
    // by every backend forked after).
    (!area.is_null()).then(|| unsafe { &*area })
}

/// Holds the area's LWLock, in shared or exclusive mode, until dropped.
struct Locked<'a>(&'a Area);

impl<'a> Locked<'a> {
    fn new(area: &'a Area, exclusive: bool) -> Locked<'a> {
        let mode = if exclusive { pg_sys::LWLockMode::LW_EXCLUSIVE } else { pg_sys::LWLockMode::LW_SHARED };
        // SAFETY: the LWLock of the tranche asked for at startup.
        unsafe { pg_sys::LWLockAcquire(area.lock.load(Ordering::Acquire), mode) };
        Locked(area)
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: releases the lock `new` took.
        unsafe { pg_sys::LWLockRelease(self.0.lock.load(Ordering::Acquire)) };
    }
}

/// The leases, to change under the exclusive lock.
pub struct Leases<'a> {
    area: &'a Area,
}

impl Leases<'_> {
    /// The leases follow the fixed part, as `size` laid them out. Reached from the pointer
    /// `ShmemInitStruct` returned (kept in `AREA`), never from the shared reference, which
    /// gives no right to write.
    fn slots(&self) -> *mut Lease {
        let area = AREA.load(Ordering::Acquire);
        debug_assert!(std::ptr::eq(area, self.area));
        area.wrapping_add(1).cast::<Lease>()
    }

    fn entries_ptr(&self) -> *mut Entry {
        self.slots().wrapping_add(self.area.capacity).cast::<Entry>()
    }

    fn entries(&self) -> &[Entry] {
        // SAFETY: the index lies after the leases (see `size`), initialised when the area was
        // made; the caller holds the lock.
        unsafe { std::slice::from_raw_parts(self.entries_ptr(), self.area.buckets) }
    }

    fn entries_mut(&mut self) -> &mut [Entry] {
        // SAFETY: as for `entries`; the caller holds the exclusive lock.
        unsafe { std::slice::from_raw_parts_mut(self.entries_ptr(), self.area.buckets) }
    }

    fn leases_mut(&mut self) -> &mut [Lease] {
        // SAFETY: the first `count` slots are initialised; the caller holds the exclusive lock.
        unsafe { std::slice::from_raw_parts_mut(self.slots(), self.len()) }
    }

    pub fn as_slice(&self) -> &[Lease] {
        // SAFETY: the first `count` slots are initialised; the caller holds the lock.
        unsafe { std::slice::from_raw_parts(self.slots(), self.area.count.load(Ordering::Relaxed)) }
    }

    pub fn len(&self) -> usize {
        self.area.count.load(Ordering::Relaxed)
    }

    /// The lease `token`, found through the index.
    pub fn get(&self, token: i64) -> Option<&Lease> {
        let slot = index::find(self.entries(), token)?;
        self.as_slice().get(slot as usize)
    }

    /// Adds a lease; the caller checked `is_full()`.
    pub fn push(&mut self, lease: Lease) {
        let count = self.len();
        assert!(count < self.area.capacity, "pushed a lease into a full table");
        let slot = self.slots().wrapping_add(count);
        // SAFETY: slot `count` is within the area (below capacity); the caller holds the
        // exclusive lock.
        unsafe { slot.write(lease) };
        index::insert(self.entries_mut(), lease.token, count as u32);
        self.area.count.store(count + 1, Ordering::Relaxed);
    }

    pub fn get_mut(&mut self, token: i64) -> Option<&mut Lease> {
        let slot = index::find(self.entries(), token)?;
        self.leases_mut().get_mut(slot as usize)
    }

    /// Takes a lease out; the last lease moves into its slot.
    pub fn remove(&mut self, token: i64) -> Option<Lease> {
        let slot = index::remove(self.entries_mut(), token)? as usize;
        let last = self.len() - 1;
        let leases = self.leases_mut();
        let removed = leases[slot];
        if slot != last {
            leases[slot] = leases[last];
            let moved = leases[slot].token;
            index::insert(self.entries_mut(), moved, slot as u32);
        }
        self.area.count.store(last, Ordering::Relaxed);
        Some(removed)
    }

    pub fn clear(&mut self) {
        self.entries_mut().fill(Entry::default());
        self.area.count.store(0, Ordering::Relaxed);
    }
}

impl Area {
    /// Read the leases under the shared lock.
    pub fn read<R>(&self, f: impl FnOnce(&[Lease]) -> R) -> R {
        let _locked = Locked::new(self, false);
        f(Leases { area: self }.as_slice())
    }

    /// The lease `token` (of any database), through the index, under the shared lock.
    pub fn find(&self, token: i64) -> Option<Lease> {
        let _locked = Locked::new(self, false);
        Leases { area: self }.get(token).copied()
    }

    /// Change the leases under the exclusive lock (the keeper only).
    pub fn write<R>(&self, f: impl FnOnce(&mut Leases) -> R) -> R {
        let _locked = Locked::new(self, true);
        f(&mut Leases { area: self })
    }

    /// How many leases the area holds at most (`lockhier.max_leases`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn restore_state(&self) -> RestoreState {
        RestoreState::from_u8(self.restore.load(Ordering::Acquire))
    }

    /// Move the restore state on, atomically: concurrent writers (the keeper, backends giving
    /// up) each see the state the other left.
    pub fn on_restore(&self, event: RestoreEvent) {
        let _ = self.restore.fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
            Some(RestoreState::from_u8(state).after(event) as u8)
        });
    }

    /// The keeper's process id, while it runs.
    pub fn keeper_pid(&self) -> Option<i32> {
        Some(self.keeper_pid.load(Ordering::Acquire)).filter(|&pid| pid != 0)
    }

    /// The generation of the keeper running now (0: none has run).
    pub fn keeper_generation(&self) -> u64 {
        self.keeper_generation.load(Ordering::Acquire)
    }

    /// Called by the keeper when it starts: where backends find it.
    pub fn announce_keeper(&self) {
        self.keeper_generation.fetch_add(1, Ordering::AcqRel);
        // SAFETY: MyLatch is this process's latch, in shared memory, for its whole life.
        self.keeper_latch.store(unsafe { pg_sys::MyLatch }, Ordering::Release);
        // SAFETY: MyProcPid is set at process start.
        self.keeper_pid.store(unsafe { pg_sys::MyProcPid }, Ordering::Release);
    }

    /// Called by the keeper on its way out, before its locks are released: the leases are no
    /// longer held, and backends must wait for the next keeper to take them again.
    pub fn retire_keeper(&self) {
        self.on_restore(RestoreEvent::KeeperExited);
        self.keeper_pid.store(0, Ordering::Release);
        self.keeper_latch.store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// Sleep on this process's latch until it is set or `timeout` passes (no interrupt handling).
pub fn wait_on_my_latch(timeout: Duration) {
    let events = (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32;
    // SAFETY: MyLatch is this process's latch, set at process start.
    let latch = unsafe { pg_sys::MyLatch };
    // SAFETY: waits on this process's own latch, then resets it.
    unsafe { pg_sys::WaitLatch(latch, events, timeout.as_millis() as _, pg_sys::PG_WAIT_EXTENSION) };
    // SAFETY: as above.
    unsafe { pg_sys::ResetLatch(latch) };
}

// SAFETY: the area lives in shared memory and is only reached through atomics, the LWLock
// and the slot protocol above.
unsafe impl Sync for Area {}
