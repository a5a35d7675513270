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
//! ```text
//!  mod.rs   the structure (`Chan`, its lock-held state `Inner`), its invariants, the
//!           lock-free readers (`len`, `surely_empty`/`surely_full`, `version`), the waiting
//!           flags, `close` and the last Receiver's `disconnect_receivers`
//!  recv.rs  the receive side: `recv`, `try_recv`, `try_recv_locked`, `put_back_locked`;
//!           `refill_locked` (a receive serves the senders waiting on a full ring)
//!  send.rs  the send side: `send`, `try_send`, `try_send_locked`; `notify_locked` (a
//!           send serves the receivers waiting on an empty ring)
//!  side.rs  `Side`: the two sides as types, each difference said once; the plain blocking
//!           wait (`wait_as`) and the serving of a waiter (`serve_first`) both sides share
//!  room.rs  room reserved by a dynamic select's chosen send (`reserve_room`, ...)
//!  tests.rs interleavings of lock-free peers and waiters, replayed with a pause point
//! ```
//!
//! The hot paths (`send`/`recv`/`try_send`/`try_recv`: a ring's lock-free push or pop) are
//! `#[inline]`; what takes the lock is out of line (`send_slow`, `recv_slow`) or `#[cold]`
//! (serving the other side). The helpers generic over a `Side` are `#[inline]` (or
//! `always`), so each side's instance compiles to what a hand-written copy would.
//!
//! # Invariants (under the lock)
//! - At most one of `sendq` and `recvq` holds live real waiters: a receiver only waits when
//!   the buffer is empty and no sender waits; a sender only waits when the buffer is full and
//!   no receiver waits (Go: "at least one of c.sendq and c.recvq is empty"). A ring has
//!   one window where both may hold waiters: a lock-free peer moved it and saw a waiting
//!   flag, and before it came to serve that waiter, a waiter of the other side came to the
//!   lock and found the ring as the move left it. The peer then serves both
//!   (`Chan::serve_waiters`, below).
//! - Senders wait only while the buffer is full: a receiver that takes from a full buffer
//!   moves the first waiting sender's value to the back of the buffer (FIFO is kept).
//! - Once `closed` or `rx_gone`, no sender waits; once `closed`, no receiver waits while
//!   `held` is 0 (values held by unfinished operations that may give them back: recv.rs,
//!   "Held values"; receivers wait for those, and are told the close when the last one is
//!   resolved).
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
//! A move of the ring under the lock owes the other side the same check as a lock-free
//! one: a pop, the senders waiting on a full ring; a push, the receivers waiting on an
//! empty one. So a peer that served a receiver (a pop) goes on to serve a waiting sender
//! (a push), and so on while each serving makes the next possible (`Chan::serve_waiters`).
//! Stopping after the first one left asleep a sender that had found the ring full just
//! before the peer's pop emptied it; once the other senders were done, nobody moved the
//! ring again (the hang `tests.rs` replays).
//!
//! `close` MARKs the ring's tail (no lock-free send succeeds after it) and releases the
//! receivers to retry, so that they drain what lock-free senders pushed before the close.
//! A select that must see every channel at one instant (`select/locked.rs`) locks
//! them and freezes their rings (`ring.rs`, FROZEN), so that lock-free operations wait too.
//!
//! The lock is never held while parking, running user code, or unparking (park.rs rule 3):
//! `Wakes` collects the waiters to unpark until after the unlock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::lock::{SpinGuard, SpinLock};
use super::ring::{Pop, Ring};
use super::waiter::{WaitQueue, Wakes};

mod recv;
mod room;
mod send;
mod side;
#[cfg(test)]
mod tests;

pub(crate) use recv::{take_from_sender, TryRecv};
pub(crate) use send::TrySend;
pub(crate) use side::{Attempt, RecvSide, SendSide, Side};

/// The state guarded by the channel lock.
#[repr(C)]
pub(crate) struct Inner<T> {
    /// Buffered values of an unbounded (or huge bounded) channel, oldest first, after any
    /// values given back (`put_back`; for the other kinds only those: unbuffered channels
    /// have no buffer, bounded ones a ring).
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
    /// How many values at the front of `buf` were given back (`put_back_locked`): the next
    /// one goes after them, so values given back come out in the order they were given.
    pub(crate) put_back: usize,
}

impl<T> Inner<T> {
    /// Takes the first value of `buf` (a given-back one first: `put_back`).
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let v = self.buf.pop_front()?;
        self.put_back = self.put_back.saturating_sub(1);
        Some(v)
    }
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
    /// Values taken from this channel by operations that may give them back unreceived
    /// (`recv.rs`, "Held values"): a receive future handed a value, a dynamic select's
    /// receive holding one. Changed under the lock, except that an owner consuming its
    /// value decrements without it (`release_held`). Read only once the channel is closed:
    /// a closed channel with held values is not drained yet.
    held: AtomicUsize,
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
                put_back: 0,
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
            held: AtomicUsize::new(0),
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

    /// Runs `f` under the lock, then the wake-ups it queued, after unlocking (the lock is
    /// never held while unparking: module doc).
    #[inline(always)]
    pub(crate) fn with_lock<R>(&self, f: impl FnOnce(&mut Inner<T>, &mut Wakes) -> R) -> R {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        let r = f(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
        r
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
                // (While values are held, receivers that get none keep waiting: the channel
                // is not drained yet. recv.rs, "Held values".)
                let held = self.held_any();
                while let Some(e) = inner.recvq.claim_first(&mut wakes) {
                    let v = match inner.pop_front() {
                        Some(v) => Some(v),
                        None => match r.pop(true) {
                            Pop::Got(v) => Some(v),
                            _ => None,
                        },
                    };
                    match v {
                        // SAFETY: we claimed `e`: its packet (`Option<T>`, None) is ours to
                        // fill until we `complete` it.
                        Some(v) => unsafe { self.fill_receiver(&e, v) },
                        None if held => {
                            match e.unclaim() {
                                Ok(e) => inner.recvq.push_front(e),
                                Err(e) => e.release(&mut wakes),
                            }
                            break;
                        }
                        None => {}
                    }
                    e.complete(&mut wakes);
                }
                self.len.store(inner.buf.len(), Ordering::Release);
            }
            None if self.held_any() => {}
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
        inner.put_back = 0;
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
}
