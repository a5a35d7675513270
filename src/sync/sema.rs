//! A counting semaphore with a FIFO queue of parked waiters: the blocking half of `Mutex`,
//! `RwLock`, `WaitGroup` and `Once` (Go's `runtime/sema.go`, one queue per semaphore instead
//! of Go's address-hashed table).
//!
//! `acquire` takes a unit of `count` if there is one, otherwise queues a [`Waiter`] and parks;
//! `release` adds a unit and wakes the first waiter. With `handoff`, the releaser takes the unit
//! on the waiter's behalf and passes it directly (and a goroutine then yields, so the waiter
//! runs next): this is what makes `Mutex`'s starvation mode fair.
//!
//! No lost wake-ups: a waiter increments `nwait` *then* re-checks `count`; a releaser
//! increments `count` *then* reads `nwait` (both SeqCst). Either the waiter sees the unit or
//! the releaser sees the waiter. A woken waiter that was not handed a unit competes for it
//! again and re-queues (at the back) if someone else took it first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard};

use super::waiter::{Waiter, HANDOFF, WOKEN};
use crate::runtime::park::WaitReason;

/// A semaphore whose waiters park.
pub(crate) struct Sema {
    /// Units available (Go's `*addr`).
    count: AtomicU32,
    /// Waiters queued or about to queue; read without the lock by `release`'s fast path.
    nwait: AtomicU32,
    /// Parked waiters, first to be woken at the front. Held only for queue surgery.
    queue: StdMutex<VecDeque<Arc<Waiter>>>,
}

impl Default for Sema {
    fn default() -> Sema {
        Sema::new(0)
    }
}

impl Sema {
    /// A semaphore holding `count` units.
    pub(crate) const fn new(count: u32) -> Sema {
        Sema {
            count: AtomicU32::new(count),
            nwait: AtomicU32::new(0),
            queue: StdMutex::new(VecDeque::new()),
        }
    }

    fn queue(&self) -> StdGuard<'_, VecDeque<Arc<Waiter>>> {
        // The queue is never left inconsistent by a panic (no user code runs under it).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a unit if one is available, without blocking.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let mut v = self.count.load(Ordering::SeqCst);
        loop {
            if v == 0 {
                return false;
            }
            match self
                .count
                .compare_exchange_weak(v, v - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(x) => v = x,
            }
        }
    }

    /// Takes a unit, parking until one is available. `lifo` queues at the front (a waiter
    /// that already waited once, as Go's Mutex does).
    pub(crate) fn acquire(&self, lifo: bool, reason: WaitReason) {
        if self.try_acquire() {
            return;
        }
        loop {
            let w = {
                let mut q = self.queue();
                self.nwait.fetch_add(1, Ordering::SeqCst);
                if self.try_acquire() {
                    self.nwait.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                let w = Waiter::new();
                if lifo {
                    q.push_front(w.clone());
                } else {
                    q.push_back(w.clone());
                }
                w
            };
            // Publish (queued), unlock (guard dropped), park.
            if w.wait(reason) == HANDOFF || self.try_acquire() {
                return;
            }
        }
    }

    /// Adds a unit and wakes the first waiter, if any. With `handoff` the unit goes straight
    /// to that waiter and the calling goroutine yields so that it runs next.
    pub(crate) fn release(&self, handoff: bool) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.nwait.load(Ordering::SeqCst) == 0 {
            return;
        }
        let w = {
            let mut q = self.queue();
            if self.nwait.load(Ordering::SeqCst) == 0 {
                return;
            }
            let w = q.pop_front();
            if w.is_some() {
                self.nwait.fetch_sub(1, Ordering::SeqCst);
            }
            w
        };
        if let Some(w) = w {
            let handed = handoff && self.try_acquire();
            w.wake(if handed { HANDOFF } else { WOKEN });
            if handed && crate::runtime::park::in_goroutine() {
                crate::runtime::yield_now();
            }
        }
    }
}
