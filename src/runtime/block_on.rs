//! `block_on`: run a `Future` to completion from a goroutine or a plain thread.
//!
//! A future is polled; when it returns `Pending` the caller waits until the future's waker
//! is called, then polls again. Waiting goes through the one park primitive (`park.rs`):
//!
//! - **in a goroutine** the goroutine parks and its worker runs other goroutines; the waker
//!   unparks the goroutine (from any thread: a tokio worker, a timer, another goroutine);
//! - **on a plain thread** the thread parks on its futex; the waker unparks the thread.
//!
//! # The waker
//! A goroutine's waker is the goroutine itself: its data pointer is the goroutine's
//! `GRef` as a raw pointer (gref.rs), and the vtable's clone / drop are the GRef's
//! reference count. `block_on` lends the future a waker that borrows the running goroutine
//! without touching the count (the goroutine outlives the call), so a poll allocates nothing
//! and a `block_on` whose future is ready at once costs no atomic operation at all; only a
//! future that keeps a clone (an executor's `JoinHandle`, a channel's wait queue) pays one
//! reference-count increment. A clone may outlive `block_on` and even the goroutine: waking a
//! goroutine that has moved on leaves at most a stale token, which park.rs's rule 1 (spurious
//! wake-ups happen; every waiter re-checks) makes harmless.
//!
//! A plain thread's waker is an `Arc<ThreadWaker>` made once per thread, kept in a
//! `ThreadArc` (not a `thread_local!`) so that `block_on` also works in the destructors of the
//! thread's thread-locals; a plain thread polls a future once with a waker that does
//! nothing before it fetches its own, so a future that is ready at once costs no look-up.
//!
//! # The waker token
//! Waking sets a *waker token* (`Goroutine::waker_token`, `ThreadWaker::token`) and then
//! unparks. `block_on` parks until it finds the token set, and consumes it before polling.
//! The park token alone would not do: a future whose `poll` itself waits in a gort primitive
//! (a `gort::sync::Mutex`, a channel) parks and can consume the park token of a wake-up meant
//! for `block_on`, which would then sleep for ever. With the separate token the wake-up is
//! never lost: it stays set until `block_on` consumes it.
//!
//! ```text
//!  waker (any thread)                 block_on (goroutine or thread)
//!  ------------------                 ------------------------------
//!  token.swap(true) was false?        loop:
//!    yes: unpark(target)                poll -> Ready: return
//!    no:  nothing (a wake-up is          Pending: while !token.swap(false) { park }
//!         pending, not yet consumed)
//! ```
//!
//! A wake-up that finds the token already set skips the unpark: the earlier waker's unpark
//! is on its way, and `block_on` consumes the token (an acquiring RMW that reads this waker's
//! swap) only before its next poll, so whatever this waker wrote before waking is visible
//! to that poll.
//!
//! `block_on` nested inside a future's `poll` on the same goroutine shares the token with the
//! outer call; the inner one may consume a wake-up meant for the outer, so on leaving a nested
//! call it sets the token again (the outer polls once more: a spurious poll, which futures
//! allow).
//!
//! Inside `blocking(f)` the goroutine parks like anywhere else; parking ends the blocking
//! section (the worker's processor moves on), and the goroutine resumes on an M with a P.
//!
//! # Futures that wait in gort's queues
//! A channel future (`Receiver::recv_async`, `Sender::send_async`: `chan/future.rs`) leaves an
//! `Unparker::from_waker(cx.waker())` in the channel's wait queue (park.rs). When such a
//! future is polled by `block_on` on a goroutine, that waker is this module's goroutine waker,
//! so the wake-up is a token swap plus the goroutine's unpark: the same cost as a parked
//! goroutine's.
//!
//! # Safety
//! The goroutine waker's data pointer is always a pointer obtained from `GRef::into_raw`
//! (or borrowed from the running goroutine, which its worker keeps alive for the whole
//! `resume`): clone increments and drop decrements that GRef's count, wake consumes one
//! reference, wake_by_ref none. The borrowed waker is in a `ManuallyDrop`, so its
//! (uncounted) reference is never released.

use std::future::{Future, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};

use super::goroutine::{self, GRef, Goroutine};
use super::park::{self, Unparker, WaitReason};
use super::thread_arc::ThreadArc;

/// Runs a future to completion and returns its output.
///
/// - In a goroutine, the goroutine parks between polls: its worker thread runs other
///   goroutines meanwhile, and the future's waker makes the goroutine runnable again.
/// - On a plain thread, the thread parks between polls.
/// - Inside [`blocking`](crate::blocking) it works the same way (parking ends the blocking
///   section; the goroutine resumes on a worker with a processor).
///
/// This is how a goroutine uses an async library: the future runs where it is polled, so a
/// future that needs a particular runtime (tokio's I/O and timers) should be spawned on that
/// runtime and its `JoinHandle` awaited here:
///
/// ```ignore
/// let body = gort::block_on(tokio_handle.spawn(fetch(url))).unwrap();
/// ```
///
/// And async code can await a goroutine: `JoinHandle` is `IntoFuture`.
///
/// ```
/// use std::future::poll_fn;
/// use std::task::Poll;
///
/// let mut polled = 0;
/// let v = gort::block_on(poll_fn(|cx| {
///     polled += 1;
///     if polled < 3 {
///         cx.waker().wake_by_ref(); // ready soon: poll again
///         Poll::Pending
///     } else {
///         Poll::Ready(polled)
///     }
/// }));
/// assert_eq!(v, 3);
///
/// let h = gort::spawn(|| 6 * 7);
/// assert_eq!(gort::block_on(h).unwrap(), 42);
/// ```
///
/// # Panics
/// A panic in the future's `poll` propagates to the caller; the future is dropped.
pub fn block_on<F: IntoFuture>(fut: F) -> F::Output {
    let fut = pin!(fut.into_future());
    let g = goroutine::current_ptr();
    if g.is_null() {
        return block_on_thread(fut);
    }
    // SAFETY: the running goroutine outlives this call (its worker holds a GRef for the
    // whole resume, and the goroutine cannot finish while it is inside this function).
    block_on_goroutine(unsafe { &*g }, fut)
}

