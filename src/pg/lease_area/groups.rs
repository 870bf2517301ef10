//! Group slots: where a backend puts the requests of a `lease_many` for the keeper. A request
//! slot holds one `Ask` (about 8 kB, one request); a group of up to 64 requests would make
//! every one of the 64 request slots 64 times larger, so a few group slots of their own hold
//! the groups, and the question in the request slot names its group slot.
//!
//! A group slot is claimed by a backend under a claim number of its own (never reused), filled,
//! then named by an `Ask::GrantMany` in a request slot. It is freed by whoever holds it at that
//! moment, always by a compare-and-swap of its claim number, so that nobody frees a slot
//! claimed since by someone else:
//!
//! - the keeper, as it takes the question (it copies the requests out first, so it never reads
//!   the slot again);
//! - the asker, when the keeper never took the question (withdrawn, or no keeper), when the
//!   keeper that took it has gone (it may have died before freeing the slot), or when it fails
//!   before asking;
//! - a new keeper, for a question abandoned while a keeper that has gone had it.
//!
//! - the backend's exit callback, for the slot it last claimed, when it ends (terminated, or a
//!   FATAL error) where no Rust destructor runs: in `claim_slot`, waiting for a question slot
//!   with its group slot claimed, a termination would otherwise keep the slot until the
//!   server restarts.
//!
//! So a group slot outlives its question by at most one keeper's restart, and never holds a
//! group the keeper is still reading.

use super::{wait_on_my_latch, Area};
use lockhier_core::lease::{FixedRequest, MAX_GROUP};
use pgrx::pg_sys;
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::mem::{size_of, MaybeUninit};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How many `lease_many` calls can be asking the keeper at once; more wait for a free slot
/// (for one keeper's turn at most: the keeper frees a group slot as it takes its question).
pub const GROUP_SLOTS: usize = 4;

const GROUPS_NAME: &CStr = c"lockhier lease groups";

pub struct GroupSlot {
    /// 0 when free; else the claim number it was claimed under.
    claim: AtomicU64,
    requests: UnsafeCell<[MaybeUninit<FixedRequest>; MAX_GROUP]>,
}

/// The group slots, in a shared-memory area of their own (all zero is every slot free).
pub struct Groups {
    /// The last claim number handed out.
    next_claim: AtomicU64,
    slots: [GroupSlot; GROUP_SLOTS],
}

static GROUPS: AtomicPtr<Groups> = AtomicPtr::new(std::ptr::null_mut());

/// The shared memory the group slots take: 64 requests of about 6 kB each per slot.
pub fn size() -> usize {
    size_of::<Groups>()
}

/// Called from the shared-memory startup hook, under `AddinShmemInitLock`: make or find the
/// group slots.
pub fn startup() {
    let mut found = false;
    // SAFETY: ShmemInitStruct returns the named area, made or found, of the size requested in
    // the request hook (`size` is part of the lease area's request).
    let groups =
        unsafe { pg_sys::ShmemInitStruct(GROUPS_NAME.as_ptr(), size(), &mut found) }.cast::<Groups>();
    if !found {
        // SAFETY: the area is fresh, of `size()` bytes, seen by no other process yet; all zero
        // is a claim counter at 0 and every slot free (the requests are only read once filled).
        unsafe { groups.cast::<u8>().write_bytes(0, size()) };
    }
    GROUPS.store(groups, Ordering::Release);
}

fn groups() -> Option<&'static Groups> {
    let groups = GROUPS.load(Ordering::Acquire);
    // SAFETY: set once at startup to shared memory that lives as long as the server.
    (!groups.is_null()).then(|| unsafe { &*groups })
}

/// A group slot claimed by this backend: freed when dropped, unless handed over to the keeper
/// (which frees it as it takes the question).
pub struct Claimed {
    pub index: u8,
    pub claim: u64,
    handed_over: bool,
}

impl Claimed {
    /// The keeper took the question: the slot is the keeper's to free.
    pub fn hand_over(&mut self) {
        self.handed_over = true;
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if !self.handed_over {
            free(self.index as usize, self.claim);
        }
    }
}

