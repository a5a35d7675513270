//! Futures on channels: [`Receiver::recv_async`] and [`Sender::send_async`], for async code
//! on any executor (tokio, `gort::block_on`, ...).
//!
//! # Design
//! A future waits exactly where a blocked goroutine or thread does: its entry goes into the
//! channel's wait queue, FIFO with them and with selects, with a context of its own whose
//! Unparker wraps the task's waker (`Context::for_waker`) and a packet inside the pinned
//! future (`slot`). Peers cannot tell it from a parked goroutine: a sender fills its slot, a
//! receiver takes its value, `close` completes it with the packet as it was. What makes it
//! work without ever blocking is waiter.rs's rule for futures: **a future's context is
//! claimed only under the channel lock, and completed before that lock is released** (a
//! dynamic select never reserves one). So under the lock a registered future is either
//! still WAITING, and nobody holds it, or done, and its slot is final.
//!
//! ```text
//!  state    | meaning                                    | poll
//!  ---------+--------------------------------------------+-----------------------------------
//!  Start    | not registered                             | try the operation under the lock;
//!           |                                            | ready: Done, else register: Waiting
//!  Waiting  | entry in the queue; the context is WAITING | done: the slot has the result: Done;
//!           | or done (a peer completed it)              | else swap in a new waker: Pending
//!  Handoff  | (receive) claimed a dynamic select's       | filled: Done; cancelled: Start;
//!           | deferred send (handoff.rs); its value      | else swap in a new waker: Pending
//!           | comes when the select's caller sends it    |
//!  Done     | the result was returned                    | panics
//! ```
//!
//! A re-poll with another waker (not `will_wake`) replaces the waker in the context under the
//! lock, so the entry keeps its place in the queue; with the same waker a re-poll is one
//! atomic load and takes no lock. A waker is cloned under the lock when a future registers
//! (a reference count increment in every executor, as a goroutine handle's is); a waker is
//! only ever dropped after unlocking, as its last reference may free a task.
//!
//! # Dropping a pending future (cancellation)
//! Nothing is lost, nothing is delivered twice, no waiter is left behind:
//!
//! - Waiting and not done: under the lock, `try_abort` withdraws it. No peer can claim the
//!   entry any more (a later sender passes over it), so the slot is never touched again; the
//!   stale entry is trimmed if it is at either end of the queue, else swept lazily, as a
//!   finished select's are (the future takes its waker back first, `take_waker`). A send's value was not sent: it is dropped with the future
//!   ([`SendFuture::cancel`] withdraws and hands it back instead).
//! - Waiting and done (a peer completed it; the result was never seen): a send has
//!   happened. A received value goes back into the channel as if it had never been
//!   received (`Chan::put_back_locked`: to the next waiting receiver, else the front of the
//!   buffer), so a `recv_async` raced by a timeout in a `select!` loses nothing.
//! - Handoff: `abandon`. Before the select accepted the claim, it looks at its cases again;
//!   after, its send gives the value back to the channel as above (handoff.rs); if it had
//!   already filled it, the future gives it back itself.
//!
//! # Safety
//! The slot is inside the future, which `PhantomPinned` keeps from moving once polled (its
//! entry's packet points there). A peer touches the slot only after claiming the context,
//! under the channel lock, and is done with it when it completes the context, before
//! unlocking. The future touches it only before registering, after seeing `done` (Acquire),
//! or under the lock after a failed `try_abort` (claimed, hence done); and a registered
//! future's `Drop` withdraws (or sees `done`) before the slot goes away.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, Waker};

use super::handoff::{Deferred, Handed};
use super::hchan::{Chan, TryRecv, TrySend};
use super::waiter::{Context, Entry, Wakes};
use super::{Receiver, RecvError, SendError, Sender};
use crate::runtime::park::Unparker;

/// Where a channel future is (module doc, state table).
enum State<T> {
    /// Not registered.
    Start,
    /// Its entry is in the queue; the context (WAITING or done) is shared with it.
    Waiting(Arc<Context>),
    /// A receive waiting for a dynamic select's deferred value.
    Handoff(Arc<Deferred<T>>),
    /// Finished.
    Done,
}

impl<T> State<T> {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "Start",
            State::Waiting(_) => "Waiting",
            State::Handoff(_) => "Handoff",
            State::Done => "Done",
        }
    }
}

