//! The channel itself (Go's `hchan`): a FIFO buffer and two wait queues.
//!
//! One structure serves every capacity, as in Go, with two kinds of buffer:
//!
//! ```text
//!  capacity          | buffer                              | a send or receive that need not wait
//!  ------------------+-------------------------------------+--------------------------------------
//!  0 (unbuffered)    | none: a waiting sender's value goes  | takes the lock, meets a waiter
//!                    | straight into a waiting receiver's   |
//!                    | frame (Go's sudog hand-off)          |
//!  1 .. 2^20         | `ring.rs`: a lock-free ring          | no lock: a CAS on the ring (below)
//!  larger, unbounded | a `VecDeque` under the lock          | takes the lock
//!  (usize::MAX)      | (unbounded: a send never waits)      |
//! ```
//!
//! The wait queues, `closed` and `rx_gone` live under the channel lock (`lock.rs`'s spin
//! lock: critical sections are tiny and never block).
//!
//! # Invariants (under the lock)
//! - At most one of `sendq` and `recvq` holds live real waiters: a receiver only waits when
//!   the buffer is empty and no sender waits; a sender only waits when the buffer is full and
//!   no receiver waits (Go: "at least one of c.sendq and c.recvq is empty").
//! - Senders wait only while the buffer is full: a receiver that takes from a full buffer
//!   moves the first waiting sender's value to the back of the buffer (FIFO is kept).
//! - Once `closed` or `rx_gone`, no sender waits; once `closed`, no receiver waits.
//! - `buf.len() <= cap`, except after a receive future that was handed a value is dropped
//!   before returning it: the value goes back to the front of the buffer
//!   (`put_back_locked`), which may then hold more than `cap` (unbuffered: one value);
//!   senders wait until it is below `cap` again. (A bounded channel's ring cannot take a
//!   value at its front: such a value waits in `buf`, ahead of the ring, and `len` counts
//!   it so that lock-free receivers see it and take the lock.)
//! - Room reserved by dynamic selects (`reserved`, `reserve_room`) counts as taken: the
//!   buffered values plus `reserved` never exceed `cap` (values put back aside), every room
//!   check under the lock counts it, and while it is not 0 a ring's `tail` is FROZEN, so
//!   that no lock-free push can take reserved room (pops go on: they only make room).
//! - `closed_flag` and `rx_gone_flag` mirror `closed` and `rx_gone`, and `len` mirrors the
//!   deque's length, for lock-free readers; `senders_waiting` / `receivers_waiting` are
//!   true whenever `sendq` / `recvq` is not empty (they may be stale-true, never
//!   stale-false). All are written under the lock only, so the lock's sequence number
//!   (`lock.rs`) tells a lock-free reader whether they changed while it read them.
//!
//! # The ring and the waiters (bounded channels)
//! A send into room and a receive of a buffered value do not lock: they move the ring's
//! `tail` or `head` with a CAS. Waiters still queue under the lock, and a lock-free
//! operation must never leave one asleep while the ring could serve it. That is a Dekker
//! handshake on two pairs of SeqCst operations:
//!
//! ```text
//!  waiter (under the lock)                    lock-free peer
//!  -----------------------                    --------------
//!  push its entry; `receivers_waiting` := 1   CAS `tail` (the push)
//!  re-read `head`/`tail`: a value now? then   read `receivers_waiting`: set? then lock,
//!  take its entry back and retry              claim the first receiver, pop a value for it
//! ```
//!
//! In the single total order of SeqCst operations either the waiter's re-read comes after
//! the peer's CAS (it sees the value and does not sleep), or the waiter's flag store comes
//! before the peer's flag load (the peer sees it and serves it). Senders waiting on a full
//! ring and a lock-free pop are the mirror image. The peer serves a waiter the way Go does:
//! a sender that saw waiting receivers pops the oldest value into the first receiver's
//! packet; a receiver that saw waiting senders pushes the first sender's value into the
//! room it made, so a sender that waited keeps its place in the FIFO. If the ring moved
//! again before the peer got the lock (another lock-free operation took the value or the
//! room), the claimed waiter is released (`Waited::Retry`) and starts its operation again.
//! A future registering as a waiter (`future.rs`) does the same handshake.
//!
//! `close` MARKs the ring's tail (no lock-free send succeeds after it) and releases the
//! receivers to retry, so that they drain what lock-free senders pushed before the close.
//! A select that must see every channel at one instant (`select.rs`, `locked_pass`) locks
//! them and freezes their rings (`ring.rs`, FROZEN), so that lock-free operations wait too.
//!
//! The lock is never held while parking, running user code, or unparking (park.rs rule 3):
//! `Wakes` collects the waiters to unpark until after the unlock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use super::handoff::{Deferred, Handed, Patience};
use super::lock::{SpinGuard, SpinLock};
use super::ring::{Pop, Push, Ring};
use super::waiter::{Context, Entry, WaitQueue, Waited, Wakes};
use crate::runtime::park::{self, Unparker, WaitReason};

/// The state guarded by the channel lock.
#[repr(C)]
pub(crate) struct Inner<T> {
    /// Buffered values of an unbounded (or huge bounded) channel, oldest first (always
    /// empty for the other kinds: unbuffered channels have no buffer, bounded ones a ring).
    pub(crate) buf: VecDeque<T>,
    /// Closed by `close()` or by the last Sender's drop.
    pub(crate) closed: bool,
    /// Every Receiver is gone.
    pub(crate) rx_gone: bool,
    /// Waiting senders (packets hold `Some(value)`), and observers of "send is ready".
    pub(crate) sendq: WaitQueue,
    /// Waiting receivers (packets hold `None` until filled), and observers of "recv is ready".
    pub(crate) recvq: WaitQueue,
    /// Room reserved by dynamic selects that chose a send on this (buffered) channel and
    /// have not completed or dropped the operation yet (`reserve_room`): every room check
    /// under the lock counts it, and while it is not 0 a ring's `tail` stays FROZEN so that
    /// lock-free pushes come to the lock too.
    pub(crate) reserved: usize,
}

