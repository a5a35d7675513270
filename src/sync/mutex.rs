//! `Mutex<T>`: a mutual-exclusion lock whose waiters park (Go's `sync.Mutex`).
//!
//! The lock is one `AtomicU32` (`RawMutex::state`) plus a [`Sema`] that waiters park on:
//!
//! ```text
//!  bit / field        | meaning
//!  -------------------+-----------------------------------------------------------------
//!  LOCKED   (1 << 0)  | held
//!  WOKEN    (1 << 1)  | a waiter is awake (spinning or just woken): unlock need not wake one
//!  STARVING (1 << 2)  | starvation mode: unlock hands the lock to the first waiter
//!  waiters  (>> 3)    | goroutines/threads parked (or about to park) on the semaphore
//! ```
//!
//! Two modes, as in Go. **Normal**: waiters queue FIFO, but a woken waiter competes with newly
//! arriving lockers (which are already running, and usually win): this is fast, and is where
//! the uncontended path — one CAS to lock, one atomic add to unlock — lives. A newcomer spins
//! briefly (4 rounds, multi-core only, and only when its processor has nothing else to run)
//! before parking. **Starving**: a waiter that failed to get the lock for more than 1 ms
//! switches the mutex to starvation mode; unlock then hands ownership straight to the waiter
//! at the front of the queue, newcomers do not spin or barge but queue at the back. The last
//! waiter, or one that waited less than 1 ms, switches back to normal mode.
//!
//! The guard does not depend on the OS thread: a goroutine may hold a `MutexGuard` across any
//! blocking point (a channel operation, a sleep, another lock) and resume on another worker
//! thread; it may even send the guard to another goroutine. Unlocking happens only by dropping
//! the guard, so "unlock of unlocked mutex" cannot happen. There is no poisoning: a panic
//! while the lock is held unlocks it on unwind, and the next `lock` simply succeeds.
//!
//! # Safety
//!
//! 1. **At most one holder.** A `RawMutex` is held by at most one party at a time: it becomes
//!    held only by a CAS that sets LOCKED on a state without LOCKED or STARVING (`lock`,
//!    `try_lock`, `lock_slow`), or, in starvation mode, by the one waiter the unlocker handed
//!    it to through the semaphore (LOCKED is then clear but STARVING is set, so nobody else can
//!    take it until that waiter sets LOCKED).
//! 2. **The data is reached only through the holder.** `Mutex::data` is accessed only through
//!    a `MutexGuard`, or through `&mut Mutex`/by value (exclusive by the borrow checker). A
//!    guard is created only right after `lock` or a successful `try_lock` of its own mutex, so
//!    by 1 at most one guard per mutex exists, and it alone may produce `&mut T`.
//! 3. **Unlock only by the holder, once.** `RawMutex::unlock` is an `unsafe fn` for that
//!    reason: a guard unlocks exactly once, in its `Drop` (`Condvar::wait` drops the guard and
//!    builds a new one from a fresh `lock`); `RwLock` and `Once` pair each unlock with their own
//!    lock.
//! 4. **The next holder sees the last holder's writes.** Taking the lock reads the state with
//!    Acquire (the CAS in `lock`/`try_lock`/`lock_slow`, or the AcqRel `fetch_add` of a waiter
//!    given the lock by handoff); `unlock` writes it with Release, and later changes to the word
//!    are read-modify-writes, which continue that release sequence.
//! 5. **Not tied to a thread.** Nothing records which thread locked, so a guard may be dropped
//!    on another thread: that is why `MutexGuard` is `Send` (unlike std's), for `T: Send`.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::sema::Sema;
use crate::runtime::park::WaitReason;

