//! `Barrier`: `n` goroutines wait until all `n` have arrived, then all go on; reusable.
//!
//! One small lock holds the arrival count and the parked waiters of the current generation.
//! The `n`-th arrival is the leader: it starts a new generation (count back to 0) and wakes
//! the waiters of the old one, under the lock, so a fast goroutine that comes back for the
//! next round joins the new generation and never releases a slow one early.

use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};

use super::waiter::{Waiter, WOKEN};
use crate::runtime::park::WaitReason;

/// A reusable barrier for a fixed number of goroutines (std-shaped).
///
/// ```
/// use std::sync::Arc;
/// let b = Arc::new(gort::sync::Barrier::new(3));
/// let hs: Vec<_> = (0..3)
///     .map(|_| {
///         let b = b.clone();
///         gort::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = hs.into_iter().map(|h| h.join().unwrap()).filter(|&l| l).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    /// Parties per generation.
    n: usize,
    /// Arrivals in the current generation and their waiters.
    state: StdMutex<State>,
}

struct State {
    /// Arrivals so far in this generation.
    count: usize,
    /// Generations completed (for Debug).
    generation: u64,
    /// Parked arrivals of this generation.
    waiters: Vec<Arc<Waiter>>,
}

/// What [`Barrier::wait`] returns: whether this caller was the generation's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one caller per generation (the last to arrive).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` goroutines.
    ///
    /// # Panics
    /// If `n` is zero.
    pub const fn new(n: usize) -> Barrier {
        assert!(
            n > 0,
            "sync: Barrier::new(0): a barrier needs at least one party"
        );
        Barrier {
            n,
            state: StdMutex::new(State {
                count: 0,
                generation: 0,
                waiters: Vec::new(),
            }),
        }
    }

    /// Parks until `n` goroutines (this one included) have called `wait` in this generation.
    pub fn wait(&self) -> BarrierWaitResult {
        let w = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.count += 1;
            if s.count == self.n {
                s.count = 0;
                s.generation += 1;
                for w in s.waiters.drain(..) {
                    w.wake(WOKEN);
                }
                return BarrierWaitResult(true);
            }
            let w = Waiter::new();
            s.waiters.push(w.clone());
            w
        };
        w.wait(WaitReason::BarrierWait);
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("waiting", &s.count)
            .field("generation", &s.generation)
            .finish()
    }
}
