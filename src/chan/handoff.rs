//! The deferred hand-off of a dynamic select's send on an unbuffered channel.
//!
//! A blocked `Select::select` with a send case must be a sender that peers can meet (Go's
//! selects are: a non-blocking receive finds a select blocked on the send side and completes
//! with it), yet it has no value until its caller performs the chosen operation
//! (`SelectedOperation::send(&tx, v)`). So its entry in the channel's send queue points to a
//! [`Deferred`]: a receiver that claims the entry (under the channel lock) records who it
//! is, completes the select's context, and after unlocking waits on the `Deferred` until the
//! select's caller fills it. Crossbeam's zero-capacity flavour does the same with a heap
//! packet.
//!
//! ```text
//!  state     | meaning                                       | set by
//!  ----------+-----------------------------------------------+---------------------------
//!  EMPTY     | claimed: the select is woken, has not yet     | the claimer
//!            | accepted                                      |
//!  ACCEPTED  | the select returned the send case: its caller | the select (`accept`,
//!            | gives the value (or drops the operation)      | from EMPTY)
//!  FILLED    | `value` holds it; the receiver takes it       | the select (send)
//!  CANCELLED | the select's operation was dropped: the       | the select (drop)
//!            | receiver starts its operation again           |
//!  ABANDONED | from EMPTY: the receiver gave up or was       | the receiver (`abandon`)
//!            | dropped before the select accepted: the       |
//!            | select looks at all its cases again;          |
//!            | from ACCEPTED: the select's send gives its    |
//!            | value to the channel (`Chan::put_back`), as a |
//!            | dropped receive gives a value back            |
//!  UPDATING  | a future receiver swaps its waker; back to    | the receiver (future)
//!            | the state before at once                      |
//! ```
//!
//! EMPTY is left by one CAS, so the receiver and the select agree on who came first. A
//! receiver that cannot wait (`try_recv`, `select!` with `default`, a timed receive at its
//! deadline) or whose operation is dropped abandons the hand-off: before the select
//! accepted, the select goes back to waiting on all its cases, as if never claimed; after,
//! the select's `select()` has returned the send case, and its `SelectedOperation::send`
//! gives the value to the channel, where the next receiver takes it (a value given back,
//! as by a dropped receive: `Chan::put_back_locked`). So the select never waits for a
//! partner that is gone, no receiver waits longer than its operation allows (a select's
//! caller may take as long as it likes before `send`), and the value is neither lost nor
//! duplicated. The price: a non-blocking receive that meets a blocked select's send gets
//! the value only if it is there already (it does not wait for the select's caller, as
//! it would have to, the value not existing yet); Go's select has its value from the
//! start, so there a `try_recv` would take it.
//!
//! Only unbuffered channels use it: with a buffer, readiness is room, and a select's send
//! case waits as an observer, then reserves the room (`Chan::reserve_room`).
//!
//! A receiver that claimed the select waits for the value as long as its operation may
//! wait (`Deferred::wait_with`): a blocking one until it comes, a timed one to its
//! deadline, a `try_recv` or a `select!` with `default` not at all; then it gives the
//! hand-off up (`abandon`, as above).
//!
//! The receiver may be a future (`recv_async`): it waits by polling [`Deferred::try_take`],
//! woken through its task's waker, and a re-poll with another waker replaces `receiver`
//! under the short-lived state UPDATING, which `fill`/`cancel` wait out (a few
//! instructions: a pointer swap).
//!
//! # Safety
//! `value` is written only by the select, before the Release CAS to FILLED, and read only by
//! the receiver after an Acquire load sees FILLED. `receiver` is written by the claimer,
//! under the channel lock, before it completes the select's context (Release), and after
//! that only by a future receiver while it holds the state at UPDATING; it is read by
//! `fill`/`cancel` after their CAS from EMPTY (which UPDATING excludes) and by the receiver
//! itself. `claimed` is set with it; the select reads it after its wait saw `done`
//! (Acquire).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::park::{self, Unparker, WaitReason};

const EMPTY: u8 = 0;
const FILLED: u8 = 1;
const CANCELLED: u8 = 2;
const ABANDONED: u8 = 3;
/// A future receiver is replacing its waker in `receiver` (module doc).
const UPDATING: u8 = 4;
/// The select accepted the claim (its `select()` returns the send case).
const ACCEPTED: u8 = 5;

