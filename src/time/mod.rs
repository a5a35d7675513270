//! Time: sleeping, and (with channels) `after`, `tick`, `Timer` and `Ticker`.
//!
//! All of them share one timer structure (`timers.rs`): no thread per timer, and an expired
//! goroutine is made runnable on a worker, never run on a timer thread.

mod timer;
pub(crate) mod timers;

pub use timer::{after, after_func, tick, Ticker, Timer};

/// Number of armed timers in the shared timer structure (for tests: a stopped or dropped
/// timer leaves nothing behind).
#[doc(hidden)]
pub use timers::armed_count;

use std::time::{Duration, Instant};

use crate::park::{self, WaitReason};

/// A timeout too long to add to an `Instant` (such as `Duration::MAX`) waits this long
/// instead: a century, which no program outlives, and short enough that every clock
/// computation on the deadline stays in range.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `t + d`, saturating: a `d` too long for `Instant` gives `t` plus a century. Every timeout
/// in gort goes through this (or [`deadline_after`]): std's timeouts accept `Duration::MAX`
/// and wait for ever, so gort's must not panic on it.
pub(crate) fn saturating_add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or_else(|| t + FOREVER)
}

/// The deadline of a timeout starting now: `Instant::now() + d`, saturating.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    saturating_add(Instant::now(), d)
}

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
