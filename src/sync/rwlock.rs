//! `RwLock<T>`: a reader-writer lock whose waiters park (Go's `sync.RWMutex`).
//!
//! `RwLock<T>` is a `RawRwLock` (the state below) beside the data. A read guard holds the
//! `RawRwLock` and a pointer to the data, not `&RwLock<T>`, so that it is covariant in `T`
//! as std's is (`RwLockReadGuard<'_, &'long U>` coerces to `RwLockReadGuard<'_, &'short U>`).
//!
//! ```text
//!  RawRwLock     | meaning
//!  --------------+------------------------------------------------------------------------
//!  writer        | RawMutex: at most one writer is between `write()` and its unlock
//!  reader_count  | readers holding or waiting; minus MAX_READERS while a writer is pending
//!  reader_wait   | readers the pending writer still waits for (departing readers count down)
//!  writer_sema   | where the pending writer parks until reader_wait reaches 0
//!  reader_sema   | where readers that arrived after a pending writer park
//! ```
//!
//! Writers are not starved: a writer first takes `writer`, then subtracts `MAX_READERS` from
//! `reader_count`, which makes every *later* reader park on `reader_sema`; it waits only for
//! the readers that were already inside. Its unlock adds `MAX_READERS` back and releases
//! exactly the readers that queued meanwhile, before letting the next writer in. So readers
//! and writers alternate under contention, and neither side can starve the other.
//!
//! Read-locking recursively is forbidden, as in Go: a pending writer blocks new readers, so a
//! goroutine that read-locks twice may deadlock with a writer in between.
//!
//! # Safety
//!
//! 1. **A write guard excludes every other guard.** A `RwLockWriteGuard` exists only while
//!    its holder owns `writer` (so there is one writer at a time, `mutex.rs` Safety 1), has
//!    made `reader_count` negative, and has seen every reader that was counted before that
//!    leave (`reader_wait` back to 0, or `reader_count` was 0). A `RwLockReadGuard` exists
//!    only after its reader was counted in `reader_count` while it was non-negative (`read`'s
//!    fast path, `try_read`), or was counted while it was negative and then released from
//!    `reader_sema` by the writer's unlock, which first makes `reader_count` non-negative
//!    again and counts those readers as inside (the next writer waits for them), or is a
//!    downgraded write guard: `downgrade_unlock` counts its holder as a reader in the same
//!    atomic add that makes `reader_count` non-negative, before it unlocks `writer`. So `data` is
//!    reached either through any number of `&T` (read guards) or through the one write guard.
//! 2. **Each side sees the other's writes.** Readers enter with an Acquire RMW on
//!    `reader_count`, or through `reader_sema` (Release/Acquire), after the writer's AcqRel
//!    `fetch_add` in `write_unlock`; they leave with a Release `fetch_sub`, and the last one a
//!    writer waits for hands over through AcqRel on `reader_wait` and `writer_sema`. The writer
//!    enters with AcqRel RMWs on `reader_count` and `reader_wait`. Writers are ordered among
//!    themselves by `writer`.
//! 3. **`writer` is unlocked only by its holder, once** (`RawMutex::unlock`'s contract): by
//!    `write_unlock`, run once from the write guard's `Drop`, or by `downgrade_unlock`, run
//!    once by `downgrade`, which consumes the guard without running its `Drop`, or by
//!    `try_write` right after its own successful `try_lock` when it gives up.
//! 4. **Not tied to a thread.** Nothing records which thread locked, so guards may be sent and
//!    dropped on other threads (hence their `Send` impls).
//!
//! `reader_count` must stay below `MAX_READERS` (2^30 readers inside or waiting) for its
//! sign to mean "writer pending". Only leaked guards (`mem::forget`) could get there; `read`
//! and `try_read` check it and panic ("too many read locks"), as std's RwLock does, after
//! undoing their own count.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};

use super::mutex::RawMutex;
use super::sema::Sema;
use crate::runtime::park::WaitReason;

const MAX_READERS: i32 = 1 << 30;

