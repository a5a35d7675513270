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
//! program). Each goroutine has a table (`Goroutine::locals`) with one slot per key id and
//! the list of its live keys in creation order; an access is: the current goroutine (one
//! thread-local read), its table, the slot — no hashing, no lock. The value is created by
//! the key's initialiser on the goroutine's first access (lazily) and lives on the heap, so a
//! reference handed to `with` stays valid across blocking points: it moves with the
//! goroutine, like a value on its stack. A goroutine that uses key number *n* has a table of
//! *n* slots (24 bytes each).
//!
//! ```text
//!  slot state   | meaning                                 | an access
//!  -------------+-----------------------------------------+------------------------------
//!  Empty        | never created by this goroutine/thread  | runs the initialiser -> Alive
//!  Alive(p)     | the value, a Box<T> as a raw pointer    | gets it
//!  Destroyed    | its destructor is running or has run    | AccessError (`with` panics)
//! ```
//!
//! When the goroutine ends — returns or panics — its values are dropped on the goroutine's
//! own stack, before its `JoinHandle::join` returns (as a thread's locals are dropped before
//! its join returns), one at a time, the most recently created first (as std drops a
//! thread's). Each slot is marked Destroyed *before* its value is dropped, so, exactly as
//! with std's `thread_local!`, a destructor
//!
//! - that reaches for its own key, or for a key already destroyed, gets `AccessError` from
//!   `try_with` (and `with` panics) — it can never re-create a value, so destruction ends;
//! - that reads a key still alive sees its current value;
//! - that reaches for a key never used by this goroutine creates it, and that value is
//!   dropped in turn.
//!
//! A destructor may block. A destructor that panics makes the goroutine's result that panic
//! (if it had returned normally); the other values are still dropped. A goroutine that never
//! ends (parked for ever, then unreachable) keeps its values, as it keeps its stack.
//!
//! On a plain thread (not a goroutine) a `goroutine_local!` behaves as a `thread_local!`:
//! one value per thread, dropped when the thread exits, with the same rules. The thread's
//! table is reached through a `const` thread-local pointer, which std never destroys, so a
//! destructor of a goroutine-local, or of any `thread_local!`, can use goroutine-locals while
//! the thread's thread-locals are being destroyed (std's thread-locals work there too). The
//! values are dropped by a `thread_local!` guard, in std's order of thread-local
//! destructors; after that, the thread's goroutine-locals answer `AccessError`.
//!
//! # Safety
//! - A table is touched only by its goroutine (or plain thread): the current goroutine's
//!   `locals` are reached only through `goroutine::current_ptr()`, and the goroutine runs on
//!   one thread at a time.
//! - No reference into the table is held while user code runs (initialisers, closures,
//!   destructors): each look-up takes a fresh short borrow, and values are reached through
//!   raw pointers (`Box::into_raw`), so a reference to one value stays valid while the table
//!   grows or other values are created.
//! - A slot of key `k` only ever holds a `Box<T>` of `k`'s `T` (the id is unique per static,
//!   and the static's type is fixed), which makes the pointer cast in `get_or_init` sound.
//! - A value is freed only when its goroutine (or thread) ends, after every `with` closure
//!   has returned, and its slot is Destroyed before it is freed and for ever after: nothing
//!   can reach a value being dropped or dropped.
//! - A plain thread's table is a leaked `Box` owned by the thread; its guard frees it and
//!   leaves the `DEAD` marker in the pointer, so no access can reach the freed table.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runtime::goroutine;

/// A value, as a raw `Box<dyn Any>`.
type Raw = NonNull<dyn Any>;

/// A key's slot in one goroutine's (or thread's) table: the state table above.
#[derive(Clone, Copy)]
enum Slot {
    Empty,
    Alive(Raw),
    Destroyed,
}

/// One goroutine's (or thread's) values.
struct Table {
    /// By key id.
    slots: Vec<Slot>,
    /// The ids of the Alive slots, in creation order (destruction pops from the end).
    order: Vec<usize>,
}

/// The goroutine-local values of one goroutine or plain thread (see the module comment).
pub(crate) struct Slots {
    /// None until the first access (no allocation for goroutines that never use
    /// goroutine-locals). Boxed so that the field costs every goroutine one word.
    table: UnsafeCell<Option<Box<Table>>>,
}

impl Slots {
    pub(crate) const fn new() -> Slots {
        Slots {
            table: UnsafeCell::new(None),
        }
    }

