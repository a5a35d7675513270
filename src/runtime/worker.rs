//! The scheduling loop of an M holding a P: find a runnable goroutine, run it until it parks,
//! yields or ends; handle losing the P while a goroutine runs.
//!
//! ```text
//!  find_runnable:  every 61st round: global queue first, then the local queue before
//!                    runnext (fairness)
//!                  due timers (they make goroutines runnable here)
//!                  runnext, local queue
//!                  global queue (a fair share)
//!                  steal half of a random victim's queue (4 rounds; the last may take a
//!                    victim's runnext after a few microseconds, like Go)
//!                  go idle: publish, re-check, park (see scheduler.rs)
//! ```
//!
//! Around each resume the P's phase goes SCHED -> RUNNING (a plain store: only the owner
//! writes SCHED) and back with a CAS that fails if the P was taken away meanwhile
//! (machine.rs). One exception keeps the P RUNNING from one goroutine to the next: a
//! goroutine that parks while runnext holds another (the one it just woke: a ping-pong, a
//! producer and its consumer) hands over to it in `execute` (`hand_off`), doing what
//! `find_runnable` would do in that round without the CAS pair and the round trip through
//! the scheduler. An M that lost its P finishes handling the goroutine that suspended without
//! touching the P's owner-only state — a goroutine that is still runnable goes to the global
//! queue — and returns to `machine::run_thread`, which parks it as a spare.
//!
//! # Safety
//! - A goroutine's `run` state is touched only by the M that owns the goroutine: it popped it
//!   from a queue, or it is the M the goroutine is locked to (goroutine.rs table).
//! - `Processor::local` is used only while this M holds the processor in phase SCHED
//!   (machine.rs), which no retaker can take away; each use ends before the next resume.
//! - The coroutine's closure dereferences the goroutine's raw pointer only while it runs, and
//!   the running M holds a `GRef` for the whole resume.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};

use super::goroutine::{self, GRef, Run, SendCoroutine, Start, Suspend};
use super::machine::{pack, Machine, BLOCKING, FREE, RUNNING, SCHED};
use super::processor::Processor;
use super::scheduler::Sched;
use super::timers;
use super::{signal, stack};

/// Runs goroutines on `m` for as long as it holds a P.
pub(crate) fn schedule(sched: &'static Sched, m: &Arc<Machine>) {
    let mut spinning = false;
    while let Some(g) = find_runnable(sched, m, &mut spinning) {
        execute(sched, m, g);
        if m.processor().is_none() {
            return;
        }
    }
}

/// Finds a goroutine to run; parks the thread while there is none. None if `m` no longer
/// holds a P.
fn find_runnable(sched: &'static Sched, m: &Arc<Machine>, spinning: &mut bool) -> Option<GRef> {
    // Woke from an idle park by itself (a timer deadline, or a nudge), not to take work.
    let mut timer_wake = false;
    loop {
        let p = m.processor()?;
        let tick = m.tick.load(Ordering::Relaxed).wrapping_add(1);
        m.tick.store(tick, Ordering::Relaxed);
        if tick % 61 == 0 {
            // Also the coarse clock's periodic refresh (clock::COARSE_NOW).
            timers::refresh_coarse();
            if let Some(g) = sched.pop_global() {
                found(sched, spinning);
                return Some(g);
            }
            // Then the local queue before runnext: goroutines that hand over to each
            // other through runnext (a ping-pong) would otherwise keep the queued ones
            // from running for as long as they go on (Go bounds that by the time slice
            // runnext inherits, and preemption; here by this round).
            if let Some(g) = p.queue.pop() {
                found(sched, spinning);
                return Some(g);
            }
        }
        timers::run_due();
        if let Some(g) = p.pop() {
            found(sched, spinning);
            return Some(g);
        }
        if let Some(g) = sched.pop_global_batch(p) {
            found(sched, spinning);
            return Some(g);
        }
        // Ready sockets' goroutines, onto this processor (Go's `netpoll(0)` in findrunnable).
        if super::netpoll::poll_from_worker() {
            if let Some(g) = p.pop() {
                found(sched, spinning);
                return Some(g);
            }
        }
        // An M that woke only to run timers, which readied nothing, goes back to sleep
        // rather than spin: while a busy goroutine arms a stream of timers, the watcher
        // wakes once per batch (timers.rs, STEAL_SLACK) and costs the machine no more.
        if !*spinning && sched.nprocs > 1 && !std::mem::take(&mut timer_wake) {
            *spinning = sched.try_start_spinning();
        }
        if *spinning {
            if let Some(g) = spin(sched, p) {
                found(sched, spinning);
                return Some(g);
            }
            *spinning = false;
            if sched.stop_spinning() && sched.any_work() {
                // The last spinner must not leave work behind unseen.
                *spinning = sched.try_start_spinning();
                continue;
            }
        }
        sched.enter_idle(m);
        std::sync::atomic::fence(Ordering::SeqCst);
        if !sched.any_work() {
            super::netpoll::worker_idle();
            // An idle processor keeps only its cached stacks' hot pages (cache.rs).
            // SAFETY: our M holds `p` in SCHED (we are in the scheduler).
            unsafe { p.local() }.stacks.trim_idle();
            sched.park_idle(m);
            // Time passed while it slept: the goroutines it runs next park with a fresh
            // coarse time (clock::COARSE_NOW).
            timers::refresh_coarse();
            timer_wake = true;
        }
        *spinning = sched.leave_idle(m);
        timer_wake &= !*spinning;
    }
}

