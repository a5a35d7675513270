//! Machines (M): the OS threads that run goroutines, and the processor hand-off between them.
//!
//! An M runs goroutines while it holds a processor (P). There are exactly `max_procs` Ps, but
//! the number of Ms varies: when an M is stuck — its goroutine is blocked in a system call, in
//! `blocking`, or hogging the CPU — its P is taken away (by `sysmon`, or at once by
//! `blocking`) and handed to another M, so the goroutines queued behind the stuck one keep
//! running. The stuck M keeps its goroutine and goes on running it *without* a P; when that
//! goroutine next suspends, the M has nothing to run and becomes a *spare*: it parks, waiting
//! to be handed a P, and exits after `SPARE_KEEP_ALIVE` without one.
//!
//! ```text
//!  P state word: owner M id (high bits) | phase (low byte)
//!  phase      | meaning                                       | who may change it
//!  -----------+-----------------------------------------------+-------------------------------
//!  FREE       | no M holds it (only during a hand-off)         | the M it is handed to
//!  SCHED      | its M is in the scheduler (finding, switching) | the owner only
//!  RUNNING    | its M is running a goroutine, or handing over  | owner (-> SCHED), or a retaker
//!             | from one that parked to runnext (`worker.rs`)  |
//!  BLOCKING   | its M's goroutine is inside `blocking`         | owner (-> RUNNING), or a retaker
//! ```
//!
//! A retaker (sysmon, or `blocking` itself) takes a P with one CAS from `(owner, RUNNING or
//! BLOCKING)` to `(0, FREE)`, clears the owner's `p` and starts another M on the P. The owner
//! learns it lost the P when its own CAS `(me, RUNNING) -> (me, SCHED)` fails at the next switch
//! through the scheduler (a hand-off to runnext keeps the P RUNNING and looks at the phase
//! instead: a P taken meanwhile ends the hand-off, and the goroutine it started learns it at
//! its own switch).
//! Because the owner id is part of the word, a stale owner can never win a CAS against a new
//! one. A P in SCHED is never taken, so the owner may use the P's owner-only state
//! (`Processor::local`) while it is in the scheduler. Code running on a goroutine touches only
//! the P's thread-safe parts (run queue, runnext, counters) — harmless even if the P was just
//! taken — and its M's own thread-local state.
//!
//! # Safety
//! `Machine`s are never freed: `Machines::all` keeps every one, and one whose thread exited is
//! reused (with a new id) rather than dropped. So raw pointers to Machines (the thread-local
//! `MACHINE`, `Processor::owner`, the timer watcher) are always valid; state words name an M
//! by id, so a reused Machine is never mistaken for its previous life.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::goroutine::{GRef, Goroutine};
use super::park::ThreadParker;
use super::processor::Processor;
use super::scheduler;

