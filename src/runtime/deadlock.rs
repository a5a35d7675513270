//! Deadlock detection: "fatal error: all goroutines are asleep - deadlock!".
//!
//! A report kills the program, so it must never be wrong: a missed report costs a hang that
//! a human notices, a false one kills a working program. Reports belong to a `#[gort::main]`
//! program *while it runs*: from `run_main`'s start until its main goroutine returns or
//! panics ([`enable`] and its [`Reports`] guard; in Go the process ends there). That matters
//! when a test binary calls a `#[gort::main]` function in-process beside other tests: before
//! and after it, nothing is reported. sysmon reports when, on two consecutive looks at least
//! 10 ms apart with no M woken in between and the same program running:
//!
//! - every M holding a P is idle (parked on the idle list), no M runs a goroutine (none is in
//!   a system call or `blocking`; an M waiting for its locked goroutine is not running it),
//!   and no run queue holds a goroutine;
//! - no timer is armed to fire within [`HORIZON`] and no goroutine or thread waits for I/O;
//! - every OS thread of the process is
//!   - the runtime's own (an M, sysmon, the poller),
//!   - a plain thread parked in a gort primitive with no deadline (its parker is in the
//!     untimed PARKED state, which only an unpark can end: `park::plain_threads`), or
//!   - a thread that predates the program and has never used gort. It predates the program
//!     if it was alive when the first `#[gort::main]` began and started before the thread
//!     that called each one: a test harness's main thread, the threads of other tests that
//!     were already running. It has never used gort if it never blocked or waited in a gort
//!     primitive, spawned a goroutine, made a channel or started a program
//!     (`park::note_use`). Such a thread has made nothing of gort's, and the program's
//!     threads and goroutines, and the caller's threads, which it is older than, cannot have
//!     handed it anything by capture.
//!
//!   A std thread the program started that is computing, waiting with a timeout, or blocked
//!   in something that is not gort (it might still send) means no report; so does a
//!   predating thread that has used gort and is not parked in it for good.
//!
//! A deadline beyond [`HORIZON`] (a year) counts as none: std's timeouts take `Duration::MAX`
//! to mean "for ever", and gort saturates it to a century; a program whose only hope is a
//! timer a year away is stuck.
//!
//! What it cannot see goes through shared state: a predating thread that never used gort as
//! above but got hold of a gort object the program uses too — through a `static`, a std
//! channel, or by capture from another test's thread older than the caller — and wakes a
//! goroutine with it later. Such a program is reported while that thread waits outside gort.
//!
//! The checks cost nothing on the hot paths: sysmon reads counters that exist anyway, and
//! looks at `/proc` only once everything else says "all asleep". The report is written
//! straight to file descriptor 2 (output.rs), so a test harness's output capture, which
//! only sees `print!`/`eprint!`, never swallows it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::scheduler::Sched;

/// Runtime threads that are not Ms (sysmon, the network poller), counted when spawned.
static RUNTIME_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Their OS thread ids, each registered by the thread itself when it starts.
static RUNTIME_TIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// How many `#[gort::main]` programs run now (more than one only when tests call them in
/// one process); reports are on while this is not zero.
static RUNNING_MAINS: AtomicUsize = AtomicUsize::new(0);
/// Changes whenever a program starts or ends, so that a report needs both looks to see the
/// same programs.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The threads that predate every `#[gort::main]` program, as (tid, start time): alive when
/// the first began, and started before the thread that called each (see [`enable`]). None
/// before the first program.
static PREDATING: Mutex<Option<Vec<(i32, u64)>>> = Mutex::new(None);

/// A deadline further away than this counts as no deadline (see the module comment).
pub(crate) const HORIZON: Duration = Duration::from_secs(365 * 24 * 3600);

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