fn block_on_goroutine<F: Future>(g: &Goroutine, mut fut: std::pin::Pin<&mut F>) -> F::Output {
    // SAFETY: a waker borrowing the running goroutine's reference (module safety notes): the
    // data pointer is the GRef's, and ManuallyDrop keeps us from releasing a count we never
    // took; clones the future makes take their own.
    let waker = ManuallyDrop::new(unsafe {
        Waker::from_raw(RawWaker::new(
            (g as *const Goroutine).cast(),
            &GOROUTINE_WAKER,
        ))
    });
    let mut cx = Context::from_waker(&waker);
    let depth = g.block_on_depth.get();
    g.block_on_depth.set(depth.saturating_add(1));
    let _nested = Nested { g, depth };
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        // `g` is the goroutine itself (not a thread-local), so it stays valid when the
        // goroutine resumes on another thread.
        while !g.waker_token.swap(false, Ordering::Acquire) {
            park::park(WaitReason::BlockOn);
        }
    }
}

/// Restores the nesting depth when a goroutine's `block_on` ends (returns or unwinds); a
/// nested call sets the token for the outer one (module comment).
struct Nested<'a> {
    g: &'a Goroutine,
    depth: u16,
}

impl Drop for Nested<'_> {
    fn drop(&mut self) {
        self.g.block_on_depth.set(self.depth);
        if self.depth > 0 {
            self.g.waker_token.store(true, Ordering::Release);
        }
    }
}

/// Wakes the goroutine: set its waker token, unpark it unless a wake-up is already pending.
fn wake_goroutine(g: &GRef) {
    if !g.waker_token.swap(true, Ordering::AcqRel) {
        goroutine::unpark(g);
    }
}

static GOROUTINE_WAKER: RawWakerVTable =
    RawWakerVTable::new(g_clone, g_wake, g_wake_by_ref, g_drop);

/// # Safety
/// `p` comes from `GRef::into_raw` or is the running goroutine (module notes).
unsafe fn g_clone(p: *const ()) -> RawWaker {
    // SAFETY: `p` points to a live goroutine (function contract).
    unsafe { GRef::increment_strong_count(p.cast::<Goroutine>()) };
    RawWaker::new(p, &GOROUTINE_WAKER)
}

/// # Safety
/// `p` is a counted reference (a clone), consumed here.
unsafe fn g_wake(p: *const ()) {
    // SAFETY: a clone owns one count (function contract); we take it over and drop it.
    let g = unsafe { GRef::from_raw(p.cast::<Goroutine>()) };
    wake_goroutine(&g);
}

/// # Safety
/// As `g_clone`.
unsafe fn g_wake_by_ref(p: *const ()) {
    // SAFETY: `p` points to a live goroutine; ManuallyDrop leaves its count alone.
    let g = ManuallyDrop::new(unsafe { GRef::from_raw(p.cast::<Goroutine>()) });
    wake_goroutine(&g);
}

/// # Safety
/// `p` is a counted reference (a clone), released here.
unsafe fn g_drop(p: *const ()) {
    // SAFETY: a clone owns one count (function contract).
    drop(unsafe { GRef::from_raw(p.cast::<Goroutine>()) });
}

/// A plain thread's waker: the waker token and the thread's unparker.
struct ThreadWaker {
    token: AtomicBool,
    thread: Unparker,
    /// `block_on` calls active on this thread (touched only by the thread itself).
    depth: AtomicU32,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.token.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// This thread's waker: a `ThreadArc`, not a `thread_local!`, so that `block_on` works in
/// thread-local destructors too (see thread_arc.rs).
static THREAD_WAKER: ThreadArc<ThreadWaker> = ThreadArc::new(|| {
    Arc::new(ThreadWaker {
        token: AtomicBool::new(false),
        thread: park::current(),
        depth: AtomicU32::new(0),
    })
});

/// A waker that does nothing, for the first poll on a plain thread.
fn noop_waker() -> Waker {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        |_| RawWaker::new(std::ptr::null(), &VTABLE),
        |_| {},
        |_| {},
        |_| {},
    );
    // SAFETY: every function of the vtable ignores the data pointer and does nothing.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

fn block_on_thread<F: Future>(mut fut: std::pin::Pin<&mut F>) -> F::Output {
    // A future that is ready at once needs neither the thread's waker nor its parker: poll
    // it first with a waker that does nothing (a pending future is polled again below with
    // the real one, which it then keeps; futures allow such extra polls).
    if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(&noop_waker())) {
        return v;
    }
    let tw = THREAD_WAKER.with(Arc::clone);
    let depth = tw.depth.load(Ordering::Relaxed);
    tw.depth.store(depth + 1, Ordering::Relaxed);
    let _nested = NestedThread {
        tw: tw.clone(),
        depth,
    };
    let waker = Waker::from(tw.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        while !tw.token.swap(false, Ordering::Acquire) {
            park::park(WaitReason::BlockOn);
        }
    }
}

/// The plain-thread twin of `Nested`.
struct NestedThread {
    tw: Arc<ThreadWaker>,
    depth: u32,
}

impl Drop for NestedThread {
    fn drop(&mut self) {
        self.tw.depth.store(self.depth, Ordering::Relaxed);
        if self.depth > 0 {
            self.tw.token.store(true, Ordering::Release);
        }
    }
}
