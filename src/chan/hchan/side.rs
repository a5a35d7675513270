//! One side of a channel as a type: [`RecvSide`] (the receivers') or [`SendSide`] (the
//! senders').
//!
//! A receiver and a sender that wait are mirror images: each has its wait queue, the flag
//! that publishes it to lock-free peers, its meaning of "ready", its wait reason. [`Side`]
//! says each of those once per side, so that the code that waits on either side is written
//! once, generic over it: a plain blocking operation (`Chan::wait_as`, below), a `select!`
//! case (`select/case.rs`), a dynamic select's registration (`select/dynamic`).
//!
//! # Packets
//! Both sides use a waiter's packet (waiter.rs, "Packets") the same way: an `Option<T>`
//! that a receive fills and a send empties. Once an operation has completed, its packet
//! alone says how it went:
//!
//! ```text
//!  side | packet after completing   | meaning
//!  -----+---------------------------+-------------------------------------------------
//!  recv | Some(v)                   | received v
//!  recv | None                      | the channel is closed (and drained)
//!  send | None                      | sent (a receiver or the buffer took the value)
//!  send | Some(v)                   | not sent: closed, or every Receiver gone
//! ```

use std::sync::Arc;
use std::time::Instant;

use super::{Chan, Inner, TryRecv, TrySend};
use crate::chan::handoff::Deferred;
use crate::chan::lock::SpinGuard;
use crate::chan::waiter::{Context, Entry, WaitQueue, Waited, Wakes};
use crate::runtime::park::WaitReason;

/// The receivers' side. (A type only: never built. Nominally `pub` because the
/// `select!` case types, which the macro's expansion names, carry it.)
#[doc(hidden)]
pub enum RecvSide {}

/// The senders' side (as [`RecvSide`]).
#[doc(hidden)]
pub enum SendSide {}

/// What `Side::try_packet` did.
pub(crate) enum Attempt<T> {
    /// The operation completed: the packet says how (module doc, Packets).
    Done,
    /// It cannot complete without waiting; the packet is as it was.
    NotReady,
    /// (Receive only.) A dynamic select's deferred send was claimed: its value comes when
    /// that select's caller gives it (`handoff.rs`); wait for it after unlocking.
    Deferred(Arc<Deferred<T>>),
}

/// A side of a channel (module doc). Each operation is written once, both sides next to
/// each other: `Self::RECV` is a constant, so each instance keeps only its own side.
pub(crate) trait Side {
    /// True for the receivers' side.
    const RECV: bool;

    /// What a goroutine dump says of a waiter of this side.
    const WAIT_REASON: WaitReason = if Self::RECV {
        WaitReason::ChanReceive
    } else {
        WaitReason::ChanSend
    };

    /// The queue where waiters of this side wait.
    #[inline]
    fn queue<T>(inner: &mut Inner<T>) -> &mut WaitQueue {
        if Self::RECV {
            &mut inner.recvq
        } else {
            &mut inner.sendq
        }
    }

    /// Lock-free: false only if an operation of this side surely cannot complete now.
    #[inline]
    fn maybe_ready<T>(chan: &Chan<T>) -> bool {
        if Self::RECV {
            !chan.surely_empty()
        } else {
            !chan.surely_full()
        }
    }

    /// Under the lock: can an operation of this side complete now? Entries of `me` are no
    /// partners (a select never pairs with itself); observers met in the other side's
    /// queue are notified if `notify` (the caller is a waiter about to wait), and that
    /// side's waiting flag is recomputed (`has_partner` drops stale entries).
    fn ready_locked<T>(
        chan: &Chan<T>,
        inner: &mut Inner<T>,
        me: Option<&Arc<Context>>,
        notify: bool,
        wakes: &mut Wakes,
    ) -> bool {
        if Self::RECV {
            let ready = chan.buffered(inner)
                || chan.closed_locked(inner)
                || inner.sendq.has_partner(me, notify, wakes);
            chan.update_senders_waiting(inner);
            ready
        } else {
            let ready = inner.closed
                || inner.rx_gone
                || chan.has_room(inner)
                || inner.recvq.has_partner(me, notify, wakes);
            chan.update_receivers_waiting(inner);
            ready
        }
    }

