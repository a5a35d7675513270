//! The scheduler's shared state: processors, worker threads, the global queue, idle workers.
//!
//! See `runtime/mod.rs` for the G/P/M glossary. This file holds what all workers share and the
//! two ways work enters the system:
//!
//! - [`ready`]: a goroutine became runnable (spawned or unparked). On a worker thread it goes
//!   to that worker's processor (runnext), else to the global queue.
//! - [`Sched::wake_idle`]: wake one idle worker when there is stealable work and no worker
//!   is already searching (spinning). One at a time: the woken worker, if it finds work and
//!   was the last spinner, wakes the next (Go's `wakep` / `resetspinning`). No thundering herd,
//!   and no busy waiting: a worker that finds nothing parks on its futex.
//!
//! Idle protocol (no lost work): a worker going idle (1) stops spinning, (2) publishes itself
//! on the idle list, (3) issues a SeqCst fence and re-checks every queue, and only then (4)
//! parks. A submitter pushes work, issues a SeqCst fence, then reads `nspinning`/`nidle`.
//! Either the submitter sees the idle worker (and wakes it) or the worker's re-check sees the
//! work.
//!
//! Timers (`timers.rs`): one idle worker at a time is the *watcher*: it parks no longer
//! than the earliest deadline across the timer heaps (`timers::wake_deadline`). Arming an
//! earlier timer wakes it, and so does a worker going idle with its own P's timers armed
//! earlier; workers fire due timers (their own P's and others') each time they schedule.
//!
//! # Safety
//! The timer watcher is a raw pointer to an idle M's `Machine`, set by that M and cleared by
//! it before it leaves `park_idle`; Ms holding a P never exit, and every `Machine` is also
//! kept alive by the scheduler's list of all Ms, so unparking it through the pointer is sound.

use std::ptr;
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_queue::SegQueue;

use super::goroutine::GRef;
use super::machine::{Machine, Machines};
use super::processor::{Processor, LOCAL_QUEUE};
use super::timers;

/// The scheduler.
pub(crate) struct Sched {
    /// The processors (P), one per unit of parallelism (`max_procs`).
    pub(crate) procs: Box<[Processor]>,
    /// The OS threads (M) and the spare pool.
    pub(crate) machines: Machines,
    /// Goroutines made runnable off the workers, and local-queue overflow.
    global: SegQueue<GRef>,
    /// Approximate length of `global` (for batch sizing and cheap emptiness checks).
    global_len: AtomicUsize,
    /// Idle Ms holding a P; guarded, with `Machine::woken_spinning`, by this lock.
    idle: Mutex<Vec<Arc<Machine>>>,
    /// `idle.len()`, readable without the lock.
    pub(crate) nidle: AtomicUsize,
    /// Ms looking for work (spinning) right now.
    nspinning: AtomicUsize,
    /// Idle Ms woken so far (deadlock detection watches it for activity).
    pub(crate) wakes: AtomicU64,
    /// The idle M that watches timers, or null. It is in `idle` (so alive) while set.
    watcher: AtomicPtr<Machine>,
    /// The deadline the watcher sleeps until (timer-epoch ns); u64::MAX while it computes it.
    watcher_deadline: AtomicU64,
    /// Default usable stack size.
    pub(crate) stack_size: usize,
    /// Number of processors.
    pub(crate) nprocs: usize,
    /// Next goroutine id (reserved in batches by each thread).
    pub(crate) next_id: AtomicU64,
}

static SCHED: OnceLock<Sched> = OnceLock::new();

/// The scheduler, started on first use.
#[inline]
pub(crate) fn get() -> &'static Sched {
    match SCHED.get() {
        Some(s) => s,
        None => start(),
    }
}

/// The scheduler if it has started.
pub(crate) fn try_get() -> Option<&'static Sched> {
    SCHED.get()
}

#[cold]
fn start() -> &'static Sched {
    let mut started = false;
    let sched = SCHED.get_or_init(|| {
        let cfg = super::config::resolve();
        started = true;
        Sched {
            procs: (0..cfg.max_procs).map(Processor::new).collect(),
            machines: Machines::new(cfg.max_threads),
            global: SegQueue::new(),
            global_len: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            nidle: AtomicUsize::new(0),
            nspinning: AtomicUsize::new(0),
            wakes: AtomicU64::new(0),
            watcher: AtomicPtr::new(ptr::null_mut()),
            watcher_deadline: AtomicU64::new(u64::MAX),
            stack_size: cfg.stack_size,
            nprocs: cfg.max_procs,
            next_id: AtomicU64::new(1),
        }
    });
    if started {
        super::panic::install_hook();
        super::signal::install();
        super::dump::install_sigquit();
        for p in sched.procs.iter() {
            sched.machines.start(p);
        }
        super::sysmon::start();
    }
    sched
}

