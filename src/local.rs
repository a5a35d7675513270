//! Goroutine-local storage: [`goroutine_local!`](crate::goroutine_local), shaped like
//! `thread_local!`.
//!
//! # Why not `thread_local!`
//! A goroutine runs on whichever worker thread (M) picks it up, and may move to another one
//! at every blocking point: a channel operation, a lock, a sleep, a `yield_now`, a socket
//! wait. A `thread_local!` belongs to the OS thread, not to the goroutine, so
//!
//! - a value read back after a blocking point may be another goroutine's (the thread's
//!   current user changed while this goroutine was parked), and
//! - a `LocalKey::with` closure that blocks inside keeps using the *first* thread's value
//!   after the goroutine has resumed on a second thread — while another goroutine, now on the
//!   first thread, uses that same value. For a `RefCell` or `Cell` that is a data race,
//!   reachable from safe code.
//!
//! **The rule:** never hold a thread-local (or anything tied to the OS thread: std's
//! `MutexGuard`, a thread id, a C library's per-thread state) across a blocking point in a
//! goroutine. Read it, use it, drop it, then block. For per-goroutine state use
//! `goroutine_local!`; to pin a goroutine to its thread use
//! [`lock_os_thread`](crate::lock_os_thread).
//!
//! ```
//! use std::cell::{Cell, RefCell};
//!
//! gort::goroutine_local! {
//!     static REQUEST_ID: Cell<u64> = Cell::new(0);
//!     static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
//! }
//!
//! let hs: Vec<_> = (1..=4u64)
//!     .map(|id| {
//!         gort::spawn(move || {
//!             REQUEST_ID.set(id);
//!             gort::time::sleep(std::time::Duration::from_millis(1)); // may move threads
//!             LOG.with_borrow_mut(|l| l.push(format!("request {}", REQUEST_ID.get())));
//!             LOG.take()
//!         })
//!     })
//!     .collect();
//! for (id, h) in (1..=4).zip(hs) {
//!     assert_eq!(h.join().unwrap(), vec![format!("request {id}")]);
//! }
//! ```
//!
//! # Design
//! Each `goroutine_local!` static is a [`LocalKey`]: the initialiser and a key id, assigned
//! from a global counter the first time the key is used (once per static, for the whole
//! program). Each goroutine has a slot vector (`Goroutine::locals`) indexed by key id, holding
//! a pointer to the boxed value or nothing; an access is: the current goroutine (one
//! thread-local read), its vector, the slot — no hashing, no lock. The value is created by
//! the key's initialiser on the goroutine's first access (lazily) and lives on the heap, so a
//! reference handed to `with` stays valid across blocking points: it moves with the
//! goroutine, like a value on its stack. A goroutine that uses key number *n* has a vector
//! of *n* slots (16 bytes each).
//!
//! When the goroutine ends — returns or panics — its values are dropped on the goroutine's
//! own stack, before its `JoinHandle::join` returns (as a thread's locals are dropped before
//! its join returns). A destructor may use other goroutine-locals (one that is gone is
//! created afresh and dropped in turn), and may block. A destructor that panics makes the
//! goroutine's result that panic (if it had returned normally); the other values are still
//! dropped. A goroutine that never ends (parked for ever, then unreachable) keeps its values,
//! as it keeps its stack.
//!
//! On a plain thread (not a goroutine) a `goroutine_local!` behaves as a `thread_local!`:
//! one value per thread, dropped when the thread exits; accessing it during the thread's own
//! teardown panics (or `try_with` fails), as with std.
//!
//! # Safety
//! - A slot vector is touched only by its goroutine (or plain thread): the current
//!   goroutine's `locals` are reached only through `goroutine::current_ptr()`, and the
//!   goroutine runs on one thread at a time.
//! - No `&mut` to the vector is held while user code runs (initialisers, closures,
//!   destructors): each look-up takes a fresh short borrow, and values are reached through
//!   raw pointers (`Box::into_raw`), so a reference to one value stays valid while the vector
//!   grows or other values are created.
//! - A slot of key `k` only ever holds a `Box<T>` of `k`'s `T` (the id is unique per static,
//!   and the static's type is fixed), which makes the pointer cast in `get` sound.
//! - A value is freed only when its goroutine (or thread) ends, after every `with` closure
//!   has returned; the destruction loop takes the whole vector out first, so a destructor
//!   that reaches for a key finds an empty slot and never a value being dropped.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runtime::goroutine;

