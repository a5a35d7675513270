//! Waiters (Go's sudog): the context a blocked operation or select parks on, the entries it
//! leaves in channel wait queues, and the queues themselves.
//!
//! # The claim protocol (crossbeam's `Context::try_select`, Go's `selectDone`)
//! A blocking operation — one `send`/`recv`, or a whole `select!` — creates one [`Context`]
//! and leaves an [`Entry`] (context, generation, case index, packet pointer) in the wait
//! queue of each channel it waits on. Whoever completes it first *claims* the context with
//! one CAS on its state word, the generation in the high half and the status below:
//!
//! ```text
//!  status       | meaning                                  | who moves it
//!  -------------+------------------------------------------+-----------------------------
//!  WAITING      | parked (or about to park), claimable      | -
//!  ABORTED      | gave up (timeout, or a case became ready  | the waiter itself
//!               | while it was registering)                 |
//!  2 + i        | case i was completed by a peer            | the peer that won the CAS
//!  RELEASED     | a peer claimed it, then let it go (a       | the claimer, before `done`
//!               | dynamic select that reserved it and whose |
//!               | operation was dropped): start again       |
//! ```
//!
//! A claimer normally completes at once, under the channel lock. A dynamic
//! `Select::select` may instead *reserve* a waiting peer: claim it and complete it later,
//! when the caller performs the chosen operation (`SelectedOperation::send`/`recv`), or
//! release it if the operation is dropped. The reserved waiter simply waits longer; its
//! packet stays valid because it waits for `done`.
//!
//! The claimer, still holding the lock of the channel whose queue held the entry, moves the
//! value through the packet, then sets `done` (Release) and, after unlocking, unparks the
//! waiter. The waiter parks in a loop until it sees `done` (Acquire): spurious wake-ups are
//! harmless (park.rs rule 1) and a claimed waiter never returns before its packet is written.
//!
//! # Generations
//! A context is reused (a spare per thread) from one select or timed operation to the next,
//! although entries of its earlier uses may still sit in other queues (below, Lazy
//! unregistration). Each use is a new generation; an entry claims only the generation it
//! was made for (`word(g, WAITING) -> word(g, 2 + i)`), so a stale entry can never complete
//! a later operation, and no reference count has to fall to one before reuse (which, with
//! stale entries lingering, used to cost an allocation per blocking select).
//!
//! # Solo contexts
//! A plain blocking `send` or `recv` without a deadline waits on one queue only and never
//! gives up, so nobody can race a claimer for its context: only claimers holding that
//! queue's channel lock touch it, one at a time. Its context therefore lives in the waiting
//! frame (`Context::solo`) and its entry points to it without a reference count
//! (`Entry::solo`); a claimer marks it with a plain store instead of a CAS, moves the
//! waiter's `Unparker` out of it (the reference `ready` then hands to the run queue), and
//! `done` is the last thing it writes there: after that the waiter may return and the
//! frame be gone. That is three atomic read-modify-writes fewer per blocking operation
//! than a shared context (the entry's reference count up and down, the claim CAS), and no
//! allocation or spare to find. Selects, timed operations and futures keep shared contexts.
//!
//! # Packets
//! `packet` points into the waiting operation's own stack frame (or a dynamic select's boxed
//! case): an `Option<T>` that holds the value a sender offers (a receiver takes it) or the
//! slot a receiver waits on (a sender fills it). With `deferred`, it points to a
//! `handoff::Deferred<T>` instead: a dynamic select's send whose value comes later. A null
//! packet marks an *observer*: a dynamic `Select::ready` (or a dynamic select's send on a
//! buffered channel; `select!`'s cases always leave real entries) waiting for readiness
//! only; a peer that meets one notifies it and goes on
//! looking for a real partner.
//!
//! # Futures (`recv_async`, `send_async`; `future.rs`)
//! A future waits in the same queues with a context of its own (`Context::for_waker`), whose
//! Unparker wraps the task's waker; its packet is inside the pinned future. One rule makes
//! that work without the future ever blocking: **a future's context is claimed only under
//! the lock of the one channel it waits on, and completed before that lock is released.**
//! Every claimer does so already except a dynamic select that reserves a peer, so
//! [`WaitQueue::claim_first_reservable`] never reserves a future (the select leaves that
//! operation for later, as it does a buffered value). Hence, under that lock, a future's
//! context is either WAITING (nobody has it: the future may change its waker, or withdraw
//! with `try_abort`) or done (its packet is final). A future never sees RELEASED.
//!
//! # Lazy unregistration
//! When a select completes, its entries on the other channels are not removed: their
//! generation is no longer WAITING, so nobody can claim them, so nobody ever dereferences
//! their packet
//! (which may be gone). Queues drop such stale entries when they meet them at the front, and
//! sweep them when they grow past twice their live size, so a loop of selects on a channel
//! that never becomes ready uses bounded memory, and waking one of n selects is O(1)
//! (Go's chanlinear test).

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crate::runtime::park::{self, Unparker, WaitReason};

