//! A parked waiter: the one thing every wait queue in `sync` holds (Go's `sudog`).
//!
//! A waiter is created by the goroutine (or plain thread) that is about to block, put in a
//! queue under that queue's lock, and then the owner parks until its `state` leaves
//! [`WAITING`]. Whoever takes the waiter *out* of the queue owns the right to wake it, exactly
//! once, with [`Waiter::wake`]: that stores a non-zero result (Release) and unparks.
//!
//! ```text
//!  state      | meaning
//!  -----------+----------------------------------------------------------------
//!  WAITING    | in a queue (or just removed by a waker that has not woken it yet)
//!  WOKEN      | woken: re-check the condition (it may have been taken by a barger)
//!  HANDOFF    | woken *and* given what it waited for (a semaphore unit, a lock)
//! ```
//!
//! Rules: the owner never frees the waiter while a waker might touch it (both hold an `Arc`);
//! a waiter that stops waiting on its own (timeout) must take itself out of the queue under
//! the queue's lock — if it is no longer there, a waker has it and the owner must consume the
//! wake-up (queues whose waiters time out wake them under the lock, so by then it is visible).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::park::{self, Unparker, WaitReason};

/// Still waiting.
pub(crate) const WAITING: u32 = 0;
/// Woken; the condition must be re-checked.
pub(crate) const WOKEN: u32 = 1;
/// Woken with ownership handed over.
pub(crate) const HANDOFF: u32 = 2;

/// One blocked goroutine or thread, as its queue sees it.
pub(crate) struct Waiter {
    /// Wakes the owner.
    unparker: Unparker,
    /// `WAITING` until a waker stores its result (written once by the waker).
    state: AtomicU32,
}

impl Waiter {
    /// A waiter for the calling goroutine or thread.
    #[inline]
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            unparker: park::current(),
            state: AtomicU32::new(WAITING),
        })
    }

    /// Wakes the owner with `result` (not `WAITING`). Only the one who removed the waiter from
    /// its queue may call this, once. Never blocks; allowed under a queue lock (park rule 3).
    #[inline]
    pub(crate) fn wake(&self, result: u32) {
        debug_assert_ne!(result, WAITING);
        self.state.store(result, Ordering::Release);
        self.unparker.unpark();
    }

    /// The current state (Acquire: a woken owner sees what the waker published).
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Parks until woken; returns the waker's result.
    pub(crate) fn wait(&self, reason: WaitReason) -> u32 {
        loop {
            let s = self.state();
            if s != WAITING {
                return s;
            }
            park::park(reason);
        }
    }

    /// Parks until woken or `deadline`; returns the waker's result, or `WAITING` on timeout
    /// (the caller must then take itself out of its queue, see the module rules).
    pub(crate) fn wait_until(&self, reason: WaitReason, deadline: Instant) -> u32 {
        loop {
            let s = self.state();
            if s != WAITING || Instant::now() >= deadline {
                return s;
            }
            park::park_until(reason, deadline);
        }
    }
}
