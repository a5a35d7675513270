//! The one blocking primitive: park the current goroutine (or plain thread), unpark it from
//! anywhere.
//!
//! Every blocking operation in gort — channels, select, sync, timers, net — blocks through
//! [`park`] / [`park_until`] and wakes through [`Unparker::unpark`], and nothing else. That is
//! what makes blocking uncoloured: inside a goroutine `park` suspends the goroutine and its
//! worker thread runs other goroutines; on a plain OS thread it blocks the thread on a futex.
//!
//! # The token
//! Each goroutine and each plain thread has one wake-up token, as `std::thread::park` does:
//!
//! - `unpark` makes the token available (idempotent: two unparks leave one token);
//! - `park` consumes the token and returns at once if it is there, else blocks until it is.
//!
//! So **no wake-up is lost**: an unpark that comes before the park makes the park return at
//! once. A goroutine's token lives in its `park` state (see `runtime::goroutine`):
//!
//! ```text
//!  state     | meaning                                   | unpark (always one RMW)
//!  ----------+-------------------------------------------+-------------------------------
//!  IDLE      | running (or runnable), no token           | -> NOTIFIED: token now pending
//!  NOTIFIED  | token present: the next park returns      | -> NOTIFIED (token stays pending)
//!  PARKED    | suspended in park, fully switched out     | -> IDLE, and this unparker makes
//!            |                                           |    it runnable (no token left)
//! ```
//!
//! The goroutine never marks itself PARKED: its worker does, *after* the switch away from the
//! goroutine's stack is complete (`IDLE -> PARKED`; if that CAS finds NOTIFIED, the worker
//! consumes the token with an acquiring swap and runs the goroutine again at once). A waker
//! therefore never makes runnable a goroutine that is still on its stack, which is what lets
//! a waiter enqueue itself, drop its lock, and park.
//!
//! `unpark` is always a releasing RMW, and every token is consumed by an acquiring RMW, so
//! whatever a waker wrote before `unpark` is visible after the `park` it ends — even when
//! several wakers race and a token was already pending:
//! - the unparker that takes the goroutine out of PARKED leaves it IDLE (no token) and hands
//!   it to a run queue; the queue's Release push and the running worker's Acquire pop carry
//!   that unparker's writes to the goroutine, so a woken goroutine resumes without an RMW
//!   of its own (one locked instruction less per wake-up than consuming a token);
//! - a later unparker (the goroutine is IDLE again) leaves a token: the next `park` consumes
//!   it (acquiring CAS) and returns at once, and its caller re-checks with that waker's writes
//!   visible;
//! - a token that arrived before the worker's `IDLE -> PARKED` is consumed by the worker
//!   (acquiring swap) before the goroutine runs again.
//!
//! # Rules for callers
//! 1. **Spurious wake-ups happen.** `park` may return although the event a caller waits for
//!    has not happened (a stale token from a cancelled select case, a timer that fired after
//!    it was stopped, a user's `Thread::unpark`). Always park in a loop that re-checks the
//!    condition, with the condition published before the unpark (Release) and read after
//!    the park (Acquire).
//! 2. **Publish, unlock, park.** A waiter puts its `Unparker` where the waker will find it
//!    (under the structure's lock), releases the lock, then parks. Never park while holding a
//!    lock: the worker must stay free to run the goroutine that will wake you.
//! 3. **What a waker may do under a queue lock**: take a waiter out of a queue, write the
//!    waiter's result slot, and call `unpark` — it never blocks and never runs user code
//!    (it pushes onto a run queue and may wake an idle worker thread). `unpark` is cheap and
//!    wait-free in the common case, but calling it after releasing the lock keeps critical
//!    sections short.
//! 4. `park` must not be called from runtime machinery that runs on a worker's own stack
//!    (timer callbacks, the scheduler loop); those only ever unpark.
//!
//! # Safety
//! The futex calls pass the address of an `AtomicU32` owned by the parker, valid for the
//! duration of the call (the parker outlives every `park`/`unpark` on it: plain threads'
//! parkers live in a thread-local `Arc`, runtime threads' in their `Machine`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use super::clock::saturating_add;
use super::deadlock::HORIZON;
use super::goroutine::{self, GRef};
use super::thread_arc::ThreadArc;