// The status half of a context's state word (the other half is its generation).
const WAITING: u32 = 0;
const ABORTED: u32 = 1;
const FIRST_CASE: u32 = 2;
const RELEASED: u32 = u32::MAX;

/// A state word: generation (high half) and status (low half).
#[inline]
const fn word(generation: u32, status: u32) -> u64 {
    (generation as u64) << 32 | status as u64
}

/// How a wait on a [`Context`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// A peer completed this case.
    Case(usize),
    /// The deadline passed and the waiter aborted.
    Timeout,
    /// A peer that had reserved the waiter released it: start the operation again (the
    /// packet is as it was; other entries are stale).
    Retry,
}

/// One blocking operation or select, as its peers see it.
///
/// A context is reused for one operation after another (its spare, below): each use is a
/// new *generation*, and an entry records the generation it was made for, so an entry left
/// stale in some queue by an earlier select can never claim a later operation (its claim
/// CAS expects its own generation, WAITING).
pub struct Context {
    /// Generation (high 32 bits) and status: WAITING, ABORTED, RELEASED or FIRST_CASE + the
    /// completed case (table above).
    state: AtomicU64,
    /// Set (Release) by the claimer once the packet is written.
    done: AtomicBool,
    /// Wakes the waiting goroutine or thread. Written only while the context is uniquely
    /// owned (`new`), between generations (`new`), or by its future while WAITING under the
    /// channel lock (`set_waker`) or once it withdrew (`take_waker`); read by anyone
    /// holding a reference, peers only after claiming it. A solo context's claimer moves it
    /// out (under the channel lock, before `done`).
    unparker: UnsafeCell<Option<Unparker>>,
    /// A future's context (module doc, "Futures"): never reserved, never recycled.
    future: bool,
}

// SAFETY: `state` and `done` are atomics. `unparker` is written by `Context::new` only
// between two generations, when no claim can succeed (every entry holding a reference is
// of an older generation, which only ever reads `state`), by a future's `set_waker` under
// the rules stated there (no peer reads it before claiming, which needs the lock the
// writer holds), and read only by the claimer of the current generation, after the entries
// that make that claim possible were published under a channel lock; a solo context's
// claimer moves it out before `done`. `Unparker` itself is Send + Sync.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

/// Spare contexts per thread.
const SPARES: usize = 2;

thread_local! {
    /// Contexts kept for reuse by the next blocking selects and timed operations on this
    /// thread: a new generation of a finished context is a fresh one (stale entries of the
    /// old generations may still point to it; they cannot claim it). Each blocked operation
    /// takes one out, so goroutines that block on the same thread never share one. No
    /// allocation per blocking select in the steady state.
    static SPARE: [Cell<Option<Arc<Context>>>; SPARES] =
        const { [const { Cell::new(None) }; SPARES] };
}

// The accessors are not inlined: a goroutine may resume on another thread after parking,
// and LLVM may otherwise reuse a thread-local address computed before (llvm-project#98479).
#[inline(never)]
fn take_spare() -> Option<Arc<Context>> {
    // `try_with`: during the thread's teardown (a thread-local's destructor that blocks on
    // a channel) the cache may be gone; then go without it.
    SPARE
        .try_with(|s| s[0].take().or_else(|| s[1].take()))
        .ok()
        .flatten()
}