    /// Publishes that waiters of this side may wait, after pushing an entry onto `queue`
    /// (under the lock). True if the operation became possible meanwhile (the Dekker
    /// handshake, module doc of `hchan`): the caller must not sleep.
    #[inline]
    fn mark_waiting<T>(chan: &Chan<T>, inner: &Inner<T>) -> bool {
        if Self::RECV {
            chan.mark_receivers_waiting()
        } else {
            chan.mark_senders_waiting(inner)
        }
    }

    /// Recomputes this side's waiting flag (under the lock).
    #[inline]
    fn update_waiting<T>(chan: &Chan<T>, inner: &Inner<T>) {
        if Self::RECV {
            chan.update_receivers_waiting(inner)
        } else {
            chan.update_senders_waiting(inner)
        }
    }

    /// Tries the operation on `packet` without waiting, lock-free where the channel allows
    /// (`try_recv` / `try_send`). A receive's packet is None on entry.
    #[inline]
    fn try_packet<T>(chan: &Chan<T>, packet: &mut Option<T>) -> Attempt<T> {
        if Self::RECV {
            recv_attempt(chan.try_recv(), packet)
        } else {
            let v = packet.take().expect("a send holds its value");
            send_attempt(chan.try_send(v), packet)
        }
    }

    /// `try_packet` under the lock (`try_recv_locked` / `try_send_locked`).
    #[inline]
    fn try_packet_locked<T>(
        chan: &Chan<T>,
        inner: &mut Inner<T>,
        packet: &mut Option<T>,
        wakes: &mut Wakes,
    ) -> Attempt<T> {
        if Self::RECV {
            recv_attempt(chan.try_recv_locked(inner, wakes), packet)
        } else {
            let v = packet.take().expect("a send holds its value");
            send_attempt(chan.try_send_locked(inner, v, wakes), packet)
        }
    }
}

impl Side for RecvSide {
    const RECV: bool = true;
}

impl Side for SendSide {
    const RECV: bool = false;
}

/// A receive's result in the packet convention.
#[inline]
fn recv_attempt<T>(r: TryRecv<T>, packet: &mut Option<T>) -> Attempt<T> {
    match r {
        TryRecv::Got(v) => {
            *packet = Some(v);
            Attempt::Done
        }
        TryRecv::Closed => Attempt::Done,
        TryRecv::Empty => Attempt::NotReady,
        TryRecv::Deferred(d) => Attempt::Deferred(d),
    }
}

/// A send's result in the packet convention.
#[inline]
fn send_attempt<T>(r: TrySend<T>, packet: &mut Option<T>) -> Attempt<T> {
    match r {
        TrySend::Sent => Attempt::Done,
        TrySend::Closed(v) => {
            *packet = Some(v);
            Attempt::Done
        }
        TrySend::Full(v) => {
            *packet = Some(v);
            Attempt::NotReady
        }
    }
}

impl<T> Chan<T> {
    /// The wait of a plain blocking `recv` or `send` (side `S`) that found nothing to do
    /// under the lock `inner`: leaves an entry with `packet` (an `Option<T>` in the
    /// caller's frame) on `S`'s queue, unlocks, runs `wakes` and parks until a peer
    /// completes it, the deadline passes, or a reserving peer lets it go. None if the
    /// operation became possible while registering (the entry is taken back: try again).
    ///
    /// Without a deadline the context lives in this frame (waiter.rs, Solo contexts).
    #[inline(always)]
    pub(super) fn wait_as<S: Side>(
        &self,
        mut inner: SpinGuard<'_, Inner<T>>,
        wakes: Wakes,
        packet: *mut (),
        deadline: Option<Instant>,
    ) -> Option<Waited> {
        let solo;
        let mut shared = None;
        let cx: &Context = match deadline {
            None => {
                solo = Context::solo();
                // SAFETY: `solo` stays here, unmoved, until the wait below ends (or the
                // entry is taken back under this lock hold); no deadline.
                S::queue(&mut inner).push(unsafe { Entry::solo(&solo, packet) });
                &solo
            }
            Some(_) => {
                let cx = shared.insert(Context::new());
                S::queue(&mut inner).push(Entry::shared(cx, 0, packet, false));
                cx
            }
        };
        let waited = if S::mark_waiting(self, &inner) {
            // Possible meanwhile: take the entry back (ours, last, unclaimed: claimers need
            // the lock we hold).
            drop(S::queue(&mut inner).pop_back());
            S::update_waiting(self, &inner);
            drop(inner);
            wakes.run();
            None
        } else {
            drop(inner);
            wakes.run();
            Some(cx.wait(S::WAIT_REASON, deadline))
        };
        if let Some(cx) = shared {
            Context::recycle(cx);
        }
        waited
    }