/// Turns deadlock reports on for a `#[gort::main]` program, until the returned guard drops
/// (`run_main` moves it into the main goroutine, so that it drops when that goroutine
/// returns or panics). Called on the thread that starts the program; that thread uses gort
/// from now on.
///
/// Notes the threads that predate the program: alive now (at the first program) and started
/// before the calling thread. A thread the caller (or a thread it started) started may hold
/// a gort object the caller made before starting the program, so only older threads count;
/// (start time, tid) orders them, tids breaking ties within a clock tick (they grow, and
/// would have to wrap around within one tick to mislead).
pub(crate) fn enable() -> Reports {
    super::park::note_use();
    let me = gettid();
    let mine = start_time(me).map(|start| (start, me));
    {
        let mut predating = PREDATING.lock().unwrap_or_else(|e| e.into_inner());
        let all = predating.get_or_insert_with(|| {
            threads()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|tid| Some((tid, start_time(tid)?)))
                .collect()
        });
        all.retain(|&(tid, start)| mine.is_some_and(|mine| (start, tid) < mine));
    }
    GENERATION.fetch_add(1, Ordering::SeqCst);
    RUNNING_MAINS.fetch_add(1, Ordering::SeqCst);
    Reports(())
}

/// Keeps deadlock reports on while a `#[gort::main]` program runs ([`enable`]).
pub(crate) struct Reports(());

impl Drop for Reports {
    fn drop(&mut self) {
        RUNNING_MAINS.fetch_sub(1, Ordering::SeqCst);
        GENERATION.fetch_add(1, Ordering::SeqCst);
    }
}

/// The programs running now, if any: reports are on.
fn programs() -> Option<u64> {
    (RUNNING_MAINS.load(Ordering::SeqCst) > 0).then(|| GENERATION.load(Ordering::SeqCst))
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

/// True if thread `tid` predates the programs ([`enable`]). A tid reused by a newer thread
/// has a later start time; a tid reused within the same clock tick would need the kernel's
/// whole tid space to wrap around in 10 ms.
fn predates(tid: i32) -> bool {
    let start = PREDATING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|p| p.iter().find(|&&(t, _)| t == tid).map(|&(_, start)| start));
    start.is_some_and(|start| start_time(tid) == Some(start))
}

/// True if every OS thread is the runtime's, parked in gort for good, or predates the program
/// and has never used gort.
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
    let plain = super::park::plain_threads();
    tids.into_iter().all(|tid| {
        machines.contains(&tid)
            || runtime.contains(&tid)
            || if plain.iter().any(|t| t.tid == tid) {
                // (A dead thread's parker may outlive it, held by a stale wait-queue entry,
                // and its tid be reused: any entry parked for good will do.)
                plain.iter().any(|t| t.tid == tid && t.parked)
            } else {
                predates(tid)
            }
    })
}

/// sysmon's view of a possible deadlock across looks.
#[derive(Default)]
pub(crate) struct Detector {
    /// (programs, wakes counter, schedtick sum, when) of the last look that found everyone
    /// asleep.
    candidate: Option<(u64, u64, u64, Instant)>,
}

impl Detector {
    pub(crate) fn check(&mut self, sched: &Sched, out: &mut super::output::Output) {
        let Some(gen) = programs() else {
            self.candidate = None;
            return;
        };
        let Some((wakes, ticks)) = asleep(sched).filter(|_| programs() == Some(gen)) else {
            self.candidate = None;
            return;
        };
        match self.candidate {
            Some((g, w, t, at)) if (g, w, t) == (gen, wakes, ticks) => {
                if at.elapsed() >= Duration::from_millis(10) {
                    report(out);
                }
            }
            _ => self.candidate = Some((gen, wakes, ticks, Instant::now())),
        }
    }
}

/// If everything is asleep, the (wakes, schedtick sum) that proves nothing moved since.
fn asleep(sched: &Sched) -> Option<(u64, u64)> {
    let wakes = sched.wakes.load(Ordering::SeqCst);
    if sched.nidle.load(Ordering::SeqCst) != sched.nprocs
        || !sched.global_is_empty()
        || sched.procs.iter().any(|p| !p.is_empty())
        || timer_within_horizon()
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

/// True if a timer is armed to fire within [`HORIZON`].
fn timer_within_horizon() -> bool {
    use super::timers;
    let horizon = timers::to_nanos(timers::deadline_after(HORIZON));
    timers::next_deadline().is_some_and(|when| when < horizon)
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
