//! The slots through which backends ask the keeper things and it answers: a backend claims a
//! free slot, writes its question and marks it ASKED; the keeper marks it TAKEN, answers, and
//! marks it ANSWERED (or FREE when nobody waits for the answer); the backend reads the answer
//! and frees the slot.
//!
//! A question not yet taken can be withdrawn (a cancel, the keeper gone). One taken is always
//! answered unless the keeper that took it has gone, which the slot records, so that no answer
//! is ever written into a slot another backend has claimed since.

use super::{wait_on_my_latch, Area};
use lockhier_core::lease::{Answer, Ask};
use pgrx::pg_sys;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
use std::time::Duration;

/// How many backends can have a question for the keeper at once; more wait for a free slot.
pub const ASK_SLOTS: usize = 32;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const ASKED: u32 = 2;
const TAKEN: u32 = 3;
const ANSWERED: u32 = 4;

pub struct AskSlot {
    state: AtomicU32,
    /// Whether the asker waits for the answer (false: a `tell`, freed once answered).
    wants_answer: AtomicBool,
    /// The keeper that took the question (valid while TAKEN).
    taken_by: AtomicI32,
    asker_latch: AtomicPtr<pg_sys::Latch>,
    ask: UnsafeCell<MaybeUninit<Ask>>,
    answer: UnsafeCell<MaybeUninit<Answer>>,
}

impl AskSlot {
    pub fn new() -> AskSlot {
        AskSlot {
            state: AtomicU32::new(FREE),
            wants_answer: AtomicBool::new(false),
            taken_by: AtomicI32::new(0),
            asker_latch: AtomicPtr::new(std::ptr::null_mut()),
            ask: UnsafeCell::new(MaybeUninit::uninit()),
            answer: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// How a wait for an answer ended.
// Short-lived, on the stack: the size of an answer is no cost.
#[allow(clippy::large_enum_variant)]
enum Waited {
    Answered(Answer),
    /// Withdrawn before the keeper took it, to let an interrupt be processed.
    Withdrawn,
    /// No keeper is there to answer.
    NoKeeper,
}

impl Area {
    /// Ask the keeper and wait for its answer (a few lock operations and one flush away).
    /// `None`: no keeper is running, or it stopped before answering.
    ///
    /// A cancel or termination is processed while the question waits to be taken (the keeper
    /// may be restoring leases, or busy): the question is withdrawn first. Once the keeper has
    /// taken it, the answer is awaited, so that nothing the keeper did is lost to the caller;
    /// an interrupt is then processed after the call returns.
    pub fn ask(&self, ask: Ask) -> Option<Answer> {
        loop {
            let slot = self.claim_slot(true)?;
            self.put(slot, ask, true);
            match self.wait_for_answer(slot) {
                Waited::Answered(answer) => return Some(answer),
                Waited::NoKeeper => return None,
                // Raises for a cancel or a termination; for anything else, ask again.
                Waited::Withdrawn => {
                    pgrx::check_for_interrupts!();
                }
            }
        }
    }

    /// Tell the keeper something without waiting for it to act (from where nothing may wait or
    /// raise, such as a commit callback). False when no slot was free or no keeper runs.
    pub fn tell(&self, ask: Ask) -> bool {
        let Some(slot) = self.claim_slot(false) else { return false };
        self.put(slot, ask, false);
        true
    }

    /// A free slot, claimed; `None` when no keeper runs (or, not `waiting`, none is free).
    fn claim_slot(&self, waiting: bool) -> Option<&AskSlot> {
        loop {
            self.keeper_pid()?;
            let free = self.asks.iter().find(|slot| {
                slot.state.compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            });
            if free.is_some() || !waiting {
                return free;
            }
            // Nothing is claimed yet: a cancel may end the wait here.
            pgrx::check_for_interrupts!();
            wait_on_my_latch(Duration::from_millis(1));
        }
    }

    fn put(&self, slot: &AskSlot, ask: Ask, wants_answer: bool) {
        // SAFETY: the slot is ours (CLAIMED) until it is ASKED; nobody else reads it.
        unsafe { slot.ask.get().cast::<Ask>().write(ask) };
        slot.wants_answer.store(wants_answer, Ordering::Relaxed);
        // SAFETY: MyLatch is this backend's latch.
        slot.asker_latch.store(unsafe { pg_sys::MyLatch }, Ordering::Relaxed);
        slot.state.store(ASKED, Ordering::Release);
        self.wake_keeper();
    }

    fn wait_for_answer(&self, slot: &AskSlot) -> Waited {
        loop {
            match slot.state.load(Ordering::Acquire) {
                ANSWERED => {
                    // SAFETY: the keeper wrote the answer before it set ANSWERED.
                    let answer = unsafe { slot.answer.get().cast::<Answer>().read() };
                    slot.state.store(FREE, Ordering::Release);
                    return Waited::Answered(answer);
                }
                ASKED => {
                    let gone = self.keeper_pid().is_none();
                    if (gone || interrupt_pending())
                        && slot
                            .state
                            .compare_exchange(ASKED, FREE, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    {
                        return if gone { Waited::NoKeeper } else { Waited::Withdrawn };
                    }
                }
                // Taken by a keeper that has since gone: nobody will answer.
                TAKEN if Some(slot.taken_by.load(Ordering::Acquire)) != self.keeper_pid() => {
                    slot.state.store(FREE, Ordering::Release);
                    return Waited::NoKeeper;
                }
                _ => {}
            }
            wait_on_my_latch(Duration::from_millis(100));
        }
    }

    fn wake_keeper(&self) {
        let latch = self.keeper_latch.load(Ordering::Acquire);
        if !latch.is_null() {
            // SAFETY: the keeper's latch, in shared memory; setting a latch of a process that
            // has gone is harmless (it belongs to its PGPROC slot).
            unsafe { pg_sys::SetLatch(latch) };
        }
    }

    /// The keeper answers every question asked, each with `answer`.
    pub fn answer_all(&self, mut answer: impl FnMut(Ask) -> Answer) {
        // SAFETY: MyProcPid is set at process start.
        let me = unsafe { pg_sys::MyProcPid };
        for slot in &self.asks {
            // Written before the slot is TAKEN, so an asker that sees TAKEN sees who took it.
            slot.taken_by.store(me, Ordering::Release);
            if slot.state.compare_exchange(ASKED, TAKEN, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            // SAFETY: the asker wrote the question before it set ASKED.
            let ask = unsafe { slot.ask.get().cast::<Ask>().read() };
            let reply = answer(ask);
            if !slot.wants_answer.load(Ordering::Relaxed) {
                slot.state.store(FREE, Ordering::Release);
                continue;
            }
            // SAFETY: the slot is TAKEN by this keeper: the asker waits and touches nothing.
            unsafe { slot.answer.get().cast::<Answer>().write(reply) };
            slot.state.store(ANSWERED, Ordering::Release);
            let latch = slot.asker_latch.load(Ordering::Relaxed);
            // SAFETY: the asker's latch, in shared memory.
            unsafe { pg_sys::SetLatch(latch) };
        }
    }
}

/// Whether a signal handler has flagged an interrupt (a cancel, a termination, or another)
/// for the next CHECK_FOR_INTERRUPTS().
fn interrupt_pending() -> bool {
    let flag = &raw const pg_sys::InterruptPending;
    // SAFETY: the address of the flag signal handlers set: a valid, aligned pointer to a sig_atomic_t; read as the volatile it is.
    unsafe { std::ptr::read_volatile(flag) != 0 }
}
