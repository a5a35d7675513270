//! The goroutine (G): a coroutine on its own stack, plus the state the scheduler keeps about it.
//!
//! ```text
//!  lifecycle         where it is                       who may touch `run`
//!  ---------------   -------------------------------   -------------------------------
//!  spawned           a run queue (task set, no stack)   the worker that pops it
//!  running           executing on a worker              that worker (inside `resume`)
//!  runnable          a run queue / runnext slot         the worker that pops it
//!  parked            only in waiters' Unparkers         nobody (until unparked)
//!  finished          freed when the last GRef goes      nobody (stack already pooled)
//! ```
//!
//! A goroutine is always owned by exactly one of: a run queue (or runnext slot), the worker
//! running it, or — while parked — the wake-up protocol (`park.rs`): the waker whose RMW
//! takes the state out of PARKED is the one that makes it runnable. That single ownership is what lets
//! the non-`Send` corosensei coroutine move between worker threads (see `SendCoroutine`).
//!
//! # Safety
//! - `run` is accessed only by the worker that currently owns the goroutine (per the table);
//!   hand-over between workers goes through a run queue (Release/Acquire) or the park CAS.
//! - `yielder` is written once, by the goroutine itself when it starts, and read only by the
//!   goroutine (to suspend itself), so it never races. `block_on_depth` and `locals` are
//!   likewise touched only by the goroutine itself (and by its end, on its own stack).
//! - The thread-local current-goroutine pointer is read through `#[inline(never)]` accessors:
//!   a goroutine can resume on another thread, and LLVM may otherwise reuse a thread-local
//!   address computed before the switch (llvm-project#98479).

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use super::machine::Machine;
use super::park::WaitReason;
use super::spawn::TaskSlot;
use super::stack::Stack;

/// A shared reference to a goroutine: what run queues and Unparkers hold (gref.rs).
pub(crate) use super::gref::GRef;

/// Why a goroutine gave control back to its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// It parked (`park.rs`): the worker publishes it as PARKED.
    Park,
    /// It yielded (`yield_now`): the worker queues it behind the others.
    Yield,
    /// It came back from `blocking` and its M lost its P: queue it for another M.
    Requeue,
}

/// How a goroutine's entry is called: to run it, or to report that it could not start.
pub(crate) enum Start {
    /// Run the goroutine's function on its stack.
    Run,
    /// No stack could be had: complete the goroutine with this error, without running it.
    Fail(io::Error),
}

type Co = Coroutine<(), Suspend, (), Stack>;

/// A corosensei coroutine that may move between worker threads.
pub(crate) struct SendCoroutine(pub(crate) Co);

// SAFETY: a coroutine is resumed by one thread at a time — the worker that owns its goroutine
// (module table) — and ownership moves between threads only through run queues or the park
// CAS, which order all of the coroutine's memory accesses. What lives on its stack is the
// user's `Send` closure and runtime state; thread-bound values held across a blocking point
// are the documented thread-identity caveat (crate docs), as in Go.
unsafe impl Send for SendCoroutine {}

/// What the owning worker keeps about a goroutine: one of the two, never both (an enum,
/// so that every goroutine's block is 24 bytes smaller).
pub(crate) enum Run {
    /// Not started yet, with the stack allocated at spawn if any (Builder spawns, or when
    /// stacks are short).
    New(Option<Stack>),
    /// The coroutine (which owns the stack), from the first run until it finishes.
    Started(SendCoroutine),
    /// Finished: the stack went back to a cache.
    Done,
}

impl Run {
    /// True once the goroutine has a coroutine (started, not finished).
    pub(crate) fn is_started(&self) -> bool {
        matches!(self, Run::Started(_))
    }

    /// The stack allocated at spawn, if any (only before the start).
    pub(crate) fn take_stack(&mut self) -> Option<Stack> {
        match self {
            Run::New(s) => s.take(),
            _ => None,
        }
    }