/// A registered future polled again: false once a peer has completed it (its slot is
/// final), else true after making sure its entry wakes `waker` (swapped in place, under the
/// lock, so the entry keeps its place in the queue).
fn still_waiting<T>(chan: &Chan<T>, cx: &Context, waker: &Waker) -> bool {
    if cx.is_done() {
        return false;
    }
    if cx.will_wake(waker) {
        return true; // a peer that completes it from now on wakes this very task
    }
    let new = Unparker::from_waker(waker.clone());
    let inner = chan.lock();
    // Claimed only under this lock and completed before it is released: not WAITING
    // here means done.
    let (waiting, unused) = if cx.is_waiting() {
        // SAFETY: a future's WAITING context, and we hold the lock of the channel whose
        // queue holds its entry.
        (true, unsafe { cx.set_waker(new) })
    } else {
        (false, new)
    };
    drop(inner);
    drop(unused); // a waker's drop is executor code: not under the lock
    waiting
}

/// A future that receives a value from a channel: [`Receiver::recv_async`].
///
/// Resolves to `Ok(value)`, or `Err(RecvError)` once the channel is closed and drained. It
/// waits in the channel's queue in FIFO order with goroutines, threads and selects.
/// Dropping it before it resolves withdraws it: no sender hands a value to it afterwards,
/// and a value it was handed but never returned goes back into the channel for the next
/// receiver (module doc of `chan::future`).
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T> {
    /// The channel's end it receives from.
    rx: &'a Receiver<T>,
    /// Where it is (module doc, state table).
    state: State<T>,
    /// The packet of its entry: a sender that claims it writes the value here.
    slot: UnsafeCell<Option<T>>,
    /// The slot's address is in the queue while it waits: never moved once polled.
    _pin: PhantomPinned,
}

// SAFETY: `&RecvFuture` gives access to nothing but the name of its state (`Debug`): the
// slot and the state are used only through `Pin<&mut Self>` and `Drop`. (It is `Send` when
// `T: Send` by its fields.)
unsafe impl<T: Send> Sync for RecvFuture<'_, T> {}

impl<T> Receiver<T> {
    /// Receives a value from async code: a future that resolves to what
    /// [`recv`](Receiver::recv) returns, waiting without blocking the thread that polls it.
    ///
    /// It waits in the same queue as goroutines and threads blocked in `recv`, in FIFO
    /// order, so a channel can connect goroutines and async tasks in either direction.
    /// Dropping the future before it resolves loses nothing: the value it may have been
    /// handed goes back into the channel.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::<u32>(0);
    /// gort::go!(move || tx.send(7).unwrap());
    /// assert_eq!(gort::block_on(rx.recv_async()), Ok(7));
    /// assert_eq!(gort::block_on(rx.recv_async()), Err(gort::chan::RecvError)); // tx dropped
    /// ```
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            rx: self,
            state: State::Start,
            slot: UnsafeCell::new(None),
            _pin: PhantomPinned,
        }
    }
}

