//! Channels with Go's semantics, and `select`.
//!
//! ```
//! use gort::chan;
//!
//! let (tx, rx) = chan::<i32>(0); // unbuffered: a send waits for a receiver
//! gort::go!(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//!     // dropping the last Sender closes the channel
//! });
//! let got: Vec<i32> = rx.iter().collect(); // Go's `for v := range ch`
//! assert_eq!(got, [0, 1, 2]);
//! ```
//!
//! # Design
//! One structure (`hchan/`, Go's `hchan`) serves every capacity: a FIFO buffer and two wait
//! queues of waiters (`waiter.rs`, Go's sudog) under one lock. A waiting sender's value goes
//! straight into a waiting receiver's frame. `select!` and [`Select`] (`select/`) register
//! one context on several queues; the first peer to claim it wins (crossbeam's protocol).
//! Every wait goes through the park primitive, so all of it works from goroutines and plain
//! threads alike.
//!
//! ```text
//!  mod.rs        the facade: chan(), unbounded(), Sender, Receiver, iterators
//!  hchan/        the channel: buffer + send/recv wait queues under one lock
//!    mod.rs      the structure, its invariants, lock-free readers, close, disconnect
//!    recv.rs     the receive side: recv, try_recv, serving senders that wait on a full ring
//!    send.rs     the send side: send, try_send, serving receivers that wait on an empty ring
//!    side.rs     Side: what differs between the two sides, said once (queue, flag, ready,
//!                packet convention); the plain blocking wait and serve both sides share
//!    room.rs     room reserved by a dynamic select's chosen send
//!  waiter.rs     Context (one blocked operation or select; the claim CAS), Entry (sudog),
//!                WaitQueue (FIFO, lazily swept), Wakes (unpark after unlocking)
//!  select/       select
//!    mod.rs      the select! algorithm (try, default's double look, register, park once)
//!    case.rs     a select! case: one generic Case over the channel side
//!    expansion.rs what the macro's expansion calls (`__private`)
//!    order.rs    the random case order;  locked.rs  the all-locks pass (both shared)
//!    dynamic/    the dynamic Select: mod.rs (Select, SelectedOperation, the loop),
//!                case.rs (its type-erased cases), commit.rs (what it holds for the caller)
//!  handoff.rs    the deferred hand-off of a dynamic select's send on an unbuffered channel
//!  future.rs     recv_async / send_async: futures waiting in the same queues (a waker as
//!                the waiter's Unparker; cancellation withdraws, a received value goes back)
//!  ring.rs       the lock-free ring of a bounded channel (head, tail, stamped slots)
//!  lock.rs       the channel lock (a spin lock that yields)
//!  errors.rs     SendError, TrySendError, SendTimeoutError, RecvError, TryRecvError, ...
//! ```
//!
//! Why one structure rather than crossbeam's flavors: Go's semantics (close waking both
//! sides, values handed back on close, FIFO hand-off between waiting senders and receivers,
//! `select` over any mix, a linearizable `default`) are the same for every capacity, and
//! one set of wait queues under one lock keeps them in one place. Only the buffer differs:
//! a bounded channel's is a lock-free ring (`ring.rs`, crossbeam's array flavour), so that
//! sends into room and receives of buffered values never take the lock; the wait queues
//! stay behind it (the handshake between the two is in `hchan/mod.rs`), and `select!`'s
//! `default` stays linearizable with the ring's indices as part of each channel's version.
//!
//! # Closing (Go's table, mapped to Rust)
//!
//! ```text
//!  operation        | open, has room/value  | open, full/empty     | closed
//!  -----------------+-----------------------+----------------------+------------------------------
//!  send             | Ok                    | waits                | Err(SendError(v)) (Go panics)
//!  recv             | Ok(v)                 | waits                | buffered values, then Err(RecvError)
//!  close            | closes, wakes all     | closes, wakes all    | panics "close of closed channel"
//!  len              | buffered count        | buffered count       | buffered count
//! ```
//!
//! The last `Sender` to drop closes the channel. When every `Receiver` is gone, sends return
//! `Err(SendError(v))` and blocked senders wake with their values: a goroutine never leaks
//! blocked on a channel nobody can read.
//!
//! # Async code
//! [`Receiver::recv_async`] and [`Sender::send_async`] return futures ([`RecvFuture`],
//! [`SendFuture`]) that any executor can poll: they wait in the same queues as blocked
//! goroutines and threads, with the same FIFO order and close rules, so a channel connects
//! goroutines and async tasks in either direction (a tokio task awaits a value a goroutine
//! sends, and the reverse). Dropping a pending future withdraws it: no sender hands a value
//! to it afterwards, a value it had been handed goes back into the channel (to the next
//! receiver, ahead of later values), and a send either happened or did not
//! ([`SendFuture::cancel`] hands an unsent value back).
//!
//! # Values given back
//! A value received by an operation that is then dropped unfinished goes back into the
//! channel: a pending [`RecvFuture`] that had been handed a value, a dynamic
//! [`SelectedOperation`] holding a received value, and a
//! dynamic select's send whose receiver gave up after the select returned it
//! (select/dynamic). It goes to the first waiting receiver, else to the front of the
//! buffer, ahead of buffered values. Its bounds and order:
//! - `len()` may exceed `cap()` by the number of values given back and not yet received:
//!   at most `cap()` plus the number of operations that held a value when dropped.
//! - Values given back come out in the order they were given back (FIFO among them), all
//!   ahead of values that were buffered. Operations dropped in the order they received
//!   give their values back in the channel's original order.
//! - A closed channel is not drained while such an operation holds a value it may give
//!   back: until the value is given back or received by its operation, receivers wait
//!   (`recv`, `for v in rx.iter()`), `try_recv` and `select!`'s `default` find it empty and
//!   timed receives time out; none reports closed. So once a receive reports closed, every
//!   later one does (Go's rule), and a value given back after the close is received. An
//!   operation kept unfinished after the close keeps the channel's receivers waiting.
//!   (Not counted: a value in a dynamic select's send hand-off to a receiver that gave up;
//!   it is the sender's until handed, as a send after the close would be.)
//!
//! ```
//! let (tx, rx) = gort::chan::<&str>(0);
//! let g = gort::go!(move || rx.recv().unwrap()); // a goroutine receives...
//! gort::block_on(async { tx.send_async("hi").await.unwrap() }); // ...what async code sends
//! assert_eq!(g.join().unwrap(), "hi");
//! ```