/// Why a goroutine is parked, named as Go names it in dumps and deadlock reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum WaitReason {
    /// Not waiting.
    None = 0,
    /// `Sender::send` on a full or unbuffered channel.
    ChanSend,
    /// `Receiver::recv` on an empty channel.
    ChanReceive,
    /// A blocking `select!`.
    Select,
    /// `select! {}` or a select whose cases are all off.
    SelectNoCases,
    /// `time::sleep`.
    Sleep,
    /// Waiting for a socket to become ready.
    IoWait,
    /// Semaphore acquisition.
    Semacquire,
    /// `sync::Mutex::lock`.
    MutexLock,
    /// `sync::RwLock::read`.
    RwLockRead,
    /// `sync::RwLock::write`.
    RwLockWrite,
    /// `sync::Condvar::wait`.
    CondWait,
    /// `sync::WaitGroup::wait`.
    WaitGroupWait,
    /// `JoinHandle::join`.
    Join,
    /// `thread::park` called by user code.
    ThreadPark,
    /// `sync::Once` waiting for another caller's initialisation.
    OnceWait,
    /// `sync::Barrier::wait`.
    BarrierWait,
    /// `gort::block_on` waiting for its future's waker.
    BlockOn,
}

impl WaitReason {
    /// Go's words for this wait.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "running",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::Sleep => "sleep",
            WaitReason::IoWait => "IO wait",
            WaitReason::Semacquire => "semacquire",
            WaitReason::MutexLock => "sync.Mutex.Lock",
            WaitReason::RwLockRead => "sync.RWMutex.RLock",
            WaitReason::RwLockWrite => "sync.RWMutex.Lock",
            WaitReason::CondWait => "sync.Cond.Wait",
            WaitReason::WaitGroupWait => "sync.WaitGroup.Wait",
            WaitReason::Join => "join",
            WaitReason::ThreadPark => "park",
            WaitReason::OnceWait => "sync.Once.Do",
            WaitReason::BarrierWait => "sync.Barrier.Wait",
            WaitReason::BlockOn => "block_on",
        }
    }

    pub(crate) fn from_u8(n: u8) -> WaitReason {
        use WaitReason::*;
        const ALL: [WaitReason; 18] = [
            None,
            ChanSend,
            ChanReceive,
            Select,
            SelectNoCases,
            Sleep,
            IoWait,
            Semacquire,
            MutexLock,
            RwLockRead,
            RwLockWrite,
            CondWait,
            WaitGroupWait,
            Join,
            ThreadPark,
            OnceWait,
            BarrierWait,
            BlockOn,
        ];
        ALL.get(n as usize).copied().unwrap_or(None)
    }
}

/// A handle that wakes one goroutine or plain thread: the thing waiters leave in wait queues.
///
/// It may also wrap a `std::task::Waker` ([`Unparker::from_waker`]), so that a future (async
/// code polled by any executor) can wait in the same queues as parked goroutines: `unpark`
/// then calls `wake_by_ref`, which never blocks (a waker must not), and which a waker may call
/// under a queue lock like any unpark (rule 3) — provided the waker is not one that runs the
/// task inline, which no executor's waker does.
#[derive(Clone)]
pub(crate) struct Unparker {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Goroutine(GRef),
    Thread(Arc<ThreadParker>),
    /// In an `Arc` so that an `Unparker` stays two words (queues hold many of them) and
    /// every variant drops the same way.
    Waker(Arc<std::task::Waker>),
}

impl Unparker {
    /// Makes the target's token available, waking it if it is parked. Never blocks.
    #[inline]
    pub(crate) fn unpark(&self) {
        match &self.target {
            Target::Goroutine(g) => goroutine::unpark(g),
            _ => self.unpark_other(),
        }
    }

    /// `unpark`, consuming the handle: a goroutine's reference goes to the run queue
    /// itself if this wakes it (no count up and down).
    #[inline]
    pub(crate) fn unpark_owned(self) {
        match self.target {
            Target::Goroutine(g) => goroutine::unpark_owned(g),
            _ => self.unpark_other(),
        }
    }

    /// The plain-thread and waker cases, kept off the goroutine fast path.
    #[cold]
    #[inline(never)]
    fn unpark_other(&self) {
        match &self.target {
            Target::Goroutine(g) => goroutine::unpark(g),
            Target::Thread(t) => t.unpark(),
            Target::Waker(w) => w.wake_by_ref(),
        }
    }

    /// A handle that wakes a future's task: `unpark` calls `waker.wake_by_ref()`.
    pub(crate) fn from_waker(waker: std::task::Waker) -> Unparker {
        Unparker {
            target: Target::Waker(Arc::new(waker)),
        }
    }

    /// A handle that wakes nobody: it stands in for a waiter that has gone (a withdrawn
    /// future's stale queue entry gives its waker back, `chan::waiter`). Needs no
    /// thread-local, so it works in thread-local destructors too.
    pub(crate) fn nobody() -> Unparker {
        static NOBODY: OnceLock<Arc<ThreadParker>> = OnceLock::new();
        Unparker {
            target: Target::Thread(NOBODY.get_or_init(|| Arc::new(ThreadParker::new())).clone()),
        }
    }

