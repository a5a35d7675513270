//! The runtime's clock: saturating deadlines. Every timeout in gort becomes an `Instant`
//! through these, in the runtime (the park primitive, the deadlock detector, the test
//! entry) and above it (`time`, `thread`, `net`, `chan`, `sync` reach them through the
//! `time` module, which re-exports them).

use std::time::{Duration, Instant};

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
