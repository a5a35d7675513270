//! The worker thread (M): find a runnable goroutine, run it until it parks, yields or ends.
//!
//! ```text
//!  find_runnable:  every 61st round: global queue first (fairness)
//!                  due timers (they make goroutines runnable here)
//!                  runnext, local queue
//!                  global queue (a fair share)
//!                  steal half of a random victim's queue (4 rounds; the last may take a
//!                    victim's runnext after a few microseconds, like Go)
//!                  go idle: publish, re-check, park (see scheduler.rs)
//! ```
//!
//! # Safety
//! The thread-local processor pointer is set while this thread holds a processor; holding is
//! exclusive, so `Processor::local` may be used through it. It is read through an
//! `#[inline(never)]` accessor (see `goroutine.rs` on thread-local caching across switches).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};

use super::goroutine::{self, GRef, SendCoroutine, Start, Suspend};
use super::processor::Processor;
use super::scheduler::{self, Sched};
use super::signal;
use crate::time::timers;

thread_local! {
    /// The processor this worker thread holds, or null.
    static PROCESSOR: Cell<*const Processor> = const { Cell::new(std::ptr::null()) };
}

/// The processor held by the current thread (a worker), if any.
#[inline(never)]
pub(crate) fn current_processor() -> Option<&'static Processor> {
    let p = PROCESSOR.with(|c| c.get());
    // SAFETY: processors live in the scheduler, which is never dropped ('static).
    (!p.is_null()).then(|| unsafe { &*p })
}

#[inline(never)]
fn set_processor(p: *const Processor) {
    PROCESSOR.with(|c| c.set(p));
}

/// The body of worker thread `m`.
pub(crate) fn run(m: usize) {
    let sched = scheduler::get();
    signal::install_thread();
    set_processor(&sched.procs[m]);
    let mut spinning = false;
    loop {
        let g = find_runnable(sched, m, &mut spinning);
        execute(sched, g);
    }
}

/// Finds a goroutine to run; parks the thread while there is none.
fn find_runnable(sched: &'static Sched, m: usize, spinning: &mut bool) -> GRef {
    loop {
        let p = current_processor().expect("worker holds a processor");
        // SAFETY: this thread holds `p`; no other `local` reference is alive.
        let tick = unsafe {
            let l = p.local();
            l.tick = l.tick.wrapping_add(1);
            l.tick
        };
        if tick % 61 == 0 {
            if let Some(g) = sched.pop_global() {
                found(sched, spinning);
                return g;
            }
        }
        timers::run_due();
        if let Some(g) = p.pop() {
            found(sched, spinning);
            return g;
        }
        if let Some(g) = sched.pop_global_batch(p) {
            found(sched, spinning);
            return g;
        }
        // Ready sockets' goroutines, onto this processor (Go's `netpoll(0)` in findrunnable).
        if crate::net::poll_from_worker() {
            if let Some(g) = p.pop() {
                found(sched, spinning);
                return g;
            }
        }
        if !*spinning && sched.nprocs > 1 {
            *spinning = sched.try_start_spinning();
        }
        if *spinning {
            if let Some(g) = steal(sched, p) {
                found(sched, spinning);
                return g;
            }
            *spinning = false;
            if sched.stop_spinning() && sched.any_work() {
                // The last spinner must not leave work behind unseen.
                *spinning = sched.try_start_spinning();
                continue;
            }
        }
        sched.enter_idle(m);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if !sched.any_work() {
            crate::net::worker_idle();
            sched.park_idle(m);
        }
        *spinning = sched.leave_idle(m);
    }
}

/// A spinning worker found work: stop spinning; if it was the last spinner, wake another
/// so that more work finds a worker (Go's `resetspinning`).
fn found(sched: &Sched, spinning: &mut bool) {
    if *spinning {
        *spinning = false;
        if sched.stop_spinning() {
            sched.wake_idle();
        }
    }
}

/// Steals from a random victim: half of its queue, or (last round) its runnext.
fn steal(sched: &Sched, p: &Processor) -> Option<GRef> {
    let n = sched.procs.len();
    for round in 0..4 {
        // SAFETY: this thread holds `p`; the reference ends within the statement.
        let start = unsafe { rand::Rng::random_range(&mut p.local().rng, 0..n) };
        for k in 0..n {
            let victim = &sched.procs[(start + k) % n];
            if victim.id == p.id {
                continue;
            }
            let len = victim.queue.len();
            if len > 0 {
                let Some(first) = victim.queue.pop() else {
                    continue;
                };
                for _ in 1..len.div_ceil(2) {
                    match victim.queue.pop() {
                        Some(g) => p.push_tail(g),
                        None => break,
                    }
                }
                return Some(first);
            }
            if round == 3 {
                let next = victim.peek_next();
                if !next.is_null() {
                    // The victim is probably about to run it (it was just readied); give it
                    // a moment so ping-pong does not bounce between threads.
                    let until = Instant::now() + Duration::from_micros(3);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    if let Some(g) = victim.steal_next(next) {
                        return Some(g);
                    }
                }
            }
        }
    }
    None
}

/// Runs `g` until it parks, yields or finishes.
fn execute(sched: &'static Sched, g: GRef) {
    // SAFETY: we popped `g` from a queue, so this worker owns it (goroutine.rs table).
    let run = unsafe { &mut *g.run.get() };
    if run.coroutine.is_none() {
        let entry = run.entry.take().expect("a new goroutine has an entry");
        let p = current_processor().expect("worker holds a processor");
        let stack = match run.stack.take() {
            Some(s) => Ok(s),
            // SAFETY: this thread holds `p`.
            None => unsafe { p.local() }
                .stacks
                .get(g.stack_size, sched.stack_size),
        };
        let stack = match stack {
            Ok(s) => s,
            Err(e) => {
                entry(Start::Fail(e));
                return;
            }
        };
        signal::set_guard(&g, stack.guard());
        let gp = Arc::as_ptr(&g);
        let co = Coroutine::with_stack(stack, move |y, ()| {
            // SAFETY: the worker holds a GRef for as long as the goroutine runs, so `gp` is
            // live whenever this code runs.
            unsafe { (*gp).set_yielder(y) };
            entry(Start::Run);
        });
        run.coroutine = Some(SendCoroutine(co));
    }
    let co = &mut run.coroutine.as_mut().expect("coroutine exists").0;
    loop {
        goroutine::set_current(Arc::as_ptr(&g));
        let r = co.resume(());
        goroutine::set_current(std::ptr::null());
        match r {
            CoroutineResult::Yield(Suspend::Park) => {
                if g.commit_park() {
                    // It may already be running elsewhere: do not touch `run` again.
                    return;
                }
            }
            CoroutineResult::Yield(Suspend::Yield) => {
                let p = current_processor().expect("worker holds a processor");
                p.push_tail(g);
                return;
            }
            CoroutineResult::Return(()) => {
                let co = run.coroutine.take().expect("coroutine exists");
                let stack = co.0.into_stack();
                let p = current_processor().expect("worker holds a processor");
                // SAFETY: this thread holds `p`.
                unsafe { p.local() }.stacks.put(stack, sched.stack_size);
                return;
            }
        }
    }
}