/// A slot: the value as a raw `Box<dyn Any>`.
type Value = Option<NonNull<dyn Any>>;

/// The goroutine-local values of one goroutine or plain thread (see the module comment).
pub(crate) struct Slots {
    /// Values by key id; None until the first access (no allocation for goroutines that
    /// never use goroutine-locals). Boxed so that the field costs every goroutine one word,
    /// not a `Vec`'s three.
    #[allow(clippy::box_collection)]
    values: UnsafeCell<Option<Box<Vec<Value>>>>,
}

impl Slots {
    pub(crate) const fn new() -> Slots {
        Slots {
            values: UnsafeCell::new(None),
        }
    }

    /// The value in slot `idx`, if initialised.
    ///
    /// # Safety
    /// Called by the owner of these slots (module safety notes).
    unsafe fn lookup(&self, idx: usize) -> Value {
        // SAFETY: owner only; a short shared borrow, no user code runs during it.
        let values = unsafe { &*self.values.get() };
        values.as_ref().and_then(|v| v.get(idx).copied().flatten())
    }

    /// Stores `value` in slot `idx` unless it was filled meanwhile (an initialiser that
    /// reached for its own key); returns the slot's value and what was not stored.
    ///
    /// # Safety
    /// As `lookup`.
    unsafe fn insert(&self, idx: usize, value: NonNull<dyn Any>) -> (NonNull<dyn Any>, Value) {
        // SAFETY: owner only; the borrow ends before any user code runs.
        let values = unsafe { &mut *self.values.get() };
        let v = values.get_or_insert_with(Default::default);
        if v.len() <= idx {
            v.resize(idx + 1, None);
        }
        match v[idx] {
            Some(existing) => (existing, Some(value)),
            None => {
                v[idx] = Some(value);
                (value, None)
            }
        }
    }

    /// Drops every value, including those created by destructors meanwhile. Returns the
    /// first destructor panic, after dropping the rest.
    ///
    /// # Safety
    /// As `lookup`, and no reference to a value may be alive (the owner has finished).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn clear(&self) -> Result<(), Box<dyn Any + Send>> {
        let mut first_panic = None;
        // SAFETY: owner only; a short borrow to take the vector out (each round).
        while let Some(values) = unsafe { (*self.values.get()).take() } {
            for p in values.into_iter().flatten() {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: `p` came from `Box::into_raw` and is dropped exactly once: the
                    // vector holding it has been taken out of the slots.
                    drop(unsafe { Box::from_raw(p.as_ptr()) })
                }));
                if let (Err(e), None) = (r, &first_panic) {
                    first_panic = Some(e);
                }
            }
        }
        first_panic.map_or(Ok(()), Err)
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // A goroutine's values are dropped by `run_destructors` when it ends, on its stack.
        // One dropped here belongs to a goroutine that never ended (leaked while parked):
        // leak its values with it rather than run destructors on whatever thread this is.
        if let Some(v) = self.values.get_mut().take() {
            std::mem::forget(v);
        }
    }
}

/// A plain thread's slots: dropped (destructors run) when the thread exits.
struct ThreadSlots(Slots);

impl Drop for ThreadSlots {
    fn drop(&mut self) {
        // SAFETY: the thread is exiting: this thread owns the slots and no `with` is running.
        if let Err(e) = unsafe { self.0.clear() } {
            std::panic::resume_unwind(e);
        }
    }
}

thread_local! {
    static THREAD_SLOTS: ThreadSlots = const { ThreadSlots(Slots::new()) };
}

