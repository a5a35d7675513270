//! The clock of dump wait times: a stamp taken by every goroutine that parks, cheap enough
//! for the park path, converted to nanoseconds only when a dump asks.
//!
//! # Design
//! A goroutine parks on every blocking operation, and ping-pong costs two parks per round
//! trip, so the stamp must cost a few instructions: a clock read (`clock_gettime` through
//! the vDSO: ~50 instructions and a serialising counter read) is too much, and a coarse
//! time refreshed by sysmon's naps was wrong by up to their length (10 ms when idle; a
//! goroutine parked for 50 ms showed 69 ms).
//!
//! - **x86_64**: the stamp is the time-stamp counter (`rdtsc`: one instruction, not
//!   serialising). Every x86_64 CPU of the last fifteen years has an invariant TSC (constant
//!   rate, synchronised across cores), which is what Linux itself reads for `CLOCK_MONOTONIC`
//!   when its clocksource is `tsc`. A dump converts ticks to nanoseconds with the rate
//!   measured between the runtime's start (`init`: a TSC read paired with `Instant::now()`)
//!   and the dump (another pair), so no frequency needs to be known.
//! - **elsewhere**: the stamp is the coarse time (`timers::coarse_now`, refreshed whenever
//!   the runtime reads the clock and by sysmon's naps), accurate to those naps.
//!
//! A converted wait is clamped to the time since the runtime started (a counter that is
//! not synchronised across cores, on a machine Linux would not trust, cannot produce more).

use std::sync::OnceLock;
use std::time::Instant;

/// A stamp: TSC ticks on x86_64, coarse timer-epoch nanoseconds elsewhere.
#[inline(always)]
pub(crate) fn stamp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions (it only reads the time-stamp counter).
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        crate::time::timers::coarse_now()
    }
}

/// The runtime's start: (stamp, instant).
static START: OnceLock<(u64, Instant)> = OnceLock::new();

/// Records the runtime's start (the base of the conversion); called when it starts, before
/// any goroutine can park.
pub(crate) fn init() {
    START.get_or_init(|| (stamp(), Instant::now()));
}

/// Nanoseconds since `then`, a [`stamp`] taken after [`init`].
pub(crate) fn elapsed_ns(then: u64) -> u64 {
    let now = stamp();
    let now_instant = Instant::now();
    let &(start, start_instant) = START.get_or_init(|| (now, now_instant));
    let since_start = now_instant.duration_since(start_instant).as_nanos() as u64;
    let ns = if cfg!(target_arch = "x86_64") {
        let (ticks, all_ticks) = (now.saturating_sub(then), now.saturating_sub(start));
        if all_ticks == 0 {
            return 0;
        }
        (ticks as u128 * since_start as u128 / all_ticks as u128) as u64
    } else {
        crate::time::timers::now_nanos().saturating_sub(then)
    };
    ns.min(since_start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_convert_to_elapsed_time() {
        init();
        std::thread::sleep(Duration::from_millis(5));
        let t = stamp();
        let before = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let lo = before.elapsed().as_nanos() as u64;
        let w = elapsed_ns(t);
        let hi = before.elapsed().as_nanos() as u64 + 1_000_000;
        if cfg!(target_arch = "x86_64") {
            assert!(
                lo.saturating_sub(200_000) <= w && w <= hi,
                "{lo} <= {w} <= {hi}"
            );
        }
        assert!(elapsed_ns(stamp()) < 1_000_000);
    }
}
