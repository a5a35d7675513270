//! `Condvar`: a condition variable for gort's [`Mutex`] (Go's `sync.Cond`).
//!
//! A FIFO queue of [`Waiter`]s under a small internal lock. `wait` queues its waiter *before*
//! unlocking the mutex, so a notifier that locks the mutex after the waiter decided to wait
//! always finds it (no lost wake-up). Notifiers wake waiters under the queue lock, so a
//! waiter that times out and does not find itself in the queue knows it was notified and
//! reports a wake-up, never a timeout that swallowed a `notify_one`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard};
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use super::waiter::{Waiter, WAITING, WOKEN};
use crate::runtime::park::WaitReason;

/// A condition variable: goroutines wait on it, with a [`Mutex`](super::Mutex) held, until
/// another notifies them. Wake-ups may be spurious; wait in a loop, or use
/// [`wait_while`](Condvar::wait_while).
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Condvar, Mutex};
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// gort::spawn(move || {
///     *p2.0.lock() = true;
///     p2.1.notify_one();
/// });
/// let (lock, cv) = &*pair;
/// let ready = cv.wait_while(lock.lock(), |ready| !*ready);
/// assert!(*ready);
/// ```
pub struct Condvar {
    /// Number of queued waiters, readable without the lock (notify's fast path).
    nwait: AtomicUsize,
    /// Waiters in arrival order.
    queue: StdMutex<VecDeque<Arc<Waiter>>>,
}

/// Whether a timed wait returned because its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    pub(crate) fn new(timed_out: bool) -> WaitTimeoutResult {
        WaitTimeoutResult(timed_out)
    }

    /// True if the wait ended because the timeout elapsed (not by a notification).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Condvar {
        Condvar {
            nwait: AtomicUsize::new(0),
            queue: StdMutex::new(VecDeque::new()),
        }
    }

    fn queue(&self) -> StdGuard<'_, VecDeque<Arc<Waiter>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self) -> Arc<Waiter> {
        let w = Waiter::new();
        let mut q = self.queue();
        q.push_back(w.clone());
        self.nwait.store(q.len(), Ordering::SeqCst);
        w
    }

    /// Unlocks the guard's mutex, parks until notified, locks it again and returns the guard.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        let w = self.enqueue();
        drop(guard);
        w.wait(WaitReason::CondWait);
        mutex.lock()
    }

    /// Waits while `condition` holds, re-checking it (with the lock held) after each wake-up.
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Condvar::wait), giving up after `dur`.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = Instant::now().checked_add(dur);
        let mutex = guard.mutex;
        let w = self.enqueue();
        drop(guard);
        let timed_out = match deadline {
            None => {
                w.wait(WaitReason::CondWait);
                false
            }
            Some(d) => w.wait_until(WaitReason::CondWait, d) == WAITING && self.remove(&w),
        };
        (mutex.lock(), WaitTimeoutResult(timed_out))
    }

    /// Like [`wait_while`](Condvar::wait_while), giving up after `dur` in total.
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let start = Instant::now();
        while condition(&mut *guard) {
            let Some(left) = dur.checked_sub(start.elapsed()) else {
                return (guard, WaitTimeoutResult(true));
            };
            guard = self.wait_timeout(guard, left).0;
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Takes `w` out of the queue after a timeout. False if a notifier took it first (it
    /// was then woken under the queue lock, so the wake-up is already visible).
    fn remove(&self, w: &Arc<Waiter>) -> bool {
        let mut q = self.queue();
        match q.iter().position(|x| Arc::ptr_eq(x, w)) {
            Some(i) => {
                q.remove(i);
                self.nwait.store(q.len(), Ordering::SeqCst);
                true
            }
            None => {
                debug_assert_ne!(w.state(), WAITING);
                false
            }
        }
    }

    /// Wakes one waiting goroutine, the one that has waited longest, if any.
    pub fn notify_one(&self) {
        if self.nwait.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut q = self.queue();
        if let Some(w) = q.pop_front() {
            self.nwait.store(q.len(), Ordering::SeqCst);
            w.wake(WOKEN);
        }
    }

    /// Wakes every waiting goroutine.
    pub fn notify_all(&self) {
        if self.nwait.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut q = self.queue();
        self.nwait.store(0, Ordering::SeqCst);
        for w in q.drain(..) {
            w.wake(WOKEN);
        }
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