#[inline(never)]
fn put_spare(cx: Arc<Context>) {
    // Dropped instead during the thread's teardown (see `take_spare`).
    let _ = SPARE.try_with(|s| {
        if let Some(other) = s[0].replace(Some(cx)) {
            drop(s[1].replace(Some(other)));
        }
    });
}

impl Context {
    /// A context for the current goroutine or thread, in a new generation.
    ///
    /// Reuses one of this thread's spare contexts (see `SPARE`); one that wakes another
    /// goroutine gets the current one's Unparker.
    #[inline]
    pub(crate) fn new() -> Arc<Context> {
        if let Some(cx) = take_spare() {
            let g = (cx.state.load(Ordering::Relaxed) >> 32) as u32;
            // Publishes the new generation; entries of the old ones fail their claims from
            // here on (a claimer of the old generation had finished before our last wait
            // returned, or the old generation was aborted).
            cx.state
                .store(word(g.wrapping_add(1), WAITING), Ordering::Relaxed);
            cx.done.store(false, Ordering::Relaxed);
            let me = crate::runtime::goroutine::current_ptr().cast::<()>();
            if me.is_null() || cx.target() != me {
                // SAFETY: between generations nobody reads `unparker` (see the Send/Sync
                // note): the last claimer took what it needed before `done`.
                unsafe { *cx.unparker.get() = Some(park::current()) };
            }
            return cx;
        }
        Arc::new(Context::solo())
    }

    /// A context for the current goroutine or thread, to live in the waiting frame (module
    /// doc, Solo contexts; `Entry::solo`).
    #[inline]
    pub(crate) fn solo() -> Context {
        Context {
            state: AtomicU64::new(word(0, WAITING)),
            done: AtomicBool::new(false),
            unparker: UnsafeCell::new(Some(park::current())),
            future: false,
        }
    }

    /// The current generation.
    #[inline]
    pub(crate) fn generation(&self) -> u32 {
        (self.state.load(Ordering::Relaxed) >> 32) as u32
    }

    /// A context for a future whose task `waker` wakes (module doc, "Futures").
    pub(crate) fn for_waker(waker: &Waker) -> Arc<Context> {
        Arc::new(Context {
            state: AtomicU64::new(word(0, WAITING)),
            done: AtomicBool::new(false),
            unparker: UnsafeCell::new(Some(Unparker::from_waker(waker.clone()))),
            future: true,
        })
    }

    /// Is this a future's context?
    #[inline]
    pub(crate) fn is_future(&self) -> bool {
        self.future
    }

    /// Would this (future's) context wake the task `waker` wakes? Only its future asks (the
    /// one writer of `unparker` once shared, so the read races with nothing but reads).
    pub(crate) fn will_wake(&self, waker: &Waker) -> bool {
        self.unparker().will_wake(waker)
    }

    /// A future re-polled with another waker puts `new` in place of the old one (in its
    /// queue entry: the future keeps its place). Returns the old one, to drop after
    /// unlocking (a waker's drop is executor code).
    ///
    /// # Safety
    /// A future's context, WAITING, and the caller holds the lock of the channel whose
    /// queue holds its entry: no peer has claimed it, so none reads `unparker` (peers read it
    /// only after claiming, and claim futures only under that lock).
    pub(crate) unsafe fn set_waker(&self, new: Unparker) -> Unparker {
        debug_assert!(self.future && self.is_waiting());
        // SAFETY: function contract: no concurrent reader; the caller is the only writer.
        unsafe { (*self.unparker.get()).replace(new) }.expect("a future's context keeps its waker")
    }

