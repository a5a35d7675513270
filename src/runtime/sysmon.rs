//! sysmon: the monitor thread that keeps the scheduler moving.
//!
//! Like Go's sysmon, it sleeps 20 µs, doubling up to 10 ms while nothing needs doing, and
//! on each wake:
//!
//! - **retakes** a P whose M has not switched goroutines for a while (its `schedtick` has
//!   not moved) while goroutines wait, and hands it to another M:
//!   - inside `blocking`, after ~20 µs;
//!   - in a raw system call (std::fs, `std::thread::sleep`, a blocking C call — its thread
//!     is seen in the same system call, `/proc/self/task/TID/syscall`, at two checks in a
//!     row), after ~20 µs, with Go's syscall rule (keep the P while its own queue is empty,
//!     other Ms can take new work, and the call has lasted under 10 ms). A thread asleep in
//!     a page fault (waiting for the memory map's lock, or for I/O) is not in a system call:
//!     it is running its goroutine's code, and the P stays;
//!   - running (a CPU or spawn loop: safe Rust cannot be preempted, so the goroutine keeps
//!     its thread and everyone else moves on), after ~10 ms: first idle or searching Ms are
//!     woken to steal the queue; if every M is busy but some took queued work (a steal, or
//!     from the global queue) in the last 10 ms, the queue is moving and the P stays;
//!     otherwise (GORT_MAXPROCS=1, or every other M is stuck too) the P moves;
//! - fires **timers** that are overdue because every M is busy;
//! - refreshes the **coarse clock** (goroutines stamp their parks with it, for wait times in
//!   dumps: `clock::COARSE_NOW`);
//! - looks for a **deadlock** (`deadlock.rs`) and serves SIGQUIT **dumps** (`dump.rs`);
//! - about once a second, **scavenges** goroutine stacks: unmaps wholly free arenas and
//!   trims free stacks idle for a period or beyond each size class's budget, and trims the
//!   C heap after a burst (`stack/mod.rs`, `stack/arena.rs`); work left over after a slice
//!   of a few milliseconds goes on at the next rounds;
//! - prints the `GORT_SCHEDTRACE` line when its period is up (`schedtrace.rs`).
//!
//! Whatever it prints goes through `output.rs`: never std's stderr lock, never a write that
//! can block (a goroutine holding the lock, or a full stderr pipe, must not stall it).
//!
//! It never runs goroutines and holds no P.
//!
//! # Safety
//! sysmon dereferences a processor's `owner` pointer; `Machine`s are never freed (machine.rs
//! keeps every one and reuses those whose thread exited), so the pointer is always valid, and
//! the owner's `p` is cleared only by CAS from this very processor.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::machine::{pack, BLOCKING, FREE, RUNNING};
use super::output::Output;
use super::scheduler::{self, Sched};
use super::timers;

/// A P stuck this long inside `blocking` is handed off (when work waits).
const BLOCKING_RETAKE_NS: u64 = 20_000;
/// A P stuck this long running one goroutine is handed off (when work waits).
const RUNNING_RETAKE_NS: u64 = 10_000_000;
/// sysmon's longest nap while output waits for stderr.
const PENDING_OUTPUT_US: u64 = 5_000;
/// Period of the stack scavenger.
const SCAVENGE_NS: u64 = 1_000_000_000;
/// Pause between two slices of scavenging work left over (each about 2 ms at most).
const SCAVENGE_SLICE_GAP_NS: u64 = 2_000_000;

pub(crate) fn start() {
    super::deadlock::runtime_thread_spawned();
    std::thread::Builder::new()
        .name("gort-sysmon".into())
        .spawn(run)
        .expect("gort: cannot start the sysmon thread");
}