    /// The coroutine of a started goroutine.
    pub(crate) fn coroutine(&mut self) -> Option<&mut SendCoroutine> {
        match self {
            Run::Started(co) => Some(co),
            _ => None,
        }
    }

    /// Takes the coroutine out (when it finished, or to drop it); `Done` after.
    pub(crate) fn take_coroutine(&mut self) -> Option<SendCoroutine> {
        match std::mem::replace(self, Run::Done) {
            Run::Started(co) => Some(co),
            other => {
                *self = other;
                None
            }
        }
    }
}

// Reasons for a lock to an M (`Goroutine::lock_why`).
const LOCK_USER: u8 = 1;
const LOCK_UNWINDING: u8 = 2;

// Park states (the token protocol of park.rs).
const IDLE: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;

/// A goroutine.
pub(crate) struct Goroutine {
    /// Unique id, from 1 (the first goroutine: `main` under `#[gort::main]`).
    pub(crate) id: u64,
    /// Name given by `thread::Builder::name` (boxed twice: one word in every goroutine, and
    /// names are rare).
    #[allow(clippy::box_collection)]
    pub(crate) name: Option<Box<String>>,
    /// Usable stack size in bytes.
    pub(crate) stack_size: usize,
    /// IDLE, NOTIFIED or PARKED (park.rs).
    park: AtomicU8,
    /// A `WaitReason` while parked, for dumps.
    wait_reason: AtomicU8,
    /// When the current wait began, in timer-epoch nanoseconds: the coarse time (for dumps;
    /// see `clock::COARSE_NOW` for its accuracy).
    pub(crate) wait_since: AtomicU64,
    /// The token of `gort::thread::park`, separate from the runtime's so that runtime waits
    /// never swallow a user's unpark.
    pub(crate) user_token: AtomicBool,
    /// The lowest address of the stack's guard region (`GUARD_SIZE` bytes), set when the
    /// stack is assigned (signal.rs reads it to recognise an overflow); 0 before.
    pub(crate) guard: AtomicUsize,
    /// About where its stack pointer was when it last suspended: a waker prefetches the
    /// stack lines there, and the goroutine's own, while it goes on with its own work
    /// (`unpark`). A hint only; written by the goroutine itself.
    park_sp: AtomicUsize,
    /// The M this goroutine is locked to, or null: non-null exactly while `lock_why` is not
    /// empty. Written only by the goroutine itself (and cleared by its M when it ends).
    locked: AtomicPtr<Machine>,
    /// Why it is locked: `LOCK_USER` (`lock_os_thread`) and/or `LOCK_UNWINDING` (it
    /// suspended while unwinding a panic). Written only by the goroutine itself.
    lock_why: AtomicU8,
    /// Set when the goroutine has finished (dumps skip it).
    finished: AtomicBool,
    /// Owned by the worker that owns the goroutine (module safety notes).
    pub(crate) run: UnsafeCell<Run>,
    /// Its body and result packet (spawn.rs).
    pub(crate) task: TaskSlot,
    /// Set by the goroutine when it starts; used by it to suspend.
    yielder: Cell<*const Yielder<(), Suspend>>,
    /// Where it was spawned (`#[track_caller]` through `go!`, `spawn`, `Builder`), for dumps.
    pub(crate) spawned_at: &'static Location<'static>,
    /// When it last became runnable (timer-epoch ns), if that transition was sampled for the
    /// scheduling-latency histogram (metrics.rs); 0 otherwise. Written by whoever makes it
    /// runnable, read and cleared by the M that runs it (ownership passes through the queue).
    pub(crate) runnable_since: AtomicU64,
    /// Set by a `block_on` waker before it unparks the goroutine (block_on.rs).
    pub(crate) waker_token: AtomicBool,
    /// `block_on` calls active on this goroutine; touched only by the goroutine itself.
    pub(crate) block_on_depth: Cell<u16>,
    /// Goroutine-local values (local.rs); touched only by the goroutine itself.
    pub(crate) locals: crate::local::Slots,
}