/// The slot a dynamic select's send case hands its value through (module doc).
pub(crate) struct Deferred<T> {
    /// EMPTY, ACCEPTED, FILLED, CANCELLED, ABANDONED or UPDATING (table above).
    state: AtomicU8,
    /// The value, once FILLED.
    value: UnsafeCell<Option<T>>,
    /// The receiver that claimed the select, to unpark when filled or cancelled.
    receiver: UnsafeCell<Option<Unparker>>,
    /// A receiver claimed the select (set with `receiver`, read by the select).
    claimed: AtomicBool,
}

// SAFETY: the fields behind UnsafeCell are accessed under the protocol in the module doc
// (one writer, then a Release/Acquire edge, then one reader); `T: Send` moves between the
// two threads.
unsafe impl<T: Send> Send for Deferred<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Deferred<T> {}

/// How long a receiver that claimed a deferred send may wait for its value.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Patience {
    /// A blocking operation: as long as it takes.
    Forever,
    /// A timed operation: until its deadline.
    Until(Instant),
    /// A `try_` operation or `select!` with `default`: not at all.
    None,
}

impl Patience {
    /// The patience of an operation with this optional deadline (None: blocking).
    pub(crate) fn until(deadline: Option<Instant>) -> Patience {
        deadline.map_or(Patience::Forever, Patience::Until)
    }
}

/// What a receiver's wait on a [`Deferred`] gave.
pub(crate) enum Handed<T> {
    /// The value.
    Value(T),
    /// The select's operation was dropped: start the receive again.
    Cancelled,
}

impl<T> Deferred<T> {
    pub(crate) fn new() -> Arc<Deferred<T>> {
        Arc::new(Deferred {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
            receiver: UnsafeCell::new(None),
            claimed: AtomicBool::new(false),
        })
    }

    /// A new strong reference from the packet pointer of a claimed entry.
    ///
    /// # Safety
    /// `packet` came from `Arc::as_ptr` of a `Deferred<T>` whose select is still waiting
    /// (its context was claimed by the caller and not yet completed), so the select's own
    /// reference keeps it alive.
    pub(crate) unsafe fn from_packet(packet: *mut ()) -> Arc<Deferred<T>> {
        let p = packet as *const Deferred<T>;
        // SAFETY: function contract: `p` is a live Arc allocation.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// The claimer records itself (under the channel lock, before completing the select).
    ///
    /// # Safety
    /// The caller claimed the select's context and has not completed it.
    pub(crate) unsafe fn set_receiver(&self, u: Unparker) {
        // SAFETY: only the claimer writes, before the Release that publishes it (contract).
        unsafe { *self.receiver.get() = Some(u) };
        self.claimed.store(true, Ordering::Relaxed);
    }

    /// Did a receiver claim the select? (The select, after its wait.)
    pub(crate) fn claimed(&self) -> bool {
        // Written before the claimer's Release on `done`, which the select's wait read with
        // Acquire.
        self.claimed.load(Ordering::Relaxed)
    }

    /// A future receiver, re-polled with `waker`, makes sure `receiver` wakes it. False if
    /// the hand-off is settled meanwhile (then `try_take` has the answer).
    pub(crate) fn set_waker(&self, waker: &std::task::Waker) -> bool {
        // SAFETY: the receiver is the only writer after the claim; reading it is fine.
        if unsafe { (*self.receiver.get()).as_ref() }.is_some_and(|u| u.will_wake(waker)) {
            return true;
        }
        let new = Unparker::from_waker(waker.clone());
        // Waiting (EMPTY or ACCEPTED; the select may accept meanwhile: try again).
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if !matches!(cur, EMPTY | ACCEPTED) {
                return false;
            }
            match self
                .state
                .compare_exchange(cur, UPDATING, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(s) => cur = s,
            }
        }
        // SAFETY: UPDATING keeps `fill`/`cancel` from reading it (module Safety).
        let old = unsafe { (*self.receiver.get()).replace(new) };
        self.state.store(cur, Ordering::Release);
        drop(old); // a waker's drop is executor code: after the state is back
        true
    }