    /// True if this handle wraps a waker that wakes the same task as `waker`.
    pub(crate) fn will_wake(&self, waker: &std::task::Waker) -> bool {
        matches!(&self.target, Target::Waker(w) if w.will_wake(waker))
    }

    /// True if both handles wake the same goroutine or thread.
    pub(crate) fn same_target(&self, other: &Unparker) -> bool {
        match (&self.target, &other.target) {
            (Target::Goroutine(a), Target::Goroutine(b)) => GRef::ptr_eq(a, b),
            (Target::Thread(a), Target::Thread(b)) => Arc::ptr_eq(a, b),
            (Target::Waker(a), Target::Waker(b)) => a.will_wake(b),
            _ => false,
        }
    }

    /// The goroutine this handle wakes, if it wakes a goroutine.
    pub(crate) fn goroutine(&self) -> Option<&GRef> {
        match &self.target {
            Target::Goroutine(g) => Some(g),
            Target::Thread(_) | Target::Waker(_) => None,
        }
    }
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Goroutine(g) => write!(f, "Unparker(goroutine {})", g.id),
            Target::Thread(_) => f.write_str("Unparker(thread)"),
            Target::Waker(_) => f.write_str("Unparker(waker)"),
        }
    }
}

/// A plain thread's parker: a `ThreadArc`, not a `thread_local!`, so that blocking in gort
/// works in thread-local destructors too (see thread_arc.rs).
static THREAD_PARKER: ThreadArc<ThreadParker> = ThreadArc::new(ThreadParker::new_plain);

/// Every plain thread's parker, so the deadlock detector can tell the plain threads that use
/// gort, and the ones among them parked for good.
static PLAIN_PARKERS: Mutex<Vec<Weak<ThreadParker>>> = Mutex::new(Vec::new());

/// A plain thread as the deadlock detector sees it.
pub(crate) struct PlainThread {
    /// Its OS thread id.
    pub(crate) tid: i32,
    /// Parked in a gort primitive with no deadline (or one beyond `deadlock::HORIZON`) and no
    /// wake-up on the way: its parker is in the untimed PARKED state, which only an `unpark`
    /// can end.
    pub(crate) parked: bool,
}

/// Every live plain thread that has used gort: it has a parker, made the first time it
/// blocked or registered to wait in a gort primitive, spawned a goroutine, made a channel or
/// started a `#[gort::main]` program ([`note_use`]). Each `parked` is exact at the moment
/// its parker is looked at (deadlock.rs looks twice, with nothing moving in between).
pub(crate) fn plain_threads() -> Vec<PlainThread> {
    let mut all = PLAIN_PARKERS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.iter()
        .filter_map(Weak::upgrade)
        .map(|p| PlainThread {
            tid: p.tid,
            parked: p.state.load(Ordering::SeqCst) == PARKED,
        })
        .collect()
}

/// Notes that the calling thread uses gort, if it is a plain thread (outside goroutines; a
/// no-op after the first time). The deadlock detector counts a thread that predates the
/// `#[gort::main]` program as not the program's only while it has never used gort: one that
/// has might still wake a goroutine. Called before the use, so the detector, which looks
/// twice, never misses a use that changes anything.
#[inline]
pub(crate) fn note_use() {
    if !in_goroutine() {
        note_plain_use();
    }
}

#[cold]
#[inline(never)]
fn note_plain_use() {
    THREAD_PARKER.with(|_| ());
}

/// A handle to wake the current goroutine, or the current thread outside the runtime.
#[inline]
pub(crate) fn current() -> Unparker {
    match goroutine::current() {
        Some(g) => Unparker {
            target: Target::Goroutine(g),
        },
        None => Unparker {
            target: Target::Thread(thread_parker()),
        },
    }
}

/// This plain thread's parker. Kept out of line, so that the goroutine paths that inline
/// `current`, `park` and `park_until` stay small.
#[cold]
#[inline(never)]
fn thread_parker() -> Arc<ThreadParker> {
    THREAD_PARKER.with(Arc::clone)
}

/// Parks this plain thread (out of line, as `thread_parker`).
#[cold]
#[inline(never)]
fn park_thread(deadline: Option<Instant>) {
    THREAD_PARKER.with(|p| p.park(deadline));
}

/// True when called from a goroutine.
#[inline]
pub(crate) fn in_goroutine() -> bool {
    goroutine::in_goroutine()
}

