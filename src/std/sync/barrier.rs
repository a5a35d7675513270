//! std's `Barrier`: `gort::sync::Barrier` with std's `const fn new`.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

use super::BarrierWaitResult;
use crate::sync;

/// Lets `n` goroutines (or threads) wait until all `n` have arrived; reusable. See
/// `std::sync::Barrier`.
///
/// ```
/// use gort::std::sync::{Arc, Barrier};
/// use gort::std::thread;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let handles: Vec<_> = (0..3)
///     .map(|_| {
///         let b = Arc::clone(&barrier);
///         thread::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = handles.into_iter().filter(|_| true).map(|h| h.join().unwrap());
/// assert_eq!(leaders.filter(|&l| l).count(), 1);
/// ```
pub struct Barrier {
    /// The one barrier implementation.
    inner: sync::Barrier,
}

impl UnwindSafe for Barrier {}
impl RefUnwindSafe for Barrier {}

impl Barrier {
    /// A barrier for `n` parties. As with std's, `n == 0` behaves like `n == 1` (every
    /// `wait` returns at once, as leader).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            inner: sync::Barrier::new(if n == 0 { 1 } else { n }),
        }
    }

    /// Parks until `n` parties (this one included) have called `wait` in this round.
    /// Exactly one of them gets a result whose `is_leader()` is true.
    pub fn wait(&self) -> BarrierWaitResult {
        self.inner.wait()
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}