/// A goroutine woken on a worker that displaces the previous runnext into the local queue
/// wakes an idle M only once the queue holds this many: the running goroutine usually
/// blocks within microseconds (a producer handing over to its consumer) and this P runs
/// the displaced one itself, while waking another M moves it to another core (a futex wake,
/// a steal, the channel's lines crossing over) and back. Waking on every displacement (as
/// Go's `ready` does) made the blocking select fed by two producers ~25% slower on the
/// 2-core VM, and 4 producers -> 1 consumer ~30% slower (interleaved A/B, medians of 10).
/// A burst (a close or broadcast waking many) still reaches idle Ms after a few, and a P
/// stuck with a full queue is handed off by sysmon.
const WAKE_AT_QUEUE: usize = 4;

/// Makes `g` runnable. `spawned`: a new goroutine (always offers work to idle Ms, as
/// Go's `newproc` does); an unparked one wakes others only if it displaced work and work
/// is piling up (`WAKE_AT_QUEUE`).
pub(crate) fn ready(g: GRef, spawned: bool) {
    if let Some(m) = g.locked_machine() {
        m.ready_locked(g);
        return;
    }
    let sched = get();
    let m = super::machine::current();
    match m.and_then(|m| m.processor().map(|p| (m, p))) {
        Some((m, p)) => {
            super::metrics::on_ready(&g, Some(p));
            let displaced = p.push_next(g) && p.queue.len() >= WAKE_AT_QUEUE;
            // If sysmon took the P from this M meanwhile, its new M may already be idle:
            // make sure somebody looks at it.
            let lost = p.state.load(Ordering::Acquire) >> 8 != m.id() as u64;
            if displaced || spawned || lost {
                sched.wake_idle();
            }
        }
        None => {
            super::metrics::on_ready(&g, None);
            sched.push_global(g);
            sched.wake_idle();
        }
    }
}

/// Called when a timer became the earliest armed one (deadline `when`, timer-epoch ns).
pub(crate) fn timer_armed(when: u64) {
    let Some(sched) = try_get() else { return };
    fence(Ordering::SeqCst);
    let w = sched.watcher.load(Ordering::SeqCst);
    if !w.is_null() {
        if when < sched.watcher_deadline.load(Ordering::SeqCst) {
            // SAFETY: the watcher is an idle M holding a P; such Ms never exit, and the
            // Machine is kept alive by `Machines::all` in any case.
            unsafe { (*w).parker.unpark() };
        }
    } else if sched.nidle.load(Ordering::SeqCst) > 0 {
        // Nobody watches timers: an idle M will, once woken.
        sched.wake_any_idle();
    }
}

impl Sched {
    /// Counts a goroutine spawned (+1) or finished (-1) in `num_goroutines`, on the current
    /// processor's counters (metrics.rs), or the shared ones off the processors.
    #[inline]
    pub(crate) fn count_live(&self, delta: isize) {
        let stats = match super::machine::current_processor() {
            Some(p) => &p.stats,
            None => &super::metrics::OFF_PROC,
        };
        if delta > 0 {
            stats
                .created
                .fetch_add(delta.unsigned_abs() as u64, Ordering::Relaxed);
        } else {
            // Release: whoever reads this finish (Acquire) also sees the creation, which
            // happened before it (`metrics::live_goroutines`). The same instruction on x86.
            stats
                .finished
                .fetch_add(delta.unsigned_abs() as u64, Ordering::Release);
        }
    }

    /// Live user goroutines (created minus finished, over the shards).
    pub(crate) fn num_goroutines(&self) -> usize {
        super::metrics::live_goroutines(self)
    }

    /// Length of the global queue (approximate while it changes).
    pub(crate) fn global_len(&self) -> usize {
        self.global_len.load(Ordering::Relaxed)
    }

    /// Ms spinning now.
    pub(crate) fn spinning(&self) -> usize {
        self.nspinning.load(Ordering::Relaxed)
    }

    pub(crate) fn push_global(&self, g: GRef) {
        self.global.push(g);
        self.global_len.fetch_add(1, Ordering::SeqCst);
    }

    /// Pushes several goroutines, counting them once (a processor's queue overflowing: Go's
    /// `runqputslow` moves half of it in one lock). Until the count is added, poppers may
    /// see fewer than are there, never more than have been pushed but for the transient
    /// wrap that single pushes already allow (a pop between a push and its count).
    pub(crate) fn push_global_batch(&self, gs: impl Iterator<Item = GRef>) {
        let mut n = 0;
        for g in gs {
            self.global.push(g);
            n += 1;
        }
        if n > 0 {
            self.global_len.fetch_add(n, Ordering::SeqCst);
        }
    }

