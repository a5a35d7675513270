//! `WaitGroup`: wait for a collection of goroutines to finish (Go's `sync.WaitGroup`).
//!
//! One `AtomicU64` holds the counter (high 32 bits, signed) and the number of waiters (low
//! 32 bits); waiters park on a [`Sema`]. `add` that brings the counter to zero with waiters
//! present resets the word to 0 and releases the semaphore once per waiter. `wait` returns at
//! once when the counter is zero, else registers as a waiter with one CAS and parks. Every
//! clone shares the same word (an `Arc`), so a clone can be moved into each goroutine.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::sema::Sema;
use crate::runtime::park::WaitReason;

/// Waits for a collection of goroutines to finish. Clones share one counter.
///
/// ```
/// let wg = gort::sync::WaitGroup::new();
/// for i in 0..3 {
///     wg.add(1);
///     let wg = wg.clone();
///     gort::spawn(move || {
///         let _ = i * 2;
///         wg.done();
///     });
/// }
/// wg.wait();
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    /// The shared counter and waiter count.
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Counter in the high 32 bits (as i32), waiters in the low 32 bits.
    state: AtomicU64,
    /// Where `wait` parks.
    sema: Sema,
}

impl WaitGroup {
    /// A wait group with a zero counter.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `n` to the counter. Call it before starting the goroutine that will call
    /// [`done`](WaitGroup::done), not inside it.
    #[inline]
    pub fn add(&self, n: usize) {
        let n = i32::try_from(n).expect("sync: WaitGroup counter overflow");
        self.add_delta(n);
    }

    /// Decrements the counter by one; when it reaches zero, every `wait` returns.
    ///
    /// # Panics
    /// `sync: negative WaitGroup counter` if called more times than added.
    #[inline]
    pub fn done(&self) {
        self.add_delta(-1);
    }

    #[inline]
    fn add_delta(&self, delta: i32) {
        let inner = &*self.inner;
        let state = inner
            .state
            .fetch_add(((delta as i64) << 32) as u64, Ordering::AcqRel)
            .wrapping_add(((delta as i64) << 32) as u64);
        let v = (state >> 32) as i32;
        let w = state as u32;
        if v > 0 || (v == 0 && w == 0) {
            return;
        }
        self.add_slow(state);
    }

    #[cold]
    fn add_slow(&self, state: u64) {
        let inner = &*self.inner;
        let v = (state >> 32) as i32;
        let w = state as u32;
        if v < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        // Counter is 0 and there are waiters: nobody may change the state now but us.
        if inner.state.load(Ordering::Acquire) != state {
            panic!("sync: WaitGroup misuse: add called concurrently with wait");
        }
        inner.state.store(0, Ordering::Release);
        for _ in 0..w {
            inner.sema.release(false);
        }
    }

    /// Parks until the counter is zero.
    pub fn wait(&self) {
        let inner = &*self.inner;
        let mut state = inner.state.load(Ordering::Acquire);
        loop {
            if (state >> 32) as i32 == 0 {
                return;
            }
            match inner.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    inner.sema.acquire(false, WaitReason::WaitGroupWait);
                    return;
                }
                Err(s) => state = s,
            }
        }
    }

    /// Adds one, runs `f` in a new goroutine and calls `done` when it returns (or panics):
    /// Go 1.25's `WaitGroup.Go`. The handle gives `f`'s result.
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// let h = wg.go(|| 6 * 7);
    /// wg.wait();
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn go<F, T>(&self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        struct Done(WaitGroup);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let done = Done(self.clone());
        crate::spawn(move || {
            let _done = done;
            f()
        })
    }

    /// The counter now (a racy snapshot, for diagnostics).
    pub fn count(&self) -> usize {
        ((self.inner.state.load(Ordering::Relaxed) >> 32) as i32).max(0) as usize
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
