//! The cases of a dynamic `Select`: a receive ([`RecvHandle`]) or a send ([`SendHandle`]),
//! boxed and type-erased behind [`DynCase`], and what each commits to when it can complete
//! at once (`recv_commit`, `send_commit`; module doc of `dynamic`, "Committing").
//!
//! A handle's entries are real waiters that peers complete (`select*`) or observers with a
//! null packet (`ready*`); the channel-side operations they share with `select!` (readiness
//! under the lock, the wait queue, the waiting flags) come from `hchan/side.rs`.
//!
//! # Safety
//! A receive handle's `slot` is the packet of its real entry, a send handle's `pending` the
//! deferred hand-off its real entry points to (module doc of `dynamic`, Safety): only the
//! select touches them while it runs (no entry of an earlier context of its is WAITING),
//! and a peer only between claiming the context and completing it.

use std::cell::UnsafeCell;
use std::sync::Arc;

use super::commit::{Commit, Erased, Held, RecvHeld, Reservation, SendHeld, SendHold};
use crate::chan::handoff::Deferred;
use crate::chan::hchan::{take_from_sender, Chan, Inner, RecvSide, SendSide, Side, TryRecv};
use crate::chan::waiter::{Context, Wakes};
use crate::chan::{Receiver, RecvError, Sender};

/// One operation of a dynamic [`Select`](super::Select), type-erased.
pub(super) trait DynCase {
    /// Is the operation ready now (without performing it)?
    fn ready(&self) -> bool;
    /// The same, with the channel locked by the caller.
    ///
    /// # Safety
    /// The caller holds the channel's lock.
    unsafe fn ready_locked(&self, wakes: &mut Wakes) -> bool;
    /// Makes the operation certain if it is ready now (module doc), else None.
    fn commit(&self) -> Option<Commit>;
    /// The same, with the channel locked by the caller.
    ///
    /// # Safety
    /// The caller holds the channel's lock.
    unsafe fn commit_locked(&self, wakes: &mut Wakes) -> Option<Commit>;
    /// Leaves an entry for `cx` as case `index` (`real`: a waiter peers complete; else an
    /// observer), unless the operation is ready now (true, nothing left).
    fn register(&self, cx: &Arc<Context>, index: usize, real: bool) -> bool;
    /// After a real registration's wait returned this case: what it holds, or None if the
    /// wake-up only means "look again".
    fn woken(&self) -> Option<Commit>;
    /// The channel's address (lock order; `SelectedOperation` checks).
    fn addr(&self) -> *const ();
    /// A send case?
    fn is_send(&self) -> bool;
    /// Locks the channel (all-locks pass).
    fn lock(&self);
    /// # Safety
    /// The caller locked the channel with `lock`.
    unsafe fn unlock(&self);
}

/// A receive case. `slot` is the packet of its real entry: a sender that claims the
/// select writes its value there (module doc, Safety).
pub(super) struct RecvHandle<'a, T> {
    pub(super) rx: &'a Receiver<T>,
    pub(super) slot: UnsafeCell<Option<T>>,
}

/// A send case. `pending` is the deferred hand-off of its real entry on an unbuffered
/// channel.
pub(super) struct SendHandle<'a, T> {
    pub(super) tx: &'a Sender<T>,
    pub(super) pending: UnsafeCell<Option<Arc<Deferred<T>>>>,
}

/// A receive can complete now: a waiting sender is reserved (a plain one) or claimed (a
/// deferred one); a buffered value, a waiting future's value (futures are completed under
/// the lock, never reserved: waiter.rs, "Futures") or the close is taken now, so that the
/// operation holds it and cannot find it gone.
fn recv_commit<T>(chan: &Arc<Chan<T>>, inner: &mut Inner<T>, wakes: &mut Wakes) -> Option<Commit> {
    if !chan.buffered(inner) && !inner.closed {
        // Err: a waiting future at the front: taken below, as a value.
        if let Ok(e) = inner.sendq.claim_first_reservable(wakes) {
            let r = e.map(|e| {
                if e.deferred {
                    match take_from_sender::<T>(e, wakes, None) {
                        TryRecv::Deferred(d) => RecvHeld::commit(Held::Deferred(d), chan),
                        _ => unreachable!("a deferred sender gives a deferred hand-off"),
                    }
                } else {
                    Commit::Reserved(Reservation(Some(e)))
                }
            });
            chan.update_senders_waiting(inner);
            return r;
        }
    }
    let held = match chan.try_recv_locked(inner, wakes) {
        TryRecv::Got(v) => {
            chan.hold(); // given back if the operation is dropped (`RecvHeld`)
            Held::Value(Ok(v))
        }
        TryRecv::Closed => Held::Value(Err(RecvError)),
        TryRecv::Deferred(d) => Held::Deferred(d),
        TryRecv::Empty => return None,
    };
    Some(RecvHeld::commit(held, chan))
}

