//! Poisoning as std does it: a flag per lock, set when a guard is dropped by a panic.
//!
//! A guard remembers whether its thread was already panicking when it locked
//! ([`Guard::panicking`]); when it is dropped while a panic is unwinding that started after
//! the lock, the lock is poisoned. The next `lock`/`read`/`write` still gets the guard, inside
//! `Err(PoisonError)`, until `clear_poison`.
//!
//! `std::thread::panicking()` is per OS thread. That is right for a goroutine too: a goroutine
//! that unwinds does so on one worker thread, and it keeps that thread until the unwinding
//! ends (the runtime does not run another goroutine on a worker whose goroutine is unwinding),
//! so no other goroutine can see this panic as its own.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{LockResult, PoisonError, TryLockError, TryLockResult};

/// A lock's poison flag.
pub(crate) struct Flag {
    /// Set by a guard dropped during a panic that started after it locked.
    failed: AtomicBool,
}

/// What a guard records when it locks.
#[derive(Clone, Copy)]
pub(crate) struct Guard {
    /// The locking thread was already panicking (a lock taken in a `Drop` during unwinding
    /// does not poison).
    panicking: bool,
}

impl Flag {
    pub(crate) const fn new() -> Flag {
        Flag {
            failed: AtomicBool::new(false),
        }
    }

    /// Called right after locking: the guard's record, in `Err` if the lock is poisoned.
    #[inline]
    pub(crate) fn guard(&self) -> LockResult<Guard> {
        let g = Guard {
            panicking: std::thread::panicking(),
        };
        if self.get() {
            Err(PoisonError::new(g))
        } else {
            Ok(g)
        }
    }

    /// Called by a guard's drop, before it unlocks: poisons if a panic began meanwhile.
    #[inline]
    pub(crate) fn done(&self, guard: &Guard) {
        if !guard.panicking && std::thread::panicking() {
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// True if poisoned.
    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Clears the poison (`clear_poison`).
    pub(crate) fn clear(&self) {
        self.failed.store(false, Ordering::Relaxed);
    }

    /// `Ok(v)`, or `Err(PoisonError(v))` if poisoned.
    #[inline]
    pub(crate) fn wrap<T>(&self, v: T) -> LockResult<T> {
        if self.get() {
            Err(PoisonError::new(v))
        } else {
            Ok(v)
        }
    }
}

/// Poisons its lock if dropped by a panic that began after the lock was taken. Guards hold
/// one as their *first* field, so it runs before the inner guard unlocks.
pub(crate) struct OnDrop<'a> {
    /// The lock's flag.
    pub(crate) flag: &'a Flag,
    /// Recorded at lock time.
    pub(crate) guard: Guard,
}

impl Drop for OnDrop<'_> {
    #[inline]
    fn drop(&mut self) {
        self.flag.done(&self.guard);
    }
}

/// Builds a guard from a freshly taken lock: `make(record)` in `Ok`, or in `Err` if poisoned.
#[inline]
pub(crate) fn lock_result<'a, G>(
    flag: &'a Flag,
    make: impl FnOnce(OnDrop<'a>) -> G,
) -> LockResult<G> {
    match flag.guard() {
        Ok(guard) => Ok(make(OnDrop { flag, guard })),
        Err(e) => Err(PoisonError::new(make(OnDrop {
            flag,
            guard: e.into_inner(),
        }))),
    }
}

/// std's `Debug` for a lock: `Name { data: .., poisoned: .., .. }`, with `<locked>` when the
/// data cannot be read without waiting. `attempt` is a `try_lock`/`try_read` of the lock.
pub(crate) fn fmt_lock<T: ?Sized + fmt::Debug, G: Deref<Target = T>>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    attempt: TryLockResult<G>,
    poisoned: bool,
) -> fmt::Result {
    let mut d = f.debug_struct(name);
    match attempt {
        Ok(g) => d.field("data", &&*g),
        Err(TryLockError::Poisoned(e)) => d.field("data", &&**e.get_ref()),
        Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
    };
    d.field("poisoned", &poisoned);
    d.finish_non_exhaustive()
}