/// A reader-writer lock protecting a `T`: many readers or one writer, with parking waiters
/// and writers that are never starved by a stream of readers. No poisoning.
///
/// ```
/// let lock = gort::sync::RwLock::new(5);
/// {
///     let r1 = lock.read();
///     let r2 = lock.read();
///     assert_eq!(*r1 + *r2, 10);
/// }
/// *lock.write() += 1;
/// assert_eq!(*lock.read(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    /// The lock without the data.
    raw: RawRwLock,
    /// The protected value.
    data: UnsafeCell<T>,
}

/// The lock's state, apart from the data (so that a read guard can hold it without being
/// invariant in `T`, as std's read guard is covariant).
struct RawRwLock {
    /// Held by the writer for its whole critical section (writers exclude each other).
    writer: RawMutex,
    /// Readers inside or waiting; negative (offset by MAX_READERS) while a writer is pending.
    reader_count: AtomicI32,
    /// Readers a pending writer still waits for.
    reader_wait: AtomicI32,
    /// The pending writer parks here.
    writer_sema: Sema,
    /// Readers that arrived after a pending writer park here.
    reader_sema: Sema,
}

// SAFETY: the lock owns a T; moving the lock to another thread moves the T (T: Send).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: like std's RwLock. By module Safety 1 and 2, `&RwLock` gives either `&T` to readers
// on several threads at once (needs T: Sync) or `&mut T` to one writer at a time, each ordered
// after the previous ones (moves exclusive access between threads: needs T: Send).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value; releases on drop.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    /// The value (`RwLock::data`); a pointer rather than `&'a RwLock<T>` so that the guard
    /// is covariant in `T`, as std's.
    data: NonNull<T>,
    /// The read-locked lock.
    raw: &'a RawRwLock,
}

/// Exclusive access to an [`RwLock`]'s value; releases on drop.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    /// The write-locked lock.
    lock: &'a RwLock<T>,
}

// SAFETY: a read guard gives only `&T` (module Safety 1), and its drop only touches the
// lock's atomics and semaphores, which are thread-safe and not tied to the locking thread (4):
// sending or sharing it is sending `&T`, which needs T: Sync.
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: as above: sharing a read guard shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a write guard gives `&mut T` (module Safety 1) and may be dropped on any thread (4),
// so sending it needs T: Send. The extra T: Sync (the lock's own `Sync` bound) is stricter
// than needed, which is harmless.
unsafe impl<T: ?Sized + Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: through `&RwLockWriteGuard` only `Deref` is reachable: sharing it shares `&T`,
// which needs T: Sync.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock {
                writer: RawMutex::new(),
                reader_count: AtomicI32::new(0),
                reader_wait: AtomicI32::new(0),
                writer_sema: Sema::new(0),
                reader_sema: Sema::new(0),
            },
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds the lock or is waiting for it.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let r = self.raw.reader_count.fetch_add(1, Ordering::Acquire) + 1;
        let readers = if r < 0 { r + MAX_READERS } else { r };
        if readers >= MAX_READERS - 1 {
            // Leaked guards (mem::forget) would otherwise break the writer-pending encoding.
            self.raw.reader_count.fetch_sub(1, Ordering::Release);
            panic!("sync: too many read locks on a RwLock (2^30)");
        }
        if r < 0 {
            // A writer is pending: wait for it to finish.
            self.raw.reader_sema.acquire(false, WaitReason::RwLockRead);
        }
        self.read_guard()
    }

    /// Locks for reading if no writer holds or waits for the lock.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut c = self.raw.reader_count.load(Ordering::Relaxed);
        loop {
            if c < 0 {
                return None;
            }
            if c >= MAX_READERS - 2 {
                panic!("sync: too many read locks on a RwLock (2^30)");
            }
            match self.raw.reader_count.compare_exchange_weak(
                c,
                c + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.read_guard()),
                Err(x) => c = x,
            }
        }
    }

    /// Locks for writing, parking until every reader and writer has left. Readers arriving
    /// meanwhile wait behind this writer.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.raw.writer.lock(WaitReason::RwLockWrite);
        // Announce the pending writer to readers; r = readers inside (the old count).
        let r = self
            .raw
            .reader_count
            .fetch_sub(MAX_READERS, Ordering::AcqRel);
        // Wait for the readers already inside.
        if r != 0 && self.raw.reader_wait.fetch_add(r, Ordering::AcqRel) + r != 0 {
            self.raw.writer_sema.acquire(false, WaitReason::RwLockWrite);
        }
        RwLockWriteGuard { lock: self }
    }

    /// Locks for writing if the lock is entirely free.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if !self.raw.writer.try_lock() {
            return None;
        }
        if self
            .raw
            .reader_count
            .compare_exchange(0, -MAX_READERS, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: (3) we locked `writer` just above with `try_lock`, no guard was made,
            // and this is the only unlock of that lock.
            unsafe { self.raw.writer.unlock() };
            return None;
        }
        Some(RwLockWriteGuard { lock: self })
    }

    /// The value, through `&mut self` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// A read guard for this lock; the caller holds a read lock (module Safety 1).
    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            // SAFETY: `UnsafeCell::get` never returns null.
            data: unsafe { NonNull::new_unchecked(self.data.get()) },
            raw: &self.raw,
        }
    }
}

