//! `Semaphore`: a weighted counting semaphore (golang.org/x/sync/semaphore) with RAII permits.
//!
//! State under one small lock: units in use (`cur`) and a FIFO queue of waiters, each asking
//! for `n` units. Waiters are served strictly in order: a large request at the front is not
//! overtaken by smaller ones behind it (no starvation of big requests), and `try_acquire`
//! fails while anybody waits. A waiter is granted its units *by the releaser*, under the lock
//! (`cur += n`, then woken with HANDOFF), so a woken waiter never has to compete again. A
//! waiter that times out removes itself under the lock; if it is already gone, it was
//! granted its units and keeps them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard};
use std::time::{Duration, Instant};

use super::waiter::{Waiter, HANDOFF, WAITING};
use crate::runtime::park::WaitReason;

/// A counting semaphore with a fixed number of permits; [`acquire`](Semaphore::acquire)
/// parks until a permit is free and returns it as a guard that gives it back on drop.
///
/// ```
/// let sem = gort::sync::Semaphore::new(2);
/// let a = sem.acquire();
/// let b = sem.acquire_many(1);
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert!(sem.try_acquire().is_some());
/// drop(b);
/// ```
pub struct Semaphore {
    /// Total permits.
    size: usize,
    /// Permits in use and the waiters.
    state: StdMutex<State>,
}

struct State {
    /// Permits held.
    cur: usize,
    /// Waiters in arrival order, with the number of permits each wants.
    waiters: VecDeque<(usize, Arc<Waiter>)>,
}

/// Permits held from a [`Semaphore`]; released when dropped.
#[must_use = "permits are released at once if not held"]
pub struct Permit<'a> {
    /// Where to release.
    sem: &'a Semaphore,
    /// How many permits.
    n: usize,
}

/// Permits held from an `Arc<Semaphore>`, with no lifetime (to move into a goroutine).
#[must_use = "permits are released at once if not held"]
pub struct OwnedPermit {
    /// Where to release.
    sem: Arc<Semaphore>,
    /// How many permits.
    n: usize,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    /// If `permits` is zero (nothing could ever be acquired).
    pub fn new(permits: usize) -> Semaphore {
        assert!(
            permits > 0,
            "sync: Semaphore::new(0): a semaphore needs at least one permit"
        );
        Semaphore {
            size: permits,
            state: StdMutex::new(State {
                cur: 0,
                waiters: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> StdGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, n: usize) {
        assert!(
            n <= self.size,
            "sync: Semaphore: acquire of {n} permits exceeds the semaphore's size {}",
            self.size
        );
    }

    /// The number of permits the semaphore was created with.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Permits free right now (a racy snapshot).
    pub fn available_permits(&self) -> usize {
        self.size - self.state().cur
    }

    /// Goroutines and threads waiting for permits right now (a racy snapshot).
    pub fn waiters(&self) -> usize {
        self.state().waiters.len()
    }

    /// Acquires one permit, parking until one is free.
    pub fn acquire(&self) -> Permit<'_> {
        self.acquire_many(1)
    }

    /// Acquires `n` permits at once (weighted), parking until they are free. Waiters are
    /// served in arrival order.
    ///
    /// # Panics
    /// If `n` exceeds the semaphore's size (it could never be satisfied).
    pub fn acquire_many(&self, n: usize) -> Permit<'_> {
        self.acquire_raw(n, None);
        Permit { sem: self, n }
    }

    /// Acquires one permit if one is free now and nobody is waiting.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_many(1)
    }

    /// Acquires `n` permits if they are free now and nobody is waiting.
    pub fn try_acquire_many(&self, n: usize) -> Option<Permit<'_>> {
        self.try_raw(n).then(|| Permit { sem: self, n })
    }

    /// Acquires one permit, giving up after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        self.acquire_many_timeout(1, timeout)
    }

    /// Acquires `n` permits, giving up after `timeout`.
    pub fn acquire_many_timeout(&self, n: usize, timeout: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now().checked_add(timeout);
        self.acquire_raw(n, Some(deadline))
            .then(|| Permit { sem: self, n })
    }

    /// Like [`acquire`](Semaphore::acquire), for an `Arc<Semaphore>`: the permit owns a
    /// reference and can be moved into a goroutine.
    pub fn acquire_owned(self: &Arc<Self>) -> OwnedPermit {
        self.acquire_raw(1, None);
        OwnedPermit {
            sem: self.clone(),
            n: 1,
        }
    }

    /// Like [`try_acquire`](Semaphore::try_acquire), for an `Arc<Semaphore>`.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedPermit> {
        self.try_raw(1).then(|| OwnedPermit {
            sem: self.clone(),
            n: 1,
        })
    }

    fn try_raw(&self, n: usize) -> bool {
        self.check(n);
        let mut s = self.state();
        if s.waiters.is_empty() && self.size - s.cur >= n {
            s.cur += n;
            true
        } else {
            false
        }
    }

    /// `deadline`: None = no timeout; Some(None) = a timeout too far away to represent.
    fn acquire_raw(&self, n: usize, deadline: Option<Option<Instant>>) -> bool {
        self.check(n);
        let w = {
            let mut s = self.state();
            if s.waiters.is_empty() && self.size - s.cur >= n {
                s.cur += n;
                return true;
            }
            let w = Waiter::new();
            s.waiters.push_back((n, w.clone()));
            w
        };
        match deadline {
            None | Some(None) => {
                w.wait(WaitReason::Semacquire);
                true
            }
            Some(Some(d)) => {
                if w.wait_until(WaitReason::Semacquire, d) != WAITING {
                    return true;
                }
                let mut s = self.state();
                match s.waiters.iter().position(|(_, x)| Arc::ptr_eq(x, &w)) {
                    Some(i) => {
                        s.waiters.remove(i);
                        // If we were first, the ones behind us may fit now.
                        if i == 0 {
                            self.grant(&mut s);
                        }
                        false
                    }
                    None => {
                        debug_assert_eq!(w.state(), HANDOFF);
                        true // granted just as we timed out: keep the permits
                    }
                }
            }
        }
    }

    fn release(&self, n: usize) {
        let mut s = self.state();
        assert!(s.cur >= n, "sync: Semaphore: released more than held");
        s.cur -= n;
        self.grant(&mut s);
    }

    /// Grants permits to waiters in order while the first one fits.
    fn grant(&self, s: &mut State) {
        while let Some((n, _)) = s.waiters.front() {
            if self.size - s.cur < *n {
                break;
            }
            let (n, w) = s.waiters.pop_front().expect("front exists");
            s.cur += n;
            w.wake(HANDOFF);
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("size", &self.size)
            .field("available", &self.available_permits())
            .finish()
    }
}

impl Permit<'_> {
    /// How many permits this guard holds.
    pub fn count(&self) -> usize {
        self.n
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("n", &self.n).finish()
    }
}

impl OwnedPermit {
    /// How many permits this guard holds.
    pub fn count(&self) -> usize {
        self.n
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").field("n", &self.n).finish()
    }
}
