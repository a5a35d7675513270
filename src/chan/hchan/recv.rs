//! The receive side of a channel: `recv`, `try_recv`, their under-the-lock cores, and
//! what a receiver does for waiting senders.
//!
//! A receive takes, in this order: a value put back by a dropped receive future (it was
//! received first, so it goes first: `put_back_locked`), a buffered value (a ring's without
//! the lock), the value of the first waiting sender (Go's `recv` from a sudog), else it
//! waits on `recvq` (`Chan::wait_as`), or finds the channel closed. A receive that empties a
//! full buffer moves the first waiting sender's value into the room it made
//! (`refill_locked`), so a sender that waited keeps its place in the FIFO (module doc of
//! `hchan`, "The ring and the waiters").
//!
//! `recv` and `try_recv` are `#[inline]` fast paths (a ring's lock-free pop); what needs
//! the lock is out of line (`recv_slow`, `serve_senders`), so that the fast path stays
//! small where it is inlined.
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use super::{Chan, Inner, RecvSide, SendSide};
use crate::chan::handoff::{Deferred, Handed, Patience};
use crate::chan::ring::{NoSlot, Pop};
use crate::chan::waiter::{Entry, Waited, Wakes};
use crate::runtime::park::{self, Unparker};

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

impl<T> Chan<T> {
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
                    // Closed only if no value is held (below, under the lock).
                    Pop::Closed => break,
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

    /// After a lock-free pop: the Dekker check for senders waiting on the full ring.
    #[inline]
    fn after_pop(&self) {
        if self.senders_waiting.load(Ordering::SeqCst) {
            self.serve_senders();
        }
    }

    #[cold]
    #[inline(never)]
    fn serve_senders(&self) {
        #[cfg(test)]
        super::tests::pause_point(self as *const Self as usize);
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        self.refill_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
    }

    /// A value left the ring and senders may wait: serve them, and the receivers their
    /// values are for (`Chan::serve_waiters`). (Under the lock; bounded channels.)
    pub(super) fn refill_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        self.serve_waiters::<SendSide>(inner, wakes);
    }

    /// Moves the first waiting sender's value into the room (FIFO; `Chan::serve_first`);
    /// true if one was served. (Under the lock; bounded channels.)
    pub(super) fn serve_sender_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) -> bool {
        let r = self.ring.as_ref().expect("a bounded channel");
        self.serve_first::<SendSide>(inner, wakes, |inner, e| {
            debug_assert!(
                !e.deferred,
                "deferred senders wait only on unbuffered channels"
            );
            let slot = if inner.reserved == 0 || self.has_room(inner) {
                r.reserve_push(true)
            } else {
                Err(NoSlot::Full) // the room is reserved
            };
            let Ok(slot) = slot else { return false };
            // SAFETY: `e` is claimed, so its packet (a waiting sender's `Option<T>`) is alive
            // and ours to use until it is completed.
            let val = unsafe { (*(e.packet as *mut Option<T>)).take() };
            // SAFETY: just reserved, written once.
            unsafe { r.write(slot, val.expect("a waiting sender holds its value")) };
            true
        })
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
                Pop::Closed => self.closed_or_held(),
            };
        }
        if let Some(v) = (!inner.buf.is_empty()).then(|| inner.pop_front()).flatten() {
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
            self.closed_or_held()
        } else {
            TryRecv::Empty
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
                    // Closed, or held values still to come: decided under the lock.
                    Pop::Empty | Pop::Frozen | Pop::Closed => {}
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
            let Some(r) = self.wait_as::<RecvSide>(inner, wakes, p, deadline) else {
                continue; // a value came in meanwhile
            };
            return match r {
                Waited::Case(_) => match packet {
                    Some(v) => Ok(v),
                    // Left None by close, or when the last held value was resolved: look
                    // again under the lock (a ring's receivers are released to drain it).
                    None => continue,
                },
                Waited::Timeout => Err(Some(())),
                Waited::Retry => continue,
            };
        }
    }

    /// A value an operation had been given but never returned (a receive future dropped
    /// before its next poll, a dropped dynamic select's receive, a deferred send whose
    /// receiver left: `chan` module doc, "Values given back") goes back into the channel as
    /// if it had not been received: to the first waiting receiver, else to the front of the
    /// buffer, which may then hold more than `cap` values (one more per value given back;
    /// `len()` counts them, and senders wait until they are taken). Several given back
    /// come out in the order they were given back. Returns it if every Receiver is gone
    /// (drop it after unlocking).
    ///
    /// `counted`: the value was counted as held (`hold`, `fill_receiver`); it is uncounted
    /// once it is back in the channel.
    pub(crate) fn put_back_locked(
        &self,
        inner: &mut Inner<T>,
        v: T,
        wakes: &mut Wakes,
        counted: bool,
    ) -> Option<T> {
        let r = self.give_back_locked(inner, v, wakes);
        if counted {
            self.held.fetch_sub(1, Ordering::Release);
            if inner.closed {
                self.resolve_held_locked(inner, wakes);
            }
        }
        r
    }

    /// `put_back_locked` without the count.
    fn give_back_locked(&self, inner: &mut Inner<T>, v: T, wakes: &mut Wakes) -> Option<T> {
        if inner.rx_gone {
            return Some(v);
        }
        if let Some(e) = self.claim_receiver(inner, wakes) {
            // SAFETY: we claimed `e`, so its packet (a waiting receiver's `Option<T>`, None)
            // is alive and ours to fill until we `complete` it.
            unsafe { self.fill_receiver(&e, v) };
            e.complete(wakes);
        } else {
            // (A bounded channel's too: its ring cannot take a value at the front; `len`
            // then sends lock-free receivers to the lock, which serves `buf` first.)
            // After the values given back before it (FIFO among them), ahead of buffered
            // ones.
            inner.buf.insert(inner.put_back, v);
            inner.put_back += 1;
            self.len.store(inner.buf.len(), Ordering::Release);
        }
        None
    }

    /// `put_back_locked`, taking the lock (a value of every Receiver gone is dropped).
    pub(crate) fn put_back(&self, v: T, counted: bool) {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        let unreceivable = self.put_back_locked(&mut inner, v, &mut wakes, counted);
        drop(inner);
        wakes.run();
        drop(unreceivable); // every Receiver is gone: dropped, as buffered values are
    }

    /// Takes the first value given back to a bounded channel (`put_back_locked`).
    #[cold]
    #[inline(never)]
    fn take_put_back(&self, inner: &mut Inner<T>) -> TryRecv<T> {
        let v = inner.pop_front().expect("a value was put back");
        self.len.store(inner.buf.len(), Ordering::Release);
        TryRecv::Got(v)
    }

    /// A bounded channel holds no value put back by a dropped receive future (lock-free
    /// receivers may use the ring).
    #[inline]
    pub(super) fn nothing_put_back(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }
}