impl<T> RecvFuture<'_, T> {
    /// Receives if possible, else registers (Waiting) or claims a deferred send (Handoff).
    fn start(&mut self, waker: &Waker) -> Option<Result<T, RecvError>> {
        let chan = &self.rx.chan;
        let mut wakes = Wakes::default();
        // A context withdrawn at once (below); its waker is dropped after the unlock.
        let mut withdrawn = None;
        let mut inner = chan.lock();
        let r = loop {
            match chan.try_recv_locked_as(&mut inner, &mut wakes, Some(waker)) {
                TryRecv::Got(v) => break Some(Ok(v)),
                TryRecv::Closed => break Some(Err(RecvError)),
                TryRecv::Deferred(d) => {
                    self.state = State::Handoff(d);
                    break None;
                }
                TryRecv::Empty => {
                    let cx = Context::for_waker(waker);
                    inner.recvq.push(
                        Entry::shared(&cx, 0, self.slot.get().cast(), false).giving_back(true),
                    );
                    if chan.mark_receivers_waiting() {
                        // A lock-free send filled the ring meanwhile (hchan/mod.rs, "The ring
                        // and the waiters"): take the entry back (ours, last, unclaimed:
                        // claimers need the lock) and try again.
                        drop(inner.recvq.pop_back());
                        chan.update_receivers_waiting(&inner);
                        withdrawn = Some(cx);
                        continue;
                    }
                    self.state = State::Waiting(cx);
                    break None;
                }
            }
        };
        drop(inner);
        wakes.run();
        drop(withdrawn);
        r
    }

    /// Gives a value this future was handed, but will never return, back to the channel.
    fn put_back(&self, v: T) {
        self.rx.chan.put_back(v, false);
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, tcx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing is moved out of the pinned future; `slot` stays where it is.
        let this = unsafe { self.get_unchecked_mut() };
        let waker = tcx.waker();
        loop {
            match &this.state {
                State::Start => {
                    if let Some(r) = this.start(waker) {
                        this.state = State::Done;
                        return Poll::Ready(r);
                    }
                }
                State::Waiting(cx) => {
                    if still_waiting(&this.rx.chan, cx, waker) {
                        return Poll::Pending;
                    }
                    // SAFETY: done (Acquire): the peer wrote the slot, or close left it
                    // None, and is finished with it (module Safety).
                    let v = unsafe { (*this.slot.get()).take() };
                    this.state = State::Done;
                    if v.is_some() {
                        this.rx.chan.release_held(); // counted when handed (fill_receiver)
                    }
                    return Poll::Ready(v.ok_or(RecvError));
                }
                State::Handoff(d) => match d.try_take() {
                    Some(Handed::Value(v)) => {
                        this.state = State::Done;
                        return Poll::Ready(Ok(v));
                    }
                    // The select dropped its operation: receive again.
                    Some(Handed::Cancelled) => this.state = State::Start,
                    None => {
                        if d.set_waker(waker) {
                            return Poll::Pending;
                        }
                    }
                },
                State::Done => panic!("RecvFuture polled after it completed"),
            }
        }
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Waiting(cx) => {
                if cx.is_done() && self.slot.get_mut().is_none() {
                    return; // completed by close: nothing to give back
                }
                let chan = &self.rx.chan;
                let mut wakes = Wakes::default();
                let mut inner = chan.lock();
                let mut unreceivable = None;
                let mut waker = None;
                if cx.try_abort() {
                    // Withdrawn: no peer will touch the slot.
                    // SAFETY: our context, aborted by us just now.
                    waker = Some(unsafe { cx.take_waker() });
                    inner.recvq.trim();
                    chan.update_receivers_waiting(&inner);
                } else if let Some(v) = self.slot.get_mut().take() {
                    // Claimed, so completed (under this lock, before we got it): the value
                    // was handed to us and is given back.
                    unreceivable = chan.put_back_locked(&mut inner, v, &mut wakes, true);
                }
                drop(inner);
                wakes.run();
                drop((unreceivable, waker));
            }
            State::Handoff(d) => {
                if !d.abandon() {
                    if let Some(Handed::Value(v)) = d.try_take() {
                        self.put_back(v);
                    }
                }
            }
            State::Start | State::Done => {}
        }
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture")
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

/// A future that sends a value on a channel: [`Sender::send_async`].
///
/// Resolves to `Ok(())` once the value is sent, or `Err(SendError(value))` with the value
/// back if the channel is closed or every Receiver is gone. It waits in the channel's queue
/// in FIFO order with goroutines, threads and selects. Dropping it before it resolves
/// withdraws it: the value was either taken by a receiver (the send happened) or not sent at
/// all and dropped with the future; [`cancel`](SendFuture::cancel) withdraws it and hands
/// the value back.
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a, T> {
    /// The channel's end it sends on.
    tx: &'a Sender<T>,
    /// Where it is (module doc, state table; never Handoff).
    state: State<T>,
    /// The value, until sent; the packet of its entry (a receiver takes it from here).
    slot: UnsafeCell<Option<T>>,
    /// The slot's address is in the queue while it waits: never moved once polled.
    _pin: PhantomPinned,
}

// SAFETY: as for `RecvFuture`: `&SendFuture` gives access to nothing but its state's name.
unsafe impl<T: Send> Sync for SendFuture<'_, T> {}

impl<T> Sender<T> {
    /// Sends `v` from async code: a future that resolves to what [`send`](Sender::send)
    /// returns, waiting without blocking the thread that polls it.
    ///
    /// It waits in the same queue as goroutines and threads blocked in `send`, in FIFO
    /// order. If the channel is closed, or every Receiver is gone, it resolves to
    /// `Err(SendError(v))` with the value. Dropping it before it resolves either finds the
    /// value taken (the send happened) or withdraws it unsent ([`SendFuture::cancel`] hands
    /// it back); a value is never half-sent.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::<u32>(0);
    /// let h = gort::go!(move || rx.recv().unwrap());
    /// gort::block_on(tx.send_async(7)).unwrap();
    /// assert_eq!(h.join().unwrap(), 7);
    /// ```
    pub fn send_async(&self, v: T) -> SendFuture<'_, T> {
        SendFuture {
            tx: self,
            state: State::Start,
            slot: UnsafeCell::new(Some(v)),
            _pin: PhantomPinned,
        }
    }
}

