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
//!  EMPTY     | waiting for the value                         | -
//!  FILLED    | `value` holds it; the receiver takes it       | the select (send)
//!  CANCELLED | the select's operation was dropped: the       | the select (drop)
//!            | receiver starts its operation again           |
//!  ABANDONED | the receiver's operation was dropped (a       | the receiver (dynamic select
//!            | dynamic select that reserved it): the select  | recv dropped, or a recv
//!            | sends the value the ordinary way              | future dropped)
//!  UPDATING  | a future receiver swaps its waker; back to    | the receiver (future)
//!            | EMPTY at once                                 |
//! ```
//!
//! Only unbuffered channels use it: with a buffer, readiness is room, and a select's send
//! case waits as an observer, then reserves the room (`Chan::reserve_room`).
//!
//! A receiver that claimed the select waits for the value as long as its operation may
//! wait (`Deferred::wait_with`): a blocking one until it comes, a timed one to its
//! deadline, a `try_recv` or a `select!` with `default` not at all; then it abandons the
//! hand-off (ABANDONED) and the select's operation sends the ordinary way.
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

/// The slot a dynamic select's send case hands its value through (module doc).
pub(crate) struct Deferred<T> {
    /// EMPTY, FILLED, CANCELLED or ABANDONED (table above).
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
        if self
            .state
            .compare_exchange(EMPTY, UPDATING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: UPDATING keeps `fill`/`cancel` from reading it (module Safety).
        let old = unsafe { (*self.receiver.get()).replace(new) };
        self.state.store(EMPTY, Ordering::Release);
        drop(old); // a waker's drop is executor code: after the state is back
        true
    }

    /// EMPTY -> `to`, waiting out a future receiver's waker swap; true if done (the caller
    /// then wakes the receiver), false if the state was already settled.
    fn settle(&self, to: u8) -> bool {
        let mut spins = 0u32;
        loop {
            match self
                .state
                .compare_exchange_weak(EMPTY, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(EMPTY) => {}
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

    /// The select gives its value. `Err(v)` if the receiver abandoned it (send it the
    /// ordinary way).
    pub(crate) fn fill(&self, v: T) -> Result<(), T> {
        // SAFETY: only the select writes `value`, and only before FILLED.
        unsafe { *self.value.get() = Some(v) };
        if self.settle(FILLED) {
            self.wake_receiver();
            Ok(())
        } else {
            // ABANDONED: nobody will read it; take it back.
            // SAFETY: not FILLED, so no reader; we are the only writer.
            Err(unsafe { (*self.value.get()).take() }.expect("just written"))
        }
    }

    /// The select's operation was dropped: the receiver starts again.
    pub(crate) fn cancel(&self) {
        if self.settle(CANCELLED) {
            self.wake_receiver();
        }
    }

    /// The receiver's operation was dropped before it took the value. False if the value
    /// is already there (the caller then takes it with `wait`).
    pub(crate) fn abandon(&self) -> bool {
        self.state
            .compare_exchange(EMPTY, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
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
    /// then it abandons the hand-off (the select sends its value the ordinary way) and gets
    /// None. A select's caller may take as long as it likes between `select()` and
    /// `SelectedOperation::send`: only an operation that may wait for ever waits that long.
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
