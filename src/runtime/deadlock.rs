//! Deadlock detection: "fatal error: all goroutines are asleep - deadlock!".
//!
//! A report kills the program, so it must never be wrong. It belongs to programs whose entry
//! is `#[gort::main]` (the runtime starts before any user code). sysmon reports when, on two
//! consecutive looks at least 10 ms apart with no M woken in between:
//!
//! - every M holding a P is idle (parked on the idle list), no M runs a goroutine (none is in
//!   a system call or `blocking`; an M waiting for its locked goroutine is not running it),
//!   and no run queue holds a goroutine;
//! - no timer is armed and no goroutine or thread waits for I/O;
//! - every OS thread of the process is the runtime's own (an M, sysmon, the poller), a plain
//!   thread parked in a gort primitive with no deadline (its parker is in the untimed PARKED
//!   state, which only an unpark can end: `park::plain_threads_parked`), or a thread that
//!   predates the program: alive, with the same start time, when `#[gort::main]` began, other
//!   than the thread that called it (a test harness's threads when a test runs a
//!   `#[gort::main]` function). The thread that runs `#[gort::main]` counts once it waits for
//!   the main goroutine (before, it is starting the program). A std thread the program
//!   started that is computing, waiting with a timeout, or blocked in something that is not
//!   gort (it might still send) means no report.
//!
//! The checks cost nothing on the hot paths: sysmon reads counters that exist anyway, and
//! looks at `/proc` only once everything else says "all asleep".

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::scheduler::Sched;

/// Runtime threads that are not Ms (sysmon, the network poller), counted when spawned.
static RUNTIME_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Their OS thread ids, each registered by the thread itself when it starts.
static RUNTIME_TIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Set by `run_main`: this program's entry is `#[gort::main]`.
static MAIN_MODE: AtomicBool = AtomicBool::new(false);
/// The threads alive when `#[gort::main]` began, as (tid, start time): not the program's.
static PREDATING: OnceLock<Vec<(i32, u64)>> = OnceLock::new();

/// Registers the calling thread as a runtime thread that is not an M (its spawner already
/// counted it with [`runtime_thread_spawned`]). Called by the thread itself: until it is, it
/// counts as a program thread, so no report can happen early.
pub(crate) fn runtime_thread_started() {
    RUNTIME_TIDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(gettid());
}

/// Counts a runtime thread that is not an M, before spawning it (for metrics).
pub(crate) fn runtime_thread_spawned() {
    RUNTIME_THREADS.fetch_add(1, Ordering::SeqCst);
}

/// Runtime threads that are not Ms (for metrics).
pub(crate) fn runtime_threads() -> usize {
    RUNTIME_THREADS.load(Ordering::Relaxed)
}

/// Turns deadlock reports on (called by `#[gort::main]`'s entry on the thread that will wait
/// for the main goroutine), and notes the threads that predate the program: every thread
/// alive now but the caller, which is the program's until it waits in a gort primitive
/// (while it starts the runtime and spawns the main goroutine, nothing else may run).
pub(crate) fn enable() {
    PREDATING.get_or_init(|| {
        let me = gettid();
        threads()
            .unwrap_or_default()
            .into_iter()
            .filter(|&tid| tid != me)
            .filter_map(|tid| Some((tid, start_time(tid)?)))
            .collect()
    });
    MAIN_MODE.store(true, Ordering::SeqCst);
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The process's OS threads, from /proc.
fn threads() -> Option<Vec<i32>> {
    let dir = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// When thread `tid` started (field 22 of its stat, in clock ticks since boot).
fn start_time(tid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the command name start at field 3.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// True if thread `tid` predates the program. A tid reused by a newer thread has a later
/// start time; a tid reused within the same clock tick would need the kernel's whole tid
/// space to wrap around in 10 ms.
fn predates(tid: i32) -> bool {
    PREDATING
        .get()
        .and_then(|p| p.iter().find(|&&(t, _)| t == tid))
        .is_some_and(|&(_, start)| start_time(tid) == Some(start))
}

/// True if every OS thread is the runtime's, parked in gort for good, or predates the program.
fn all_threads_accounted(sched: &Sched) -> bool {
    let Some(tids) = threads() else { return false };
    let machines: Vec<i32> = {
        let all = sched.machines.all.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter(|m| m.is_live())
            .map(|m| m.tid())
            .collect()
    };
    let runtime = RUNTIME_TIDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let parked = crate::park::plain_threads_parked();
    tids.into_iter().all(|tid| {
        machines.contains(&tid) || runtime.contains(&tid) || parked.contains(&tid) || predates(tid)
    })
}

/// sysmon's view of a possible deadlock across looks.
#[derive(Default)]
pub(crate) struct Detector {
    /// (wakes counter, schedtick sum, when) of the last look that found everyone asleep.
    candidate: Option<(u64, u64, Instant)>,
}

impl Detector {
    pub(crate) fn check(&mut self, sched: &Sched, out: &mut super::output::Output) {
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
                    report(out);
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
    if !all_threads_accounted(sched) {
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

/// Prints the report through sysmon's output (after what it still holds) and exits. The
/// write waits for stderr a little, but never for std's stderr lock: a goroutine asleep for
/// ever may be holding it.
fn report(out: &mut super::output::Output) -> ! {
    out.text(&format!(
        "fatal error: all goroutines are asleep - deadlock!\n\n{}\n",
        super::dump::dump_string()
    ));
    out.flush_for(FATAL_PATIENCE);
    std::process::exit(2);
}

/// How long a fatal report waits for stderr to take it.
pub(crate) const FATAL_PATIENCE: Duration = Duration::from_secs(5);
