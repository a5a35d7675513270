//! The channel itself (Go's `hchan`): a FIFO buffer and two wait queues under one lock.
//!
//! The lock is `lock.rs`'s spin lock (critical sections are tiny and never block).
//!
//! One structure serves every capacity, as in Go: `cap == 0` is a rendezvous (the buffer stays
//! empty and values go straight from a waiting sender's frame to a waiting receiver's, Go's
//! sudog hand-off), `0 < cap < usize::MAX` is a bounded ring allocated up front, and
//! `cap == usize::MAX` is unbounded (a send never waits). A `VecDeque` of a zero-sized type
//! never allocates, so `chan::<()>` costs nothing per element.
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
//!   senders wait until it is below `cap` again.
//! - `len` mirrors `buf.len()`, `closed_flag` and `rx_gone_flag` mirror `closed` and
//!   `rx_gone` for the lock-free fast paths; `senders_waiting` / `receivers_waiting` are true
//!   whenever `sendq` / `recvq` is not empty (they may be stale-true, never stale-false). All
//!   are written under the lock only, so the lock's sequence number (`lock.rs`) tells a
//!   lock-free reader whether they changed while it read them.
//!
//! The lock is never held while parking, running user code, or unparking (park.rs rule 3):
//! `Wakes` collects the waiters to unpark until after the unlock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;
use std::time::Instant;

use super::handoff::{Deferred, Handed};
use super::lock::{SpinGuard, SpinLock};
use super::waiter::{Context, Entry, WaitQueue, Waited, Wakes};
use crate::park::{Unparker, WaitReason};

/// The state guarded by the channel lock.
#[repr(C)]
pub(crate) struct Inner<T> {
    /// Buffered values, oldest first.
    pub(crate) buf: VecDeque<T>,
    /// Closed by `close()` or by the last Sender's drop.
    pub(crate) closed: bool,
    /// Every Receiver is gone.
    pub(crate) rx_gone: bool,
    /// Waiting senders (packets hold `Some(value)`), and observers of "send is ready".
    pub(crate) sendq: WaitQueue,
    /// Waiting receivers (packets hold `None` until filled), and observers of "recv is ready".
    pub(crate) recvq: WaitQueue,
}

/// A channel.
///
/// Layout: what every send and receive touches (the counts and flags, the lock word, the
/// buffer's header: 64 bytes) comes first and together, so an operation under contention
/// moves those one or two lines and the buffer slot's, and the wait queues' lines only when
/// the flags say someone waits. (Aligning the channel to a line cost ~100 bytes more per
/// channel, which 100,000 `after` timers felt more than the 4 -> 4 benchmark gained.)
#[repr(C)]
pub(crate) struct Chan<T> {
    /// Number of buffered values (written under the lock).
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
    /// The buffer and wait queues, under the channel lock.
    inner: SpinLock<Inner<T>>,
    /// Live `Sender` handles.
    pub(crate) senders: AtomicUsize,
    /// Live `Receiver` handles.
    pub(crate) receivers: AtomicUsize,
    /// The last Sender's drop does not close the channel (timer channels: Go's never close).
    pub(crate) keep_open: bool,
    /// Told once when every Receiver is gone, outside the lock (a timer channel stops its
    /// timer: nobody can receive its value any more). A `Weak`: no allocation, no cycle.
    pub(crate) on_rx_gone: OnceLock<Weak<dyn RxGone>>,
}

/// See `Chan::on_rx_gone`.
pub(crate) trait RxGone: Send + Sync {
    /// Every Receiver of the channel is gone.
    fn rx_gone(&self);
}

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
    e.cx.complete();
    wakes.push(e.cx);
    TryRecv::Got(val.expect("a waiting sender holds its value"))
}

