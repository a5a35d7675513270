//! std's `RwLock` and its guards: `gort::sync::RwLock` with std's poison flag around it.
//!
//! As in std, only a writer poisons: a panic while a read guard is held leaves the lock
//! clean, and a write guard that is downgraded no longer poisons.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::poison::{self, Flag, OnDrop};
use super::{LockResult, TryLockError, TryLockResult};
use crate::sync;

/// A reader-writer lock with std's API and poisoning, whose waiters park; writers are not
/// starved by a stream of readers. See `std::sync::RwLock`.
///
/// ```
/// use gort::std::sync::{RwLock, RwLockWriteGuard};
///
/// let lock = RwLock::new(vec![1]);
/// {
///     let r1 = lock.read().unwrap();
///     let r2 = lock.read().unwrap();
///     assert_eq!(r1.len() + r2.len(), 2);
/// }
/// let mut w = lock.write().unwrap();
/// w.push(2);
/// let r = RwLockWriteGuard::downgrade(w);
/// assert_eq!(*r, [1, 2]);
/// ```
pub struct RwLock<T: ?Sized> {
    /// Set when a write guard is dropped by a panic.
    poison: Flag,
    /// The lock and the data.
    inner: sync::RwLock<T>,
}

impl<T: ?Sized> UnwindSafe for RwLock<T> {}
impl<T: ?Sized> RefUnwindSafe for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data; releases on drop.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    /// The held gort read lock.
    inner: sync::RwLockReadGuard<'a, T>,
}

/// Exclusive access to an [`RwLock`]'s data; releases on drop, poisoning the lock if
/// dropped by a panic.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    /// Runs before `inner` unlocks (fields drop in order).
    poison: OnDrop<'a>,
    /// The held gort write lock.
    inner: sync::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A new, unlocked lock.
    pub const fn new(t: T) -> RwLock<T> {
        RwLock {
            poison: Flag::new(),
            inner: sync::RwLock::new(t),
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds or waits for the lock. `Err` (with
    /// the guard inside) if poisoned.
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let inner = self.inner.read();
        self.poison.wrap(RwLockReadGuard { inner })
    }

    /// Locks for reading if that needs no wait: `Err(WouldBlock)` if a writer holds or
    /// waits for the lock.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        match self.inner.try_read() {
            Some(inner) => Ok(self.poison.wrap(RwLockReadGuard { inner })?),
            None => Err(TryLockError::WouldBlock),
        }
    }

    /// Locks for writing, parking until every other guard is gone. `Err` (with the guard
    /// inside) if poisoned.
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let inner = self.inner.write();
        poison::lock_result(&self.poison, |poison| RwLockWriteGuard { poison, inner })
    }

    /// Locks for writing if the lock is free now.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        match self.inner.try_write() {
            Some(inner) => Ok(poison::lock_result(&self.poison, |poison| {
                RwLockWriteGuard { poison, inner }
            })?),
            None => Err(TryLockError::WouldBlock),
        }
    }

    /// True if a write guard was dropped by a panic (and `clear_poison` was not called).
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

    /// Consumes the lock, returning the data; `Err` if poisoned.
    pub fn into_inner(self) -> LockResult<T>
    where
        T: Sized,
    {
        let RwLock { poison, inner } = self;
        poison.wrap(inner.into_inner())
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns the write lock into a read lock with no writer able to come in between
    /// (std's `downgrade`, stable since 1.92). The result no longer poisons.
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let RwLockWriteGuard { poison, inner } = s;
        // A read guard does not poison; std's downgrade skips the poison check too.
        std::mem::forget(poison);
        RwLockReadGuard {
            inner: sync::RwLockWriteGuard::downgrade(inner),
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(t: T) -> RwLock<T> {
        RwLock::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        poison::fmt_lock(f, "RwLock", self.try_read(), self.poison.get())
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
