//! std's `Mutex` and `MutexGuard`: `gort::sync::Mutex` with std's poison flag around it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::poison::{self, Flag, OnDrop};
use super::{LockResult, PoisonError, TryLockError, TryLockResult};
use crate::sync;

/// A mutual-exclusion lock with std's API and poisoning, whose waiters park (a blocked
/// goroutine frees its worker thread). See `std::sync::Mutex`.
///
/// ```
/// use gort::std::sync::{Arc, Mutex};
/// use gort::std::thread;
///
/// let m = Arc::new(Mutex::new(0));
/// let m2 = Arc::clone(&m);
/// let _ = thread::spawn(move || {
///     let _g = m2.lock().unwrap();
///     panic!("poisons the lock");
/// })
/// .join();
/// assert!(m.is_poisoned());
/// let g = m.lock().unwrap_or_else(|e| e.into_inner());
/// assert_eq!(*g, 0);
/// ```
pub struct Mutex<T: ?Sized> {
    /// Set when a guard is dropped by a panic.
    poison: Flag,
    /// The lock and the data.
    inner: sync::Mutex<T>,
}

// A panic while the lock is held poisons it, so a broken invariant is reported to the next
// user: that is what makes sharing the mutex across `catch_unwind` sound, as std says.
impl<T: ?Sized> UnwindSafe for Mutex<T> {}
impl<T: ?Sized> RefUnwindSafe for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks when dropped (poisoning the mutex if dropped by a
/// panic). Unlike std's it is not tied to the OS thread, so it is also `Send`.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    /// Runs before `inner` unlocks (fields drop in order).
    poison: OnDrop<'a>,
    /// The held gort lock.
    inner: sync::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(t: T) -> Mutex<T> {
        Mutex {
            poison: Flag::new(),
            inner: sync::Mutex::new(t),
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking until the mutex is free. `Err` (with the guard inside) if poisoned.
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        let inner = self.inner.lock();
        poison::lock_result(&self.poison, |poison| MutexGuard { poison, inner })
    }

    /// Locks if free now: `Err(WouldBlock)` if held, `Err(Poisoned)` if poisoned.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Some(inner) => Ok(poison::lock_result(&self.poison, |poison| MutexGuard {
                poison,
                inner,
            })?),
            None => Err(TryLockError::WouldBlock),
        }
    }

    /// True if a guard was dropped by a panic (and `clear_poison` was not called since).
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison.
    #[inline]
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The data through `&mut self` (no locking); `Err` if poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let data = self.inner.get_mut();
        self.poison.wrap(data)
    }

    /// Consumes the mutex, returning the data; `Err` if poisoned.
    pub fn into_inner(self) -> LockResult<T>
    where
        T: Sized,
    {
        let Mutex { poison, inner } = self;
        poison.wrap(inner.into_inner())
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Splits the guard for `Condvar`: the gort guard to wait with, and the poison record to
    /// put back afterwards (not run meanwhile: waiting is not a drop).
    pub(super) fn into_parts(self) -> (sync::MutexGuard<'a, T>, OnDrop<'a>) {
        let MutexGuard { poison, inner } = self;
        (inner, poison)
    }

    /// Reassembles a guard after a wait: `Err` if the mutex was poisoned meanwhile.
    pub(super) fn from_parts(
        inner: sync::MutexGuard<'a, T>,
        poison: OnDrop<'a>,
    ) -> LockResult<MutexGuard<'a, T>> {
        let poisoned = poison.flag.get();
        let guard = MutexGuard { poison, inner };
        if poisoned {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(t: T) -> Mutex<T> {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        poison::fmt_lock(f, "Mutex", self.try_lock(), self.poison.get())
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