// SAFETY: `run` and `yielder` follow the ownership rules in the module comment; every other
// field is atomic or immutable.
unsafe impl Send for Goroutine {}
// SAFETY: as above.
unsafe impl Sync for Goroutine {}

impl Goroutine {
    #[allow(clippy::box_collection)]
    pub(crate) fn new(
        id: u64,
        name: Option<Box<String>>,
        stack_size: usize,
        task: TaskSlot,
        stack: Option<Stack>,
        spawned_at: &'static Location<'static>,
    ) -> Goroutine {
        Goroutine {
            id,
            name,
            stack_size,
            park: AtomicU8::new(IDLE),
            wait_reason: AtomicU8::new(WaitReason::None as u8),
            wait_since: AtomicU64::new(0),
            user_token: AtomicBool::new(false),
            guard: AtomicUsize::new(0),
            park_sp: AtomicUsize::new(0),
            locked: AtomicPtr::new(std::ptr::null_mut()),
            lock_why: AtomicU8::new(0),
            finished: AtomicBool::new(false),
            run: UnsafeCell::new(Run::New(stack)),
            task,
            yielder: Cell::new(std::ptr::null()),
            spawned_at,
            runnable_since: AtomicU64::new(0),
            waker_token: AtomicBool::new(false),
            block_on_depth: Cell::new(0),
            locals: crate::local::Slots::new(),
        }
    }

    /// Records the yielder; called by the goroutine on its own stack when it starts.
    pub(crate) fn set_yielder(&self, y: &Yielder<(), Suspend>) {
        self.yielder.set(y as *const _);
    }

    /// The current wait reason (None when not parked).
    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    /// The raw park state (debugging).
    pub(crate) fn debug_park_state(&self) -> u8 {
        self.park.load(Ordering::SeqCst)
    }

    /// True while the goroutine is parked (for dumps; racy by nature).
    pub(crate) fn is_parked(&self) -> bool {
        self.park.load(Ordering::Relaxed) == PARKED
    }

    /// Called by the worker after the goroutine suspended with `Suspend::Park`. Returns true
    /// if it is now parked; false if a token arrived meanwhile (consumed here: run it again).
    pub(crate) fn commit_park(&self) -> bool {
        if self
            .park
            .compare_exchange(IDLE, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        // A token arrived during the switch: consume it here (park.rs): an acquiring RMW, so
        // every waker's writes before its unpark are visible to the goroutine, which runs next
        // on this thread or after a run queue's hand-off.
        self.park.swap(IDLE, Ordering::Acquire);
        false
    }

    /// The M this goroutine is locked to, if any.
    #[inline]
    pub(crate) fn locked_machine(&self) -> Option<&'static Machine> {
        let m = self.locked.load(Ordering::Acquire);
        // SAFETY: a locked goroutine's M waits for it and does not exit while it is locked;
        // Machines are also kept alive by the scheduler's list of all Ms.
        (!m.is_null()).then(|| unsafe { &*m })
    }

    /// True if locked to `m`.
    pub(crate) fn is_locked_to(&self, m: &Machine) -> bool {
        std::ptr::eq(self.locked.load(Ordering::Relaxed), m)
    }

    /// Locks this goroutine to `m` for `why` (one of the `LOCK_*` reasons). Called by the
    /// goroutine itself, running on `m`.
    fn lock_for(&self, why: u8, m: &Machine) {
        self.lock_why.store(
            self.lock_why.load(Ordering::Relaxed) | why,
            Ordering::Relaxed,
        );
        self.locked
            .store(m as *const Machine as *mut Machine, Ordering::Release);
        m.runs_locked.store(true, Ordering::Release);
        if why & LOCK_UNWINDING != 0 {
            m.holds_unwinding.store(true, Ordering::Release);
        }
    }