/// A channel.
///
/// Layout: what every operation reads (the ring's address and geometry, the flags, the lock
/// word) comes first and together; a bounded channel's lock-free operations write only the
/// ring's own lines (`ring.rs`), so this line stays shared among the cores until a waiter
/// comes or goes. (Aligning the channel to a line cost ~100 bytes more per channel, which
/// 100,000 `after` timers felt more than the 4 -> 4 benchmark gained.)
#[repr(C)]
pub(crate) struct Chan<T> {
    /// The ring of a bounded channel (`0 < cap <= RING_MAX_CAP`); None otherwise.
    ring: Option<Ring<T>>,
    /// Number of values in `buf` (channels without a ring; written under the lock).
    len: AtomicUsize,
    /// Capacity: 0 unbuffered, `usize::MAX` unbounded.
    pub(crate) cap: usize,
    /// `closed` (written under the lock), for lock-free checks.
    closed_flag: AtomicBool,
    /// `rx_gone` (written under the lock).
    rx_gone_flag: AtomicBool,
    /// `sendq` is not empty (written under the lock; may be stale-true, never stale-false
    /// while the lock is not held).
    senders_waiting: AtomicBool,
    /// `recvq` is not empty (the same rules).
    receivers_waiting: AtomicBool,
    /// The wait queues (and an unbounded channel's buffer), under the channel lock.
    inner: SpinLock<Inner<T>>,
    /// Live `Sender` handles.
    pub(crate) senders: AtomicUsize,
    /// Live `Receiver` handles.
    pub(crate) receivers: AtomicUsize,
    /// The last Sender's drop does not close the channel (timer channels: Go's never close).
    pub(crate) keep_open: bool,
    /// Told once when every Receiver is gone, outside the lock (a timer channel stops its
    /// timer: nobody can receive its value any more). Also what keeps a ring in an external
    /// block (`Chan::in_block`) alive: declared after `ring`, so dropped after it.
    pub(crate) on_rx_gone: Option<Arc<dyn RxGone>>,
}

/// See `Chan::on_rx_gone`.
pub(crate) trait RxGone: Send + Sync {
    /// Every Receiver of the channel is gone.
    fn rx_gone(&self);
}

/// What a lock-free reader saw of a channel (`Chan::version`): if two versions read at two
/// moments are equal and stable, nothing that decides whether a send or receive is ready
/// changed in between.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    /// The lock's sequence number, or-ed with 1 while the ring is frozen.
    seq: u32,
    /// The ring's head and tail words (0 without a ring).
    head: usize,
    tail: usize,
}

impl Version {
    /// Neither locked nor frozen when read.
    #[inline]
    pub(crate) fn stable(&self) -> bool {
        self.seq % 2 == 0
    }
}

/// Bounded channels up to this capacity get a ring (whose slots and stamps are allocated
/// up front, even for a zero-sized `T`); larger ones a deque under the lock, like unbounded
/// channels (a channel that large is a queue, not a rendezvous point under contention).
const RING_MAX_CAP: usize = 1 << 20;

/// An unbounded channel's buffer gives memory back once it has drained to a quarter of a
/// large capacity (a burst of a million values does not pin their memory for ever).
#[inline]
fn shrink_unbounded<T>(buf: &mut VecDeque<T>) {
    let cap = buf.capacity();
    if cap > 4096 && buf.len() < cap / 4 {
        buf.shrink_to(cap / 2);
    }
}

/// What an attempt to receive found.
pub(crate) enum TryRecv<T> {
    Got(T),
    Empty,
    Closed,
    /// A dynamic select's deferred send was claimed: after unlocking, wait on it
    /// (`Chan::wait_deferred`).
    Deferred(Arc<Deferred<T>>),
}

/// Takes the value of a waiting sender we claimed, completing it; a deferred sender (a
/// dynamic select's send) is told who we are and completed, and its value is waited for
/// after the unlock. `waker`: the receiver is a future, woken through it (else the current
/// goroutine or thread is).
#[inline]
pub(crate) fn take_from_sender<T>(
    e: Entry,
    wakes: &mut Wakes,
    waker: Option<&Waker>,
) -> TryRecv<T> {
    if e.deferred {
        return take_deferred(e, wakes, waker);
    }
    // SAFETY: we claimed `e`, so its packet (a waiting sender's `Option<T>`) is alive and
    // ours to use until we `complete` it.
    let val = unsafe { (*(e.packet as *mut Option<T>)).take() };
    e.complete(wakes);
    TryRecv::Got(val.expect("a waiting sender holds its value"))
}

/// `take_from_sender` of a deferred sender (kept out of line: rare).
#[cold]
#[inline(never)]
fn take_deferred<T>(e: Entry, wakes: &mut Wakes, waker: Option<&Waker>) -> TryRecv<T> {
    // SAFETY: we claimed the select's context and have not completed it, so its own
    // reference keeps the `Deferred<T>` alive (its packet).
    let d = unsafe { Deferred::<T>::from_packet(e.packet) };
    let me = waker.map_or_else(park::current, |w| Unparker::from_waker(w.clone()));
    // SAFETY: claimed, not yet completed.
    unsafe { d.set_receiver(me) };
    e.complete(wakes);
    TryRecv::Deferred(d)
}