fn run() {
    super::deadlock::runtime_thread_started();
    super::machine::precise_timer_slack();
    let sched = scheduler::get();
    let mut snaps = vec![
        Snap {
            tick: 0,
            since: 0,
            syscall: None,
        };
        sched.nprocs
    ];
    let mut delay_us: u64 = 20;
    let mut idle_rounds = 0u32;
    let mut deadlock = super::deadlock::Detector::default();
    // Everything sysmon prints goes through `out`: never std's stderr lock, never a
    // blocking write (output.rs).
    let mut out = Output::new();
    let mut next_scavenge = 0;
    let mut next_period = 0;
    let mut trace = super::schedtrace::SchedTrace::from_env(&mut out);
    out.flush(); // a malformed GORT_SCHEDTRACE is reported at once
    let mut steals = StealWatch::default();
    loop {
        let mut sleep_us = trace.cap_delay_us(delay_us);
        if out.is_pending() {
            sleep_us = sleep_us.min(PENDING_OUTPUT_US);
        }
        std::thread::sleep(Duration::from_micros(sleep_us));
        let now = timers::now_nanos();
        trace.tick(&mut out);
        steals.update(sched, now);
        let retook = retake(sched, &mut snaps, now, &steals);
        if timers::next_deadline().is_some_and(|d| d + 1_000_000 < now) {
            timers::run_due();
        }
        super::dump::serve_sigquit(&mut out);
        deadlock.check(sched, &mut out);
        if now >= next_scavenge {
            // A period is up: free stacks idle since the last one are trimmed. Leftover
            // work (a big burst's arenas to unmap) goes on at the next rounds, a slice at a
            // time, so that this loop keeps its cadence.
            let aging = now >= next_period;
            if aging {
                next_period = now + SCAVENGE_NS;
            }
            let more = super::stack::scavenge(aging, sched.num_goroutines());
            next_scavenge = if more {
                now + SCAVENGE_SLICE_GAP_NS
            } else {
                next_period
            };
        }
        out.flush();
        if retook {
            idle_rounds = 0;
            delay_us = 20;
        } else {
            idle_rounds += 1;
            if idle_rounds > 50 {
                delay_us = (delay_us * 2).min(10_000);
            }
        }
    }
}

/// What the OS thread of a stalled P is doing, as the kernel tells it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ThreadState {
    /// On a CPU or runnable (a CPU loop), or asleep outside any system call: a page fault
    /// waiting for the memory map's lock, for I/O or for a `userfaultfd` handler. A fault
    /// is part of running the goroutine's code, not a call into the kernel that could last:
    /// handing the P off for it only adds a thread and pushes spawns to the global queue.
    Running,
    /// Inside system call number `n`.
    Syscall(i64),
}

/// Where the thread `tid` of this process is: `/proc/self/task/TID/syscall` says `running`,
/// `-1 SP PC` (blocked, but not in a system call) or the number of the system call it is in.
/// Where that file cannot be read, a thread asleep in the kernel (state S or D in `stat`)
/// counts as in a system call (number -2), which is all older kernels let us tell.
pub(crate) fn thread_state(tid: i32) -> ThreadState {
    if tid <= 0 {
        return ThreadState::Running;
    }
    let mut buf = [0u8; 32];
    if let Some(n) = read_proc(&format!("/proc/self/task/{tid}/syscall"), &mut buf) {
        let text = &buf[..n];
        if text.starts_with(b"running") || text.starts_with(b"-1") {
            return ThreadState::Running;
        }
        let num = text
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0'));
        return ThreadState::Syscall(num);
    }
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return ThreadState::Running;
    };
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return ThreadState::Running;
    };
    match stat.get(close + 2) {
        Some(b'S' | b'D') => ThreadState::Syscall(-2),
        _ => ThreadState::Running,
    }
}

/// Reads up to `buf.len()` bytes of a /proc file; None if it cannot be read or is empty.
fn read_proc(path: &str, buf: &mut [u8]) -> Option<usize> {
    use std::io::Read;
    let n = std::fs::File::open(path).ok()?.read(buf).ok()?;
    (n > 0).then_some(n)
}

/// What sysmon remembers about one P between its checks.
#[derive(Clone, Copy)]
struct Snap {
    /// The P's `schedtick` when last seen.
    tick: u32,
    /// When `tick` was first seen (timer-epoch ns): the stall began then.
    since: u64,
    /// The system call its thread was seen in at the previous check of this stall, if any.
    syscall: Option<i64>,
}