    /// Drops the lock reason `why`; unlocks when no reason is left. Called by the goroutine.
    fn unlock_for(&self, why: u8) {
        let left = self.lock_why.load(Ordering::Relaxed) & !why;
        self.lock_why.store(left, Ordering::Relaxed);
        if left == 0 {
            self.release_machine();
        } else if why & LOCK_UNWINDING != 0 {
            let m = self.locked.load(Ordering::Relaxed);
            // SAFETY: Machines are never freed (machine.rs); `m` is non-null while locked.
            unsafe { &*m }
                .holds_unwinding
                .store(false, Ordering::Release);
        }
    }

    /// Clears the lock to an M, and that M's `runs_locked` and `holds_unwinding`.
    fn release_machine(&self) {
        let m = self.locked.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !m.is_null() {
            // SAFETY: Machines are never freed (machine.rs).
            let m = unsafe { &*m };
            m.holds_unwinding.store(false, Ordering::Release);
            m.runs_locked.store(false, Ordering::Release);
        }
    }

    /// `lock_os_thread`: locks this (running) goroutine to `m`, the M running it.
    pub(crate) fn lock_os_thread(&self, m: &Machine) {
        self.lock_for(LOCK_USER, m);
    }

    /// `unlock_os_thread` (a lock kept for unwinding stays until the unwinding ends).
    pub(crate) fn unlock_os_thread(&self) {
        self.unlock_for(LOCK_USER);
    }

    /// Unlocks when the goroutine ends.
    #[inline]
    pub(crate) fn unlock_machine(&self) {
        // Only the goroutine writes `lock_why`, and it has ended: a plain read.
        if self.lock_why.load(Ordering::Relaxed) != 0 {
            self.lock_why.store(0, Ordering::Relaxed);
            self.release_machine();
        }
    }

    /// Marks the goroutine finished.
    pub(crate) fn mark_finished(&self) {
        self.finished.store(true, Ordering::Release);
    }

    /// True once finished.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Suspends the running goroutine (must be the current one) back to its worker.
    ///
    /// While a panic unwinds, the goroutine is locked to its M first (see
    /// [`Goroutine::keep_thread_while_unwinding`]), so that it resumes on the same OS thread.
    #[inline]
    pub(crate) fn suspend(&self, why: Suspend) {
        if self.lock_why.load(Ordering::Relaxed) & LOCK_UNWINDING != 0 || std::thread::panicking() {
            self.keep_thread_while_unwinding();
        }
        let here = 0u8;
        self.park_sp
            .store(std::ptr::addr_of!(here) as usize, Ordering::Relaxed);
        let y = self.yielder.get();
        debug_assert!(!y.is_null());
        // SAFETY: the yielder was set when this goroutine started and lives as long as its
        // coroutine; we are running on that coroutine (callers check `current`).
        unsafe { (*y).suspend(why) };
    }

    /// Keeps the goroutine on its OS thread while it unwinds a panic.
    ///
    /// std keeps its panic count per OS thread. A goroutine that parks or yields while it
    /// unwinds (a `Drop` that receives, sleeps or locks, a panic hook that waits, a Mutex
    /// hand-off) must therefore resume on the thread that holds its count, and no other
    /// goroutine may run there meanwhile: they would see `panicking()`, poison std locks,
    /// and a panic of theirs would abort the process. So at a suspend during unwinding the
    /// goroutine is locked to its M, exactly as `lock_os_thread` does: its M hands its P to
    /// another M (as in a system call) and waits for this goroutine alone (worker.rs). The
    /// lock is dropped at the first suspend after the unwinding ended; until then the
    /// goroutine runs on its M without a P, like one back from a system call.
    ///
    /// The cost: one OS thread per goroutine blocked while unwinding (they count against
    /// the thread limit, and the thread exhaustion message counts them:
    /// `Machine::holds_unwinding`). And nothing marks the end of an unwinding that a
    /// `catch_unwind` inside the goroutine stops: the goroutine then runs user code without a
    /// P (not bounded by `GORT_MAXPROCS`, as a locked goroutine) until it next parks or
    /// yields, where the lock is dropped and it rejoins the run queues.
    #[cold]
    #[inline(never)]
    fn keep_thread_while_unwinding(&self) {
        let kept = self.lock_why.load(Ordering::Relaxed) & LOCK_UNWINDING != 0;
        if std::thread::panicking() {
            if !kept {
                if let Some(m) = super::machine::current() {
                    self.lock_for(LOCK_UNWINDING, m);
                }
            }
        } else if kept {
            self.unlock_for(LOCK_UNWINDING);
        }
    }
}

