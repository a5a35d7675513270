//! The runtime's clock: timer-epoch nanoseconds, the coarse "now" that parks are stamped
//! with, and saturating deadlines. Timer deadlines (`timers.rs`) are `u64` nanoseconds
//! since one process-wide epoch, so heaps compare integers, never `Instant`s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The instant all timer deadlines are measured from, as nanoseconds.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the epoch (saturating).
pub(crate) fn to_nanos(t: Instant) -> u64 {
    t.saturating_duration_since(epoch())
        .as_nanos()
        .min(u64::MAX as u128 - 1) as u64
}

pub(crate) fn from_nanos(n: u64) -> Instant {
    epoch() + Duration::from_nanos(n)
}

/// A coarse "now" (timer-epoch ns) for bookkeeping that must not pay for a clock read: the
/// moment a goroutine parks, for the "waiting" of dumps.
///
/// A goroutine parks on every blocking operation (two parks per ping-pong round trip), and
/// a clock read costs ~20 ns here — even a bare `rdtsc` costs ~9 ns on this VM, which made
/// ping-pong ~6% slower (measured) — so the park path only loads this word. It is kept fresh
/// where the clock is read anyway or cheaply:
///
/// - when an M wakes from its idle park (a futex wait: the clock read is noise there);
/// - every 61st scheduling round of each M (the round that already looks at the global
///   queue), and by spinning Ms (they read the clock to bound their spin);
/// - by `run_due` whenever timers are armed (it reads the clock every round then);
/// - by sysmon on every wake (20 µs to 10 ms apart), and by `now_nanos` callers.
///
/// So a goroutine that parks soon after its M woke up, or on an M that switches goroutines,
/// gets its wait measured to within microseconds; one that parks after computing for a long
/// time without a switch, to within sysmon's current nap (at most 10 ms). Writers skip
/// updates smaller than `COARSE_STEP`, so that Ms that read the clock often do not fight
/// over this cache line.
static COARSE_NOW: AtomicU64 = AtomicU64::new(0);

/// Updates of the coarse time smaller than this are skipped (see `COARSE_NOW`).
const COARSE_STEP: u64 = 20_000;

/// The coarse current time (see `COARSE_NOW`).
#[inline]
pub(crate) fn coarse_now() -> u64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

/// Feeds a clock reading made anyway (`now`, timer-epoch ns) to the coarse time.
#[inline]
pub(crate) fn note_now(now: u64) {
    if now > COARSE_NOW.load(Ordering::Relaxed) + COARSE_STEP {
        COARSE_NOW.fetch_max(now, Ordering::Relaxed);
    }
}

/// Reads the clock to refresh the coarse time.
#[inline(never)]
pub(crate) fn refresh_coarse() {
    note_now(to_nanos(Instant::now()));
}

/// Reads the clock and refreshes the coarse time.
pub(crate) fn now_nanos() -> u64 {
    let n = to_nanos(Instant::now());
    COARSE_NOW.fetch_max(n, Ordering::Relaxed);
    n
}

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