    /// A future that withdrew (its `try_abort` succeeded) takes its waker back, so that a
    /// stale entry left in the middle of a queue holds nothing of the executor's until it is
    /// swept (`Unparker::nobody` stands in). Drop the result after unlocking.
    ///
    /// # Safety
    /// A future's context that the caller aborted: no peer will ever claim it, so none
    /// reads `unparker`; the caller is its only writer.
    pub(crate) unsafe fn take_waker(&self) -> Unparker {
        debug_assert!(self.future && self.state.load(Ordering::Relaxed) as u32 == ABORTED);
        // SAFETY: function contract.
        unsafe { (*self.unparker.get()).replace(Unparker::nobody()) }
            .expect("a future's context keeps its waker")
    }

    /// Has the claimer written the packet (Acquire)?
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    #[inline]
    fn unparker(&self) -> &Unparker {
        // SAFETY: written only while uniquely owned (see `new`), never while this shared
        // reference can exist elsewhere; only solo contexts have it moved out.
        unsafe { (*self.unparker.get()).as_ref() }.expect("a shared context keeps its Unparker")
    }

    /// The goroutine this context wakes (null for a plain thread).
    #[inline]
    fn target(&self) -> *const () {
        self.unparker().goroutine().map_or(std::ptr::null(), |g| {
            crate::runtime::goroutine::GRef::as_ptr(g).cast()
        })
    }

    /// Hands a context whose operation is over back for reuse.
    #[inline]
    pub(crate) fn recycle(cx: Arc<Context>) {
        put_spare(cx);
    }

    /// Still claimable in generation `g`?
    #[inline]
    fn is_waiting_in(&self, g: u32) -> bool {
        self.state.load(Ordering::Acquire) == word(g, WAITING)
    }