/// A spare M without a P exits after this long.
pub(crate) const SPARE_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Default limit on OS threads the runtime creates (Go's 10,000).
pub(crate) const DEFAULT_MAX_THREADS: usize = 10_000;

// Phases of a processor's state word.
pub(crate) const FREE: u64 = 0;
pub(crate) const SCHED: u64 = 1;
pub(crate) const RUNNING: u64 = 2;
pub(crate) const BLOCKING: u64 = 3;

/// The state word for `owner` in `phase`.
#[inline]
pub(crate) const fn pack(owner: u32, phase: u64) -> u64 {
    ((owner as u64) << 8) | phase
}

/// An OS thread of the runtime.
pub(crate) struct Machine {
    /// Unique, non-zero; a reused Machine gets a new one (so no stale P state names it).
    id: AtomicU32,
    /// Its thread has exited; the Machine waits in `Machines::all` to be reused.
    exited: AtomicBool,
    /// Where the thread sleeps (idle with a P, or spare without one).
    pub(crate) parker: ThreadParker,
    /// The P this M holds, or null. Set by the M when it acquires one; cleared by the M or by
    /// a retaker that took the P away.
    pub(crate) p: AtomicPtr<Processor>,
    /// Set (under the scheduler's idle lock) by a waker that took this M off the idle list
    /// and counted it as spinning.
    pub(crate) woken_spinning: AtomicBool,
    /// A P handed to this spare M (under the spare lock), or null.
    pub(crate) handoff: AtomicPtr<Processor>,
    /// The goroutine this M is running, or null (for sysmon, dumps and deadlock detection).
    /// Compared, never dereferenced, by other threads. During a hand-off to runnext
    /// (`worker.rs`) it still names the goroutine that parked until the next one is taken
    /// (this M holds its reference until then), then the next one.
    pub(crate) current: AtomicPtr<Goroutine>,
    /// True while the goroutine this M runs (or waits for) is locked to it (`lock_os_thread`,
    /// or unwinding): set and cleared by that goroutine when it locks and unlocks, and by
    /// this M when the goroutine ends. Observers (metrics, dumps) read this instead of the
    /// goroutine, which they must never dereference (this M may free it at any moment).
    pub(crate) runs_locked: AtomicBool,
    /// True while that lock is (also) for unwinding: the goroutine blocked while unwinding a
    /// panic and keeps this thread until the unwinding ends. Set and cleared like
    /// `runs_locked`; read to explain a thread exhaustion.
    pub(crate) holds_unwinding: AtomicBool,
    /// A goroutine locked to this M (`lock_os_thread`) that became runnable, as
    /// `Arc::into_raw`, or null. Written by `ready`, taken by the M.
    pub(crate) locked_ready: AtomicPtr<Goroutine>,
    /// Scheduler rounds on this M (owner only).
    pub(crate) tick: AtomicU32,
    /// The OS thread id (gettid) of the thread running this M (sysmon reads its state).
    tid: std::sync::atomic::AtomicI32,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

impl Machine {
    pub(crate) fn new() -> Machine {
        Machine {
            id: AtomicU32::new(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            exited: AtomicBool::new(false),
            parker: ThreadParker::new(),
            p: AtomicPtr::new(ptr::null_mut()),
            woken_spinning: AtomicBool::new(false),
            handoff: AtomicPtr::new(ptr::null_mut()),
            current: AtomicPtr::new(ptr::null_mut()),
            runs_locked: AtomicBool::new(false),
            holds_unwinding: AtomicBool::new(false),
            locked_ready: AtomicPtr::new(ptr::null_mut()),
            tick: AtomicU32::new(0),
            tid: std::sync::atomic::AtomicI32::new(0),
        }
    }

    /// The id (in processor state words).
    #[inline]
    pub(crate) fn id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }

    /// The OS thread id of the thread running this M (0 before it starts).
    pub(crate) fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// True while a thread runs this Machine.
    pub(crate) fn is_live(&self) -> bool {
        !self.exited.load(Ordering::Acquire)
    }

    /// Prepares an exited Machine for a new thread.
    fn reuse(&self) {
        self.id
            .store(NEXT_ID.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.p.store(ptr::null_mut(), Ordering::Relaxed);
        self.woken_spinning.store(false, Ordering::Relaxed);
        self.current.store(ptr::null_mut(), Ordering::Relaxed);
        self.runs_locked.store(false, Ordering::Relaxed);
        self.holds_unwinding.store(false, Ordering::Relaxed);
        self.tick.store(0, Ordering::Relaxed);
        self.exited.store(false, Ordering::Release);
    }

    /// The P this M holds, if any.
    #[inline]
    pub(crate) fn processor(&self) -> Option<&'static Processor> {
        let p = self.p.load(Ordering::Acquire);
        // SAFETY: processors live in the scheduler, which is never dropped.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Makes a locked goroutine runnable on this M (see `syscall.rs`).
    pub(crate) fn ready_locked(&self, g: GRef) {
        let old = self
            .locked_ready
            .swap(GRef::into_raw(g) as *mut Goroutine, Ordering::AcqRel);
        debug_assert!(old.is_null(), "a locked goroutine was readied twice");
        if !old.is_null() {
            // SAFETY: we swapped it out, so we own that reference.
            drop(unsafe { GRef::from_raw(old) });
        }
        scheduler::get().wakes.fetch_add(1, Ordering::Relaxed);
        self.parker.unpark();
    }

    /// Takes the locked goroutine made runnable, if any, making it this M's `current` first.
    /// Called only by this M.
    pub(crate) fn take_locked_to_run(&self) -> Option<GRef> {
        let g = self.locked_ready.load(Ordering::Acquire);
        if g.is_null() {
            return None;
        }
        // Only `ready_locked` stores here, and only into an empty slot (a parked goroutine
        // is readied once), so the slot still holds `g` when we swap it out below.
        self.current.store(g, Ordering::Release);
        let p = self.locked_ready.swap(ptr::null_mut(), Ordering::AcqRel);
        debug_assert_eq!(p, g);
        // SAFETY: a non-null pointer swapped out is a reference we now own.
        Some(unsafe { GRef::from_raw(p) })
    }
}

thread_local! {
    /// The current thread's Machine, or null on threads the runtime did not create.
    static MACHINE: Cell<*const Machine> = const { Cell::new(ptr::null()) };
    /// Goroutine ids reserved by this M (Go's goidcache): `(next, end)`.
    static IDS: RefCell<(u64, u64)> = const { RefCell::new((0, 0)) };
}

/// The current thread's Machine, if the runtime created this thread.
#[inline(never)]
pub(crate) fn current() -> Option<&'static Machine> {
    let m = MACHINE.with(|c| c.get());
    // SAFETY: see the module safety notes; the Machine outlives its thread's use of it.
    (!m.is_null()).then(|| unsafe { &*m })
}

/// The P held by the current thread, if it is an M holding one.
#[inline]
pub(crate) fn current_processor() -> Option<&'static Processor> {
    current().and_then(Machine::processor)
}

/// A new goroutine id, from a batch reserved by this thread.
pub(crate) fn new_goroutine_id(global: &AtomicU64) -> u64 {
    const BATCH: u64 = 64;
    IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if ids.0 == ids.1 {
            ids.0 = global.fetch_add(BATCH, Ordering::Relaxed);
            ids.1 = ids.0 + BATCH;
        }
        ids.0 += 1;
        ids.0 - 1
    })
}

