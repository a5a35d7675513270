//! Time: sleeping, and (with channels) `after`, `tick`, `Timer` and `Ticker`.
//!
//! A façade over the runtime's timer heaps (`runtime/timers.rs`, as Go's `time` package is
//! over `runtime/time.go`): no thread per timer, and an expired goroutine is made runnable
//! on a worker, never run on a timer thread.

mod timer;

pub use timer::{after, after_func, tick, Ticker, Timer};

pub(crate) use crate::runtime::clock::{deadline_after, saturating_add};
/// Number of armed timers in the runtime's timer heaps (for tests: a stopped or dropped
/// timer leaves nothing behind).
#[doc(hidden)]
pub use crate::runtime::timers::armed_count;

use std::time::{Duration, Instant};

use crate::runtime::park::{self, WaitReason};

/// Puts the current goroutine to sleep for at least `dur` without holding its worker thread;
/// on a plain thread, sleeps the thread (`std::thread::sleep`).
///
/// ```
/// let t = std::time::Instant::now();
/// gort::spawn(|| gort::time::sleep(std::time::Duration::from_millis(5))).join().unwrap();
/// assert!(t.elapsed() >= std::time::Duration::from_millis(5));
/// ```
pub fn sleep(dur: Duration) {
    if !park::in_goroutine() {
        std::thread::sleep(dur);
        return;
    }
    if dur.is_zero() {
        crate::runtime::yield_now();
        return;
    }
    sleep_until_deadline(deadline_after(dur));
}

/// Sleeps until `deadline` (returns at once if it has passed).
pub fn sleep_until(deadline: Instant) {
    if !park::in_goroutine() {
        if let Some(d) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        return;
    }
    sleep_until_deadline(deadline);
}

fn sleep_until_deadline(deadline: Instant) {
    while Instant::now() < deadline {
        park::park_until(WaitReason::Sleep, deadline);
    }
}