    /// The value in slot `idx`: Ok(None) if it was never created, Err once destroyed.
    ///
    /// # Safety
    /// Called by the owner of these slots (module safety notes).
    #[inline]
    unsafe fn lookup(&self, idx: usize) -> Result<Option<Raw>, AccessError> {
        // SAFETY: owner only; a short shared borrow, no user code runs during it.
        let table = unsafe { &*self.table.get() };
        match table.as_ref().and_then(|t| t.slots.get(idx)) {
            None | Some(Slot::Empty) => Ok(None),
            Some(Slot::Alive(p)) => Ok(Some(*p)),
            Some(Slot::Destroyed) => Err(AccessError),
        }
    }

    /// Stores `value` in slot `idx` unless it was filled meanwhile (an initialiser that
    /// reached for its own key); returns the slot's value and what was not stored. Err (with
    /// `value`, not stored) if the slot has been destroyed.
    ///
    /// # Safety
    /// As `lookup`.
    unsafe fn insert(&self, idx: usize, value: Raw) -> Result<(Raw, Option<Raw>), Raw> {
        // SAFETY: owner only; the borrow ends before any user code runs.
        let table = unsafe { &mut *self.table.get() };
        let t = table.get_or_insert_with(|| {
            Box::new(Table {
                slots: Vec::new(),
                order: Vec::new(),
            })
        });
        if t.slots.len() <= idx {
            t.slots.resize(idx + 1, Slot::Empty);
        }
        match t.slots[idx] {
            Slot::Alive(existing) => Ok((existing, Some(value))),
            Slot::Empty => {
                t.slots[idx] = Slot::Alive(value);
                t.order.push(idx);
                Ok((value, None))
            }
            Slot::Destroyed => Err(value),
        }
    }

    /// True if no value was ever created here (nothing to drop).
    #[inline]
    fn is_unused(&self) -> bool {
        // SAFETY: a plain read of the pointer, by the owner.
        unsafe { (*self.table.get()).is_none() }
    }

    /// Drops every value, the most recently created first, including those created by
    /// destructors meanwhile; each slot is marked Destroyed before its value is dropped, and
    /// stays so. Returns the first destructor panic, after dropping the rest.
    ///
    /// # Safety
    /// As `lookup`, and no reference to a value may be alive (the owner has finished).
    #[cold]
    #[inline(never)]
    unsafe fn clear(&self) -> Result<(), Box<dyn Any + Send>> {
        let mut first_panic = None;
        loop {
            // SAFETY: owner only; a short borrow, ended before the destructor runs.
            let next = unsafe { &mut *self.table.get() }.as_mut().and_then(|t| {
                let idx = t.order.pop()?;
                match std::mem::replace(&mut t.slots[idx], Slot::Destroyed) {
                    Slot::Alive(p) => Some(p),
                    _ => unreachable!("goroutine-local: a listed slot is alive"),
                }
            });
            let Some(p) = next else { break };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: `p` came from `Box::into_raw` and is dropped exactly once: its
                // slot is Destroyed now, so nothing can reach it again.
                drop(unsafe { Box::from_raw(p.as_ptr()) })
            }));
            if let (Err(e), None) = (r, &first_panic) {
                first_panic = Some(e);
            }
        }
        first_panic.map_or(Ok(()), Err)
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // A goroutine's values are dropped by `run_destructors` when it ends, on its stack,
        // and a thread's by its guard, so every slot is Empty or Destroyed here — except for
        // a goroutine that never ended (leaked while parked): its values are leaked with it
        // (dropping the table drops only raw pointers) rather than destroyed on whatever
        // thread this is.
        drop(self.table.get_mut().take());
    }
}

/// The `THREAD_SLOTS` of a thread whose goroutine-locals have been destroyed.
fn dead() -> *mut Slots {
    NonNull::dangling().as_ptr()
}

thread_local! {
    /// This plain thread's slots (a leaked Box): null until first used, `dead()` once
    /// destroyed. `const` and without a destructor, so std never destroys it: it stays
    /// readable while the thread's thread-locals are destroyed.
    static THREAD_SLOTS: Cell<*mut Slots> = const { Cell::new(std::ptr::null_mut()) };
    /// Registered when the thread's slots are made; its destructor drops them.
    static THREAD_GUARD: ThreadGuard = const { ThreadGuard };
}

/// Drops a plain thread's goroutine-local values when the thread exits.
struct ThreadGuard;

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let p = THREAD_SLOTS.with(Cell::get);
        if p.is_null() || p == dead() {
            return;
        }
        // SAFETY: the thread is exiting: it owns the slots, no `with` is running, and the
        // slots stay reachable (through THREAD_SLOTS) while the destructors run.
        let r = unsafe { (*p).clear() };
        THREAD_SLOTS.with(|c| c.set(dead()));
        // SAFETY: made by `thread_slots` with Box::into_raw; unreachable now (dead()).
        drop(unsafe { Box::from_raw(p) });
        if let Err(e) = r {
            std::panic::resume_unwind(e);
        }
    }
}