impl Drop for Goroutine {
    fn drop(&mut self) {
        let finished = self.is_finished();
        let run = self.run.get_mut();
        if matches!(run, Run::New(_)) && !finished {
            // Never started, and nothing can run it any more: its function is dropped unrun.
            // (A finished goroutine's task has already been let go of by the goroutine.)
            self.task.abandon();
        }
        if let Some(co) = run.take_coroutine() {
            if co.0.started() && !co.0.done() {
                // A goroutine parked forever that nothing can wake any more. Unwinding its
                // stack would run its destructors on whatever thread dropped the last
                // reference, possibly inside another goroutine, where they might park: leak
                // it instead, as Go leaks a goroutine blocked forever.
                std::mem::forget(co);
            }
        }
    }
}

thread_local! {
    /// The goroutine running on this thread, or null.
    static CURRENT: Cell<*const Goroutine> = const { Cell::new(std::ptr::null()) };
}

/// Raw pointer to the current goroutine (null outside goroutines).
#[inline(never)]
pub(crate) fn current_ptr() -> *const Goroutine {
    CURRENT.with(|c| c.get())
}

/// Sets the current goroutine of this worker thread (null to clear).
#[inline(never)]
pub(crate) fn set_current(g: *const Goroutine) {
    CURRENT.with(|c| c.set(g));
}

/// True when called from a goroutine.
#[inline]
pub(crate) fn in_goroutine() -> bool {
    !current_ptr().is_null()
}

/// A new reference to the current goroutine, if called from one.
#[inline]
pub(crate) fn current() -> Option<GRef> {
    let p = current_ptr();
    if p.is_null() {
        return None;
    }
    // SAFETY: the running goroutine is kept alive by its worker (which holds a GRef for the
    // whole `resume`), so p points to a live goroutine (gref.rs).
    unsafe {
        GRef::increment_strong_count(p);
        Some(GRef::from_raw(p))
    }
}

/// Runs `f` with the current goroutine, if any, without touching its reference count.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Goroutine) -> R) -> Option<R> {
    let p = current_ptr();
    if p.is_null() {
        return None;
    }
    // SAFETY: as in `current`: the running goroutine outlives this call.
    Some(f(unsafe { &*p }))
}

/// Runs `f` on the stack of the worker running the current goroutine (corosensei's
/// `on_parent_stack`), or right here when not called from a goroutine: for stack-hungry
/// runtime work done on a goroutine's behalf (resolving a panic's backtrace), which must not
/// overflow a small goroutine stack.
pub(crate) fn on_worker_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let p = current_ptr();
    if p.is_null() {
        return f();
    }
    // SAFETY: as in `current`: the running goroutine outlives this call.
    let y = unsafe { &*p }.yielder.get();
    if y.is_null() {
        return f();
    }
    // SAFETY: the yielder was set when this goroutine started and lives as long as its
    // coroutine, on which we are running (`current` is set only around its resume).
    unsafe { (*y).on_parent_stack(f) }
}

