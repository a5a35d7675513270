//! `Once`, `OnceLock<T>`, `once_value` and `once_func` (Go's `sync.Once`, `sync.OnceValue`,
//! `sync.OnceFunc`).
//!
//! All are a `done` flag (Acquire load on the fast path) plus a lock (`Once`: a [`RawMutex`];
//! `OnceLock`: a `Mutex<()>`) that callers arriving during the first call park on. The slow
//! path is Go's `doSlow`: lock, re-check, run, publish `done`, unlock. `OnceLock::wait`, which
//! may come before any initialiser, also parks on a `Condvar` that the initialiser notifies
//! under the lock after publishing `done`.
//!
//! Panics: as in Go, a [`Once`] whose function panicked counts as done (later calls do not
//! run their function). [`OnceLock`] follows std: a panicking initialiser leaves the cell
//! empty and the next caller tries again. [`once_value`]/[`once_func`] follow Go: every call
//! after a panicking first call panics again with the same message.
//!
//! # Safety
//!
//! 1. **`OnceLock::value` is `Some` iff `done` is true** (outside `&mut self` methods). It is
//!    written only in `init_slow`, and only after `f` has returned (a panicking `f` leaves both
//!    untouched); `done` is set right after the write. `take` clears both. The value is an
//!    `Option<T>` dropped by the compiler's drop glue rather than a `MaybeUninit<T>` dropped
//!    by a `Drop` impl, so that, as with std's (`#[may_dangle]`), a `OnceLock<&'a T>` may be
//!    dropped after `'a` ends (dropck sees only `T`'s own drop).
//! 2. **Written at most once while shared.** Through `&self`, `value` is written only by
//!    `init_slow`, while holding `m` and after seeing `done == false` under it, so two writes
//!    never race (the next holder sees `done == true`, ordered by `m`); a re-entrant
//!    `get_or_init` from inside `f` deadlocks on `m` instead of aliasing the write. `done` is
//!    never cleared through `&self`.
//! 3. **Reads happen after the write.** `get` reads `value` only after an Acquire load saw
//!    `done == true`, which the writer stored with Release after writing: the write
//!    happens-before every read, and no write follows while `&self` borrows exist. The
//!    `&mut self` methods (`get_mut`, `take`) are exclusive by the borrow checker.
//! 4. **`Once::m` is unlocked only by its holder, once** (`RawMutex::unlock`'s contract):
//!    every unlock here is an `Unlock` guard built right after `m.lock(...)` in the same
//!    function and dropped exactly once, on return or unwind. (`OnceLock::m` is a `Mutex<()>`
//!    and unlocks through its guard.)

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use super::mutex::RawMutex;
use crate::runtime::park::WaitReason;

/// Unlocks a RawMutex on drop (including unwinding).
struct Unlock<'a>(&'a RawMutex);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        // SAFETY: (4) every `Unlock` is created right after locking its mutex, by the same
        // caller, and `drop` runs once: the caller holds the lock and unlocks it once.
        unsafe { self.0.unlock() }
    }
}

/// Runs a function exactly once, however many goroutines call it; the others park until it
/// has finished. A function that panics still counts as done (as in Go).
///
/// ```
/// static INIT: gort::sync::Once = gort::sync::Once::new();
/// let mut n = 0;
/// INIT.call_once(|| n += 1);
/// INIT.call_once(|| n += 1);
/// assert_eq!(n, 1);
/// ```
pub struct Once {
    /// Set (Release) once the function has returned or panicked.
    done: AtomicBool,
    /// Held while the function runs.
    m: RawMutex,
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            m: RawMutex::new(),
        }
    }

    /// Runs `f` if no call has run yet; otherwise waits until the first call has finished.
    /// When this returns, the first call's effects are visible. Calling `call_once` on the
    /// same `Once` from inside `f` deadlocks, as in Go.
    #[inline]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        self.call_slow(f);
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        self.m.lock(WaitReason::OnceWait);
        let _unlock = Unlock(&self.m);
        if !self.done.load(Ordering::Relaxed) {
            struct SetDone<'a>(&'a AtomicBool);
            impl Drop for SetDone<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            // Dropped before `_unlock` (reverse order), even when `f` panics.
            let _done = SetDone(&self.done);
            f();
        }
    }

    /// True once a call has completed (returned or panicked).
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("done", &self.is_completed())
            .finish()
    }
}

/// A cell written once, by the first [`get_or_init`](OnceLock::get_or_init) (others park
/// until it has finished) or [`set`](OnceLock::set). Std-shaped; a panicking initialiser
/// leaves the cell empty.
///
/// ```
/// static CONFIG: gort::sync::OnceLock<String> = gort::sync::OnceLock::new();
/// assert_eq!(CONFIG.get_or_init(|| "ready".to_string()), "ready");
/// assert_eq!(CONFIG.get().map(String::as_str), Some("ready"));
/// ```
pub struct OnceLock<T> {
    /// Set (Release) after `value` is written.
    done: AtomicBool,
    /// Held while an initialiser runs, and by [`wait`](OnceLock::wait)ers checking `done`.
    m: super::Mutex<()>,
    /// Where [`wait`](OnceLock::wait)ers park until the value is set (notified under `m`).
    set: super::Condvar,
    /// Initialised iff `done`.
    value: UnsafeCell<Option<T>>,
}