/// This plain thread's slots, made on first use; AccessError once destroyed.
#[inline]
fn thread_slots() -> Result<*const Slots, AccessError> {
    let p = THREAD_SLOTS.with(Cell::get);
    if p.is_null() {
        return new_thread_slots();
    }
    if p == dead() {
        return Err(AccessError);
    }
    Ok(p)
}

#[cold]
fn new_thread_slots() -> Result<*const Slots, AccessError> {
    let p = Box::into_raw(Box::new(Slots::new()));
    THREAD_SLOTS.with(|c| c.set(p));
    // Registers the guard's destructor (also while the thread's thread-locals are being
    // destroyed: std runs destructors registered meanwhile). It fails only if the guard was
    // already destroyed, and then the slots were marked dead and this is not reached.
    if THREAD_GUARD.try_with(|_| ()).is_err() {
        THREAD_SLOTS.with(|c| c.set(dead()));
        // SAFETY: just made, never used.
        drop(unsafe { Box::from_raw(p) });
        return Err(AccessError);
    }
    Ok(p)
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
    if slots.is_unused() {
        return Ok(());
    }
    // SAFETY: as above.
    unsafe { slots.clear() }
}

/// The slots of the current goroutine, or of this plain thread; AccessError once the
/// thread's have been destroyed.
#[inline]
fn current_slots() -> Result<*const Slots, AccessError> {
    let g = goroutine::current_ptr();
    if !g.is_null() {
        // SAFETY: the running goroutine outlives the current call.
        return Ok(unsafe { &(*g).locals } as *const Slots);
    }
    thread_slots()
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

/// The error of [`LocalKey::try_with`]: the value is being or has been destroyed — the key
/// was reached from a destructor of the goroutine's (or thread's) own values, after its own
/// value was dropped or while it is being dropped (as std's `AccessError`).
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

    /// The current goroutine's (or thread's) value, created with `init` if it has none;
    /// AccessError if it has been destroyed (or is being destroyed).
    fn get_or_init(&'static self, init: impl FnOnce() -> T) -> Result<&'static T, AccessError> {
        let idx = self.index();
        let slots = current_slots()?;
        // SAFETY: `slots` belongs to the current goroutine or thread, which is the caller.
        if let Some(p) = unsafe { (*slots).lookup(idx) }? {
            // SAFETY: slot `idx` holds a live Box<T> (module safety notes); it is freed only
            // when the owner ends, after this borrow.
            return Ok(unsafe { &*(p.as_ptr() as *const T) });
        }
        let value: Box<dyn Any> = Box::new(init());
        // SAFETY: Box::into_raw is never null.
        let raw = unsafe { NonNull::new_unchecked(Box::into_raw(value)) };
        // SAFETY: as above; no user code ran since `current_slots` except `init`, which runs
        // on the same goroutine (a goroutine cannot change threads' ownership of its slots).
        match unsafe { (*slots).insert(idx, raw) } {
            Ok((p, lost)) => {
                if let Some(lost) = lost {
                    // The initialiser set this key itself (re-entrantly): keep that value.
                    // SAFETY: `lost` is our own Box, never stored.
                    drop(unsafe { Box::from_raw(lost.as_ptr()) });
                }
                // SAFETY: as for the look-up above.
                Ok(unsafe { &*(p.as_ptr() as *const T) })
            }
            Err(unstored) => {
                // Destroyed while the initialiser ran (it cannot be, but never store then).
                // SAFETY: our own Box, never stored.
                drop(unsafe { Box::from_raw(unstored.as_ptr()) });
                Err(AccessError)
            }
        }
    }

    /// Calls `f` with a reference to the current goroutine's value, creating it first with
    /// the initialiser if needed.
    ///
    /// Unlike a thread-local's, the reference stays the goroutine's own across blocking
    /// points inside `f`.
    ///
    /// # Panics
    /// When the value is being or has been destroyed: from a destructor of the goroutine's
    /// (or thread's) goroutine-locals, on its own key or on one already dropped (see
    /// [`try_with`](Self::try_with)); and if the initialiser panics.
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
    /// value has been destroyed (or is being destroyed): while the goroutine's (or thread's)
    /// goroutine-locals are dropped, a key whose value was already dropped, or is being
    /// dropped, cannot be reached again; a key never used before is created (and dropped in
    /// turn), and a key still alive gives its value, as std's thread-locals do.
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
    ///
    /// # Panics
    /// Like [`with`](LocalKey::with), if the value has been destroyed. The same holds for
    /// every method here and on `LocalKey<RefCell<T>>`.
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
