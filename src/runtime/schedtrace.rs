//! `GORT_SCHEDTRACE=<ms>`: Go's `GODEBUG=schedtrace` line on stderr every period.
//!
//! ```text
//! SCHED 1001ms: gomaxprocs=2 idleprocs=1 threads=5 spinningthreads=0 idlethreads=1 runqueue=0 [0 0]
//! ```
//!
//! The time is milliseconds since the runtime started; the fields are those of Go 1.19's line
//! (`threads`: the runtime's OS threads; `idlethreads`: Ms asleep, idle or spare; `runqueue`:
//! the global queue; `[..]`: each processor's local queue and runnext). sysmon calls
//! [`SchedTrace::tick`] on each wake and shortens its naps so that a line is never late by
//! more than a tenth of the period. The numbers come from `metrics()`. The line is written
//! through sysmon's `Output` (output.rs): without std's stderr lock, never blocking; lines
//! that stderr cannot take for a while are dropped, and the drop is reported.

use std::fmt::Write;
use std::time::{Duration, Instant};

use super::metrics::metrics;
use super::output::Output;

/// `GORT_SCHEDTRACE=<ms>`: sysmon prints Go's `SCHED` line to stderr every period.
pub(crate) struct SchedTrace {
    /// The period, or None when tracing is off.
    period: Option<Duration>,
    /// When the runtime started (the line's time base, as Go's is its start).
    start: Instant,
    /// When the next line is due.
    next: Instant,
}

impl SchedTrace {
    /// Reads `GORT_SCHEDTRACE` (milliseconds; unset, empty or 0: off). A value that is not
    /// a number is reported on stderr and ignored.
    pub(crate) fn from_env(out: &mut Output) -> SchedTrace {
        let start = Instant::now();
        let period = match std::env::var("GORT_SCHEDTRACE") {
            Err(_) => None,
            Ok(v) if v.trim().is_empty() => None,
            Ok(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(ms) => Some(Duration::from_millis(ms)),
                Err(_) => {
                    out.line(&format!(
                        "gort: GORT_SCHEDTRACE must be a period in milliseconds, got {v:?}; ignored"
                    ));
                    None
                }
            },
        };
        SchedTrace {
            period,
            start,
            next: start + period.unwrap_or_default(),
        }
    }

    /// sysmon's sleep, shortened so that a line is never late by more than a tenth of the
    /// period (1 ms at least).
    pub(crate) fn cap_delay_us(&self, delay_us: u64) -> u64 {
        match self.period {
            Some(p) => delay_us.min((p.as_micros() as u64 / 10).max(1000)),
            None => delay_us,
        }
    }

    /// Queues the line on `out` if its time has come.
    pub(crate) fn tick(&mut self, out: &mut Output) {
        let Some(period) = self.period else { return };
        let now = Instant::now();
        if now < self.next {
            return;
        }
        while self.next <= now {
            self.next += period;
        }
        let ms = now.duration_since(self.start).as_millis() as u64;
        out.line(&sched_line(ms));
    }
}

/// Go's `GODEBUG=schedtrace` line for `ms` milliseconds since start:
/// `SCHED 1001ms: gomaxprocs=2 idleprocs=1 threads=5 spinningthreads=0 idlethreads=0
/// runqueue=0 [0 0]`.
pub(crate) fn sched_line(ms: u64) -> String {
    let m = metrics();
    let mut s = format!(
        "SCHED {ms}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={} [",
        m.gomaxprocs, m.procs_idle, m.threads_total, m.threads_spinning, m.threads_idle, m.global_queue
    );
    for (i, n) in m.local_queues.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(s, "{sep}{n}");
    }
    s.push(']');
    s
}