/// What an attempt to send found; the value comes back unless sent.
pub(crate) enum TrySend<T> {
    Sent,
    Full(T),
    Closed(T),
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize) -> Chan<T> {
        let ring = (cap > 0 && cap <= RING_MAX_CAP).then(|| Ring::new(cap));
        let mut buf = VecDeque::new();
        if ring.is_none() && cap > 0 && cap < usize::MAX {
            // A huge bounded channel: a deque under the lock, reserved up front (so that an
            // impossible capacity fails here, not at some later send).
            let bytes = cap.checked_mul(std::mem::size_of::<T>());
            if bytes.map_or(true, |b| b > isize::MAX as usize) {
                panic!(
                    "gort::chan: capacity {cap} is too large to allocate ({} bytes per element)",
                    std::mem::size_of::<T>()
                );
            }
            if let Err(e) = buf.try_reserve_exact(cap) {
                panic!("gort::chan: capacity {cap} is too large to allocate: {e}");
            }
        }
        Chan {
            ring,
            inner: SpinLock::new(Inner {
                buf,
                closed: false,
                rx_gone: false,
                sendq: WaitQueue::new(),
                recvq: WaitQueue::new(),
                reserved: 0,
            }),
            cap,
            len: AtomicUsize::new(0),
            closed_flag: AtomicBool::new(false),
            rx_gone_flag: AtomicBool::new(false),
            senders_waiting: AtomicBool::new(false),
            receivers_waiting: AtomicBool::new(false),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            keep_open: false,
            on_rx_gone: None,
        }
    }

    /// A one-slot channel whose ring lives in `block`.
    ///
    /// # Safety
    /// As `Ring::in_block`; in particular the owner of `block` must set `on_rx_gone` to
    /// itself before the channel can be dropped (that reference keeps `block` alive).
    pub(crate) unsafe fn in_block(block: &super::ring::OneSlot<T>) -> Chan<T> {
        let mut c = Chan::new(0);
        c.cap = 1;
        // SAFETY: forwarded contract.
        c.ring = Some(unsafe { Ring::in_block(block) });
        c
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, Inner<T>> {
        self.inner.lock()
    }

    /// Locks the channel without a guard and freezes its ring (select's all-locks pass:
    /// nothing about the channel may change until `unlock_raw`). See `SpinLock::lock_raw`.
    #[inline]
    pub(crate) fn lock_raw(&self) {
        self.inner.lock_raw();
        if let Some(r) = &self.ring {
            r.freeze();
        }
    }

    /// # Safety
    /// As `SpinLock::unlock_raw`: the caller took the lock with `lock_raw`.
    #[inline]
    pub(crate) unsafe fn unlock_raw(&self) {
        if let Some(r) = &self.ring {
            // SAFETY: we hold the lock (contract) and no other reference to the state lives.
            let reserved = unsafe { self.inner.get_locked() }.reserved;
            r.thaw(reserved != 0);
        }
        // SAFETY: forwarded contract.
        unsafe { self.inner.unlock_raw() }
    }

    /// # Safety
    /// As `SpinLock::get_locked`: the caller holds the lock (`lock_raw`), and this is the
    /// only reference to the state while it lives.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn inner_locked(&self) -> &mut Inner<T> {
        // SAFETY: forwarded contract.
        unsafe { self.inner.get_locked() }
    }

    /// Number of buffered values.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match &self.ring {
            Some(r) => r.len() + self.len.load(Ordering::Acquire),
            None => self.len.load(Ordering::Acquire),
        }
    }

    /// Closed by `close()` or the last Sender.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed_flag.load(Ordering::Acquire)
    }

    /// Every Receiver is gone.
    #[inline]
    pub(crate) fn is_rx_gone(&self) -> bool {
        self.rx_gone_flag.load(Ordering::Acquire)
    }

    /// A cheap lock-free check that a receive cannot complete now (Go's `empty(c)` fast
    /// path of non-blocking receives): nothing buffered, no sender waiting, not closed.
    /// May say "not empty" wrongly (then the caller tries); never the reverse at the moment
    /// it read the flags.
    #[inline]
    pub(crate) fn surely_empty(&self) -> bool {
        let empty = match &self.ring {
            Some(r) => r.is_empty() && self.nothing_put_back(),
            None => self.len.load(Ordering::Acquire) == 0,
        };
        empty
            && !self.senders_waiting.load(Ordering::Acquire)
            && !self.closed_flag.load(Ordering::Acquire)
    }

    /// A cheap lock-free check that a send cannot complete now: open, no room, no receiver
    /// waiting. May say "not full" wrongly (stale flags, reserved room); never the reverse
    /// at an instant while it read.
    ///
    /// The one-way flags (`closed`, `rx_gone`: never cleared) are read last, as `surely_empty`
    /// reads `closed` last: open then means open since the first read, so one such look is
    /// one instant's truth (a ring: full and open when `is_full` read; unbuffered: no
    /// receiver and open when `receivers_waiting` read). Read first, a close between the
    /// reads (which releases the waiting receivers) made "open, no receiver" out of two
    /// instants neither of which had it.
    #[inline]
    pub(crate) fn surely_full(&self) -> bool {
        let full = match &self.ring {
            Some(r) => r.is_full(),
            None => self.len.load(Ordering::Acquire) >= self.cap,
        };
        full && !self.receivers_waiting.load(Ordering::Acquire)
            && !self.closed_flag.load(Ordering::Acquire)
            && !self.rx_gone_flag.load(Ordering::Acquire)
    }

    /// What decides readiness, as a version (see [`Version`]): read it before and after
    /// `surely_empty`/`surely_full` looks (with an Acquire fence before the second read);
    /// equal stable versions mean the look held over the whole interval.
    #[inline]
    pub(crate) fn version(&self) -> Version {
        let seq = self.inner.seq();
        match &self.ring {
            Some(r) => {
                let ht = r.head_tail();
                Version {
                    seq: seq | r.any_frozen(ht) as u32,
                    head: ht.0,
                    tail: ht.1,
                }
            }
            None => Version {
                seq,
                head: 0,
                tail: 0,
            },
        }
    }

    /// Is a value buffered? (Under the lock.)
    #[inline]
    pub(crate) fn buffered(&self, inner: &Inner<T>) -> bool {
        match &self.ring {
            Some(r) => !r.is_empty() || !inner.buf.is_empty(),
            None => !inner.buf.is_empty(),
        }
    }

    /// Is there room in the buffer that nobody reserved? (Under the lock.)
    #[inline]
    pub(crate) fn has_room(&self, inner: &Inner<T>) -> bool {
        match &self.ring {
            Some(r) if inner.reserved == 0 => !r.is_full(),
            // Lock-free pops only make more room meanwhile; pushes all come to this lock
            // (`tail` is FROZEN while room is reserved).
            Some(r) => r.len() + inner.reserved < self.cap,
            // (Unbuffered: false at the first comparison. `reserved <= cap`.)
            None => inner.buf.len() < self.cap && inner.buf.len() + inner.reserved < self.cap,
        }
    }

    /// A dynamic select chose a send on this channel: reserve room for its value, if there
    /// is any (under the lock). The operation then either `send_reserved`s or
    /// `release_room`s. An unbounded channel needs no reservation (always room): false.
    pub(crate) fn reserve_room(&self, inner: &mut Inner<T>) -> bool {
        if self.cap == usize::MAX {
            return false;
        }
        match &self.ring {
            Some(r) => {
                // Stop lock-free pushes first, then count: a push that loaded `tail` before
                // the bit fails its CAS, so the count below sees every push that won.
                if inner.reserved == 0 {
                    r.freeze_tail();
                }
                if r.len() + inner.reserved < self.cap {
                    inner.reserved += 1;
                    true
                } else {
                    if inner.reserved == 0 {
                        r.thaw_tail();
                    }
                    false
                }
            }
            None => {
                let room = self.has_room(inner);
                inner.reserved += room as usize;
                room
            }
        }
    }

    /// Gives up one reservation (under the lock); thaws a ring's `tail` after the last.
    fn unreserve_locked(&self, inner: &mut Inner<T>) {
        debug_assert!(inner.reserved > 0, "unreserve without a reservation");
        inner.reserved -= 1;
        if inner.reserved == 0 {
            if let Some(r) = &self.ring {
                r.thaw_tail();
            }
        }
    }

    /// Sends `v` into room reserved by `reserve_room` (never waits). `Err(v)` if the
    /// channel was closed (or every Receiver went) meanwhile.
    pub(crate) fn send_reserved(&self, v: T) -> Result<(), T> {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        // Counted out first, so that the room check lets this one in; `tail` stays FROZEN
        // (lock-free pushes stay out) until the value is in.
        inner.reserved -= 1;
        let r = self.try_send_locked(&mut inner, v, &mut wakes);
        inner.reserved += 1;
        self.unreserve_locked(&mut inner);
        drop(inner);
        wakes.run();
        match r {
            TrySend::Sent => Ok(()),
            TrySend::Closed(v) => Err(v),
            TrySend::Full(_) => unreachable!("gort::chan: reserved room was taken"),
        }
    }

    /// A reservation's operation was dropped: the room goes to the first waiting sender, if
    /// any (FIFO), and observers of "send is ready" are told.
    pub(crate) fn release_room(&self) {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        self.unreserve_locked(&mut inner);
        if self.senders_waiting.load(Ordering::Relaxed) && self.has_room(&inner) {
            match &self.ring {
                Some(_) => self.refill_locked(&mut inner, &mut wakes),
                None => {
                    if let Some(e) = inner.sendq.claim_first(&mut wakes) {
                        debug_assert!(!e.deferred);
                        // SAFETY: we claimed `e`, so its packet (a waiting sender's
                        // `Option<T>`) is alive and ours to use until we `complete` it.
                        let val = unsafe { (*(e.packet as *mut Option<T>)).take() };
                        inner
                            .buf
                            .push_back(val.expect("a waiting sender holds its value"));
                        self.len.store(inner.buf.len(), Ordering::Release);
                        e.complete(&mut wakes);
                    }
                    self.update_senders_waiting(&inner);
                }
            }
        }
        drop(inner);
        wakes.run();
    }

    /// A receive that does not wait: lock-free on a ring (the lock only to serve a waiting
    /// sender), under the lock otherwise. After a `Deferred`, wait on it.
    #[inline]
    pub(crate) fn try_recv(&self) -> TryRecv<T> {
        if let Some(r) = self.ring.as_ref().filter(|_| self.nothing_put_back()) {
            loop {
                match r.pop(false) {
                    Pop::Got(v) => {
                        self.after_pop();
                        return TryRecv::Got(v);
                    }
                    Pop::Empty => return TryRecv::Empty,
                    Pop::Closed => return TryRecv::Closed,
                    Pop::Frozen => drop(self.lock()),
                }
            }
        }
        if self.surely_empty() {
            return TryRecv::Empty;
        }
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        let r = self.try_recv_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    /// A send that does not wait: lock-free on a ring (the lock only to serve a waiting
    /// receiver), under the lock otherwise.
    #[inline]
    pub(crate) fn try_send(&self, v: T) -> TrySend<T> {
        let v = match &self.ring {
            Some(r) => match r.push(v, false) {
                Push::Done => {
                    self.after_push();
                    return TrySend::Sent;
                }
                Push::Full(w) => return TrySend::Full(w),
                Push::Closed(w) => return TrySend::Closed(w),
                // Frozen by an all-locks pass, or room reserved: ask under the lock.
                Push::Frozen(w) => w,
            },
            None => v,
        };
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        let r = self.try_send_locked(&mut inner, v, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    /// After a lock-free pop: the Dekker check for senders waiting on the full ring.
    #[inline]
    fn after_pop(&self) {
        if self.senders_waiting.load(Ordering::SeqCst) {
            self.serve_senders();
        }
    }

    /// After a lock-free push: the Dekker check for receivers waiting on the empty ring.
    #[inline]
    fn after_push(&self) {
        if self.receivers_waiting.load(Ordering::SeqCst) {
            self.serve_receivers();
        }
    }

    #[cold]
    #[inline(never)]
    fn serve_senders(&self) {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        self.refill_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
    }

    #[cold]
    #[inline(never)]
    fn serve_receivers(&self) {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        self.notify_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
    }

    /// A value left the ring and senders may wait: move the first one's value into the
    /// room (FIFO). If the ring filled up again meanwhile (a lock-free send took the room),
    /// the first sender keeps waiting where it is when nobody else can have seen it claimed
    /// (a solo waiter, a future: `Entry::unclaim`), else it starts over (`Waited::Retry`).
    /// Observers met on the way are notified. (Under the lock; bounded channels.)
    fn refill_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        let r = self.ring.as_ref().expect("a bounded channel");
        if let Some(e) = inner.sendq.claim_first(wakes) {
            debug_assert!(
                !e.deferred,
                "deferred senders wait only on unbuffered channels"
            );
            let slot = if inner.reserved == 0 || self.has_room(inner) {
                r.reserve_push(true)
            } else {
                Err(super::ring::NoSlot::Full) // the room is reserved
            };
            match slot {
                Ok(slot) => {
                    // SAFETY: we claimed `e`, so its packet (a waiting sender's `Option<T>`)
                    // is alive and ours to use until we `complete` it.
                    let val = unsafe { (*(e.packet as *mut Option<T>)).take() };
                    // SAFETY: just reserved, written once.
                    unsafe { r.write(slot, val.expect("a waiting sender holds its value")) };
                    e.complete(wakes);
                }
                Err(_) => match e.unclaim() {
                    Ok(e) => inner.sendq.push_front(e),
                    Err(e) => e.release(wakes),
                },
            }
        }
        self.update_senders_waiting(inner);
    }

    /// A value entered the ring and receivers may wait: pop the oldest value into the first
    /// one's packet. If the ring emptied again meanwhile (a lock-free receive took the
    /// value), that receiver keeps waiting where it is when nobody else can have seen it
    /// claimed (`Entry::unclaim`), else it starts over (`Waited::Retry`). Observers met on
    /// the way are notified. (Under the lock; bounded channels.)
    fn notify_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        let r = self.ring.as_ref().expect("a bounded channel");
        if let Some(e) = inner.recvq.claim_first(wakes) {
            match r.pop(true) {
                Pop::Got(v) => {
                    // SAFETY: we claimed `e`, so its packet (a waiting receiver's
                    // `Option<T>`, None) is alive and ours to fill until we `complete` it.
                    unsafe { *(e.packet as *mut Option<T>) = Some(v) };
                    e.complete(wakes);
                }
                Pop::Empty | Pop::Closed | Pop::Frozen => match e.unclaim() {
                    Ok(e) => inner.recvq.push_front(e),
                    Err(e) => e.release(wakes),
                },
            }
        }
        self.update_receivers_waiting(inner);
    }

    /// Receives under the lock if possible. Waiting senders' observers are notified.
    #[inline]
    pub(crate) fn try_recv_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) -> TryRecv<T> {
        self.try_recv_locked_as(inner, wakes, None)
    }

    /// `try_recv_locked` for a receiver that is a future woken by `waker` (it matters only
    /// when a dynamic select's deferred send is claimed: the select will wake the receiver).
    #[inline]
    pub(crate) fn try_recv_locked_as(
        &self,
        inner: &mut Inner<T>,
        wakes: &mut Wakes,
        waker: Option<&Waker>,
    ) -> TryRecv<T> {
        if let Some(r) = &self.ring {
            // Values given back by dropped receive futures come first (`put_back_locked`).
            if !inner.buf.is_empty() {
                return self.take_put_back(inner);
            }
            return match r.pop(true) {
                Pop::Got(v) => {
                    if self.senders_waiting.load(Ordering::SeqCst) {
                        self.refill_locked(inner, wakes);
                    }
                    TryRecv::Got(v)
                }
                Pop::Empty | Pop::Frozen => TryRecv::Empty,
                Pop::Closed => TryRecv::Closed,
            };
        }
        if let Some(v) = (!inner.buf.is_empty())
            .then(|| inner.buf.pop_front())
            .flatten()
        {
            // The buffer was full if senders wait: move the first one's value in (FIFO).
            // (Deferred senders wait only on unbuffered channels. A buffer over-full with a
            // value put back, `put_back_locked`, takes no sender's until it has room.)
            let refill = if inner.sendq.is_empty() || !self.has_room(inner) {
                None
            } else {
                inner.sendq.claim_first(wakes)
            };
            if let Some(e) = refill {
                debug_assert!(!e.deferred);
                // SAFETY: we claimed `e`, so its packet (a waiting sender's `Option<T>`) is
                // alive and ours to use until we `complete` it.
                let val = unsafe { (*(e.packet as *mut Option<T>)).take() };
                inner
                    .buf
                    .push_back(val.expect("a waiting sender holds its value"));
                e.complete(wakes);
            } else {
                self.len.store(inner.buf.len(), Ordering::Release);
                if self.cap == usize::MAX {
                    shrink_unbounded(&mut inner.buf);
                }
            }
            self.update_senders_waiting(inner);
            return TryRecv::Got(v);
        }
        if let Some(e) = inner.sendq.claim_first(wakes) {
            let r = take_from_sender(e, wakes, waker);
            self.update_senders_waiting(inner);
            return r;
        }
        self.update_senders_waiting(inner);
        if inner.closed {
            TryRecv::Closed
        } else {
            TryRecv::Empty
        }
    }

    /// Sends under the lock if possible.
    #[inline]
    pub(crate) fn try_send_locked(
        &self,
        inner: &mut Inner<T>,
        v: T,
        wakes: &mut Wakes,
    ) -> TrySend<T> {
        // The atomic mirrors (exact under the lock) sit on the line the operation touches
        // anyway.
        if self.closed_flag.load(Ordering::Relaxed) || self.rx_gone_flag.load(Ordering::Relaxed) {
            debug_assert!(inner.closed || inner.rx_gone);
            return TrySend::Closed(v);
        }
        if let Some(r) = &self.ring {
            if inner.reserved != 0 && !self.has_room(inner) {
                return TrySend::Full(v);
            }
            return match r.push(v, true) {
                Push::Done => {
                    if self.receivers_waiting.load(Ordering::SeqCst) {
                        self.notify_locked(inner, wakes);
                    }
                    TrySend::Sent
                }
                Push::Full(v) | Push::Frozen(v) => TrySend::Full(v),
                Push::Closed(v) => TrySend::Closed(v),
            };
        }
        if let Some(e) = self.claim_receiver(inner, wakes) {
            // SAFETY: we claimed `e`, so its packet (a waiting receiver's `Option<T>`, None)
            // is alive and ours to fill until we `complete` it.
            unsafe { *(e.packet as *mut Option<T>) = Some(v) };
            e.complete(wakes);
            return TrySend::Sent;
        }
        if self.has_room(inner) {
            inner.buf.push_back(v);
            self.len.store(inner.buf.len(), Ordering::Release);
            return TrySend::Sent;
        }
        TrySend::Full(v)
    }

    /// The first waiting receiver, claimed (observers met on the way are notified), if the
    /// flag says any may wait.
    #[inline]
    fn claim_receiver(&self, inner: &mut Inner<T>, wakes: &mut Wakes) -> Option<Entry> {
        if !self.receivers_waiting.load(Ordering::Relaxed) {
            return None;
        }
        let e = inner.recvq.claim_first(wakes);
        self.update_receivers_waiting(inner);
        e
    }

    /// Recomputes `receivers_waiting` (under the lock).
    #[inline]
    pub(crate) fn update_receivers_waiting(&self, inner: &Inner<T>) {
        let w = !inner.recvq.is_empty();
        if self.receivers_waiting.load(Ordering::Relaxed) != w {
            self.receivers_waiting.store(w, Ordering::Release);
        }
    }

    /// Publishes that receivers may be waiting, after pushing an entry onto `recvq` (under
    /// the lock). Returns true if the ring got a value meanwhile (the Dekker handshake in
    /// the module doc): the caller must not sleep, but take its entry back (or abort) and
    /// try again.
    #[inline]
    #[must_use]
    pub(crate) fn mark_receivers_waiting(&self) -> bool {
        match &self.ring {
            Some(r) => {
                self.receivers_waiting.store(true, Ordering::SeqCst);
                !r.is_empty()
            }
            None => {
                self.receivers_waiting.store(true, Ordering::Release);
                false
            }
        }
    }

    /// Recomputes `senders_waiting` (under the lock).
    #[inline]
    pub(crate) fn update_senders_waiting(&self, inner: &Inner<T>) {
        let w = !inner.sendq.is_empty();
        if self.senders_waiting.load(Ordering::Relaxed) != w {
            self.senders_waiting.store(w, Ordering::Release);
        }
    }

    /// Publishes that senders may be waiting, after pushing an entry onto `sendq` (under the
    /// lock). Returns true if the ring got room meanwhile (see `mark_receivers_waiting`).
    #[inline]
    #[must_use]
    pub(crate) fn mark_senders_waiting(&self, inner: &Inner<T>) -> bool {
        match &self.ring {
            Some(_) => {
                self.senders_waiting.store(true, Ordering::SeqCst);
                self.has_room(inner)
            }
            None => {
                self.senders_waiting.store(true, Ordering::Release);
                false
            }
        }
    }

    /// Blocking (or timed) receive.
    #[inline(always)]
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, Option<()>> {
        // A buffered value: no lock, and nothing else to set up.
        if let Some(r) = self.ring.as_ref().filter(|_| self.nothing_put_back()) {
            if let Pop::Got(v) = r.pop(false) {
                self.after_pop();
                return Ok(v);
            }
        }
        self.recv_slow(deadline)
    }

    /// `recv` when no value was at hand: under the lock, waiting if need be.
    #[inline(never)]
    fn recv_slow(&self, deadline: Option<Instant>) -> Result<T, Option<()>> {
        loop {
            if let Some(r) = self.ring.as_ref().filter(|_| self.nothing_put_back()) {
                match r.pop(false) {
                    Pop::Got(v) => {
                        self.after_pop();
                        return Ok(v);
                    }
                    Pop::Closed => return Err(None),
                    Pop::Empty | Pop::Frozen => {}
                }
            }
            let mut wakes = Wakes::default();
            let mut inner = self.lock();
            match self.try_recv_locked(&mut inner, &mut wakes) {
                TryRecv::Got(v) => {
                    drop(inner);
                    wakes.run();
                    return Ok(v);
                }
                TryRecv::Closed => {
                    drop(inner);
                    wakes.run();
                    return Err(None);
                }
                TryRecv::Deferred(d) => {
                    drop(inner);
                    wakes.run();
                    // A timed receive waits for the select's caller at most to its deadline.
                    match d.wait_with(Patience::until(deadline)) {
                        Some(Handed::Value(v)) => return Ok(v),
                        Some(Handed::Cancelled) => continue,
                        None => return Err(Some(())),
                    }
                }
                TryRecv::Empty => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                drop(inner);
                wakes.run();
                return Err(Some(()));
            }
            let mut packet: Option<T> = None;
            let p = std::ptr::addr_of_mut!(packet).cast();
            // Without a deadline the context lives here (waiter.rs, Solo contexts).
            let solo;
            let mut shared = None;
            let cx: &Context = match deadline {
                None => {
                    solo = Context::solo();
                    // SAFETY: `solo` stays here, unmoved, until the wait below ends (or the
                    // entry is taken back under this lock hold); no deadline.
                    inner.recvq.push(unsafe { Entry::solo(&solo, p) });
                    &solo
                }
                Some(_) => {
                    let cx = shared.insert(Context::new());
                    inner.recvq.push(Entry::shared(cx, 0, p, false));
                    cx
                }
            };
            if self.mark_receivers_waiting() {
                // A value came in meanwhile: take the entry back (ours, last, unclaimed:
                // claimers need the lock we hold) and try again.
                drop(inner.recvq.pop_back());
                self.update_receivers_waiting(&inner);
                drop(inner);
                wakes.run();
                if let Some(cx) = shared {
                    Context::recycle(cx);
                }
                continue;
            }
            drop(inner);
            wakes.run();
            let r = cx.wait(WaitReason::ChanReceive, deadline);
            if let Some(cx) = shared {
                Context::recycle(cx);
            }
            return match r {
                Waited::Case(_) => match packet {
                    Some(v) => Ok(v),
                    // Left None by close (a ring's receivers are released to drain it).
                    None if self.ring.is_some() => continue,
                    None => Err(None),
                },
                Waited::Timeout => Err(Some(())),
                Waited::Retry => continue,
            };
        }
    }

    /// Blocking (or timed) send. `Err((v, timed_out))` hands the value back.
    #[inline(always)]
    pub(crate) fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), (T, bool)> {
        // Room in the ring: no lock, and nothing else to set up.
        let v = match &self.ring {
            Some(r) => match r.push(v, false) {
                Push::Done => {
                    self.after_push();
                    return Ok(());
                }
                Push::Closed(v) => return Err((v, false)),
                Push::Full(v) | Push::Frozen(v) => v,
            },
            None => v,
        };
        self.send_slow(v, deadline)
    }

    /// `send` when there was no room at hand: under the lock, waiting if need be.
    #[inline(never)]
    fn send_slow(&self, mut v: T, deadline: Option<Instant>) -> Result<(), (T, bool)> {
        loop {
            if let Some(r) = &self.ring {
                v = match r.push(v, false) {
                    Push::Done => {
                        self.after_push();
                        return Ok(());
                    }
                    Push::Closed(v) => return Err((v, false)),
                    Push::Full(v) | Push::Frozen(v) => v,
                };
            }
            let mut wakes = Wakes::default();
            let mut inner = self.lock();
            v = match self.try_send_locked(&mut inner, v, &mut wakes) {
                TrySend::Sent => {
                    drop(inner);
                    wakes.run();
                    return Ok(());
                }
                TrySend::Closed(v) => {
                    drop(inner);
                    wakes.run();
                    return Err((v, false));
                }
                TrySend::Full(v) => v,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                drop(inner);
                wakes.run();
                return Err((v, true));
            }
            let mut packet: Option<T> = Some(v);
            let p = std::ptr::addr_of_mut!(packet).cast();
            let solo;
            let mut shared = None;
            let cx: &Context = match deadline {
                None => {
                    solo = Context::solo();
                    // SAFETY: as in `recv`.
                    inner.sendq.push(unsafe { Entry::solo(&solo, p) });
                    &solo
                }
                Some(_) => {
                    let cx = shared.insert(Context::new());
                    inner.sendq.push(Entry::shared(cx, 0, p, false));
                    cx
                }
            };
            if self.mark_senders_waiting(&inner) {
                // Room came meanwhile: take the entry back and try again.
                drop(inner.sendq.pop_back());
                self.update_senders_waiting(&inner);
                drop(inner);
                wakes.run();
                if let Some(cx) = shared {
                    Context::recycle(cx);
                }
                v = packet.expect("an unclaimed send keeps its value");
                continue;
            }
            drop(inner);
            wakes.run();
            let r = cx.wait(WaitReason::ChanSend, deadline);
            if let Some(cx) = shared {
                Context::recycle(cx);
            }
            return match r {
                // Taken by a receiver, or left in place by close / every Receiver gone.
                Waited::Case(_) => match packet {
                    None => Ok(()),
                    Some(v) => Err((v, false)),
                },
                Waited::Timeout => Err((packet.expect("an aborted send keeps its value"), true)),
                Waited::Retry => {
                    v = packet.expect("a released send keeps its value");
                    continue;
                }
            };
        }
    }

    /// A value a receive future had been given but never returned (it was dropped before
    /// its next poll) goes back into the channel as if it had not been received: to the
    /// first waiting receiver, else to the front of the buffer, which may then hold more
    /// than `cap` values (an unbuffered channel one; `len()` counts it, and senders wait
    /// until it is taken). Returns it if every Receiver is gone (drop it after unlocking).
    pub(crate) fn put_back_locked(
        &self,
        inner: &mut Inner<T>,
        v: T,
        wakes: &mut Wakes,
    ) -> Option<T> {
        if inner.rx_gone {
            return Some(v);
        }
        if let Some(e) = self.claim_receiver(inner, wakes) {
            // SAFETY: we claimed `e`, so its packet (a waiting receiver's `Option<T>`, None)
            // is alive and ours to fill until we `complete` it.
            unsafe { *(e.packet as *mut Option<T>) = Some(v) };
            e.complete(wakes);
        } else {
            // (A bounded channel's too: its ring cannot take a value at the front; `len`
            // then sends lock-free receivers to the lock, which serves `buf` first.)
            inner.buf.push_front(v);
            self.len.store(inner.buf.len(), Ordering::Release);
        }
        None
    }

    /// Takes the first value given back to a bounded channel (`put_back_locked`).
    #[cold]
    #[inline(never)]
    fn take_put_back(&self, inner: &mut Inner<T>) -> TryRecv<T> {
        let v = inner.buf.pop_front().expect("a value was put back");
        self.len.store(inner.buf.len(), Ordering::Release);
        TryRecv::Got(v)
    }

    /// A bounded channel holds no value put back by a dropped receive future (lock-free
    /// receivers may use the ring).
    #[inline]
    fn nothing_put_back(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    /// Closes the channel: wakes every waiter. Returns false if it was already closed.
    pub(crate) fn close(&self) -> bool {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        if inner.closed {
            return false;
        }
        inner.closed = true;
        self.closed_flag.store(true, Ordering::Release);
        match &self.ring {
            Some(r) => {
                // No lock-free send succeeds from here. Waiting receivers get, in order,
                // what lock-free sends pushed before (they may not have served them yet,
                // their `serve_receivers` waits for this lock), then the close.
                r.close();
                while let Some(e) = inner.recvq.claim_first(&mut wakes) {
                    let v = match inner.buf.pop_front() {
                        Some(v) => Some(v),
                        None => match r.pop(true) {
                            Pop::Got(v) => Some(v),
                            _ => None,
                        },
                    };
                    if let Some(v) = v {
                        // SAFETY: we claimed `e`: its packet (`Option<T>`, None) is ours to
                        // fill until we `complete` it.
                        unsafe { *(e.packet as *mut Option<T>) = Some(v) };
                    }
                    e.complete(&mut wakes);
                }
                self.len.store(inner.buf.len(), Ordering::Release);
            }
            None => inner.recvq.release_all(&mut wakes),
        }
        inner.sendq.release_all(&mut wakes);
        self.update_senders_waiting(&inner);
        self.update_receivers_waiting(&inner);
        drop(inner);
        wakes.run();
        true
    }

    /// Every Receiver is gone: wake every waiting sender with its value, and drop the values
    /// still buffered (nobody can ever receive them; std's mpsc does the same). They are
    /// dropped after the unlock: a value's `Drop` is user code.
    pub(crate) fn disconnect_receivers(&self) {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        inner.rx_gone = true;
        self.rx_gone_flag.store(true, Ordering::Release);
        if let Some(r) = &self.ring {
            r.close();
        }
        inner.sendq.release_all(&mut wakes);
        self.update_senders_waiting(&inner);
        let unreceived = std::mem::take(&mut inner.buf);
        let unreceived_ring = match &self.ring {
            Some(r) if !r.is_empty() => Some(r.drain()),
            _ => None,
        };
        self.len.store(0, Ordering::Release);
        drop(inner);
        wakes.run();
        drop(unreceived);
        drop(unreceived_ring);
        if let Some(hook) = &self.on_rx_gone {
            hook.rx_gone();
        }
    }

    /// Can a receive complete now? (For select registration and `ready`.) Observers of
    /// "send ready" are notified if `notify` (the caller is a receiver about to wait).
    pub(crate) fn recv_ready_locked(
        &self,
        inner: &mut Inner<T>,
        me: Option<&Arc<Context>>,
        notify: bool,
        wakes: &mut Wakes,
    ) -> bool {
        let ready =
            self.buffered(inner) || inner.closed || inner.sendq.has_partner(me, notify, wakes);
        self.update_senders_waiting(inner);
        ready
    }

    /// Can a send complete now?
    pub(crate) fn send_ready_locked(
        &self,
        inner: &mut Inner<T>,
        me: Option<&Arc<Context>>,
        notify: bool,
        wakes: &mut Wakes,
    ) -> bool {
        let r = inner.closed
            || inner.rx_gone
            || self.has_room(inner)
            || inner.recvq.has_partner(me, notify, wakes);
        self.update_receivers_waiting(inner);
        r
    }
}