/// All Ms and the spare pool.
pub(crate) struct Machines {
    /// Every M ever made (never freed; exited ones are reused), for sysmon and dumps.
    pub(crate) all: Mutex<Vec<Arc<Machine>>>,
    /// Ms without a P waiting to be handed one.
    spares: Mutex<Vec<Arc<Machine>>>,
    /// Live Ms (threads), for the thread limit.
    pub(crate) count: AtomicUsize,
    /// The thread limit.
    pub(crate) max: usize,
}

impl Machines {
    pub(crate) fn new(max: usize) -> Machines {
        Machines {
            all: Mutex::new(Vec::new()),
            spares: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            max,
        }
    }

    /// Runs P `p` on some M: a spare if one is parked, else a new thread.
    ///
    /// Past the thread limit this is Go's fatal "thread exhaustion".
    pub(crate) fn start(&self, p: &'static Processor) {
        let spare = self.spares.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(m) = spare {
            m.handoff
                .store(p as *const Processor as *mut Processor, Ordering::Release);
            m.parker.unpark();
            return;
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.max {
            // Without std's stderr lock (sysmon may be the caller: output.rs).
            super::output::fatal(
                &format!(
                    "runtime: program exceeds {}-thread limit\n{}fatal error: thread exhaustion\n{}\n",
                    self.max,
                    self.unwinding_note(),
                    super::dump::dump_string()
                ),
                super::deadlock::FATAL_PATIENCE,
            );
            std::process::exit(2);
        }
        // Machines are never freed (raw pointers to them stay valid: sysmon's owner pointers,
        // the timer watcher): reuse one whose thread has exited, or make a new one.
        let m = {
            let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
            match all.iter().find(|m| !m.is_live()) {
                Some(m) => {
                    m.reuse();
                    m.clone()
                }
                None => {
                    let m = Arc::new(Machine::new());
                    all.push(m.clone());
                    m
                }
            }
        };
        m.handoff
            .store(p as *const Processor as *mut Processor, Ordering::Release);
        let r = std::thread::Builder::new()
            .name(format!("gort-m{}", m.id()))
            .spawn(move || run_thread(m));
        if let Err(e) = r {
            super::output::fatal(
                &format!(
                    "runtime: failed to create new OS thread ({e})\n{}fatal error: newosproc\n",
                    self.unwinding_note()
                ),
                super::deadlock::FATAL_PATIENCE,
            );
            std::process::exit(2);
        }
    }

    /// Threads held by goroutines blocked while unwinding a panic: a line that names the
    /// cause of a thread exhaustion when they are part of it (empty when there are none).
    /// Each such goroutine keeps its OS thread until its unwinding ends (goroutine.rs,
    /// `keep_thread_while_unwinding`), so many of them blocked at once, in a `Drop` that
    /// sends, receives, sleeps or locks, need as many threads.
    fn unwinding_note(&self) -> String {
        let held = self
            .all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|m| m.is_live() && m.holds_unwinding.load(Ordering::Acquire))
            .count();
        if held == 0 {
            return String::new();
        }
        format!(
            "runtime: {held} of the threads are held by goroutines blocked while unwinding a \
             panic (each keeps its OS thread until its unwinding ends; see GORT_MAX_THREADS)\n"
        )
    }