    /// Serves the first waiter of side `S` after a lock-free operation of the other side
    /// (hchan's "The ring and the waiters"): claims it (observers met on the way are
    /// notified) and lets `serve` move its value through its packet (true: served, then
    /// completed). If `serve` cannot (the ring moved again before we got the lock: a
    /// lock-free peer took the value or the room), the waiter keeps waiting where it is
    /// when nobody else can have seen it claimed (a solo waiter, a future:
    /// `Entry::unclaim`), else it starts over (`Waited::Retry`). (Under the lock.)
    #[inline(always)]
    pub(super) fn serve_first<S: Side>(
        &self,
        inner: &mut Inner<T>,
        wakes: &mut Wakes,
        serve: impl FnOnce(&Inner<T>, &Entry) -> bool,
    ) -> bool {
        let mut served = false;
        if let Some(e) = S::queue(inner).claim_first(wakes) {
            if serve(inner, &e) {
                e.complete(wakes);
                served = true;
            } else {
                match e.unclaim() {
                    Ok(e) => S::queue(inner).push_front(e),
                    Err(e) => e.release(wakes),
                }
            }
        }
        S::update_waiting(self, inner);
        served
    }

    /// Serves the waiters a bounded channel's ring can serve, after a push or pop made a
    /// value or room for side `S` (under the lock; hchan's "The ring and the waiters"):
    /// first `S`'s first waiter, then, for as long as each one served makes the next
    /// possible, the other side's and back. A receiver served pops a value, which makes
    /// room for a sender waiting on the full ring; a sender served pushes its value, which a
    /// receiver waiting on the empty ring can take. (Every move of the ring under the lock
    /// owes that check to the other side, as every lock-free move does through its flag.)
    ///
    /// Both sides wait at once only when a waiter came to the lock between a lock-free
    /// peer's move and that peer's coming to serve: a sender that found full the ring the
    /// peer's receiver is about to empty, a receiver that found empty the ring the peer is
    /// about to refill. So the loop seldom turns twice; without it, that waiter slept beside
    /// a ring that could serve it, for good once the other side had finished (`tests.rs`).
    #[inline(never)]
    pub(super) fn serve_waiters<S: Side>(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        let mut recv = S::RECV;
        loop {
            let served = if recv {
                self.serve_receiver_locked(inner, wakes)
            } else {
                self.serve_sender_locked(inner, wakes)
            };
            recv = !recv;
            let next_waits = if recv {
                &self.receivers_waiting
            } else {
                &self.senders_waiting
            };
            // (Written under the lock only: exact here, or stale-true.)
            if !served || !next_waits.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
        }
    }

    /// Registers a select's context `cx`, as its case `index`, on side `S` of this channel:
    /// true, leaving nothing, if an operation of that side can complete now; else leaves an
    /// entry whose packet `packet()` gives (made under the lock, once it is needed;
    /// `deferred`: it is a `handoff::Deferred`) and publishes it, and returns true if the
    /// operation became possible meanwhile (the Dekker handshake: the caller aborts `cx`,
    /// the entry goes stale). `notify`: as `Side::ready_locked` (a real waiter is about to
    /// wait).
    #[inline(always)]
    pub(crate) fn register_as<S: Side>(
        &self,
        cx: &Arc<Context>,
        index: usize,
        notify: bool,
        deferred: bool,
        gives_back: bool,
        packet: impl FnOnce() -> *mut (),
    ) -> bool {
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        let mut ready = S::ready_locked(self, &mut inner, Some(cx), notify, &mut wakes);
        if !ready {
            S::queue(&mut inner)
                .push(Entry::shared(cx, index, packet(), deferred).giving_back(gives_back));
            ready = S::mark_waiting(self, &inner);
        }
        drop(inner);
        wakes.run();
        ready
    }
}