    /// `from` -> `to`, waiting out a future receiver's waker swap; true if done, false if
    /// the state was something else (the receiver gave up or was dropped).
    fn settle(&self, from: u8, to: u8) -> bool {
        let mut spins = 0u32;
        loop {
            match self
                .state
                .compare_exchange_weak(from, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(s) if s == from => {}
                Err(UPDATING) if spins < 64 => std::hint::spin_loop(),
                Err(UPDATING) => std::thread::yield_now(), // the swapper was preempted
                Err(_) => return false,
            }
            spins += 1;
        }
    }

    fn wake_receiver(&self) {
        // SAFETY: read after a CAS from EMPTY, which excludes the receiver's swap (module
        // Safety); the claimer's write happened before the select could fill or cancel.
        if let Some(u) = unsafe { (*self.receiver.get()).as_ref() } {
            u.unpark();
        }
    }

    /// The select, woken by the claim, takes it: true if the receiver still waits (the
    /// select's `select()` returns the send case), false if it gave up first (the select
    /// looks at its cases again).
    pub(crate) fn accept(&self) -> bool {
        self.settle(EMPTY, ACCEPTED)
    }

    /// The select gives its value (after `accept`). `Err(v)` if the receiver's operation
    /// was dropped meanwhile: the caller gives the value to the channel (`Chan::put_back`),
    /// as that dropped receive would have.
    pub(crate) fn fill(&self, v: T) -> Result<(), T> {
        // SAFETY: only the select writes `value`, and only before FILLED.
        unsafe { *self.value.get() = Some(v) };
        if self.settle(ACCEPTED, FILLED) {
            self.wake_receiver();
            Ok(())
        } else {
            // ABANDONED: nobody will read it; take it back.
            // SAFETY: not FILLED, so no reader; we are the only writer.
            Err(unsafe { (*self.value.get()).take() }.expect("just written"))
        }
    }

    /// The select's operation was dropped (after `accept`): the receiver starts again.
    pub(crate) fn cancel(&self) {
        if self.settle(ACCEPTED, CANCELLED) {
            self.wake_receiver();
        }
    }

    /// The receiver's operation was dropped before it took the value: before the select
    /// accepted, the select looks again; after, its send gives the value to the channel
    /// (`fill` fails). False if the value is already there or cancelled (`try_take` has it).
    pub(crate) fn abandon(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        while matches!(cur, EMPTY | ACCEPTED) {
            match self
                .state
                .compare_exchange(cur, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(s) => cur = s,
            }
        }
        false
    }

    /// The receiver waits for the value (parking; spurious wake-ups re-check).
    pub(crate) fn wait(&self) -> Handed<T> {
        loop {
            match self.try_take() {
                Some(h) => return h,
                None => park::park(WaitReason::ChanReceive),
            }
        }
    }

    /// `wait`, for a receiver with a limit: a `try_` operation or `select!` with `default`
    /// (`Patience::None`) does not wait at all, a timed one waits at most to its deadline;
    /// then it abandons the hand-off and gets None: if the select had not accepted it yet,
    /// the select looks at its cases again; if it had, its `SelectedOperation::send` gives
    /// the value to the channel (module doc). A select's caller may take as long as it
    /// likes between `select()` and `send`: only an operation that may wait for ever waits
    /// that long.
    pub(crate) fn wait_with(&self, patience: Patience) -> Option<Handed<T>> {
        let deadline = match patience {
            Patience::Forever => return Some(self.wait()),
            Patience::None => None,
            Patience::Until(d) => Some(d),
        };
        loop {
            if let Some(h) = self.try_take() {
                return Some(h);
            }
            match deadline {
                Some(d) if Instant::now() < d => park::park_until(WaitReason::ChanReceive, d),
                _ => {
                    if self.abandon() {
                        return None;
                    }
                    // Filled or cancelled meanwhile: `try_take` has it.
                }
            }
        }
    }

    /// The receiver looks without waiting: None while the value has not come. Only the
    /// receiver calls it, and takes the value once.
    pub(crate) fn try_take(&self) -> Option<Handed<T>> {
        match self.state.load(Ordering::Acquire) {
            FILLED => {
                // SAFETY: FILLED (Acquire) publishes `value`; only the receiver reads.
                let v = unsafe { (*self.value.get()).take() };
                Some(Handed::Value(v.expect("a filled hand-off holds its value")))
            }
            CANCELLED => Some(Handed::Cancelled),
            _ => None,
        }
    }
}