    /// Spare Ms (without a P) waiting to be handed one.
    pub(crate) fn spare_count(&self) -> usize {
        self.spares.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Parks the current M as a spare until it is handed a P (returned) or its keep-alive
    /// ends (None: the thread should exit).
    fn wait_as_spare(&self, m: &Arc<Machine>) -> Option<&'static Processor> {
        self.spares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(m.clone());
        let deadline = std::time::Instant::now() + SPARE_KEEP_ALIVE;
        loop {
            let p = m.handoff.swap(ptr::null_mut(), Ordering::AcqRel);
            if !p.is_null() {
                // SAFETY: processors live in the 'static scheduler.
                return Some(unsafe { &*p });
            }
            if std::time::Instant::now() >= deadline {
                let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = spares.iter().position(|x| Arc::ptr_eq(x, m)) {
                    spares.swap_remove(i);
                    return None;
                }
                // Popped by `start` meanwhile: the hand-off is on its way.
                drop(spares);
                m.parker.park(None);
                continue;
            }
            m.parker.park(Some(deadline));
        }
    }
}

/// Asks Linux for 1 µs of timer slack on this thread (the default is 50 µs): an idle M that
/// sleeps until the next timer, and sysmon's 20 µs naps, then wake when asked, so a 20 µs
/// `after` fires in about 25 µs rather than 75.
pub(crate) fn precise_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// Acquires the FREE processor `p` for `m`.
pub(crate) fn acquire(m: &Machine, p: &'static Processor) {
    let ok = p
        .state
        .compare_exchange(
            pack(0, FREE),
            pack(m.id(), SCHED),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok();
    assert!(ok, "gort: acquired a processor that was not free");
    p.owner
        .store(m as *const Machine as *mut Machine, Ordering::Release);
    m.p.store(p as *const Processor as *mut Processor, Ordering::Release);
}

/// The body of every runtime thread: run the scheduler while holding a P; without one, wait
/// as a spare; exit after the keep-alive.
pub(crate) fn run_thread(m: Arc<Machine>) {
    let sched = scheduler::get();
    MACHINE.with(|c| c.set(Arc::as_ptr(&m)));
    // SAFETY: gettid has no preconditions.
    m.tid.store(
        unsafe { libc::syscall(libc::SYS_gettid) } as i32,
        Ordering::Relaxed,
    );
    let _alt_stack = super::signal::install_thread(); // unmapped when this thread exits
    precise_timer_slack();
    let first = m.handoff.swap(ptr::null_mut(), Ordering::AcqRel);
    if !first.is_null() {
        // SAFETY: processors live in the 'static scheduler.
        acquire(&m, unsafe { &*first });
    }
    loop {
        if m.processor().is_some() {
            super::worker::schedule(sched, &m);
        }
        match sched.machines.wait_as_spare(&m) {
            Some(p) => acquire(&m, p),
            None => break,
        }
    }
    MACHINE.with(|c| c.set(ptr::null()));
    // Stays in `all` (never freed) and may be reused by `Machines::start`.
    m.exited.store(true, Ordering::Release);
    sched.machines.count.fetch_sub(1, Ordering::SeqCst);
}
