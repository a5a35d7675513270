//! std's `LazyLock`: a value computed on first access, on this module's poisoning [`Once`].
//!
//! The initialiser and the value share one slot (a union), as std's do: `f` until the value
//! is computed, then the value.
//!
//! # Safety
//! 1. **Which field is live follows the `Once`.** INCOMPLETE (and RUNNING, until the running
//!    closure takes it): `data.f`. COMPLETE: `data.value`. POISONED: neither (the closure
//!    took `f` and panicked before writing a value). Every transition happens in
//!    `force`'s closure (INCOMPLETE→RUNNING→COMPLETE: takes `f`, writes `value`; a panic
//!    leaves POISONED with neither) or in `force_mut` through `&mut self`.
//! 2. **One writer, readers after it.** Through `&self`, `data` is written only by the closure
//!    `Once` runs, and `Once` runs at most one closure at a time, only while RUNNING, with no
//!    reader able to see COMPLETE until it ends. Readers (`get`, `force`) read `value` only
//!    after seeing COMPLETE with Acquire, which the `Once` stores with Release after the
//!    closure's write; no write follows COMPLETE while `&self` borrows exist.
//! 3. The `&mut self` methods and `Drop` are exclusive by the borrow checker.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::once::{ExclusiveState, Once};

/// The slot: the initialiser until it has run, then the value (Safety 1).
union Data<T, F> {
    value: ManuallyDrop<T>,
    f: ManuallyDrop<F>,
}

/// A value initialised on first access, by the first caller (others park until it is
/// ready). If the initialiser panics, the `LazyLock` is poisoned and every later access
/// panics, as std's does. See `std::sync::LazyLock`.
///
/// ```
/// use gort::std::collections::HashMap;
/// use gort::std::sync::LazyLock;
///
/// static TABLE: LazyLock<HashMap<u32, &str>> =
///     LazyLock::new(|| HashMap::from([(1, "one"), (2, "two")]));
/// assert_eq!(TABLE.get(&2), Some(&"two"));
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    /// Which field of `data` is live (Safety 1).
    once: Once,
    /// `f` or the value.
    data: UnsafeCell<Data<T, F>>,
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A `LazyLock` that will run `f` on first access.
    pub const fn new(f: F) -> LazyLock<T, F> {
        LazyLock {
            once: Once::new(),
            data: UnsafeCell::new(Data {
                f: ManuallyDrop::new(f),
            }),
        }
    }

    /// The value, computing it first if needed (callers meanwhile park).
    ///
    /// # Panics
    /// If the initialiser panics (this call), or panicked before ("LazyLock instance has
    /// previously been poisoned").
    #[inline]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.once.call_once_force(|state| {
            if state.is_poisoned() {
                panic_poisoned();
            }
            // SAFETY: (2) this closure is the only one running and nobody reads `data` before
            // it ends; (1) the state was INCOMPLETE (not poisoned, not complete), so `f` is
            // the live field, and it is taken once here.
            let data = unsafe { &mut *this.data.get() };
            // SAFETY: see above: `f` is live and not used again (a panic in it leaves the
            // state POISONED, where neither field is live).
            let f = unsafe { ManuallyDrop::take(&mut data.f) };
            data.value = ManuallyDrop::new(f());
        });
        // SAFETY: `call_once_force` returned, so the state is COMPLETE (a closure of ours
        // returned, or one had before, seen with Acquire): `value` is live (1) and no longer
        // written (2).
        unsafe { &(*this.data.get()).value }
    }

    /// The value through `&mut`, computing it first if needed.
    ///
    /// # Panics
    /// As [`force`](LazyLock::force).
    pub fn force_mut(this: &mut LazyLock<T, F>) -> &mut T {
        /// Leaves the lock poisoned if the initialiser unwinds.
        struct PoisonOnPanic<'a, T, F>(&'a mut LazyLock<T, F>);
        impl<T, F> Drop for PoisonOnPanic<'_, T, F> {
            fn drop(&mut self) {
                self.0.once.set_state(ExclusiveState::Poisoned);
            }
        }
        match this.once.state_mut() {
            ExclusiveState::Poisoned => panic_poisoned(),
            ExclusiveState::Complete => {}
            ExclusiveState::Incomplete => {
                // SAFETY: (1) INCOMPLETE: `f` is live; (3) `&mut` is exclusive. It is taken
                // once: the guard below marks the state POISONED (neither field live) if `f`
                // panics, and COMPLETE is set only after `value` is written.
                let f = unsafe { ManuallyDrop::take(&mut this.data.get_mut().f) };
                let guard = PoisonOnPanic(this);
                let value = f();
                guard.0.data.get_mut().value = ManuallyDrop::new(value);
                guard.0.once.set_state(ExclusiveState::Complete);
                std::mem::forget(guard);
            }
        }
        // SAFETY: the state is COMPLETE, so `value` is live (1); `&mut` is exclusive (3).
        unsafe { &mut this.data.get_mut().value }
    }
}

impl<T, F> LazyLock<T, F> {
    /// The value if it has been computed, without computing it.
    #[inline]
    pub fn get(this: &LazyLock<T, F>) -> Option<&T> {
        if this.once.is_completed() {
            // SAFETY: COMPLETE seen with Acquire: `value` is live and no longer written (1, 2).
            Some(unsafe { &(*this.data.get()).value })
        } else {
            None
        }
    }

    /// The value through `&mut` if it has been computed.
    pub fn get_mut(this: &mut LazyLock<T, F>) -> Option<&mut T> {
        match this.once.state_mut() {
            // SAFETY: COMPLETE: `value` is live (1); `&mut` is exclusive (3).
            ExclusiveState::Complete => Some(unsafe { &mut this.data.get_mut().value }),
            _ => None,
        }
    }
}

impl<T, F> Drop for LazyLock<T, F> {
    fn drop(&mut self) {
        match self.once.state_mut() {
            // SAFETY: (1) INCOMPLETE: `f` is live, and is dropped once, here (3).
            ExclusiveState::Incomplete => unsafe { ManuallyDrop::drop(&mut self.data.get_mut().f) },
            // SAFETY: (1) COMPLETE: `value` is live, and is dropped once, here (3).
            ExclusiveState::Complete => unsafe {
                ManuallyDrop::drop(&mut self.data.get_mut().value)
            },
            ExclusiveState::Poisoned => {}
        }
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T, F: FnOnce() -> T> DerefMut for LazyLock<T, F> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        LazyLock::force_mut(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    /// A `LazyLock` whose initialiser is `T::default`.
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match LazyLock::get(self) {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn panic_poisoned() -> ! {
    panic!("LazyLock instance has previously been poisoned")
}

// SAFETY: by Safety 2, shared use never races on `data`: `&T` is handed to many threads
// (T: Sync), the value may be made on one thread and dropped on another (T: Send), and `F`
// is moved out and called on whichever thread initialises (F: Send) — never shared, so it
// need not be Sync. As std's.
unsafe impl<T: Sync + Send, F: Send> Sync for LazyLock<T, F> {}
// A panic in the initialiser poisons the lock rather than leaving it half-initialised.
impl<T: RefUnwindSafe + UnwindSafe, F: UnwindSafe> RefUnwindSafe for LazyLock<T, F> {}
impl<T: UnwindSafe, F: UnwindSafe> UnwindSafe for LazyLock<T, F> {}