    pub(crate) fn global_is_empty(&self) -> bool {
        self.global_len.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn pop_global(&self) -> Option<GRef> {
        if self.global_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let g = self.global.pop()?;
        self.global_len.fetch_sub(1, Ordering::Release);
        Some(g)
    }

    /// Takes a fair share of the global queue into `p`'s queue; returns one to run.
    pub(crate) fn pop_global_batch(&self, p: &Processor) -> Option<GRef> {
        let len = self.global_len.load(Ordering::Acquire);
        if len == 0 {
            return None;
        }
        let first = self.pop_global()?;
        // Only this M, holding `p` in SCHED, writes its counters.
        super::metrics::bump(&p.stats.global_takes);
        let n = (len / self.nprocs + 1).min(LOCAL_QUEUE / 2);
        for _ in 1..n {
            match self.pop_global() {
                Some(g) => {
                    if let Err(g) = p.queue.push(g) {
                        self.push_global(g);
                        break;
                    }
                }
                None => break,
            }
        }
        Some(first)
    }

    /// Is anything runnable anywhere (or a timer due)?
    pub(crate) fn any_work(&self) -> bool {
        self.global_len.load(Ordering::SeqCst) > 0
            || self.procs.iter().any(|p| !p.is_empty())
            || timers::any_due()
    }

    /// Wakes one idle M if there is no spinning M to pick up new work.
    #[inline]
    pub(crate) fn wake_idle(&self) {
        fence(Ordering::SeqCst);
        if self.nspinning.load(Ordering::SeqCst) != 0 || self.nidle.load(Ordering::SeqCst) == 0 {
            return;
        }
        if self
            .nspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        if !self.pop_idle_and_wake() {
            self.nspinning.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Wakes an idle M whatever the spinning count (it will count itself spinning).
    fn wake_any_idle(&self) {
        self.nspinning.fetch_add(1, Ordering::SeqCst);
        if !self.pop_idle_and_wake() {
            self.nspinning.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Takes an M off the idle list, marks it spinning and unparks it.
    fn pop_idle_and_wake(&self) -> bool {
        let m = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let m = idle.pop();
            if let Some(m) = &m {
                self.nidle.fetch_sub(1, Ordering::SeqCst);
                m.woken_spinning.store(true, Ordering::SeqCst);
            }
            m
        };
        match m {
            Some(m) => {
                self.wakes.fetch_add(1, Ordering::Relaxed);
                m.parker.unpark();
                true
            }
            None => false,
        }
    }

    /// True if some other M is idle or spinning (so it can steal queued goroutines).
    pub(crate) fn others_can_steal(&self) -> bool {
        self.nprocs > 1
            && (self.nidle.load(Ordering::SeqCst) > 0 || self.nspinning.load(Ordering::SeqCst) > 0)
    }

    /// Counts the caller as spinning if not too many Ms already are
    /// (at most half of the busy ones, as Go limits it).
    pub(crate) fn try_start_spinning(&self) -> bool {
        let busy = self.nprocs - self.nidle.load(Ordering::SeqCst).min(self.nprocs);
        if 2 * self.nspinning.load(Ordering::SeqCst) >= busy.max(1) {
            return false;
        }
        self.nspinning.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Stops counting the caller as spinning; returns true if it was the last spinner.
    pub(crate) fn stop_spinning(&self) -> bool {
        self.nspinning.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Puts M `m` (holding a P) on the idle list.
    pub(crate) fn enter_idle(&self, m: &Arc<Machine>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(m.clone());
        self.nidle.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes M `m` off the idle list. Returns true if a waker had already taken it off
    /// and counted it as spinning (then the caller is spinning).
    pub(crate) fn leave_idle(&self, m: &Arc<Machine>) -> bool {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = idle.iter().position(|x| Arc::ptr_eq(x, m)) {
            idle.swap_remove(pos);
            self.nidle.fetch_sub(1, Ordering::SeqCst);
            self.wakes.fetch_add(1, Ordering::Relaxed);
            false
        } else {
            m.woken_spinning.swap(false, Ordering::SeqCst)
        }
    }

    /// Parks idle M `m`; one idle M also sleeps no longer than the next timer.
    pub(crate) fn park_idle(&self, m: &Arc<Machine>) {
        let me = Arc::as_ptr(m) as *mut Machine;
        let watching = self
            .watcher
            .compare_exchange(ptr::null_mut(), me, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        let deadline = if watching {
            self.watcher_deadline.store(u64::MAX, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let d = timers::wake_deadline();
            self.watcher_deadline
                .store(d.unwrap_or(u64::MAX), Ordering::SeqCst);
            d.map(timers::from_nanos)
        } else {
            // Another M watches, perhaps until this P's timers are a slack late (they were
            // armed while it ran a goroutine): now that nobody runs them here, have it
            // wake on time for them.
            if let Some(next) = m.processor().and_then(|p| timers::own_next(p.id)) {
                timer_armed(next);
            }
            None
        };
        m.parker.park(deadline);
        if watching {
            self.watcher_deadline.store(u64::MAX, Ordering::SeqCst);
            self.watcher.store(ptr::null_mut(), Ordering::SeqCst);
            if timers::next_deadline().is_some() {
                // Hand the watch over: nudge another idle M, which parks again as watcher.
                let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(other) = idle.iter().find(|x| !Arc::ptr_eq(x, m)) {
                    other.parker.unpark();
                }
            }
        }
    }
}