impl<T> SendFuture<'_, T> {
    /// Withdraws a send that has not completed and returns its value, or None if the value
    /// was sent (or already returned in `Err`). The future is finished afterwards: polling
    /// it again panics.
    ///
    /// ```
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let (tx, _rx) = gort::chan::<String>(0);
    /// let mut send = std::pin::pin!(tx.send_async("hello".to_string()));
    /// let waker: Waker = std::sync::Arc::new(NoWake).into();
    /// assert!(send.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    /// assert_eq!(send.as_mut().cancel().as_deref(), Some("hello")); // nobody received it
    /// # struct NoWake;
    /// # impl std::task::Wake for NoWake { fn wake(self: std::sync::Arc<Self>) {} }
    /// ```
    pub fn cancel(self: Pin<&mut Self>) -> Option<T> {
        // SAFETY: nothing is moved out of the pinned future but the slot's value, once
        // withdrawn (no peer can touch the slot any more).
        let this = unsafe { self.get_unchecked_mut() };
        this.withdraw();
        this.slot.get_mut().take()
    }

    /// Withdraws a registered send, or sees that a peer completed it; the slot is ours
    /// afterwards. Finishes the future.
    fn withdraw(&mut self) {
        if let State::Waiting(cx) = std::mem::replace(&mut self.state, State::Done) {
            if !cx.is_done() {
                let chan = &self.tx.chan;
                let mut inner = chan.lock();
                // Claimed futures are completed under this lock: if the abort fails, the
                // receiver (or close) is done with the slot.
                if cx.try_abort() {
                    // SAFETY: our context, aborted by us just now.
                    let waker = unsafe { cx.take_waker() };
                    inner.sendq.trim();
                    chan.update_senders_waiting(&inner);
                    drop(inner);
                    drop(waker); // executor code: after unlocking
                }
            }
        }
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, tcx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing is moved out of the pinned future; `slot` stays where it is.
        let this = unsafe { self.get_unchecked_mut() };
        let waker = tcx.waker();
        let chan = &this.tx.chan;
        match &this.state {
            State::Start => {
                let v = this
                    .slot
                    .get_mut()
                    .take()
                    .expect("a new send holds its value");
                let mut wakes = Wakes::default();
                let mut withdrawn = None;
                let mut inner = chan.lock();
                let mut v = v;
                let r = loop {
                    match chan.try_send_locked(&mut inner, v, &mut wakes) {
                        TrySend::Sent => break Poll::Ready(Ok(())),
                        TrySend::Closed(v) => break Poll::Ready(Err(SendError(v))),
                        TrySend::Full(w) => {
                            *this.slot.get_mut() = Some(w);
                            let cx = Context::for_waker(waker);
                            inner
                                .sendq
                                .push(Entry::shared(&cx, 0, this.slot.get().cast(), false));
                            if chan.mark_senders_waiting(&inner) {
                                // A lock-free receive made room meanwhile (as in `start`
                                // of `RecvFuture`): take the entry back and try again.
                                drop(inner.sendq.pop_back());
                                chan.update_senders_waiting(&inner);
                                withdrawn = Some(cx);
                                v = this.slot.get_mut().take().expect("unclaimed: ours");
                                continue;
                            }
                            this.state = State::Waiting(cx);
                            break Poll::Pending;
                        }
                    }
                };
                drop(inner);
                wakes.run();
                drop(withdrawn);
                if r.is_ready() {
                    this.state = State::Done;
                }
                r
            }
            State::Waiting(cx) => {
                if still_waiting(chan, cx, waker) {
                    return Poll::Pending;
                }
                this.state = State::Done;
                // SAFETY: done (Acquire): the receiver took the value, or close / the last
                // Receiver's drop left it, and is finished with the slot (module Safety).
                Poll::Ready(match unsafe { (*this.slot.get()).take() } {
                    None => Ok(()),
                    Some(v) => Err(SendError(v)),
                })
            }
            State::Handoff(_) => unreachable!("a send never waits on a hand-off"),
            State::Done => panic!("SendFuture polled after it completed"),
        }
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        // A value not sent is dropped with the slot, after this (outside the lock).
        self.withdraw();
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}