// # Held values
// A value taken out of the channel by an operation that may give it back unreceived (a
// receive future handed a value, a dynamic select's receive holding one: `chan` module doc,
// "Values given back") is counted in `held` until its owner consumes it (`release_held`) or
// gives it back (`put_back_locked`: pushed, then uncounted, under the lock). A closed
// channel with held values is not drained: receivers get Empty (or wait), never Closed,
// until `held` is 0, so that "once a receive reports closed, every later one does" holds
// and the value given back is received. Closed is decided under the lock only (a ring's
// lock-free pop that finds it closed goes to the lock). `held` is changed under the lock,
// except the owner's decrement (`release_held`), which pairs with the readers' by SeqCst
// fences: a reader that saw the count (closed already set) or the owner that saw `closed`
// after its decrement, or both, so the waiting receivers are told (`resolve_held_locked`).
impl<T> Chan<T> {
    /// Counts a value an operation took and may give back (under the lock).
    #[inline]
    pub(crate) fn hold(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
    }

    /// Fills a claimed receiver `e`'s packet with `v`, counting it held if its owner may
    /// give it back (`Entry::gives_back`).
    ///
    /// # Safety
    /// `e` is a claimed, not yet completed, real receive entry of this channel.
    #[inline]
    pub(crate) unsafe fn fill_receiver(&self, e: &crate::chan::waiter::Entry, v: T) {
        if e.gives_back {
            self.hold();
        }
        // SAFETY: function contract: the packet is a waiting receiver's `Option<T>`, ours to
        // fill until `e` is completed.
        unsafe { *(e.packet as *mut Option<T>) = Some(v) };
    }

    /// Some value is held (the caller holds the lock and saw the channel closed).
    #[cold]
    pub(super) fn held_any(&self) -> bool {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.held.load(Ordering::Acquire) != 0
    }

    /// Closed and drained: Closed, unless values are held (Empty). (Under the lock.)
    #[cold]
    #[inline(never)]
    fn closed_or_held(&self) -> TryRecv<T> {
        if self.held_any() {
            TryRecv::Empty
        } else {
            TryRecv::Closed
        }
    }

    /// A closed channel has nothing more for receivers (no value left, none held)?
    /// (Under the lock.)
    #[inline]
    pub(crate) fn closed_locked(&self, inner: &Inner<T>) -> bool {
        inner.closed && !self.held_any()
    }

    /// The owner of a held value consumed it.
    #[inline]
    pub(crate) fn release_held(&self) {
        if self.held.fetch_sub(1, Ordering::SeqCst) == 1 {
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.closed_flag.load(Ordering::Relaxed) {
                self.resolve_held();
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn resolve_held(&self) {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        self.resolve_held_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
    }

    /// On a closed channel: if no value is held or left, the receivers still waiting are
    /// told the close (completed with nothing, as `close` does). (Under the lock.)
    pub(super) fn resolve_held_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        if !inner.closed || self.held_any() || !inner.buf.is_empty() {
            return;
        }
        if self.ring.as_ref().is_some_and(|r| !r.is_empty()) {
            return;
        }
        while let Some(e) = inner.recvq.claim_first(wakes) {
            e.complete(wakes);
        }
        self.update_receivers_waiting(inner);
    }
}