/// How long a spinning M keeps looking before it parks. While one M spins, new work does
/// not wake another (no futex wake on the spawner's path), so bursts of spawns and wake-ups
/// are picked up without a thread wake each; an M with nothing to do parks after this.
const SPIN: Duration = Duration::from_micros(30);

/// Looks for work for up to `SPIN`: stealing, the global queue, due timers.
fn spin(sched: &Sched, p: &Processor) -> Option<GRef> {
    let until = Instant::now() + SPIN;
    for round in 0u32.. {
        if let Some(g) = steal(sched, p).or_else(|| sched.pop_global_batch(p)) {
            return Some(g);
        }
        if timers::run_due() > 0 {
            if let Some(g) = p.pop() {
                return Some(g);
            }
        }
        if round % 8 == 7 {
            // Sockets that became ready while spinning (see netpoll.rs, "Who polls").
            if super::netpoll::poll_from_worker() {
                if let Some(g) = p.pop() {
                    return Some(g);
                }
            }
            let now = Instant::now();
            timers::note_now(timers::to_nanos(now));
            if now >= until {
                return None;
            }
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
    None
}

/// A spinning M found work: stop spinning; if it was the last spinner, wake another
/// so that more work finds an M (Go's `resetspinning`).
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
        // SAFETY: our M holds `p` in SCHED; the reference ends within the statement.
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
                // Only this M, holding `p` in SCHED, writes its counters.
                super::metrics::bump(&p.stats.steals);
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
                        super::metrics::bump(&p.stats.steals);
                        return Some(g);
                    }
                }
            }
        }
    }
    None
}

/// Gives the stack-owning coroutine to a goroutine that runs for the first time. Returns
/// false if it could not start (no stack): it has then completed with an error.
fn prepare(m: &Machine, g: &GRef) -> bool {
    // SAFETY: this M owns `g` (popped from a queue, or its locked M).
    let run = unsafe { &mut *g.run.get() };
    if run.is_started() {
        return true;
    }
    let stack = match run.take_stack() {
        Some(s) => Ok(s),
        None => match m.processor() {
            // SAFETY: our M holds `p` in SCHED (we are in the scheduler).
            Some(p) => unsafe { p.local() }.stacks.get(g.stack_size),
            None => stack::get(g.stack_size),
        },
    };
    let stack = match stack {
        Ok(s) => s,
        Err(e) => {
            // In the scheduler: a panic dropping the function or its result must not unwind
            // into it (spawn.rs aborts with std's words first).
            super::panic::abort_on_unwind("a goroutine that could not start panicked", || {
                g.task.run(g, Start::Fail(e))
            });
            g.mark_finished();
            return false;
        }
    };
    signal::set_guard(g, stack.guard());
    let gp = GRef::as_ptr(g);
    let co = Coroutine::with_stack(stack, move |y, ()| {
        // SAFETY: the M running this goroutine holds a GRef for the whole resume, so `gp`
        // is live whenever this code runs.
        let g = unsafe { &*gp };
        g.set_yielder(y);
        // Nothing may unwind out of a coroutine's `resume`: it would kill this worker
        // thread with the goroutine half finished. The task catches the function's panic
        // and aborts on a panicking result drop (spawn.rs); anything else that still
        // unwinds this far (a waker's panic when the result is delivered) aborts here.
        super::panic::abort_on_unwind("a panic unwound out of a goroutine", || {
            g.task.run(g, Start::Run)
        });
    });
    *run = Run::Started(SendCoroutine(co));
    true
}

