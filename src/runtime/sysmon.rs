//! sysmon: the monitor thread that keeps the scheduler moving.
//!
//! Like Go's sysmon, it sleeps 20 µs, doubling up to 10 ms while nothing needs doing, and
//! on each wake:
//!
//! - **retakes** a P whose M has not switched goroutines for a while (its `schedtick` has
//!   not moved) while goroutines wait, and hands it to another M:
//!   - inside `blocking`, after ~20 µs;
//!   - in a raw system call (std::fs, `std::thread::sleep`, a blocking C call — its thread
//!     is asleep in the kernel, state S or D in `/proc/self/task/TID/stat`), after ~20 µs,
//!     with Go's syscall rule (keep the P while its own queue is empty, other Ms can take new
//!     work, and the call has lasted under 10 ms);
//!   - running (a CPU or spawn loop: safe Rust cannot be preempted, so the goroutine keeps
//!     its thread and everyone else moves on), after ~10 ms: first idle or searching Ms are
//!     woken to steal the queue; the P moves only if no other M can (GORT_MAXPROCS=1);
//! - fires **timers** that are overdue because every M is busy;
//! - refreshes the **coarse clock** (goroutines stamp their parks with it, for wait times in
//!   dumps: `timers::COARSE_NOW`);
//! - looks for a **deadlock** (`deadlock.rs`) and serves SIGQUIT **dumps** (`dump.rs`);
//! - about once a second, **scavenges** goroutine stacks: unmaps wholly free arenas and
//!   trims free stacks beyond each size class's budget (`stack/arena.rs`);
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
use crate::time::timers;

/// A P stuck this long inside `blocking` is handed off (when work waits).
const BLOCKING_RETAKE_NS: u64 = 20_000;
/// A P stuck this long running one goroutine is handed off (when work waits).
const RUNNING_RETAKE_NS: u64 = 10_000_000;
/// sysmon's longest nap while output waits for stderr.
const PENDING_OUTPUT_US: u64 = 5_000;
/// Period of the stack scavenger.
const SCAVENGE_NS: u64 = 1_000_000_000;

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
    let mut snaps: Vec<(u32, u64)> = vec![(0, 0); sched.nprocs];
    let mut delay_us: u64 = 20;
    let mut idle_rounds = 0u32;
    let mut deadlock = super::deadlock::Detector::default();
    // Everything sysmon prints goes through `out`: never std's stderr lock, never a
    // blocking write (output.rs).
    let mut out = Output::new();
    let mut next_scavenge = 0;
    let mut trace = super::schedtrace::SchedTrace::from_env(&mut out);
    out.flush(); // a malformed GORT_SCHEDTRACE is reported at once
    loop {
        let mut sleep_us = trace.cap_delay_us(delay_us);
        if out.is_pending() {
            sleep_us = sleep_us.min(PENDING_OUTPUT_US);
        }
        std::thread::sleep(Duration::from_micros(sleep_us));
        let now = timers::now_nanos();
        trace.tick(&mut out);
        let retook = retake(sched, &mut snaps, now);
        if timers::next_deadline().is_some_and(|d| d + 1_000_000 < now) {
            timers::run_due();
        }
        super::dump::serve_sigquit(&mut out);
        deadlock.check(sched, &mut out);
        if now >= next_scavenge {
            super::stack::scavenge();
            next_scavenge = now + SCAVENGE_NS;
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

/// True if the OS thread `tid` of this process is asleep in the kernel (state S or D in
/// /proc): blocked in a system call rather than running.
fn thread_sleeping(tid: i32) -> bool {
    if tid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    matches!(stat.get(close + 2), Some(b'S' | b'D'))
}

/// Hands off every P stuck in one goroutine for too long while work waits.
fn retake(sched: &'static Sched, snaps: &mut [(u32, u64)], now: u64) -> bool {
    let mut retook = false;
    for (p, snap) in sched.procs.iter().zip(snaps.iter_mut()) {
        let state = p.state.load(Ordering::Acquire);
        let phase = state & 0xff;
        let tick = p.schedtick.load(Ordering::Relaxed);
        if (phase != RUNNING && phase != BLOCKING) || tick != snap.0 {
            *snap = (tick, now);
            continue;
        }
        let stalled = now.saturating_sub(snap.1);
        if stalled < BLOCKING_RETAKE_NS {
            continue;
        }
        let waiting =
            !p.is_empty() || (!sched.global_is_empty() && sched.nidle.load(Ordering::SeqCst) == 0);
        if !waiting {
            continue;
        }
        if phase == RUNNING {
            // Not inside `blocking`: is its thread asleep in the kernel (a raw system call:
            // std::fs, std::thread::sleep, a blocking C call), or running (a CPU loop)?
            let owner = p.owner.load(Ordering::Acquire);
            // SAFETY: Machines are never freed (machine.rs), so the pointer is valid.
            let in_syscall = !owner.is_null() && thread_sleeping(unsafe { &*owner }.tid());
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
            *snap = (tick, now);
            retook = true;
        }
    }
    retook
}