mod errors;
mod future;
mod handoff;
mod hchan;
mod lock;
mod ring;
pub(crate) mod select;
mod waiter;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use errors::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use future::{RecvFuture, SendFuture};
pub use select::dynamic::{
    ReadyTimeoutError, Select, SelectTimeoutError, SelectedOperation, TryReadyError, TrySelectError,
};

#[doc(hidden)]
pub use select::expansion as __private;

use crate::time::deadline_after;
pub(crate) use hchan::RxGone;
use hchan::{Chan, TryRecv, TrySend};
pub(crate) use ring::OneSlot;

/// Creates a channel of capacity `cap` (0: unbuffered, a rendezvous), Go's `make(chan T, cap)`.
///
/// Both ends are `Clone + Send + Sync`: any number of goroutines or threads may send and
/// receive. Panics if a buffer of `cap` values cannot be allocated.
pub fn chan<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    crate::runtime::park::note_use(); // for the deadlock detector (deadlock.rs)
    let c = Arc::new(Chan::new(cap));
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// A channel that the last Sender's drop does not close (timer channels, which never close
/// in Go: a second receive from `after(d)` waits for ever rather than failing).
pub(crate) fn chan_keep_open<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let mut c = Chan::new(cap);
    c.keep_open = true;
    let c = Arc::new(c);
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// A one-slot channel that the last Sender's drop does not close, whose ring lives in
/// `block`, inside `owner` (a timer: one allocation less per `after`). The channel keeps
/// `owner` and tells it when every Receiver is gone (`RxGone`).
///
/// # Safety
/// `block` is fresh (`OneSlot::new`) and inside `owner`'s allocation (so it does not move
/// and lives as long as `owner`), and nothing else uses it.
pub(crate) unsafe fn chan_in_block<T>(
    block: &OneSlot<T>,
    owner: Arc<dyn RxGone>,
) -> (Sender<T>, Receiver<T>) {
    // SAFETY: forwarded contract; the channel holds `owner` (below) before anyone can drop it.
    let mut c = unsafe { Chan::in_block(block) };
    c.keep_open = true;
    c.on_rx_gone = Some(owner);
    let c = Arc::new(c);
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// Creates a channel with no capacity limit: a send never waits (std's `mpsc::channel`,
/// crossbeam's `unbounded`). `cap()` is `usize::MAX`.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    chan(usize::MAX)
}

