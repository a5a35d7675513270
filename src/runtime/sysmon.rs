//! sysmon: the monitor thread that keeps the scheduler moving.
//!
//! Like Go's sysmon, it sleeps 20 µs, doubling up to 10 ms while nothing needs doing, and
//! on each wake:
//!
//! - **retakes** a P whose M has not switched goroutines for a while (its `schedtick` has
//!   not moved) while goroutines wait — ~20 µs inside `blocking`, ~10 ms otherwise (a raw
//!   system call, or a goroutine hogging the CPU: safe Rust cannot be preempted, so the hog
//!   keeps its thread and everyone else moves to another) — and hands it to another M;
//! - fires **timers** that are overdue because every M is busy;
//! - refreshes the **coarse clock** used for wait times in dumps;
//! - looks for a **deadlock** (`deadlock.rs`) and serves SIGQUIT **dumps** (`dump.rs`).
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
use super::scheduler::{self, Sched};
use crate::time::timers;

/// A P stuck this long inside `blocking` is handed off (when work waits).
const BLOCKING_RETAKE_NS: u64 = 20_000;
/// A P stuck this long running one goroutine is handed off (when work waits).
const RUNNING_RETAKE_NS: u64 = 10_000_000;

pub(crate) fn start() {
    super::deadlock::runtime_thread_started();
    std::thread::Builder::new()
        .name("gort-sysmon".into())
        .spawn(run)
        .expect("gort: cannot start the sysmon thread");
}

fn run() {
    super::machine::precise_timer_slack();
    let sched = scheduler::get();
    let mut snaps: Vec<(u32, u64)> = vec![(0, 0); sched.nprocs];
    let mut delay_us: u64 = 20;
    let mut idle_rounds = 0u32;
    let mut deadlock = super::deadlock::Detector::default();
    loop {
        std::thread::sleep(Duration::from_micros(delay_us));
        let now = timers::now_nanos();
        let retook = retake(sched, &mut snaps, now);
        if timers::next_deadline().is_some_and(|d| d + 1_000_000 < now) {
            timers::run_due();
        }
        super::dump::serve_sigquit();
        deadlock.check(sched);
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
        let limit = if phase == BLOCKING {
            BLOCKING_RETAKE_NS
        } else {
            RUNNING_RETAKE_NS
        };
        if now.saturating_sub(snap.1) < limit {
            continue;
        }
        let waiting =
            !p.is_empty() || (!sched.global_is_empty() && sched.nidle.load(Ordering::SeqCst) == 0);
        if !waiting {
            continue;
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
            sched.machines.start(p);
            *snap = (tick, now);
            retook = true;
        }
    }
    retook
}