/// `take_from_sender` of a deferred sender (kept out of line: rare).
#[cold]
#[inline(never)]
fn take_deferred<T>(e: Entry, wakes: &mut Wakes, waker: Option<&Waker>) -> TryRecv<T> {
    // SAFETY: we claimed the select's context and have not completed it, so its own
    // reference keeps the `Deferred<T>` alive (its packet).
    let d = unsafe { Deferred::<T>::from_packet(e.packet) };
    let me = waker.map_or_else(crate::park::current, |w| Unparker::from_waker(w.clone()));
    // SAFETY: claimed, not yet completed.
    unsafe { d.set_receiver(me) };
    e.cx.complete();
    wakes.push(e.cx);
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
        let buf = if cap == usize::MAX || cap == 0 {
            VecDeque::new()
        } else {
            let bytes = cap.checked_mul(std::mem::size_of::<T>());
            if bytes.map_or(true, |b| b > isize::MAX as usize) {
                panic!(
                    "gort::chan: capacity {cap} is too large to allocate ({} bytes per element)",
                    std::mem::size_of::<T>()
                );
            }
            let mut buf = VecDeque::new();
            if let Err(e) = buf.try_reserve_exact(cap) {
                panic!("gort::chan: capacity {cap} is too large to allocate: {e}");
            }
            buf
        };
        Chan {
            inner: SpinLock::new(Inner {
                buf,
                closed: false,
                rx_gone: false,
                sendq: WaitQueue::new(),
                recvq: WaitQueue::new(),
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
            on_rx_gone: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, Inner<T>> {
        self.inner.lock()
    }

    /// Locks the channel without a guard (select's all-locks pass). See `SpinLock::lock_raw`.
    #[inline]
    pub(crate) fn lock_raw(&self) {
        self.inner.lock_raw();
    }

    /// # Safety
    /// As `SpinLock::unlock_raw`: the caller took the lock with `lock_raw`.
    #[inline]
    pub(crate) unsafe fn unlock_raw(&self) {
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
        self.len.load(Ordering::Acquire)
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
    /// May say "not empty" wrongly (then the caller locks); never the reverse at the moment
    /// it read the flags.
    #[inline]
    pub(crate) fn surely_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
            && !self.senders_waiting.load(Ordering::Acquire)
            && !self.closed_flag.load(Ordering::Acquire)
    }

    /// A cheap lock-free check that a send cannot complete now: open, no room, no receiver
    /// waiting. May say "not full" wrongly (stale flags); never the reverse at the moment it
    /// read the flags.
    #[inline]
    pub(crate) fn surely_full(&self) -> bool {
        !self.closed_flag.load(Ordering::Acquire)
            && !self.rx_gone_flag.load(Ordering::Acquire)
            && self.len.load(Ordering::Acquire) >= self.cap
            && !self.receivers_waiting.load(Ordering::Acquire)
    }

    /// The channel lock's sequence number (`lock.rs`): equal and even before and after a
    /// `surely_empty`/`surely_full` look means that look held over the whole interval.
    #[inline]
    pub(crate) fn seq(&self) -> u32 {
        self.inner.seq()
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
        if let Some(v) = inner.buf.pop_front() {
            // The buffer was full if senders wait: move the first one's value in (FIFO).
            // (Deferred senders wait only on unbuffered channels. A buffer over-full with a
            // value put back, `put_back_locked`, takes no sender's until it has room.)
            let refill = if inner.sendq.is_empty() || inner.buf.len() >= self.cap {
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
                e.cx.complete();
                wakes.push(e.cx);
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
        if let Some(e) = self.claim_receiver(inner, wakes) {
            // SAFETY: we claimed `e`, so its packet (a waiting receiver's `Option<T>`, None)
            // is alive and ours to fill until we `complete` it.
            unsafe { *(e.packet as *mut Option<T>) = Some(v) };
            e.cx.complete();
            wakes.push(e.cx);
            return TrySend::Sent;
        }
        if inner.buf.len() < self.cap {
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

    /// Publishes that receivers may be waiting (after pushing onto `recvq`).
    #[inline]
    pub(crate) fn mark_receivers_waiting(&self) {
        self.receivers_waiting.store(true, Ordering::Release);
    }

    pub(crate) fn update_senders_waiting(&self, inner: &Inner<T>) {
        let w = !inner.sendq.is_empty();
        if self.senders_waiting.load(Ordering::Relaxed) != w {
            self.senders_waiting.store(w, Ordering::Release);
        }
    }

    /// Blocking (or timed) receive.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, Option<()>> {
        loop {
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
                    match d.wait() {
                        Handed::Value(v) => return Ok(v),
                        Handed::Cancelled => continue,
                    }
                }
                TryRecv::Empty => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                drop(inner);
                wakes.run();
                return Err(Some(()));
            }
            let cx = Context::new();
            let mut packet: Option<T> = None;
            inner.recvq.push(Entry {
                cx: cx.clone(),
                case: 0,
                packet: std::ptr::addr_of_mut!(packet).cast(),
                deferred: false,
            });
            self.mark_receivers_waiting();
            drop(inner);
            wakes.run();
            let r = cx.wait(WaitReason::ChanReceive, deadline);
            Context::recycle(cx);
            return match r {
                // Filled by a sender, or left None by close.
                Waited::Case(_) => packet.ok_or(None),
                Waited::Timeout => Err(Some(())),
                Waited::Retry => continue,
            };
        }
    }

    /// Blocking (or timed) send. `Err((v, timed_out))` hands the value back.
    pub(crate) fn send(&self, mut v: T, deadline: Option<Instant>) -> Result<(), (T, bool)> {
        loop {
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
            let cx = Context::new();
            let mut packet: Option<T> = Some(v);
            inner.sendq.push(Entry {
                cx: cx.clone(),
                case: 0,
                packet: std::ptr::addr_of_mut!(packet).cast(),
                deferred: false,
            });
            self.senders_waiting.store(true, Ordering::Release);
            drop(inner);
            wakes.run();
            let r = cx.wait(WaitReason::ChanSend, deadline);
            Context::recycle(cx);
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
            e.cx.complete();
            wakes.push(e.cx);
        } else {
            inner.buf.push_front(v);
            self.len.store(inner.buf.len(), Ordering::Release);
        }
        None
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
        inner.recvq.release_all(&mut wakes);
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
        inner.sendq.release_all(&mut wakes);
        self.update_senders_waiting(&inner);
        let unreceived = std::mem::take(&mut inner.buf);
        self.len.store(0, Ordering::Release);
        drop(inner);
        wakes.run();
        drop(unreceived);
        if let Some(hook) = self.on_rx_gone.get().and_then(Weak::upgrade) {
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
            !inner.buf.is_empty() || inner.closed || inner.sendq.has_partner(me, notify, wakes);
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
            || inner.buf.len() < self.cap
            || inner.recvq.has_partner(me, notify, wakes);
        self.update_receivers_waiting(inner);
        r
    }

    /// Publishes that senders may be waiting (after pushing onto `sendq`).
    #[inline]
    pub(crate) fn mark_senders_waiting(&self) {
        self.senders_waiting.store(true, Ordering::Release);
    }
}
