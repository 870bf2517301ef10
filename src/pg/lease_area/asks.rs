//! The slots through which backends ask the keeper things and it answers: a backend claims a
//! free slot, writes its question and marks it ASKED; the keeper takes every ASKED slot at the
//! start of a turn (TAKEN, stamped with its generation), decides them all, flushes its journal
//! once, then answers each (ANSWERED); the backend reads the answer and frees the slot.
//!
//! Every wait here can be interrupted. A question not yet taken is withdrawn (FREE). One taken
//! is abandoned on a cancel or termination (ABANDONED): the keeper still acts on it, then frees
//! the slot instead of answering; a grant made meanwhile is found again by the same owner's
//! identical request. A slot taken by a keeper that has since gone is freed by its asker (the
//! generation no longer matches), and one abandoned then is freed by the next keeper, which
//! never stamps a slot it did not take.
//!
//! Dropped databases are told through slots of their own, so that a drop is never lost because
//! every question slot is busy.
//!
//! A lone asker (no other slot in use) polls its slot for a while before it sleeps on its
//! latch, and the keeper, having answered a lone question, looks for the next one a while
//! before it sleeps: with one client, each side would otherwise wake the other from a sleep for
//! every question, which costs more than the rest of the trip but the flush. Both polls yield
//! the processor at every look, so that a busy machine runs its other work instead; an asker
//! with company sleeps at once, as the keeper answers a crowd in one turn anyway.

use super::groups;
use super::{wait_on_my_latch, Area};
use lockhier_core::lease::{Answer, Ask, FixedRequest};
use pgrx::pg_sys;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many backends can have a question for the keeper at once; more wait for a free slot.
pub const ASK_SLOTS: usize = 64;

/// How many dropped databases can wait for the keeper to let their leases go.
pub const DROP_SLOTS: usize = 64;

/// How long a lone asker polls for its answer before it sleeps on its latch: a turn of the
/// keeper with one journal flush (about 0.1 ms on this project's disks), with room to spare.
const ASKER_POLL: Duration = Duration::from_micros(400);

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const ASKED: u32 = 2;
const TAKEN: u32 = 3;
const ANSWERED: u32 = 4;
const ABANDONED: u32 = 5;

pub struct AskSlot {
    state: AtomicU32,
    /// The generation of the keeper that took the question (valid while TAKEN or ABANDONED).
    taken_by: AtomicU64,
    asker_latch: AtomicPtr<pg_sys::Latch>,
    ask: UnsafeCell<MaybeUninit<Ask>>,
    answer: UnsafeCell<MaybeUninit<Answer>>,
}