impl RawRwLock {
    fn read_unlock(&self) {
        let r = self.reader_count.fetch_sub(1, Ordering::Release) - 1;
        if r < 0 {
            self.read_unlock_slow(r);
        }
    }

    #[cold]
    fn read_unlock_slow(&self, r: i32) {
        assert!(
            r + 1 != 0 && r + 1 != -MAX_READERS,
            "sync: RUnlock of unlocked RWMutex"
        );
        // A writer is pending; the last reader it waits for wakes it.
        if self.reader_wait.fetch_sub(1, Ordering::AcqRel) - 1 == 0 {
            self.writer_sema.release(false);
        }
    }

    /// `write_unlock` that also counts the caller as a reader inside, in the same atomic step
    /// that ends the writer's turn (so no other writer can come between).
    fn downgrade_unlock(&self) {
        // +MAX_READERS: no writer pending any more; +1: the downgrading writer, now a reader.
        let r = self
            .reader_count
            .fetch_add(MAX_READERS + 1, Ordering::AcqRel)
            + MAX_READERS;
        assert!(r < MAX_READERS, "sync: Unlock of unlocked RWMutex");
        // Let in the readers that queued behind us (r counts them, not us).
        for _ in 0..r {
            self.reader_sema.release(false);
        }
        // SAFETY: (3) called only by `downgrade`, which consumed the write guard (so its
        // `write_unlock` never runs) and which exists only while its holder holds `writer` (1).
        unsafe { self.writer.unlock() };
    }

    fn write_unlock(&self) {
        // Announce to readers there is no active writer.
        let r = self.reader_count.fetch_add(MAX_READERS, Ordering::AcqRel) + MAX_READERS;
        assert!(r < MAX_READERS, "sync: Unlock of unlocked RWMutex");
        // Let in the readers that queued behind us.
        for _ in 0..r {
            self.reader_sema.release(false);
        }
        // SAFETY: (3) `write_unlock` runs only from the write guard's `drop`, once, and the
        // write guard exists only while its holder holds `writer` (1).
        unsafe { self.writer.unlock() };
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns the write lock into a read lock without letting any writer in between (std's
    /// `RwLockWriteGuard::downgrade`). Readers that queued behind this writer enter with it.
    ///
    /// ```
    /// use gort::sync::{RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new(1);
    /// let mut w = lock.write();
    /// *w += 1;
    /// let r = RwLockWriteGuard::downgrade(w);
    /// assert_eq!(*r, 2);
    /// assert!(lock.try_write().is_none());
    /// assert_eq!(*lock.try_read().unwrap(), 2);
    /// ```
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let lock = s.lock;
        // The write guard is consumed here: its drop (write_unlock) must not run.
        std::mem::forget(s);
        lock.raw.downgrade_unlock();
        lock.read_guard()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(v: T) -> RwLock<T> {
        RwLock::new(v)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `data` points into the lock, which `raw: &'a` keeps borrowed. (1) while a
        // read guard lives no write guard exists, so no `&mut T` exists; readers only ever get
        // `&T`. (2) the last writer's writes are visible.
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.raw.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: (1) the write guard is the only guard, so the only `&mut T` that can exist
        // is one made by `deref_mut` through it, and `&self` borrows the guard: none is live.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: (1) the write guard is the only guard, and `&mut self` borrows it exclusively,
        // so no other reference to the data exists while the result lives.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