const LOCKED: u32 = 1;
const WOKEN: u32 = 2;
const STARVING: u32 = 4;
const WAITER_SHIFT: u32 = 3;
const ONE_WAITER: u32 = 1 << WAITER_SHIFT;
/// A waiter blocked longer than this switches the mutex to starvation mode.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// The lock without the data: used by `Mutex`, `RwLock` (writer exclusion) and `Once`.
pub(crate) struct RawMutex {
    /// The state word (module table).
    state: AtomicU32,
    /// Where waiters park.
    sema: Sema,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            sema: Sema::new(0),
        }
    }

    /// Locks, parking with `reason` if the lock is held.
    #[inline]
    pub(crate) fn lock(&self, reason: WaitReason) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(reason);
        }
    }

    /// Locks if the lock is free and not promised to a starving waiter.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & (LOCKED | STARVING) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                old,
                old | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => old = x,
            }
        }
    }

    /// True if the lock is held right now (racy; for Debug).
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    #[cold]
    fn lock_slow(&self, reason: WaitReason) {
        let mut wait_start: Option<Instant> = None;
        let mut starving = false;
        let mut awoke = false;
        let mut iter = 0;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Spin while the lock is held in normal mode (in starvation mode it is handed off,
            // spinning cannot get it).
            if old & (LOCKED | STARVING) == LOCKED && super::can_spin(iter) {
                // Tell unlock not to wake anybody: we are awake and will take it.
                if !awoke
                    && old & WOKEN == 0
                    && old >> WAITER_SHIFT != 0
                    && self
                        .state
                        .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    awoke = true;
                }
                super::spin();
                iter += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            let mut new = old;
            // Do not try to take a starving mutex: it belongs to the queue.
            if old & STARVING == 0 {
                new |= LOCKED;
            }
            if old & (LOCKED | STARVING) != 0 {
                new += ONE_WAITER;
            }
            // Switch to starvation mode, unless the lock was just released (then a normal
            // unlock expects waiters to be able to take it).
            if starving && old & LOCKED != 0 {
                new |= STARVING;
            }
            if awoke {
                debug_assert!(new & WOKEN != 0, "sync: inconsistent mutex state");
                new &= !WOKEN;
            }
            match self
                .state
                .compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if old & (LOCKED | STARVING) == 0 {
                        return; // locked with the CAS
                    }
                    // A waiter that already waited once goes back to the front of the queue.
                    let lifo = wait_start.is_some();
                    let start = *wait_start.get_or_insert_with(Instant::now);
                    self.sema.acquire(lifo, reason);
                    starving = starving || start.elapsed() > STARVATION_THRESHOLD;
                    old = self.state.load(Ordering::Acquire);
                    if old & STARVING != 0 {
                        // Ownership was handed to us; the state is not LOCKED yet and still
                        // counts us as a waiter.
                        debug_assert!(
                            old & (LOCKED | WOKEN) == 0 && old >> WAITER_SHIFT != 0,
                            "sync: inconsistent mutex state"
                        );
                        let mut delta = LOCKED.wrapping_sub(ONE_WAITER);
                        if !starving || old >> WAITER_SHIFT == 1 {
                            // Leave starvation mode: we waited little, or we are the last.
                            delta = delta.wrapping_sub(STARVING);
                        }
                        self.state.fetch_add(delta, Ordering::AcqRel);
                        return;
                    }
                    awoke = true;
                    iter = 0;
                }
                Err(x) => old = x,
            }
        }
    }

    /// Unlocks.
    ///
    /// # Safety
    /// The lock must be held by the caller (through the guard being dropped, or a `RawMutex`
    /// user that locked it; it need not be the same goroutine or thread), and this unlock must
    /// be the only one for that lock (module Safety 3). Otherwise another party may be let in
    /// while the holder is still inside, breaking the exclusion every user relies on. (An
    /// unlock of a mutex that was not locked at all is caught by an assert, after the state
    /// word was already corrupted.)
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        let new = self
            .state
            .fetch_sub(LOCKED, Ordering::Release)
            .wrapping_sub(LOCKED);
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn unlock_slow(&self, new: u32) {
        assert!(
            new.wrapping_add(LOCKED) & LOCKED != 0,
            "sync: unlock of unlocked mutex"
        );
        if new & STARVING == 0 {
            let mut old = new;
            loop {
                // Nobody to wake, or someone already awake/locked/handed the lock: done.
                if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                    return;
                }
                let next = (old - ONE_WAITER) | WOKEN;
                match self
                    .state
                    .compare_exchange(old, next, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => {
                        self.sema.release(false);
                        return;
                    }
                    Err(x) => old = x,
                }
            }
        } else {
            // Starvation mode: hand the lock to the first waiter (LOCKED stays clear; the
            // waiter sets it). Newcomers see STARVING and queue behind.
            self.sema.release(true);
        }
    }
}

/// A mutual-exclusion lock protecting a `T`, whose waiters park: a blocked goroutine frees
/// its worker thread, a blocked plain thread sleeps.
///
/// Std-shaped without poisoning: [`lock`](Mutex::lock) returns the guard directly, and a
/// panic while holding the lock just unlocks it. Fair under contention like Go's: a waiter
/// that has been blocked for more than about 1 ms gets the lock next (starvation mode).
///
/// The guard is not tied to the OS thread, so holding it across a blocking point (a channel
/// operation, a sleep, another lock) is fine, unlike std's `MutexGuard`.
///
/// ```
/// use std::sync::Arc;
/// let counter = Arc::new(gort::sync::Mutex::new(0));
/// let hs: Vec<_> = (0..8)
///     .map(|_| {
///         let c = counter.clone();
///         gort::spawn(move || {
///             for _ in 0..100 {
///                 *c.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 800);
/// ```
pub struct Mutex<T: ?Sized> {
    /// The lock.
    raw: RawMutex,
    /// The protected value; accessed only through a guard (or `&mut self`).
    data: UnsafeCell<T>,
}

// SAFETY: the mutex owns a T; moving the mutex to another thread moves the T, which needs
// T: Send.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: by module Safety 1 and 2, `&Mutex` gives access to the T only through the one
// guard at a time, with each holder ordered after the last (4): sharing the mutex between
// threads only ever moves T's exclusive access from thread to thread, which needs T: Send
// and not T: Sync (as std's Mutex).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks when dropped. It may be held across blocking points
/// and moved to another goroutine or thread.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    /// The locked mutex.
    pub(crate) mutex: &'a Mutex<T>,
}

// SAFETY: the guard gives exclusive access to T (module Safety 2), and unlocking from
// another thread is allowed by this lock (5: nothing is tied to the locking thread), so
// sending the guard is sending `&mut T`, which needs T: Send.
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}
// SAFETY: through `&MutexGuard` only `Deref` is reachable, so sharing the guard shares `&T`,
// which needs T: Sync.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the current goroutine (or thread) until it is available.
    /// Locking a mutex the caller already holds deadlocks, as in Go.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock(WaitReason::MutexLock);
        MutexGuard { mutex: self }
    }

    /// Locks the mutex if it is free right now.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard { mutex: self })
    }

    /// The value, through `&mut self` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// True if the mutex is locked right now (a racy snapshot, for diagnostics).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(v: T) -> Mutex<T> {
        Mutex::new(v)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: (2) this guard is the mutex's only holder, so the only `&mut T` that can
        // exist is one made through this guard by `deref_mut`, and `&self` borrows the guard,
        // so none is live now. Other `&T` (through a shared `&MutexGuard`) may coexist.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: (2) this guard is the mutex's only holder, and `&mut self` borrows it
        // exclusively, so no other reference to the data exists while the result lives.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: (3) the guard was created by a lock of this mutex that nothing else has
        // unlocked, and `drop` runs once, so the caller holds the lock and unlocks it once.
        unsafe { self.mutex.raw.unlock() }
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