/// A send can complete now: a waiting receiver is reserved, or room for the value
/// (`Chan::reserve_room`); a closed channel is left for the operation (it fails at once).
fn send_commit<T>(chan: &Arc<Chan<T>>, inner: &mut Inner<T>, wakes: &mut Wakes) -> Option<Commit> {
    if inner.closed || inner.rx_gone {
        return Some(Commit::Later);
    }
    // A waiting future is not reserved (waiter.rs, "Futures"): left for the operation.
    let e = inner.recvq.claim_first_reservable(wakes);
    chan.update_receivers_waiting(inner);
    match e {
        Err(_) => return Some(Commit::Later),
        Ok(Some(e)) => return Some(Commit::Reserved(Reservation(Some(e)))),
        Ok(None) => {}
    }
    if chan.cap == usize::MAX {
        return Some(Commit::Later); // never full
    }
    chan.reserve_room(inner)
        .then(|| Commit::Held(Erased::new(SendHeld(Some(SendHold::Room(chan.clone()))))))
}

impl<T> DynCase for RecvHandle<'_, T> {
    fn ready(&self) -> bool {
        let chan = &self.rx.chan;
        !chan.surely_empty()
            && chan
                .with_lock(|inner, wakes| RecvSide::ready_locked(chan, inner, None, false, wakes))
    }

    unsafe fn ready_locked(&self, wakes: &mut Wakes) -> bool {
        let chan = &self.rx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        RecvSide::ready_locked(chan, unsafe { chan.inner_locked() }, None, false, wakes)
    }

    fn commit(&self) -> Option<Commit> {
        let chan = &self.rx.chan;
        if chan.surely_empty() {
            return None;
        }
        chan.with_lock(|inner, wakes| recv_commit(chan, inner, wakes))
    }

    unsafe fn commit_locked(&self, wakes: &mut Wakes) -> Option<Commit> {
        let chan = &self.rx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        recv_commit(chan, unsafe { chan.inner_locked() }, wakes)
    }

    fn register(&self, cx: &Arc<Context>, index: usize, real: bool) -> bool {
        // A real receiver about to wait makes "send ready" true for observers: tell them.
        self.rx
            .chan
            .register_as::<RecvSide>(cx, index, real, false, real, || {
                if real {
                    // SAFETY: no entry of ours is live (the select's previous context, if
                    // any, is no longer WAITING), so nobody else touches the slot now.
                    unsafe { *self.slot.get() = None };
                    self.slot.get().cast()
                } else {
                    std::ptr::null_mut()
                }
            })
    }

    fn woken(&self) -> Option<Commit> {
        // SAFETY: our context was completed for this case (Acquire on `done`): the peer
        // that claimed it wrote the slot (or close left it None) and is done with it.
        let v = unsafe { (*self.slot.get()).take() };
        Some(RecvHeld::commit(
            Held::Value(v.ok_or(RecvError)),
            &self.rx.chan,
        ))
    }

    fn addr(&self) -> *const () {
        Arc::as_ptr(&self.rx.chan).cast()
    }

    fn is_send(&self) -> bool {
        false
    }

    fn lock(&self) {
        self.rx.chan.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: the caller locked it (contract).
        unsafe { self.rx.chan.unlock_raw() }
    }
}

impl<T> DynCase for SendHandle<'_, T> {
    fn ready(&self) -> bool {
        let chan = &self.tx.chan;
        chan.with_lock(|inner, wakes| SendSide::ready_locked(chan, inner, None, false, wakes))
    }

    unsafe fn ready_locked(&self, wakes: &mut Wakes) -> bool {
        let chan = &self.tx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        SendSide::ready_locked(chan, unsafe { chan.inner_locked() }, None, false, wakes)
    }

    fn commit(&self) -> Option<Commit> {
        let chan = &self.tx.chan;
        chan.with_lock(|inner, wakes| send_commit(chan, inner, wakes))
    }

    unsafe fn commit_locked(&self, wakes: &mut Wakes) -> Option<Commit> {
        let chan = &self.tx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        send_commit(chan, unsafe { chan.inner_locked() }, wakes)
    }

    fn register(&self, cx: &Arc<Context>, index: usize, real: bool) -> bool {
        // A real entry only on an unbuffered channel (a deferred send); else an observer.
        let real = real && self.tx.chan.cap == 0;
        self.tx
            .chan
            .register_as::<SendSide>(cx, index, real, real, false, || {
                if real {
                    let d = Deferred::<T>::new();
                    let p = Arc::as_ptr(&d) as *mut ();
                    // SAFETY: only this select (which is running, not waiting) touches
                    // `pending`.
                    unsafe { *self.pending.get() = Some(d) };
                    p
                } else {
                    std::ptr::null_mut()
                }
            })
    }

    fn woken(&self) -> Option<Commit> {
        // SAFETY: our context is completed (Acquire on `done`); only we touch `pending`.
        let d = unsafe { (*self.pending.get()).take() }?;
        // Claimed by a receiver and accepted before it gave up (it waits for our value:
        // handoff.rs), or else a receiver that gave up, or close: look again (the send then
        // reports the closed channel).
        (d.claimed() && d.accept())
            .then(|| Commit::Held(Erased::new(SendHeld(Some(SendHold::Deferred(d))))))
    }

    fn addr(&self) -> *const () {
        Arc::as_ptr(&self.tx.chan).cast()
    }

    fn is_send(&self) -> bool {
        true
    }

    fn lock(&self) {
        self.tx.chan.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: the caller locked it (contract).
        unsafe { self.tx.chan.unlock_raw() }
    }
}