    /// Still claimable (in its current generation)?
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) as u32 == WAITING
    }

    /// Claims generation `g` for `case`. Only the winner may write the packet.
    #[inline]
    fn try_claim(&self, g: u32, case: usize) -> bool {
        self.state
            .compare_exchange(
                word(g, WAITING),
                word(g, FIRST_CASE + case as u32),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The waiter gives up. False if a peer claimed it first (then wait for `done`).
    #[inline]
    pub(crate) fn try_abort(&self) -> bool {
        let g = self.generation();
        self.state
            .compare_exchange(
                word(g, WAITING),
                word(g, ABORTED),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Marks the claimed operation complete (packet written). The caller unparks later.
    #[inline]
    pub(crate) fn complete(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// A claimer that reserved this context lets it go: the waiter starts its operation
    /// again. The caller unparks it afterwards.
    #[inline]
    pub(crate) fn release(&self) {
        let g = self.generation();
        self.state.store(word(g, RELEASED), Ordering::Relaxed);
        self.done.store(true, Ordering::Release);
    }

    /// How the completed wait ended; call after `done` was seen (Acquire).
    #[inline]
    fn outcome(&self) -> Waited {
        match self.state.load(Ordering::Acquire) as u32 {
            RELEASED => Waited::Retry,
            s => Waited::Case((s - FIRST_CASE) as usize),
        }
    }

    /// Parks until a peer completes a case, or `deadline` passes and the waiter aborts, or
    /// a reserving peer releases it.
    #[inline]
    pub(crate) fn wait(&self, reason: WaitReason, deadline: Option<Instant>) -> Waited {
        if deadline.is_none() {
            while !self.done.load(Ordering::Acquire) {
                park::park(reason);
            }
            return self.outcome();
        }
        self.wait_until(reason, deadline)
    }

    /// `wait` with a deadline.
    #[inline(never)]
    fn wait_until(&self, reason: WaitReason, deadline: Option<Instant>) -> Waited {
        let mut aborting_failed = false;
        loop {
            if self.done.load(Ordering::Acquire) {
                return self.outcome();
            }
            match deadline {
                Some(d) if !aborting_failed => {
                    if Instant::now() >= d {
                        if self.try_abort() {
                            return Waited::Timeout;
                        }
                        // Claimed meanwhile: the claimer sets `done` and unparks us.
                        aborting_failed = true;
                        continue;
                    }
                    park::park_until(reason, d);
                }
                _ => park::park(reason),
            }
        }
    }
}

/// How an entry refers to its waiter's context.
pub(crate) enum CxRef {
    /// A context others may also claim (a select's other cases, a dynamic select's
    /// reservation) or the waiter may abort (a deadline): claimed by CAS, kept alive by
    /// the reference.
    Shared(Arc<Context>),
    /// A solo context in the waiting frame (module doc): claimed by whoever holds the lock.
    Solo(NonNull<Context>),
}

/// A waiter's place in one channel's queue.
pub(crate) struct Entry {
    /// The waiting operation.
    cx: CxRef,
    /// The context's generation this entry was made for.
    generation: u32,
    /// Which case of the waiter this entry is.
    pub(crate) case: usize,
    /// `*mut Option<T>` in the waiter's frame, or null for an observer.
    pub(crate) packet: *mut (),
    /// A dynamic select's send on an unbuffered channel: `packet` points to a
    /// `handoff::Deferred<T>` (the value comes later), not to an `Option<T>`.
    pub(crate) deferred: bool,
    /// A receive entry whose owner may give a value it is handed back (a receive future, a
    /// dynamic select's receive): filling it counts the value as held (`Chan::fill_receiver`).
    pub(crate) gives_back: bool,
}

// SAFETY: `packet` is only dereferenced by the peer that claimed `cx` (which the waiter then
// waits for, keeping the packet alive), under the channel lock; moving the pointer between
// threads is what the protocol is for. `T: Send` is required by the channel that casts it.
// A solo context is touched only by claimers holding the lock, while its waiter waits.
unsafe impl Send for Entry {}

impl Entry {
    /// An entry of a shared context (a select's case, a timed operation).
    #[inline]
    pub(crate) fn shared(cx: &Arc<Context>, case: usize, packet: *mut (), deferred: bool) -> Entry {
        Entry {
            generation: cx.generation(),
            cx: CxRef::Shared(cx.clone()),
            case,
            packet,
            deferred,
            gives_back: false,
        }
    }

    /// This (receive) entry's owner may give back a value it is handed (`gives_back`).
    #[inline]
    pub(crate) fn giving_back(mut self, yes: bool) -> Entry {
        self.gives_back = yes;
        self
    }

    /// An entry of a solo context (module doc).
    ///
    /// # Safety
    /// `cx` came from `Context::solo`, does not move, and outlives the entry's time in the
    /// queue: its waiter pushes this one entry, under the channel lock, then waits on `cx`
    /// without a deadline until it is completed or released (or takes the entry back under
    /// the same lock hold).
    #[inline]
    pub(crate) unsafe fn solo(cx: &Context, packet: *mut ()) -> Entry {
        Entry {
            cx: CxRef::Solo(NonNull::from(cx)),
            generation: 0,
            case: 0,
            packet,
            deferred: false,
            gives_back: false,
        }
    }

    #[inline]
    fn context(&self) -> &Context {
        match &self.cx {
            CxRef::Shared(cx) => cx,
            // SAFETY: a solo context outlives its entry's time in the queue (`Entry::solo`),
            // and we are in the queue (or hold the claimed entry) under the lock.
            CxRef::Solo(p) => unsafe { p.as_ref() },
        }
    }

    #[inline]
    pub(crate) fn is_observer(&self) -> bool {
        self.packet.is_null()
    }

    /// Still claimable?
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.context().is_waiting_in(self.generation)
    }

    /// Is its waiter a future (module doc, "Futures")?
    #[inline]
    fn is_future(&self) -> bool {
        matches!(&self.cx, CxRef::Shared(c) if c.is_future())
    }

    /// Is this an entry of `cx` (any generation)?
    #[inline]
    fn is_of(&self, cx: &Arc<Context>) -> bool {
        matches!(&self.cx, CxRef::Shared(c) if Arc::ptr_eq(c, cx))
    }

    /// Claims the waiter for this entry's case. Only the winner may write the packet.
    #[inline]
    pub(crate) fn try_claim(&self) -> bool {
        match &self.cx {
            CxRef::Shared(cx) => cx.try_claim(self.generation, self.case),
            CxRef::Solo(_) => {
                // Nobody else can claim it (module doc): no CAS.
                let cx = self.context();
                debug_assert!(cx.is_waiting_in(0));
                cx.state
                    .store(word(0, FIRST_CASE + self.case as u32), Ordering::Relaxed);
                true
            }
        }
    }

    /// The waiter's wake-up handle: moved out of a solo context (its last use but `done`),
    /// cloned from a shared one.
    #[inline]
    fn take_unparker(&self) -> Unparker {
        match &self.cx {
            CxRef::Shared(cx) => cx.unparker().clone(),
            // SAFETY: we claimed the waiter; nobody else touches its `unparker` until `done`.
            CxRef::Solo(p) => unsafe { (*p.as_ref().unparker.get()).take() }
                .expect("a solo context is claimed once"),
        }
    }

    /// Marks the claimed operation complete (packet written) and queues its wake-up for
    /// after the unlock. A solo context must not be touched after this.
    #[inline]
    pub(crate) fn complete(self, wakes: &mut Wakes) {
        let u = self.take_unparker();
        self.context().complete();
        wakes.push(u);
    }

    /// Lets a claimed waiter go (`Waited::Retry`: it starts its operation again) and queues
    /// its wake-up.
    #[inline]
    pub(crate) fn release(self, wakes: &mut Wakes) {
        let u = self.take_unparker();
        self.context().release();
        wakes.push(u);
    }

    /// Undoes `try_claim` when nobody but claimers holding this queue's lock can have
    /// looked at the context meanwhile: a solo context (its waiter only reads `done`) or a
    /// future's (claimed only under this lock; module doc, "Futures"). The entry keeps its
    /// place (`WaitQueue::push_front`). Any other context may have been tried by a claimer
    /// of another queue, or by its waiter's abort, while it was claimed: `Err` gives it
    /// back, to be released instead.
    pub(crate) fn unclaim(self) -> Result<Entry, Entry> {
        let g = self.generation;
        match &self.cx {
            CxRef::Solo(_) => {}
            CxRef::Shared(cx) if cx.is_future() => {}
            CxRef::Shared(_) => return Err(self),
        }
        self.context()
            .state
            .store(word(g, WAITING), Ordering::Relaxed);
        Ok(self)
    }

    /// `complete`, then wake the waiter at once (a dynamic select's reserved peer,
    /// completed after the lock was released).
    pub(crate) fn complete_now(self) {
        let mut wakes = Wakes::default();
        self.complete(&mut wakes);
        wakes.run();
    }

    /// `release`, then wake the waiter at once.
    pub(crate) fn release_now(self) {
        let mut wakes = Wakes::default();
        self.release(&mut wakes);
        wakes.run();
    }
}

/// Waiters to unpark once the channel lock is released.
#[doc(hidden)]
#[derive(Default)]
pub struct Wakes {
    /// The first (usually only) waiter to wake; no allocation for it.
    first: Option<Unparker>,
    /// Any others (close, observers); None (nothing to drop) in the common case.
    rest: Option<Vec<Unparker>>,
}

impl Wakes {
    #[inline]
    pub(crate) fn push(&mut self, u: Unparker) {
        if self.first.is_none() {
            self.first = Some(u);
        } else {
            self.push_rest(u);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_rest(&mut self, u: Unparker) {
        self.rest.get_or_insert_with(Vec::new).push(u);
    }

    /// Unparks them all. Call after unlocking.
    #[inline]
    pub(crate) fn run(self) {
        if let Some(u) = self.first {
            u.unpark_owned();
            if let Some(rest) = self.rest {
                Self::run_rest(rest);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn run_rest(rest: Vec<Unparker>) {
        for u in rest {
            u.unpark_owned();
        }
    }
}

/// `claim_first_reservable` met a waiting future at the front of the queue.
#[derive(Debug)]
pub(crate) struct FutureWaits;

/// A channel's queue of waiting senders or receivers, FIFO. Guarded by the channel lock.
pub(crate) struct WaitQueue {
    /// Entries in arrival order; some may be stale (context no longer WAITING).
    q: VecDeque<Entry>,
    /// Sweep stale entries when the queue reaches this length.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 16;

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            q: VecDeque::new(),
            sweep_at: MIN_SWEEP,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, e: Entry) {
        if self.q.len() >= self.sweep_at {
            self.sweep();
        }
        self.q.push_back(e);
    }

    /// Drops the stale entries (module doc, Lazy unregistration).
    #[cold]
    #[inline(never)]
    fn sweep(&mut self) {
        self.q.retain(|e| e.is_waiting());
        self.sweep_at = (2 * self.q.len()).max(MIN_SWEEP);
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Takes the first waiter that is a real operation and claims it; observers met on the
    /// way are claimed and queued in `wakes` (their condition may have changed), stale
    /// entries are dropped. The caller must complete the returned entry.
    #[inline]
    pub(crate) fn claim_first(&mut self, wakes: &mut Wakes) -> Option<Entry> {
        while let Some(e) = self.q.pop_front() {
            if e.try_claim() {
                if e.is_observer() {
                    e.complete(wakes);
                    continue;
                }
                return Some(e);
            }
        }
        None
    }

    /// [`claim_first`](Self::claim_first) for a dynamic select, which may *reserve* the
    /// waiter it claims (complete it later, outside the lock): a waiting future at the front
    /// is not claimed (module doc, "Futures") and `Err(FutureWaits)` says so.
    pub(crate) fn claim_first_reservable(
        &mut self,
        wakes: &mut Wakes,
    ) -> Result<Option<Entry>, FutureWaits> {
        while let Some(e) = self.q.front() {
            if e.is_future() && e.is_waiting() {
                return Err(FutureWaits);
            }
            let e = self.q.pop_front().expect("front exists");
            if e.try_claim() {
                if e.is_observer() {
                    e.complete(wakes);
                    continue;
                }
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Drops stale entries at both ends (a future that withdrew usually left the last or
    /// the first entry), so that the queue's "waiting" flag can fall back to false.
    pub(crate) fn trim(&mut self) {
        while self.q.back().is_some_and(|e| !e.is_waiting()) {
            self.q.pop_back();
        }
        while self.q.front().is_some_and(|e| !e.is_waiting()) {
            self.q.pop_front();
        }
    }

    /// Claims and completes every waiter (close, or every Receiver gone): packets are left
    /// as they are, which their owners read as "closed".
    pub(crate) fn release_all(&mut self, wakes: &mut Wakes) {
        for e in self.q.drain(..) {
            if e.try_claim() {
                e.complete(wakes);
            }
        }
    }

    /// Puts back at the front an entry `claim_first` took and `Entry::unclaim` let go.
    pub(crate) fn push_front(&mut self, e: Entry) {
        self.q.push_front(e);
    }

    /// Takes back the entry pushed last (a waiter that found the channel ready right after
    /// registering, still holding the lock: nobody can have claimed it).
    pub(crate) fn pop_back(&mut self) -> Option<Entry> {
        self.q.pop_back()
    }

    /// Is a real operation of some other context waiting? Drops stale entries at the front
    /// (those behind a live one are skipped, and swept when the queue grows: removing each
    /// where it stands made a queue of many stale entries quadratic); if
    /// `notify_observers`, claims and notifies observers on the way (the caller is a real
    /// operation about to wait, which makes the observed operation ready).
    pub(crate) fn has_partner(
        &mut self,
        me: Option<&Arc<Context>>,
        notify_observers: bool,
        wakes: &mut Wakes,
    ) -> bool {
        let mut i = 0;
        while i < self.q.len() {
            let e = &self.q[i];
            if !e.is_waiting() {
                if i == 0 {
                    self.q.pop_front();
                } else {
                    i += 1;
                }
                continue;
            }
            if me.is_some_and(|me| e.is_of(me)) {
                i += 1;
                continue;
            }
            if e.is_observer() {
                if notify_observers && e.try_claim() {
                    let e = self.q.remove(i).expect("index in range");
                    e.complete(wakes);
                } else {
                    i += 1;
                }
                continue;
            }
            return true;
        }
        false
    }
}
