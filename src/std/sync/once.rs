//! std's `Once` and `OnceState`: std's poisoning state machine on gort's `Mutex` + `Condvar`.
//!
//! `gort::sync::Once` follows Go (a panicking function still counts as done); std's `Once`
//! is poisoned by a panic instead, so it gets its own states, kept in one atomic byte that
//! is read without the lock on the fast path and written only under `lock`:
//!
//! ```text
//!  state      | meaning                                | next
//!  -----------+----------------------------------------+-------------------------------------
//!  INCOMPLETE | nothing ran yet                        | RUNNING (a caller runs its closure)
//!  RUNNING    | a closure runs; others wait on `done`  | COMPLETE (returned), POISONED
//!             |                                        | (panicked, or `OnceState` poisoned)
//!  POISONED   | a closure panicked                     | RUNNING (`call_once_force` only)
//!  COMPLETE   | a closure returned                     | final
//! ```
//!
//! Callers that find RUNNING wait on the condvar; whoever leaves RUNNING does so under `lock`
//! and notifies all, so a waiter that saw RUNNING under the lock is always woken. A waiter
//! that then finds POISONED panics (`call_once`, `wait`) or runs its own closure
//! (`call_once_force`), as std's do. COMPLETE is stored with Release after the closure's
//! effects and read with Acquire, so a caller that returns sees them.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::sync;

const INCOMPLETE: u8 = 0;
const POISONED: u8 = 1;
const RUNNING: u8 = 2;
const COMPLETE: u8 = 3;

/// Runs a closure exactly once however many goroutines or threads call it; the others park
/// until it has finished. A panicking closure poisons the `Once`. See `std::sync::Once`.
///
/// ```
/// use gort::std::sync::Once;
///
/// static INIT: Once = Once::new();
/// let mut runs = 0;
/// INIT.call_once(|| runs += 1);
/// INIT.call_once(|| runs += 1);
/// assert_eq!(runs, 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    /// INCOMPLETE, RUNNING, POISONED or COMPLETE (module table); written under `lock`.
    state: AtomicU8,
    /// Guards state changes and the wait on `done`.
    lock: sync::Mutex<()>,
    /// Notified (under `lock`) whenever the state leaves RUNNING.
    done: sync::Condvar,
}

impl UnwindSafe for Once {}
impl RefUnwindSafe for Once {}

/// The state a `call_once_force` closure is given: whether an earlier closure panicked.
#[derive(Debug)]
pub struct OnceState {
    /// An earlier closure panicked.
    poisoned: bool,
}

impl OnceState {
    /// True if an earlier closure on this `Once` panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

/// A `Once`'s state seen through `&mut` (no other access possible).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ExclusiveState {
    Incomplete,
    Poisoned,
    Complete,
}

/// Initialiser of a static `Once` (std's deprecated `ONCE_INIT`).
#[deprecated(since = "1.38.0", note = "the `Once::new()` function is now preferred")]
#[allow(clippy::declare_interior_mutable_const)]
pub const ONCE_INIT: Once = Once::new();

/// Publishes the end of a run (on return or unwind): the new state, under the lock, and
/// wakes every waiter.
struct Completion<'a> {
    once: &'a Once,
    set_to: u8,
}

impl Drop for Completion<'_> {
    fn drop(&mut self) {
        let _held = self.once.lock.lock();
        self.once.state.store(self.set_to, Ordering::Release);
        self.once.done.notify_all();
    }
}

// std's `Once` has no `Default`; neither has this one, to stay std's exact shape.
#[allow(clippy::new_without_default)]
impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            lock: sync::Mutex::new(()),
            done: sync::Condvar::new(),
        }
    }

    /// Runs `f` if no closure has completed yet, else waits for the one running.
    ///
    /// # Panics
    /// If a closure on this `Once` panicked ("Once instance has previously been poisoned"),
    /// and poisons it if `f` panics.
    #[inline]
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        self.call(false, &mut |_| f.take().expect("called once")());
    }

    /// Like [`call_once`](Once::call_once), but runs `f` even if the `Once` is poisoned;
    /// `f` learns it from [`OnceState::is_poisoned`]. If `f` returns, the `Once` is complete.
    #[inline]
    #[track_caller]
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        self.call(true, &mut |state| f.take().expect("called once")(state));
    }

    /// True once a closure has completed (returned, not panicked).
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    /// Parks until a closure has completed (std's `Once::wait`).
    ///
    /// # Panics
    /// If the `Once` is or becomes poisoned.
    #[track_caller]
    pub fn wait(&self) {
        if !self.is_completed() {
            self.wait_slow(false);
        }
    }

    /// Parks until a closure has completed, ignoring poison (std's `Once::wait_force`).
    pub fn wait_force(&self) {
        if !self.is_completed() {
            self.wait_slow(true);
        }
    }

    #[cold]
    #[track_caller]
    fn wait_slow(&self, ignore_poison: bool) {
        let mut held = self.lock.lock();
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                POISONED if !ignore_poison => {
                    drop(held);
                    panic!("Once instance has previously been poisoned");
                }
                _ => held = self.done.wait(held),
            }
        }
    }

    #[cold]
    #[track_caller]
    fn call(&self, ignore_poison: bool, f: &mut dyn FnMut(&OnceState)) {
        let mut held = self.lock.lock();
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                POISONED if !ignore_poison => {
                    drop(held);
                    panic!("Once instance has previously been poisoned");
                }
                RUNNING => held = self.done.wait(held),
                state => {
                    self.state.store(RUNNING, Ordering::Relaxed);
                    drop(held);
                    // Poisons unless the closure returns normally.
                    let mut completion = Completion {
                        once: self,
                        set_to: POISONED,
                    };
                    f(&OnceState {
                        poisoned: state == POISONED,
                    });
                    completion.set_to = COMPLETE;
                    return;
                }
            }
        }
    }

    /// The state, through `&mut` (nothing can be running).
    pub(crate) fn state_mut(&mut self) -> ExclusiveState {
        match *self.state.get_mut() {
            INCOMPLETE => ExclusiveState::Incomplete,
            POISONED => ExclusiveState::Poisoned,
            COMPLETE => ExclusiveState::Complete,
            _ => unreachable!("Once: RUNNING seen through &mut"),
        }
    }

    /// Sets the state through `&mut` (for `LazyLock::force_mut`, which runs its initialiser
    /// without the lock since nothing else can reach the `Once`).
    pub(crate) fn set_state(&mut self, s: ExclusiveState) {
        *self.state.get_mut() = match s {
            ExclusiveState::Incomplete => INCOMPLETE,
            ExclusiveState::Poisoned => POISONED,
            ExclusiveState::Complete => COMPLETE,
        };
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").finish_non_exhaustive()
    }
}