/// Drops the current goroutine's values; called by the goroutine's entry when its function
/// has returned or panicked, on its own stack. Costs a load and a branch when the goroutine
/// has none (the common case: this is on every goroutine's exit path).
#[inline]
pub(crate) fn run_destructors() -> Result<(), Box<dyn Any + Send>> {
    let g = goroutine::current_ptr();
    if g.is_null() {
        return Ok(());
    }
    // SAFETY: the running goroutine owns its slots, and its function has returned, so no
    // `with` closure is alive.
    let slots = unsafe { &(*g).locals };
    // SAFETY: owner only; a plain read of the pointer.
    if unsafe { (*slots.values.get()).is_none() } {
        return Ok(());
    }
    // SAFETY: as above.
    unsafe { slots.clear() }
}

/// The slots of the current goroutine, or of this plain thread; None during the thread's
/// teardown.
fn current_slots() -> Option<*const Slots> {
    let g = goroutine::current_ptr();
    if !g.is_null() {
        // SAFETY: the running goroutine outlives the current call.
        return Some(unsafe { &(*g).locals } as *const Slots);
    }
    THREAD_SLOTS.try_with(|s| &s.0 as *const Slots).ok()
}

/// Key ids handed out so far.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

/// A goroutine-local key, declared with [`goroutine_local!`](crate::goroutine_local); the
/// goroutine-local twin of `std::thread::LocalKey`.
///
/// Each goroutine (or plain thread) that accesses it gets its own value, created by the
/// initialiser on its first access and dropped when the goroutine ends.
pub struct LocalKey<T: 'static> {
    /// Key id + 1 (0: not assigned yet).
    id: AtomicUsize,
    /// The initialiser.
    init: fn() -> T,
}

/// The error of [`LocalKey::try_with`]: the value is being or has been destroyed (only
/// during a plain thread's teardown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("already destroyed")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            id: AtomicUsize::new(0),
            init,
        }
    }

    /// This key's slot index.
    #[inline]
    fn index(&'static self) -> usize {
        match self.id.load(Ordering::Relaxed) {
            0 => self.assign(),
            id => id - 1,
        }
    }

    #[cold]
    fn assign(&'static self) -> usize {
        let new = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new - 1,
            Err(id) => id - 1,
        }
    }

    /// The current goroutine's (or thread's) value, created with `init` if it has none.
    fn get_or_init(&'static self, init: impl FnOnce() -> T) -> Result<&'static T, AccessError> {
        let idx = self.index();
        let slots = current_slots().ok_or(AccessError)?;
        // SAFETY: `slots` belongs to the current goroutine or thread, which is the caller.
        if let Some(p) = unsafe { (*slots).lookup(idx) } {
            // SAFETY: slot `idx` holds a live Box<T> (module safety notes); it is freed only
            // when the owner ends, after this borrow.
            return Ok(unsafe { &*(p.as_ptr() as *const T) });
        }
        let value: Box<dyn Any> = Box::new(init());
        // SAFETY: Box::into_raw is never null.
        let raw = unsafe { NonNull::new_unchecked(Box::into_raw(value)) };
        // SAFETY: as above; no user code ran since `current_slots` except `init`, which runs
        // on the same goroutine (a goroutine cannot change threads' ownership of its slots).
        let (p, lost) = unsafe { (*slots).insert(idx, raw) };
        if let Some(lost) = lost {
            // The initialiser set this key itself (re-entrantly): keep that value.
            // SAFETY: `lost` is our own Box, never stored.
            drop(unsafe { Box::from_raw(lost.as_ptr()) });
        }
        // SAFETY: as for the look-up above.
        Ok(unsafe { &*(p.as_ptr() as *const T) })
    }

    /// Calls `f` with a reference to the current goroutine's value, creating it first with
    /// the initialiser if needed.
    ///
    /// Unlike a thread-local's, the reference stays the goroutine's own across blocking
    /// points inside `f`.
    ///
    /// # Panics
    /// On a plain thread, when called during the thread's teardown after the value was
    /// destroyed (see [`try_with`](Self::try_with)); and if the initialiser panics.
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(r) => r,
            Err(_) => panic!(
                "cannot access a goroutine-local value during or after destruction: AccessError"
            ),
        }
    }

    /// Like [`with`](Self::with), but returns `Err(AccessError)` instead of panicking when the
    /// value cannot be reached (a plain thread's teardown).
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let v = self.get_or_init(self.init)?;
        Ok(f(v))
    }

    /// Runs `f` on the value, initialising the key with `value` (not the initialiser) if it
    /// has none yet; `f` is told whether `value` was used.
    fn with_value<R>(&'static self, value: T, f: impl FnOnce(&T, Option<T>) -> R) -> R {
        let slot = Cell::new(Some(value));
        let v = match self.get_or_init(|| slot.take().expect("taken once")) {
            Ok(v) => v,
            Err(_) => panic!(
                "cannot access a goroutine-local value during or after destruction: AccessError"
            ),
        };
        f(v, slot.take())
    }
}