/// The group slot this backend claimed last, and its claim number (0: none), for the exit
/// callback. Freeing it again once it was freed is harmless: claim numbers are never reused.
static MINE_INDEX: AtomicUsize = AtomicUsize::new(0);
static MINE_CLAIM: AtomicU64 = AtomicU64::new(0);
/// Whether this backend has registered `free_mine_at_exit`.
static EXIT_CALLBACK: AtomicBool = AtomicBool::new(false);

fn remember_mine(index: usize, claim: u64) {
    MINE_INDEX.store(index, Ordering::Relaxed);
    MINE_CLAIM.store(claim, Ordering::Relaxed);
    if !EXIT_CALLBACK.swap(true, Ordering::Relaxed) {
        // SAFETY: registers a callback run once as this process exits, while shared memory is
        // still attached.
        unsafe { pg_sys::before_shmem_exit(Some(free_mine_at_exit), pg_sys::Datum::from(0)) };
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn free_mine_at_exit(_code: i32, _arg: pg_sys::Datum) {
    let claim = MINE_CLAIM.swap(0, Ordering::Relaxed);
    if claim != 0 {
        free(MINE_INDEX.load(Ordering::Relaxed), claim);
    }
}

/// Free group slot `index` if it is still held under `claim`.
pub fn free(index: usize, claim: u64) {
    if let Some(slot) = groups().and_then(|groups| groups.slots.get(index)) {
        let _ = slot.claim.compare_exchange(claim, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

impl Area {
    /// Claim a free group slot and put `requests` in it (at most `MAX_GROUP`); waits, as a
    /// cancel allows, while every slot is busy. `None` when no keeper runs.
    pub(super) fn claim_group(&self, requests: &[FixedRequest]) -> Option<Claimed> {
        assert!(requests.len() <= MAX_GROUP, "a group of {} requests", requests.len());
        let groups = groups()?;
        let claim = groups.next_claim.fetch_add(1, Ordering::AcqRel) + 1;
        let index = loop {
            self.keeper_pid()?;
            let free = groups.slots.iter().position(|slot| {
                slot.claim.compare_exchange(0, claim, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            });
            if let Some(index) = free {
                break index;
            }
            // Nothing is claimed yet: a cancel may end the wait here.
            pgrx::check_for_interrupts!();
            wait_on_my_latch(Duration::from_millis(1));
        };
        let slot = &groups.slots[index];
        let first = slot.requests.get().cast::<FixedRequest>();
        for (i, request) in requests.iter().enumerate() {
            let element = first.wrapping_add(i);
            // SAFETY: the slot is ours (claimed) and nobody reads it until the question naming
            // it is ASKED; element `i` is within the slot's MAX_GROUP requests.
            unsafe { element.write(*request) };
        }
        remember_mine(index, claim);
        Some(Claimed { index: index as u8, claim, handed_over: false })
    }
}

/// The keeper, as it takes a `GrantMany`: copy out the `count` requests of group slot `index`
/// claimed under `claim`, and free the slot. Empty if the slot is not held under that claim
/// (it cannot happen while the question is TAKEN, but a wrong read must not be a grant).
pub fn take_group(index: u8, count: u8, claim: u64) -> Vec<FixedRequest> {
    let Some(slot) = groups().and_then(|groups| groups.slots.get(index as usize)) else {
        return Vec::new();
    };
    if slot.claim.load(Ordering::Acquire) != claim || count as usize > MAX_GROUP {
        return Vec::new();
    }
    let first = slot.requests.get().cast::<FixedRequest>();
    let requests = (0..count as usize)
        .map(|i| {
            let element = first.wrapping_add(i);
            // SAFETY: the asker wrote the first `count` requests before it set its question
            // ASKED, which the keeper saw as it took it; nobody writes them until it is freed.
            unsafe { element.read() }
        })
        .collect();
    free(index as usize, claim);
    requests
}

// The slots are only reached through their claim numbers and the protocol above.
// SAFETY: see above.
unsafe impl Sync for GroupSlot {}
