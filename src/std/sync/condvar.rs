//! std's `Condvar`: `gort::sync::Condvar`, taking and giving back std-shaped guards.
//!
//! A wait hands the inner gort guard to gort's condvar (which unlocks, parks, relocks) and
//! puts the guard's poison record back around what it returns, so a mutex poisoned while the
//! caller waited is reported as std reports it: the guard inside `Err(PoisonError)`.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

use super::{LockResult, MutexGuard, PoisonError, WaitTimeoutResult};
use crate::sync;

/// A condition variable for [`Mutex`](super::Mutex), with std's API: waits return
/// `LockResult`s. Wake-ups may be spurious; use [`wait_while`](Condvar::wait_while) or loop.
///
/// ```
/// use gort::std::sync::{Arc, Condvar, Mutex};
/// use gort::std::thread;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = Arc::clone(&pair);
/// thread::spawn(move || {
///     *pair2.0.lock().unwrap() = true;
///     pair2.1.notify_one();
/// });
/// let (lock, cvar) = &*pair;
/// let started = cvar.wait_while(lock.lock().unwrap(), |s| !*s).unwrap();
/// assert!(*started);
/// ```
#[derive(Default)]
pub struct Condvar {
    /// The one condvar implementation.
    inner: sync::Condvar,
}

impl UnwindSafe for Condvar {}
impl RefUnwindSafe for Condvar {}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Condvar {
        Condvar {
            inner: sync::Condvar::new(),
        }
    }

    /// Unlocks the guard's mutex, parks until notified, locks it again. `Err` (with the
    /// guard inside) if the mutex is poisoned when this returns.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let (inner, poison) = guard.into_parts();
        let inner = self.inner.wait(inner);
        MutexGuard::from_parts(inner, poison)
    }

    /// Waits while `condition` holds, checking it with the lock held.
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait`](Condvar::wait), giving up after `dur`.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let (inner, poison) = guard.into_parts();
        let (inner, result) = self.inner.wait_timeout(inner, dur);
        match MutexGuard::from_parts(inner, poison) {
            Ok(g) => Ok((g, result)),
            Err(e) => Err(PoisonError::new((e.into_inner(), result))),
        }
    }

    /// Like [`wait_timeout`](Condvar::wait_timeout) with the timeout in milliseconds and a
    /// `bool` "timed out" (std's deprecated `wait_timeout_ms`).
    #[deprecated(
        since = "1.6.0",
        note = "replaced by `std::sync::Condvar::wait_timeout`"
    )]
    pub fn wait_timeout_ms<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        ms: u32,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        match self.wait_timeout(guard, Duration::from_millis(u64::from(ms))) {
            Ok((g, r)) => Ok((g, r.timed_out())),
            Err(e) => {
                let (g, r) = e.into_inner();
                Err(PoisonError::new((g, r.timed_out())))
            }
        }
    }

    /// Waits while `condition` holds, giving up after `dur` in total.
    pub fn wait_timeout_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let start = Instant::now();
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult::new(false)));
            }
            let Some(left) = dur.checked_sub(start.elapsed()) else {
                return Ok((guard, WaitTimeoutResult::new(true)));
            };
            guard = self.wait_timeout(guard, left)?.0;
        }
    }

    /// Wakes one waiter, the one that has waited longest.
    pub fn notify_one(&self) {
        self.inner.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.inner.notify_all();
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
