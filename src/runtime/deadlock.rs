//! Deadlock detection: "fatal error: all goroutines are asleep - deadlock!".
//!
//! A report kills the program, so it must never be wrong. It belongs to programs whose entry
//! is `#[gort::main]` (the runtime starts before any user code). sysmon reports when, on two
//! consecutive looks at least 10 ms apart with no M woken in between:
//!
//! - every M holding a P is idle (parked on the idle list), no M runs a goroutine (none is in
//!   a system call or `blocking`), and no run queue holds a goroutine;
//! - no timer is armed and no goroutine or thread waits for I/O;
//! - every OS thread of the process is either the runtime's own (Ms, sysmon, the poller) or a
//!   plain thread parked in a gort primitive with no deadline (its parker is in the untimed
//!   PARKED state, which only an unpark can end: `park::plain_threads_parked`). A std thread
//!   that is computing, waiting with a timeout, or blocked in something that is not gort (it
//!   might still send) means no report.
//!
//! The checks cost nothing on the hot paths: sysmon reads counters that exist anyway, and
//! looks at `/proc` only once everything else says "all asleep".

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::scheduler::Sched;

/// Runtime threads that are not Ms (sysmon, the network poller).
static RUNTIME_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Set by `run_main`: this program's entry is `#[gort::main]`.
static MAIN_MODE: AtomicBool = AtomicBool::new(false);

/// Counts a runtime thread that is not an M.
pub(crate) fn runtime_thread_started() {
    RUNTIME_THREADS.fetch_add(1, Ordering::SeqCst);
}

/// Runtime threads that are not Ms (for metrics).
pub(crate) fn runtime_threads() -> usize {
    RUNTIME_THREADS.load(Ordering::Relaxed)
}

/// Turns deadlock reports on (called by `#[gort::main]`'s entry).
pub(crate) fn enable() {
    MAIN_MODE.store(true, Ordering::SeqCst);
}

/// The process's OS thread count, from /proc.
fn os_threads() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the command name start at field 3; num_threads is field 20.
    after.split_whitespace().nth(17)?.parse().ok()
}

/// sysmon's view of a possible deadlock across looks.
#[derive(Default)]
pub(crate) struct Detector {
    /// (wakes counter, schedtick sum, when) of the last look that found everyone asleep.
    candidate: Option<(u64, u64, Instant)>,
}

impl Detector {
    pub(crate) fn check(&mut self, sched: &Sched) {
        if !MAIN_MODE.load(Ordering::Relaxed) {
            return;
        }
        let Some(snapshot) = asleep(sched) else {
            self.candidate = None;
            return;
        };
        match self.candidate {
            Some((w, t, at)) if (w, t) == (snapshot.0, snapshot.1) => {
                if at.elapsed() >= Duration::from_millis(10) {
                    report();
                }
            }
            _ => self.candidate = Some((snapshot.0, snapshot.1, Instant::now())),
        }
    }
}

/// If everything is asleep, the (wakes, schedtick sum) that proves nothing moved since.
fn asleep(sched: &Sched) -> Option<(u64, u64)> {
    let wakes = sched.wakes.load(Ordering::SeqCst);
    if sched.nidle.load(Ordering::SeqCst) != sched.nprocs
        || !sched.global_is_empty()
        || sched.procs.iter().any(|p| !p.is_empty())
        || crate::time::timers::next_deadline().is_some()
        || crate::runtime::io_waiters() > 0
    {
        return None;
    }
    {
        let all = sched.machines.all.lock().unwrap_or_else(|e| e.into_inner());
        if all.iter().any(|m| {
            !m.current.load(Ordering::SeqCst).is_null()
                || !m.locked_ready.load(Ordering::SeqCst).is_null()
        }) {
            return None;
        }
    }
    let expected = sched.machines.count.load(Ordering::SeqCst)
        + RUNTIME_THREADS.load(Ordering::SeqCst)
        + crate::park::plain_threads_parked();
    if os_threads()? != expected {
        return None;
    }
    let ticks: u64 = sched
        .procs
        .iter()
        .map(|p| p.schedtick.load(Ordering::SeqCst) as u64)
        .sum();
    (sched.wakes.load(Ordering::SeqCst) == wakes
        && sched.nidle.load(Ordering::SeqCst) == sched.nprocs)
        .then_some((wakes, ticks))
}

fn report() -> ! {
    eprintln!(
        "fatal error: all goroutines are asleep - deadlock!\n\n{}",
        super::dump::dump_string()
    );
    std::process::exit(2);
}