/// Blocks until the current goroutine's (or thread's) token is available, and consumes it.
/// May return spuriously: see the module's rules.
#[inline]
pub(crate) fn park(reason: WaitReason) {
    if !goroutine::park_current(reason, None) {
        park_thread(None);
    }
}

/// Like [`park`], but also returns once `deadline` has passed. The caller tells a timeout
/// from a wake-up by re-checking its condition and the clock.
#[inline]
pub(crate) fn park_until(reason: WaitReason, deadline: Instant) {
    if !goroutine::park_current(reason, Some(deadline)) {
        park_thread(Some(deadline));
    }
}

/// A thread's token, on a futex (the protocol of std's thread parker, with a separate
/// PARKED state for timed parks so that the deadlock detector can tell "parked for good"
/// from "will wake by itself").
pub(crate) struct ThreadParker {
    /// EMPTY, NOTIFIED, PARKED (no deadline, or one beyond `deadlock::HORIZON`) or
    /// PARKED_TIMED.
    state: AtomicU32,
    /// The OS thread id of a plain thread's parker (0 for a runtime thread's).
    tid: i32,
}

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = u32::MAX;
const PARKED_TIMED: u32 = u32::MAX - 1;

impl ThreadParker {
    /// A runtime thread's parker.
    pub(crate) const fn new() -> ThreadParker {
        ThreadParker {
            state: AtomicU32::new(EMPTY),
            tid: 0,
        }
    }

    /// A plain thread's parker, registered for the deadlock detector.
    fn new_plain() -> Arc<ThreadParker> {
        let p = Arc::new(ThreadParker {
            state: AtomicU32::new(EMPTY),
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::syscall(libc::SYS_gettid) } as i32,
        });
        let mut all = PLAIN_PARKERS.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= 64 && all.len().is_power_of_two() {
            all.retain(|w| w.strong_count() > 0);
        }
        all.push(Arc::downgrade(&p));
        p
    }

    /// Consumes the token, blocking the thread until it is available or `deadline` passes.
    #[inline]
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        self.park_with(deadline, || ());
    }

    /// `park`, calling `token_taken` right after a pending token was consumed (the unit test's
    /// window for an unpark that races with the consumption).
    fn park_with(&self, deadline: Option<Instant>, token_taken: impl FnOnce()) {
        // A deadline beyond the horizon (Duration::MAX saturates to a century) is "for ever"
        // to the deadlock detector.
        let parked = match deadline {
            Some(d) if d < saturating_add(Instant::now(), HORIZON) => PARKED_TIMED,
            _ => PARKED,
        };
        // One acquiring read-modify-write: NOTIFIED -> EMPTY (the token is consumed: return),
        // or EMPTY -> parked. Being an RMW, it reads the latest unpark's swap, so that
        // waker's writes are visible to the caller; an unpark after it finds the token gone
        // (or the thread parked) and leaves a new token. (Only this thread parks, so the state
        // is never a PARKED one here.)
        let prev = self
            .state
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |s| {
                Some(if s == NOTIFIED { EMPTY } else { parked })
            })
            .unwrap_or_else(|s| s);
        if prev == NOTIFIED {
            token_taken();
            return;
        }
        loop {
            let timeout = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(t) if !t.is_zero() => Some(t),
                    _ => break,
                },
                None => None,
            };
            futex_wait(&self.state, parked, timeout);
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
        // Timed out: leave the parked state (a token that raced with the timeout is consumed).
        self.state.swap(EMPTY, Ordering::Acquire);
    }

    /// Makes the token available and wakes the thread if it is parked.
    pub(crate) fn unpark(&self) {
        let prev = self.state.swap(NOTIFIED, Ordering::Release);
        if prev == PARKED || prev == PARKED_TIMED {
            futex_wake(&self.state);
        }
    }
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; a relative timeout
    // (or null) is passed as FUTEX_WAIT expects. Errors (EAGAIN, EINTR, ETIMEDOUT) all mean
    // "re-check the state", which every caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; waking at most one waiter has no other effect.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12, item 6): an unpark that lands while `park` consumes a pending
    /// token must stay pending (and, being after the consumption, be acquired by the next
    /// park). With a failed compare-exchange followed by a plain store, the store erased it.
    #[test]
    fn issue_12_an_unpark_racing_with_the_token_consumption_is_not_lost() {
        for deadline in [
            None,
            Some(Instant::now() + std::time::Duration::from_secs(60)),
        ] {
            let p = ThreadParker::new();
            p.unpark();
            p.park_with(deadline, || p.unpark());
            assert_eq!(p.state.load(Ordering::SeqCst), NOTIFIED);
            p.park(deadline); // returns at once: the second token
            assert_eq!(p.state.load(Ordering::SeqCst), EMPTY);
        }
    }
}