/// Runs `g` (owned by this M) until it parks, yields or finishes, and deals with the outcome.
///
/// A goroutine that parks while another waits in the P's runnext hands over to it here
/// without a round through the scheduler (`hand_off`), the P staying RUNNING.
pub(crate) fn execute(sched: &'static Sched, m: &Arc<Machine>, mut g: GRef) {
    // True when `g` comes from the scheduler (or a retry): the P, if held, is in SCHED; false
    // after a hand-off, the P still RUNNING (or taken meanwhile: then it is not ours to set).
    let mut fresh = true;
    loop {
        let p = m.processor();
        if fresh {
            super::metrics::on_run(&g, m);
            if !prepare(m, &g) {
                // (After a hand-off `m.current` names `g`, which is not running: clear it,
                // or the deadlock detector would count this M as busy for ever.)
                m.current.store(std::ptr::null_mut(), Ordering::Release);
                return;
            }
            if let Some(p) = p {
                p.state.store(pack(m.id(), RUNNING), Ordering::Release);
            }
        }
        fresh = true;
        if let Some(p) = p {
            p.schedtick.store(
                p.schedtick.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
        m.current
            .store(GRef::as_ptr(&g) as *mut _, Ordering::Release);
        // SAFETY: this M owns `g`; nobody else touches `run` while it runs here.
        let co = &mut unsafe { &mut *g.run.get() }
            .coroutine()
            .expect("coroutine exists")
            .0;
        goroutine::set_current(GRef::as_ptr(&g));
        let r = co.resume(());
        goroutine::set_current(std::ptr::null());
        if let (Some(p), CoroutineResult::Yield(Suspend::Park)) = (p, &r) {
            match hand_off(sched, m, p, &g) {
                HandOff::Declined => {}
                HandOff::Again => {
                    fresh = false;
                    continue;
                }
                HandOff::Run(next, running) => {
                    // `m.current` names `next` before the parked goroutine's reference goes
                    // (it may be woken elsewhere and freed): never a goroutine we do not hold.
                    m.current
                        .store(GRef::as_ptr(&next) as *mut _, Ordering::Release);
                    g = next;
                    fresh = !running;
                    continue;
                }
                HandOff::Parked => {
                    m.current.store(std::ptr::null_mut(), Ordering::Release);
                    return;
                }
            }
        }
        // `m.current` stays set until the goroutine is parked, queued or finished (the
        // deadlock detector must never see it nowhere): see `Running` below.
        let _running = Running(m);
        // RUNNING, or BLOCKING when the goroutine suspended inside `blocking(f)` (a park or
        // yield in `f` ends the blocking section; `blocking` sees that when `f` returns).
        let held = p.is_some_and(|p| {
            [RUNNING, BLOCKING].into_iter().any(|phase| {
                p.state
                    .compare_exchange(
                        pack(m.id(), phase),
                        pack(m.id(), SCHED),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            })
        });
        if let (Some(p), false) = (p, held) {
            // The P was taken while the goroutine ran (sysmon or `blocking`); the taker
            // cleared `m.p` (by CAS), or does so now.
            let _ = m.p.compare_exchange(
                p as *const Processor as *mut Processor,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        let locked = g.is_locked_to(m);
        match r {
            CoroutineResult::Yield(Suspend::Park) => {
                if !g.commit_park() {
                    // A wake-up arrived during the switch: it is runnable again.
                    if held || locked {
                        continue;
                    }
                    sched.push_global(g);
                    sched.wake_idle();
                    return;
                }
                if !locked {
                    return;
                }
                // A locked goroutine only runs on this M: wait for it here, not counted as
                // running it meanwhile (the deadlock detector must see it parked).
                drop(_running);
                g = wait_locked(sched, m);
            }
            CoroutineResult::Yield(Suspend::Yield) => {
                if locked {
                    give_away_processor(sched, m);
                    continue;
                }
                match m.processor() {
                    Some(p) if held => p.push_tail(g),
                    _ => {
                        sched.push_global(g);
                        sched.wake_idle();
                    }
                }
                return;
            }
            CoroutineResult::Yield(Suspend::Requeue) => {
                // Back from `blocking` without a P: someone else runs it.
                if locked {
                    continue;
                }
                sched.push_global(g);
                sched.wake_idle();
                return;
            }
            CoroutineResult::Return(()) => {
                // SAFETY: this M owns `g`; the coroutine has finished.
                let co = unsafe { &mut *g.run.get() }
                    .take_coroutine()
                    .expect("coroutine exists");
                let s = co.0.into_stack();
                match m.processor() {
                    // SAFETY: our M holds `p` in SCHED.
                    Some(p) if held => unsafe { p.local() }.stacks.put(s),
                    _ => stack::put(s),
                }
                g.mark_finished();
                g.unlock_machine();
                return;
            }
        }
    }
}

/// What `hand_off` did with a goroutine that parked.
enum HandOff {
    /// Nothing: the general path in `execute` handles the park.
    Declined,
    /// The park was committed too late (a token came): run the goroutine again, the P still
    /// RUNNING.
    Again,
    /// Parked; run this goroutine next: true with the P still RUNNING, false with the P
    /// back in SCHED (it needs the scheduler's phase: its first run takes a stack from the
    /// P's cache, or its run is a sampled one for the latency histogram).
    Run(GRef, bool),
    /// Parked, and the P is back in SCHED (or was taken: `m.p` is cleared): return to the
    /// scheduler.
    Parked,
}

/// The hand-off to runnext (Go's `runnext` with the scheduler's round trip left out): a
/// goroutine that parked while the P's runnext holds another — the one it just woke, in a
/// ping-pong or a producer feeding a consumer — goes straight to that one, the P staying
/// RUNNING: no `RUNNING -> SCHED` CAS and back, no `find_runnable`.
///
/// It does only what the scheduler would do in the same round (`find_runnable`: the tick,
/// due timers — this P's on time, as in SCHED —, runnext first) and touches only the P's
/// thread-safe parts (runnext; not the owner-only `local`), so it needs no SCHED phase: a
/// retaker that takes the P meanwhile (sysmon, `blocking`) finds it RUNNING as it would
/// during any goroutine's run, and the next suspend sees the loss as usual. Declined when
/// the round is the scheduler's fairness round (every 61st: the global queue first), when
/// runnext is empty (the scheduler looks further), for a goroutine locked to this M, and
/// when the P is not plainly RUNNING here (BLOCKING, or taken).
#[inline]
fn hand_off(sched: &Sched, m: &Machine, p: &Processor, g: &GRef) -> HandOff {
    let me = m.id();
    if g.is_locked_to(m) || p.state.load(Ordering::Relaxed) != pack(me, RUNNING) {
        return HandOff::Declined;
    }
    let tick = m.tick.load(Ordering::Relaxed).wrapping_add(1);
    if tick % 61 == 0 || !p.has_next() {
        return HandOff::Declined;
    }
    m.tick.store(tick, Ordering::Relaxed);
    if !g.commit_park() {
        return HandOff::Again;
    }
    timers::run_due_on(p.id);
    let next = match p.take_next() {
        Some(next) => {
            // SAFETY: this M owns `next` (it took it out of runnext).
            let started = unsafe { &*next.run.get() }.is_started();
            if started && next.runnable_since.load(Ordering::Relaxed) == 0 {
                return HandOff::Run(next, true);
            }
            Some(next)
        }
        None => None,
    };
    // A thief took runnext meanwhile, or `next` needs the scheduler's phase.
    if p.state
        .compare_exchange(
            pack(me, RUNNING),
            pack(me, SCHED),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
    {
        return match next {
            Some(next) => HandOff::Run(next, false),
            None => HandOff::Parked,
        };
    }
    // The P was taken meanwhile (as in `execute`).
    let _ = m.p.compare_exchange(
        p as *const Processor as *mut Processor,
        std::ptr::null_mut(),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    if let Some(next) = next {
        sched.push_global(next);
        sched.wake_idle();
    }
    HandOff::Parked
}

/// Clears `Machine::current` when dropped: after the goroutine that just suspended has been
/// parked, queued or finished.
struct Running<'a>(&'a Machine);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0
            .current
            .store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// Hands this M's P (if it holds one, in SCHED) to another M, so that the goroutines queued
/// on it run while this M serves a locked goroutine.
fn give_away_processor(sched: &Sched, m: &Machine) {
    if let Some(p) = m.processor() {
        m.p.store(std::ptr::null_mut(), Ordering::Release);
        p.owner.store(std::ptr::null_mut(), Ordering::Release);
        p.state.store(pack(0, FREE), Ordering::Release);
        sched.machines.start(p);
    }
}

/// Waits (without a P) until the goroutine locked to this M is runnable again. It is
/// `m.current` again before it leaves `m.locked_ready`, so that the deadlock detector sees it
/// in one of the two at every moment.
#[cold]
#[inline(never)]
fn wait_locked(sched: &Sched, m: &Machine) -> GRef {
    give_away_processor(sched, m);
    loop {
        if let Some(g) = m.take_locked_to_run() {
            return g;
        }
        m.parker.park(None);
    }
}