/// Parks the current goroutine (park.rs). Returns false if not called from a goroutine.
pub(crate) fn park_current(reason: WaitReason, deadline: Option<Instant>) -> bool {
    let p = current_ptr();
    if p.is_null() {
        return false;
    }
    // SAFETY: the running goroutine outlives this call (see `current`).
    let g = unsafe { &*p };
    // A token already there: consume it and return. (Load first: a failed CAS still costs a
    // locked instruction, and usually there is no token; one arriving after this load is
    // caught by the worker's `commit_park`.)
    if g.park.load(Ordering::Relaxed) == NOTIFIED
        && g.park
            .compare_exchange(NOTIFIED, IDLE, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        return true;
    }
    let _timer = match deadline {
        Some(d) if d <= Instant::now() => return true,
        Some(d) => {
            let me = current().expect("in a goroutine");
            let t = super::timers::Timer::new(move || unpark(&me));
            t.start(d);
            Some(t)
        }
        None => None,
    };
    g.wait_reason.store(reason as u8, Ordering::Relaxed);
    g.wait_since
        .store(super::timers::coarse_now(), Ordering::Relaxed);
    g.suspend(Suspend::Park);
    // We may be on another thread now: only use `g` (not thread-locals read before).
    // No token to consume (park.rs): the unparker that readied us left the state IDLE and
    // its writes came with the run queue's hand-off; a token that came before the worker
    // parked us was consumed by the worker; a later one stays for the next park.
    g.wait_reason
        .store(WaitReason::None as u8, Ordering::Relaxed);
    true
}

/// Makes `g`'s token available; if it was parked, makes it runnable.
pub(crate) fn unpark(g: &GRef) {
    if take_out_of_park(g) {
        prefetch_for_resume(g);
        super::scheduler::ready(g.clone(), false);
    }
}

/// Starts loading what resuming a parked goroutine touches first — its own fields and the
/// top frames of its stack, cold after a long park (a daisy chain's every hop) — so that the
/// waker's remaining work overlaps those cache and TLB misses.
///
/// Not for a goroutine that parked within the current coarse-clock step (`clock.rs`: at
/// least 20 µs): its lines are still in the caches (a ping-pong partner, a select's
/// producer), and the ~30 prefetches and their address arithmetic were ~8% of the
/// instructions of a ping-pong round trip.
#[inline]
fn prefetch_for_resume(g: &Goroutine) {
    if g.wait_since.load(Ordering::Relaxed) == super::timers::coarse_now() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let at = |a: usize| {
            // SAFETY: a prefetch is a hint: it never faults and changes no memory.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(a as *const i8) }
        };
        let base = g as *const Goroutine as usize;
        for off in (0..std::mem::size_of::<Goroutine>()).step_by(64) {
            at(base + off);
        }
        let sp = g.park_sp.load(Ordering::Relaxed);
        if sp != 0 {
            // The switch's saved registers lie just below; the callers' frames above.
            for off in (0..1536).step_by(64) {
                at((sp & !63) - 256 + off);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = g;
}

/// The token half of `unpark`: PARKED -> IDLE (true: the caller makes it runnable), any
/// other state -> NOTIFIED (a pending token; park.rs has the table).
///
/// Always an RMW, never a load-and-return: a waker's writes before `unpark` must be
/// released to the goroutine even when a token is already pending (with a plain load, the
/// goroutine could consume the older token, miss this waker's condition, and park for good).
/// The waker that takes it out of PARKED is the one that makes it runnable; it leaves no
/// token, so the goroutine resumes without consuming one (its writes reach the goroutine
/// through the run queue).
#[inline]
fn take_out_of_park(g: &Goroutine) -> bool {
    let mut s = g.park.load(Ordering::Relaxed);
    loop {
        let new = if s == PARKED { IDLE } else { NOTIFIED };
        match g
            .park
            .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => return s == PARKED,
            Err(now) => s = now,
        }
    }
}

/// `unpark` with a reference of our own: it becomes the run queue's if this wakes `g`.
#[inline]
pub(crate) fn unpark_owned(g: GRef) {
    if take_out_of_park(&g) {
        prefetch_for_resume(&g);
        super::scheduler::ready(g, false);
    }
}

/// Yields the current goroutine to the others runnable; returns false outside goroutines.
pub(crate) fn yield_current() -> bool {
    match with_current(|g| g.suspend(Suspend::Yield)) {
        Some(()) => true,
        None => false,
    }
}