impl<T: 'static> LocalKey<Cell<T>> {
    /// Sets the value (without running the initialiser if there was none).
    pub fn set(&'static self, value: T) {
        self.with_value(Cell::new(value), |cell, unused| {
            if let Some(v) = unused {
                cell.set(v.into_inner());
            }
        });
    }

    /// A copy of the value.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the value, leaving `Default::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

impl<T: 'static> LocalKey<RefCell<T>> {
    /// Calls `f` with a shared borrow of the value.
    ///
    /// # Panics
    /// If the value is mutably borrowed.
    pub fn with_borrow<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Calls `f` with a mutable borrow of the value.
    ///
    /// # Panics
    /// If the value is borrowed.
    pub fn with_borrow_mut<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&mut T) -> R,
    {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Sets the value (without running the initialiser if there was none).
    ///
    /// # Panics
    /// If the value is borrowed.
    pub fn set(&'static self, value: T) {
        self.with_value(RefCell::new(value), |cell, unused| {
            if let Some(v) = unused {
                *cell.borrow_mut() = v.into_inner();
            }
        });
    }

    /// Takes the value, leaving `Default::default()`.
    ///
    /// # Panics
    /// If the value is borrowed.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the value, returning the old one.
    ///
    /// # Panics
    /// If the value is borrowed.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// Declares goroutine-local statics, shaped like `thread_local!`.
///
/// ```
/// use std::cell::Cell;
///
/// gort::goroutine_local! {
///     /// Per-goroutine counter.
///     pub static COUNTER: Cell<u32> = Cell::new(0);
///     static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
/// }
///
/// COUNTER.set(COUNTER.get() + 1); // this (plain) thread's value
/// let h = gort::spawn(|| {
///     COUNTER.set(10); // the goroutine's own value
///     COUNTER.get()
/// });
/// assert_eq!(h.join().unwrap(), 10);
/// assert_eq!(COUNTER.get(), 1);
/// NAME.with_borrow_mut(|n| n.push_str("x"));
/// ```
///
/// Each static is a [`LocalKey`](crate::local::LocalKey): `with`, `try_with`, and for `Cell`
/// and `RefCell` values `set`, `get`, `take`, `replace` (plus `with_borrow`,
/// `with_borrow_mut` for `RefCell`). Values are created lazily by the initialiser, one per
/// goroutine (or plain thread), and dropped when it ends, also when it panics. See the
/// [`local`](crate::local) module for why `thread_local!` is a trap in goroutines.
#[macro_export]
macro_rules! goroutine_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const $init:block; $($rest:tt)*) => {
        $crate::goroutine_local!($(#[$attr])* $vis static $name: $t = $init; $($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const $init:block) => {
        $crate::goroutine_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::local::LocalKey<$t> = {
            fn __gort_local_init() -> $t {
                $init
            }
            $crate::local::LocalKey::new(__gort_local_init)
        };
        $crate::goroutine_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::goroutine_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