// SAFETY: by module Safety 2 and 3, the value is written once under `m` before `done` is
// published (Release) and only read after `done` is seen (Acquire), so shared use never races.
// Sharing hands out `&T` on many threads (T: Sync), and the value may be made by one thread
// and dropped by another (T: Send), as with std's OnceLock.
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
// SAFETY: the cell owns its T (if `done`); moving the cell moves the T, which needs T: Send.
unsafe impl<T: Send> Send for OnceLock<T> {}

// A panicking initialiser leaves the cell empty (never half-written), as std's OnceLock.
impl<T: std::panic::RefUnwindSafe + std::panic::UnwindSafe> std::panic::RefUnwindSafe
    for OnceLock<T>
{
}
impl<T: std::panic::UnwindSafe> std::panic::UnwindSafe for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            done: AtomicBool::new(false),
            m: super::Mutex::new(()),
            set: super::Condvar::new(),
            value: UnsafeCell::new(None),
        }
    }

    /// The value, if set.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        if self.done.load(Ordering::Acquire) {
            // SAFETY: (3) the Acquire load of `done == true` orders the value's write before
            // this read, and (2) it is not written again while `&self` borrows exist.
            unsafe { (*self.value.get()).as_ref() }
        } else {
            None
        }
    }

    /// The value, mutably, if set.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if *self.done.get_mut() {
            self.value.get_mut().as_mut()
        } else {
            None
        }
    }

    /// The value, initialising it with `f` if the cell is empty. Concurrent callers park
    /// until the first initialiser has finished; only one `f` runs.
    #[inline]
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        self.init_slow(f);
        self.get().expect("OnceLock initialised")
    }

    #[cold]
    fn init_slow<F: FnOnce() -> T>(&self, f: F) {
        let _held = self.m.lock();
        if !self.done.load(Ordering::Relaxed) {
            let v = f();
            // SAFETY: (2) we hold `m` and saw `done == false` under it, so no one else writes
            // the value, and (3) no one reads it until `done` is stored below. It is `None`
            // (1), so the assignment drops nothing.
            unsafe { *self.value.get() = Some(v) };
            self.done.store(true, Ordering::Release);
            // Under `m`: a waiter that saw `done == false` under `m` is already queued.
            self.set.notify_all();
        }
    }

    /// Parks until the cell has a value (set by another goroutine or thread), and returns it
    /// (std's `OnceLock::wait`). A panicking initialiser leaves the cell empty: waiters go on
    /// waiting for the next one.
    pub fn wait(&self) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        let mut held = self.m.lock();
        while !self.done.load(Ordering::Acquire) {
            held = self.set.wait(held);
        }
        drop(held);
        self.get().expect("OnceLock set")
    }

    /// Sets the value if the cell is empty; otherwise hands `value` back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("value"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// Consumes the cell, returning the value if set.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        *self.done.get_mut() = false;
        self.value.get_mut().take()
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        let cell = OnceLock::new();
        if let Some(v) = self.get() {
            let _ = cell.set(v.clone());
        }
        cell
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    /// Equal if both are empty, or both hold equal values (as std's).
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(v: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        let _ = cell.set(v);
        cell
    }
}

/// The text of a panic payload (for re-raising a `once_value` panic on later calls).
fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// Go 1.21's `sync.OnceValue`: a function that calls `f` the first time it is called and
/// returns (a clone of) its result on every call. Concurrent first callers park until `f`
/// has finished. If `f` panics, every call panics with the same message.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static CALLS: AtomicUsize = AtomicUsize::new(0);
/// let parse = gort::sync::once_value(|| {
///     CALLS.fetch_add(1, Ordering::Relaxed);
///     vec![1, 2, 3]
/// });
/// assert_eq!(parse(), vec![1, 2, 3]);
/// assert_eq!(parse(), vec![1, 2, 3]);
/// assert_eq!(CALLS.load(Ordering::Relaxed), 1);
/// ```
pub fn once_value<T, F>(f: F) -> impl Fn() -> T + Send + Sync
where
    T: Clone + Send + Sync,
    F: FnOnce() -> T + Send,
{
    let f = super::Mutex::new(Some(f));
    let cell: OnceLock<Result<T, String>> = OnceLock::new();
    move || {
        let mut payload = None;
        let r = cell.get_or_init(|| {
            let f = f.lock().take().expect("once_value: function already taken");
            match catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => Ok(v),
                Err(p) => {
                    let msg = panic_message(&*p);
                    payload = Some(p);
                    Err(msg)
                }
            }
        });
        if let Some(p) = payload {
            resume_unwind(p);
        }
        match r {
            Ok(v) => v.clone(),
            Err(msg) => panic!("{msg}"),
        }
    }
}

/// Go 1.21's `sync.OnceFunc`: a function that runs `f` only the first time it is called.
/// If `f` panics, every call panics with the same message.
///
/// ```
/// let hello = gort::sync::once_func(|| println!("hello, once"));
/// hello();
/// hello(); // prints nothing
/// ```
pub fn once_func<F>(f: F) -> impl Fn() + Send + Sync
where
    F: FnOnce() + Send,
{
    once_value(f)
}