/// When some M last stole work or took from the global queue: a sign that queued goroutines
/// are being taken.
#[derive(Default)]
struct StealWatch {
    /// Steals and global-queue takes by all processors when last looked at.
    total: u64,
    /// When `total` was last seen to change (timer-epoch ns).
    last_change: u64,
}

impl StealWatch {
    fn update(&mut self, sched: &Sched, now: u64) {
        let total = super::metrics::total_takes(sched);
        if total != self.total {
            self.total = total;
            self.last_change = now;
        }
    }
}

/// Hands off every P stuck in one goroutine for too long while work waits.
fn retake(sched: &'static Sched, snaps: &mut [Snap], now: u64, steals: &StealWatch) -> bool {
    let mut retook = false;
    for (p, snap) in sched.procs.iter().zip(snaps.iter_mut()) {
        let state = p.state.load(Ordering::Acquire);
        let phase = state & 0xff;
        let tick = p.schedtick.load(Ordering::Relaxed);
        if (phase != RUNNING && phase != BLOCKING) || tick != snap.tick {
            *snap = Snap {
                tick,
                since: now,
                syscall: None,
            };
            continue;
        }
        let stalled = now.saturating_sub(snap.since);
        if stalled < BLOCKING_RETAKE_NS {
            continue;
        }
        let waiting =
            !p.is_empty() || (!sched.global_is_empty() && sched.nidle.load(Ordering::SeqCst) == 0);
        if !waiting {
            continue;
        }
        if phase == RUNNING {
            // Not inside `blocking`: is its thread in a raw system call (std::fs,
            // std::thread::sleep, a blocking C call), or running (a CPU loop, or a page
            // fault)? In a system call only if it was seen in the same one at the previous
            // check too, as Go retakes a P only from a system call that outlasted a sysmon
            // tick: a short call (the allocator's mprotect) caught by one look is no reason.
            let owner = p.owner.load(Ordering::Acquire);
            let seen = if owner.is_null() {
                ThreadState::Running
            } else {
                // SAFETY: Machines are never freed (machine.rs), so the pointer is valid.
                thread_state(unsafe { &*owner }.tid())
            };
            let now_in = match seen {
                ThreadState::Syscall(n) => Some(n),
                ThreadState::Running => None,
            };
            let in_syscall = now_in.is_some() && snap.syscall == now_in;
            snap.syscall = now_in;
            if in_syscall {
                // Go's rule for a P in a syscall: keep it only while its own queue is empty,
                // other Ms can pick up new work, and the call has lasted under 10 ms.
                if p.is_empty() && sched.others_can_steal() && stalled < RUNNING_RETAKE_NS {
                    continue;
                }
            } else {
                if stalled < RUNNING_RETAKE_NS {
                    continue;
                }
                if sched.others_can_steal() {
                    // A goroutine running long (a CPU or spawn loop) while other Ms are idle
                    // or searching: they can steal its queue, which is cheaper than moving
                    // its P and keeps it on a P. The P moves only when nobody can help.
                    sched.wake_idle();
                    continue;
                }
                if now.saturating_sub(steals.last_change) < RUNNING_RETAKE_NS {
                    // Every other M is busy, but they came back for queued work lately (a
                    // spawn loop feeding the others): its queue is moving. Another thread would
                    // only compete with them for the CPUs.
                    continue;
                }
            }
        }
        if p.state
            .compare_exchange(state, pack(0, FREE), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let owner = p.owner.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !owner.is_null() {
                // Only if it still points to this P: the owner may have lost it meanwhile and
                // acquired another one.
                // SAFETY: Machines are never freed (machine.rs keeps every one, and reuses
                // exited ones), so the pointer is valid.
                let _ = unsafe { &*owner }.p.compare_exchange(
                    p as *const _ as *mut _,
                    std::ptr::null_mut(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            super::metrics::SYSMON_HANDOFFS.fetch_add(1, Ordering::Relaxed);
            sched.machines.start(p);
            *snap = Snap {
                tick,
                since: now,
                syscall: None,
            };
            retook = true;
        }
    }
    retook
}