impl AskSlot {
    pub fn new() -> AskSlot {
        AskSlot {
            state: AtomicU32::new(FREE),
            taken_by: AtomicU64::new(0),
            asker_latch: AtomicPtr::new(std::ptr::null_mut()),
            ask: UnsafeCell::new(MaybeUninit::uninit()),
            answer: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// A dropped database's OID, 0 when the slot is free.
pub struct DropSlot(AtomicU32);

impl DropSlot {
    pub fn new() -> DropSlot {
        DropSlot(AtomicU32::new(0))
    }
}

/// How a wait for an answer ended.
// Short-lived, on the stack: the size of an answer is no cost.
#[allow(clippy::large_enum_variant)]
enum Waited {
    Answered(Answer),
    /// Withdrawn before the keeper took it (`taken` false), or abandoned after: an interrupt
    /// is pending.
    Interrupted {
        taken: bool,
    },
    /// No keeper is there to answer, or the one that took the question stopped.
    NoKeeper,
}

/// A question the keeper took, to be answered with [`Area::answer`].
pub struct Taken {
    slot: usize,
    pub ask: Ask,
    /// The requests of a `GrantMany`, copied out of its group slot (empty for any other ask,
    /// and for a group slot that did not hold the group named).
    pub requests: Vec<FixedRequest>,
}

impl Area {
    /// Ask the keeper and wait for its answer. `None`: no keeper is running, or the one that
    /// took the question stopped before answering. A cancel or termination is raised (57014,
    /// 57P01) whether or not the keeper has taken the question yet.
    pub fn ask(&self, ask: Ask) -> Option<Answer> {
        loop {
            let slot = self.claim_slot()?;
            let poll = !self.others_asking(slot);
            self.put(slot, ask, poll);
            match self.wait_for_answer(slot, poll) {
                Waited::Answered(answer) => return Some(answer),
                Waited::NoKeeper => return None,
                // Raises for a cancel or a termination; for anything else, ask again.
                Waited::Interrupted { .. } => {
                    pgrx::check_for_interrupts!();
                }
            }
        }
    }

    /// Ask the keeper for several leases at once: `requests` go in a group slot (see
    /// `groups`), and `question` makes the `Ask::GrantMany` naming it (its index and claim).
    /// As [`ask`](Self::ask) otherwise. A question abandoned on a cancel is still decided by
    /// the keeper (all or none, as always), and a grant made meanwhile is found again by the
    /// same owner's identical requests.
    pub fn ask_group(&self, requests: &[FixedRequest], question: impl Fn(u8, u64) -> Ask) -> Option<Answer> {
        loop {
            // Dropped (and so freed) on every way out but a hand-over to the keeper.
            let mut group = self.claim_group(requests)?;
            let slot = self.claim_slot()?;
            let poll = !self.others_asking(slot);
            self.put(slot, question(group.index, group.claim), poll);
            match self.wait_for_answer(slot, poll) {
                Waited::Answered(answer) => {
                    // The keeper freed the group slot as it took the question.
                    group.hand_over();
                    return Some(answer);
                }
                // Never taken, or taken by a keeper that has gone (it may have died before it
                // freed the group slot): the slot is ours to free, under our claim.
                Waited::NoKeeper => return None,
                Waited::Interrupted { taken } => {
                    if taken {
                        // Abandoned to the keeper, which freed the group slot as it took it.
                        group.hand_over();
                    }
                    drop(group);
                    pgrx::check_for_interrupts!();
                }
            }
        }
    }

    /// Tell the keeper that `database` was dropped (from a commit callback, where nothing may
    /// wait or raise). False only when every drop slot is taken.
    pub fn tell_dropped(&self, database: u32) -> bool {
        let told = self
            .drops
            .iter()
            .any(|slot| slot.0.compare_exchange(0, database, Ordering::AcqRel, Ordering::Relaxed).is_ok());
        self.wake_keeper();
        told
    }

    /// The dropped databases told since the last call (the keeper only).
    pub fn take_dropped(&self) -> Vec<u32> {
        self.drops.iter().map(|slot| slot.0.swap(0, Ordering::AcqRel)).filter(|&oid| oid != 0).collect()
    }

    /// A free slot, claimed; `None` when no keeper runs.
    fn claim_slot(&self) -> Option<&AskSlot> {
        loop {
            self.keeper_pid()?;
            let free = self.asks.iter().find(|slot| {
                slot.state.compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            });
            if free.is_some() {
                return free;
            }
            // Nothing is claimed yet: a cancel may end the wait here.
            pgrx::check_for_interrupts!();
            wait_on_my_latch(Duration::from_millis(1));
        }
    }

    /// Write the question and mark it asked. An asker that will `poll` leaves out its latch:
    /// the keeper then does not set it, so the latch is not left set for the next wait of this
    /// backend (its next read from the client would wake for nothing).
    fn put(&self, slot: &AskSlot, ask: Ask, poll: bool) {
        // SAFETY: the slot is ours (CLAIMED) until it is ASKED; nobody else reads it.
        unsafe { slot.ask.get().cast::<Ask>().write(ask) };
        let latch = if poll { std::ptr::null_mut() } else { my_latch() };
        slot.asker_latch.store(latch, Ordering::Relaxed);
        slot.state.store(ASKED, Ordering::Release);
        self.wake_keeper();
    }

    /// Whether a slot other than `mine` is in use (claimed, asked, taken or being answered).
    fn others_asking(&self, mine: &AskSlot) -> bool {
        self.asks.iter().any(|slot| !std::ptr::eq(slot, mine) && slot.state.load(Ordering::Relaxed) != FREE)
    }

    /// Wait for the slot's answer; with `poll`, look at it until `ASKER_POLL` has passed (or
    /// another asker comes) before sleeping. Every look checks for the keeper's death and a
    /// cancel exactly as a wake-up from the sleep does.
    fn wait_for_answer(&self, slot: &AskSlot, poll: bool) -> Waited {
        let mut poll_until = poll.then(|| Instant::now() + ASKER_POLL);
        loop {
            // SeqCst: read after the latch is given to the keeper (below), it sees ANSWERED
            // whenever the keeper's SeqCst look at the latch found none.
            match slot.state.load(Ordering::SeqCst) {
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
                        return if gone { Waited::NoKeeper } else { Waited::Interrupted { taken: false } };
                    }
                }
                TAKEN
                    if self.keeper_pid().is_none()
                        || slot.taken_by.load(Ordering::Acquire) != self.keeper_generation() =>
                {
                    // Taken by a keeper that has since gone: nobody will answer.
                    slot.state.store(FREE, Ordering::Release);
                    return Waited::NoKeeper;
                }
                TAKEN
                    if cancel_or_die_pending()
                        && slot
                            .state
                            .compare_exchange(TAKEN, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok() =>
                {
                    return Waited::Interrupted { taken: true };
                }
                _ => {}
            }
            if let Some(until) = poll_until {
                if !interrupt_pending() && !self.others_asking(slot) && Instant::now() < until {
                    std::thread::yield_now();
                    continue;
                }
                // From here the keeper wakes this backend: give it the latch, then look at the
                // slot once more before sleeping (an answer may have come just before).
                poll_until = None;
                slot.asker_latch.store(my_latch(), Ordering::SeqCst);
                continue;
            }
            // A cancel or termination sets the latch: it is seen at once.
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

    /// The keeper, having answered a lone question: look for the next one (or a dropped
    /// database) until `budget` has passed; true as soon as there is one to take.
    pub fn await_question(&self, budget: Duration) -> bool {
        let until = Instant::now() + budget;
        loop {
            if self.asks.iter().any(|slot| slot.state.load(Ordering::Acquire) == ASKED)
                || self.drops.iter().any(|slot| slot.0.load(Ordering::Relaxed) != 0)
            {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// The keeper takes every question asked, in slot order. A slot is stamped with the
    /// keeper's generation only when this keeper takes it.
    pub fn take_questions(&self) -> Vec<Taken> {
        let me = self.keeper_generation();
        let mut taken = Vec::new();
        for (index, slot) in self.asks.iter().enumerate() {
            if slot.state.load(Ordering::Acquire) != ASKED {
                continue;
            }
            // Written before the slot is TAKEN, so an asker that sees TAKEN sees who took it;
            // harmless if the asker withdraws first (the stamp means nothing outside TAKEN).
            slot.taken_by.store(me, Ordering::Release);
            if slot.state.compare_exchange(ASKED, TAKEN, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            // SAFETY: the asker wrote the question before it set ASKED.
            let ask = unsafe { slot.ask.get().cast::<Ask>().read() };
            // A group's requests are copied out now and its group slot freed: the asker may
            // abandon the question from here on, and then nobody else would free it.
            let requests = match ask {
                Ask::GrantMany(many) => groups::take_group(many.group, many.count, many.claim),
                _ => Vec::new(),
            };
            taken.push(Taken { slot: index, ask, requests });
        }
        taken
    }

    /// Answer a question this keeper took (or free its slot, if the asker abandoned it).
    pub fn answer(&self, taken: Taken, reply: Answer) {
        let slot = &self.asks[taken.slot];
        // SAFETY: the slot is TAKEN (or ABANDONED) by this keeper: the asker only reads the
        // answer once the slot is ANSWERED.
        unsafe { slot.answer.get().cast::<Answer>().write(reply) };
        if slot.state.compare_exchange(TAKEN, ANSWERED, Ordering::SeqCst, Ordering::Acquire).is_err() {
            // Abandoned: nobody reads the answer.
            slot.state.store(FREE, Ordering::Release);
            return;
        }
        // No latch: the asker is polling, and will see ANSWERED (it gives its latch, SeqCst,
        // before it looks a last time and sleeps). The asker may have freed the slot already and
        // another claimed it: that one's latch is set for nothing, or not set, which it does not
        // need (it waits for an answer of its own).
        let latch = slot.asker_latch.load(Ordering::SeqCst);
        if !latch.is_null() {
            // SAFETY: the asker's latch, in shared memory.
            unsafe { pg_sys::SetLatch(latch) };
        }
    }

    /// Called by a keeper as it starts: slots abandoned while the previous keeper had them
    /// are nobody's; free them. (A slot still TAKEN by it is freed by its own asker.)
    pub fn free_abandoned(&self) {
        let me = self.keeper_generation();
        for slot in &self.asks {
            if slot.taken_by.load(Ordering::Acquire) == me || slot.state.load(Ordering::Acquire) != ABANDONED
            {
                continue;
            }
            // SAFETY: an ABANDONED slot's question stays as its asker wrote it until a keeper
            // frees the slot, which only this keeper does now (the one that took it has gone).
            let ask = unsafe { slot.ask.get().cast::<Ask>().read() };
            if slot.state.compare_exchange(ABANDONED, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // The keeper that took it may have died before it freed the group slot.
                if let Ask::GrantMany(many) = ask {
                    groups::free(many.group as usize, many.claim);
                }
            }
        }
    }
}

/// This backend's latch.
fn my_latch() -> *mut pg_sys::Latch {
    // SAFETY: MyLatch is set at process start; a backend running SQL has its shared latch.
    unsafe { pg_sys::MyLatch }
}

/// Whether a signal handler has flagged an interrupt (a cancel, a termination, or another)
/// for the next CHECK_FOR_INTERRUPTS().
fn interrupt_pending() -> bool {
    let flag = &raw const pg_sys::InterruptPending;
    // SAFETY: the address of the flag signal handlers set: a valid, aligned pointer to a sig_atomic_t; read as the volatile it is.
    unsafe { std::ptr::read_volatile(flag) != 0 }
}

/// Whether the pending interrupt is one that will raise: a cancel (or statement_timeout) or a
/// termination. Only those justify abandoning a question the keeper has already taken.
fn cancel_or_die_pending() -> bool {
    let cancel = &raw const pg_sys::QueryCancelPending;
    let die = &raw const pg_sys::ProcDiePending;
    // SAFETY: the address of a flag signal handlers set: a valid, aligned sig_atomic_t, read as the volatile it is.
    let cancel = unsafe { std::ptr::read_volatile(cancel) };
    // SAFETY: as above.
    let die = unsafe { std::ptr::read_volatile(die) };
    cancel != 0 || die != 0
}

// The slots are only reached through their atomics and the protocol above.
// SAFETY: see above.
unsafe impl Sync for AskSlot {}
