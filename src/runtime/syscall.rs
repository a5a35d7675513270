//! Blocking calls and thread locking: `blocking(f)`, `lock_os_thread`, `unlock_os_thread`.
//!
//! `blocking(f)` is Go's `entersyscallblock` / `exitsyscall` around `f`:
//!
//! 1. enter: the P's phase goes RUNNING -> BLOCKING (machine.rs). If goroutines are waiting
//!    (on this P or globally), the P is handed to another M at once; otherwise it stays, and
//!    sysmon takes it after ~20 µs if work turns up while `f` still runs.
//! 2. `f` runs on this M, which keeps the goroutine.
//! 3. exit: if the P is still ours (BLOCKING -> RUNNING succeeds), go on at full speed.
//!    Otherwise the goroutine suspends with `Requeue`: it goes to the global queue, another
//!    M with a P runs it, and this M becomes a spare.
//!
//! A goroutine blocked in a raw system call (std::fs, std::thread::sleep, a C library)
//! without `blocking` is found by sysmon instead, after ~10 ms without a switch.
//!
//! `lock_os_thread` marks the goroutine as locked to its M: when it parks, its M hands its P
//! to another M and waits for that goroutine alone; `ready` hands it straight back to its M.
//! The runtime locks a goroutine the same way while it unwinds a panic (goroutine.rs,
//! `keep_thread_while_unwinding`), with its own lock reason, so that `unlock_os_thread` in a
//! destructor cannot let an unwinding goroutine move.

use std::sync::atomic::Ordering;

use super::goroutine::{self, Suspend};
use super::machine::{self, pack, BLOCKING, FREE, RUNNING};
use super::processor::Processor;
use super::scheduler;

/// Runs a blocking call (file I/O, DNS, a blocking C library, a long computation) without
/// holding up other goroutines: the worker's queued goroutines move to another thread at
/// once, and this goroutine continues on a thread with a processor when `f` returns.
///
/// On a plain thread this just calls `f`.
///
/// ```
/// let h = gort::spawn(|| gort::blocking(|| std::fs::read_to_string("Cargo.toml")));
/// assert!(h.join().unwrap().is_ok());
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let Some(m) = machine::current() else {
        return f();
    };
    let Some(p) = m.processor() else {
        return f(); // already without a P (locked goroutine, or taken by sysmon)
    };
    if goroutine::current_ptr().is_null()
        || p.state
            .compare_exchange(
                pack(m.id(), RUNNING),
                pack(m.id(), BLOCKING),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
    {
        return f();
    }
    let sched = scheduler::get();
    if !p.is_empty() || !sched.global_is_empty() {
        // Work is waiting: hand the P off now (Go's handoffp).
        if p.state
            .compare_exchange(
                pack(m.id(), BLOCKING),
                pack(0, FREE),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            m.p.store(std::ptr::null_mut(), Ordering::Release);
            p.owner.store(std::ptr::null_mut(), Ordering::Release);
            super::metrics::BLOCKING_HANDOFFS.fetch_add(1, Ordering::Relaxed);
            sched.machines.start(p);
        }
    }
    let exit = Exit;
    let r = f();
    drop(exit);
    r
}

/// Leaves the blocking section, also when `f` panics.
///
/// It looks at the M and P the goroutine is on *now*: if `f` parked or yielded, the goroutine
/// may have resumed on another M, and its section already ended at the switch (worker.rs).
struct Exit;

impl Drop for Exit {
    fn drop(&mut self) {
        let Some(m) = machine::current() else { return };
        if let Some(p) = m.processor() {
            let state = p.state.load(Ordering::Acquire);
            if state == pack(m.id(), RUNNING) {
                return; // the section ended at a switch inside `f`: nothing to undo
            }
            if p.state
                .compare_exchange(
                    pack(m.id(), BLOCKING),
                    pack(m.id(), RUNNING),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                return; // kept the P
            }
            // Taken meanwhile: the taker clears `m.p` by CAS; make sure it is clear.
            let _ = m.p.compare_exchange(
                p as *const Processor as *mut Processor,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        if std::thread::panicking() {
            // Unwinding: the goroutine must stay on this thread (std's panic state is per
            // thread), so no requeue; it keeps this M until its first suspend after the
            // unwinding ends (`Goroutine::suspend`).
            return;
        }
        // Without a P: let an M with a P run us (unless we are locked to this M).
        if goroutine::with_current(|g| g.locked_machine().is_none()) == Some(true) {
            goroutine::with_current(|g| g.suspend(Suspend::Requeue));
        }
    }
}

/// Locks the current goroutine to its OS thread (Go's `runtime.LockOSThread`): until
/// [`unlock_os_thread`], it always resumes on this thread, and no other goroutine runs on
/// it. For thread-local-dependent APIs (OpenGL contexts, some C libraries, thread ids).
///
/// On a plain thread it does nothing (a plain thread is its own thread).
pub fn lock_os_thread() {
    if let Some(m) = machine::current() {
        goroutine::with_current(|g| g.lock_os_thread(m));
    }
}

/// Undoes [`lock_os_thread`].
pub fn unlock_os_thread() {
    goroutine::with_current(|g| g.unlock_os_thread());
}
