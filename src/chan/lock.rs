//! The channel lock: a small spin lock that yields the thread when contended.
//!
//! Channel critical sections are a few dozen instructions (move a value, claim a waiter)
//! and never block, park, run user code or allocate unboundedly, so a spin lock fits: an
//! uncontended lock/unlock is one CAS and one store (std's futex mutex needs an atomic swap
//! on unlock to look for sleepers). Contention spins briefly with `spin_loop`, then yields the
//! OS thread so that a preempted holder can run. Go's runtime lock spins the same way before
//! sleeping.
//!
//! ```text
//!  locked | meaning
//!  -------+---------------------------------
//!  false  | free
//!  true   | held; the holder owns `value`
//! ```

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A spin lock around `T`.
pub(crate) struct SpinLock<T> {
    /// Held?
    locked: AtomicBool,
    /// What the lock guards.
    value: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `value` (Acquire on lock, Release on
// unlock), so sharing the lock is as safe as sending `T` between threads.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above; the lock owns its `T`.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Access to the locked value; unlocks when dropped.
pub(crate) struct SpinGuard<'a, T> {
    /// The held lock.
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    for _ in 0..(1 << (spins / 16).min(4)) {
                        std::hint::spin_loop();
                    }
                } else {
                    // The holder may have been preempted: let it run.
                    std::thread::yield_now();
                }
                spins = spins.saturating_add(1);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held by this thread.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the lock is held by this thread, exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}