/// The sending end of a channel.
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

/// The receiving end of a channel.
///
/// A closed channel is drained when no value is buffered and none is held by an unfinished
/// operation that may give it back (module doc, "Values given back"): only then do
/// receives report it closed, and from then on every receive does.
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `v`, waiting while the buffer is full (unbuffered: until a receiver takes it).
    /// Returns the value in `Err` if the channel is closed or every Receiver is gone.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan.send(v, None).map_err(|(v, _)| SendError(v))
    }

    /// Sends `v` if that can be done without waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        match self.chan.try_send(v) {
            TrySend::Sent => Ok(()),
            TrySend::Full(v) => Err(TrySendError::Full(v)),
            TrySend::Closed(v) => Err(TrySendError::Closed(v)),
        }
    }

    /// Sends `v`, waiting at most `timeout`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(v, deadline_after(timeout))
    }

    /// Sends `v`, waiting at most until `deadline`.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, Some(deadline)).map_err(|(v, timed_out)| {
            if timed_out {
                SendTimeoutError::Timeout(v)
            } else {
                SendTimeoutError::Closed(v)
            }
        })
    }

    /// Closes the channel (Go's `close(ch)`): every waiting receiver and sender wakes;
    /// receivers drain what is buffered and then get `Err(RecvError)`.
    ///
    /// # Panics
    /// `close of closed channel` if it was already closed (by `close` or the last Sender).
    pub fn close(&self) {
        if !self.chan.close() {
            panic!("close of closed channel");
        }
    }

    /// Number of buffered values.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (0 unbuffered, `usize::MAX` unbounded).
    pub fn cap(&self) -> usize {
        self.chan.cap
    }

    /// True once the channel is closed or every Receiver is gone (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed() || self.chan.is_rx_gone()
    }

    /// True if both handles belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting while the channel is empty. `Err(RecvError)` once the
    /// channel is closed and drained (a value held by an unfinished operation is waited
    /// for: type doc).
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is ready.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        loop {
            return match self.chan.try_recv() {
                TryRecv::Got(v) => Ok(v),
                TryRecv::Empty => Err(TryRecvError::Empty),
                TryRecv::Closed => Err(TryRecvError::Closed),
                // A dynamic select blocked on the send side: it is a waiting sender (as in
                // Go), but its value comes only when its caller gives it, and a `try_recv`
                // does not wait for that: it gives the hand-off up (the select then looks
                // at its cases again, or its send gives the value to the channel:
                // handoff.rs), unless the value is there already.
                TryRecv::Deferred(d) => match d.wait_with(handoff::Patience::None) {
                    Some(handoff::Handed::Value(v)) => Ok(v),
                    Some(handoff::Handed::Cancelled) => continue,
                    None => Err(TryRecvError::Empty),
                },
            };
        }
    }

    /// Receives a value, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(deadline_after(timeout))
    }

    /// Receives a value, waiting at most until `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline)).map_err(|e| match e {
            Some(()) => RecvTimeoutError::Timeout,
            None => RecvTimeoutError::Closed,
        })
    }

    /// A blocking iterator: yields values until the channel is closed and drained
    /// (Go's `for v := range ch`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values ready now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Number of buffered values (still counted after close). Values given back by dropped
    /// operations (a [`recv_async`](Receiver::recv_async) future, a dynamic select's
    /// operation: module doc, "Values given back") count, and take the count past `cap()`
    /// by their number until they are received.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity (0 unbuffered, `usize::MAX` unbounded).
    pub fn cap(&self) -> usize {
        self.chan.cap
    }

    /// True once the channel is closed (by `close` or the last Sender's drop). Buffered
    /// values, and values given back by unfinished operations, may still be received.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// True if both handles belong to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 && !self.chan.keep_open {
            self.chan.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("cap", &self.cap())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("cap", &self.cap())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Blocking iterator over a `&Receiver` (see [`Receiver::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator (see [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Blocking iterator that owns its `Receiver`.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
