//! What a dynamic select holds for the operation it chose (module doc of `dynamic`,
//! "Committing"), until `SelectedOperation::recv`/`send` takes it.
//!
//! Everything here gives back what it holds when dropped unused, so that an operation
//! dropped without being completed (or whose `recv`/`send` panicked on a wrong handle)
//! loses nothing and leaves nobody waiting:
//!
//! ```text
//!  held                         | dropped unused
//!  -----------------------------+--------------------------------------------------------
//!  Reservation (a waiting peer)  | released: the peer starts its operation again (Retry)
//!  RecvHeld: a value, the close | the value goes back to the channel front (mod.rs of chan,
//!                               | "Values given back")
//!  RecvHeld: a deferred send    | abandoned: that select looks again, or (accepted) its
//!                               | send gives the value back to the channel
//!  SendHeld: reserved room      | given back (`Chan::release_room`: to a waiting sender)
//!  SendHeld: a deferred send    | cancelled: the receiver waiting on it starts again
//! ```
//!
//! The `Select` is not generic, so typed state is boxed and type-erased (`Erased`); the
//! operation casts it back after checking that the handle it was given is the chosen
//! case's (one channel, one element type).

use std::sync::Arc;

use crate::chan::handoff::{Deferred, Handed};
use crate::chan::hchan::Chan;
use crate::chan::waiter::Entry;
use crate::chan::RecvError;

/// What a dynamic select holds for its chosen operation.
pub(super) enum Commit {
    /// Nothing: a closed channel (a send fails at once), a send on an unbounded channel
    /// (never full), or a send whose partner is a waiting future (futures are never
    /// reserved: waiter.rs, "Futures"), left for the operation.
    Later,
    /// A waiting plain peer (a sender's `Option<T>` holding its value, or a receiver's
    /// empty slot) claimed for us.
    Reserved(Reservation),
    /// Typed state: a receive case holds a `RecvHeld<T>`; a send case a `SendHeld<T>`.
    Held(Erased),
}

/// A reserved peer: dropped without being taken (the operation was dropped, or its
/// `recv`/`send` panicked on a misuse), it lets the peer go (`Waited::Retry`).
pub(super) struct Reservation(pub(super) Option<Entry>);

impl Reservation {
    pub(super) fn take(mut self) -> Entry {
        self.0.take().expect("a reservation is taken once")
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(e) = self.0.take() {
            e.release_now();
        }
    }
}

/// What a receive case holds.
pub(super) enum Held<T> {
    /// The result: received while parked (None in the slot: the channel closed), or taken
    /// at commit (a buffered value, a waiting future's value, the close).
    Value(Result<T, RecvError>),
    /// A deferred send (another dynamic select) we claimed: its value comes later.
    Deferred(Arc<Deferred<T>>),
}

/// A receive case's `Held`, until `SelectedOperation::recv` takes it. Dropped with it, it
/// gives a received value back to the channel (to the next receiver, ahead of later
/// values: `Chan::put_back_locked`) and a deferred hand-off (`abandon`: handoff.rs).
pub(super) struct RecvHeld<T> {
    pub(super) held: Option<Held<T>>,
    chan: Arc<Chan<T>>,
}

impl<T> RecvHeld<T> {
    /// The commit of a receive case holding `held`.
    pub(super) fn commit(held: Held<T>, chan: &Arc<Chan<T>>) -> Commit {
        Commit::Held(Erased::new(RecvHeld {
            held: Some(held),
            chan: chan.clone(),
        }))
    }
}

impl<T> Drop for RecvHeld<T> {
    fn drop(&mut self) {
        let (v, counted) = match self.held.take() {
            Some(Held::Deferred(d)) => {
                // Abandoned: the sender looks again, or (if it had accepted) its send gives
                // the value to the channel; or else it is here already.
                if d.abandon() {
                    return;
                }
                match d.wait() {
                    Handed::Value(v) => (v, false),
                    Handed::Cancelled => return,
                }
            }
            // Counted as held when taken (hchan/recv.rs, "Held values").
            Some(Held::Value(Ok(v))) => (v, true),
            Some(Held::Value(Err(_))) | None => return,
        };
        self.chan.put_back(v, counted);
    }
}

/// A box of a type known to the case that made it (the `Select` is not generic).
pub(super) struct Erased {
    ptr: *mut (),
    drop: unsafe fn(*mut ()),
}

/// # Safety
/// `p` came from `Box::<X>::into_raw` and is dropped once.
unsafe fn drop_box<X>(p: *mut ()) {
    // SAFETY: function contract.
    drop(unsafe { Box::from_raw(p.cast::<X>()) });
}

impl Erased {
    pub(super) fn new<X>(x: X) -> Erased {
        Erased {
            ptr: Box::into_raw(Box::new(x)).cast(),
            drop: drop_box::<X>,
        }
    }

    /// # Safety
    /// `X` is the type `new` was called with.
    pub(super) unsafe fn take<X>(self) -> X {
        // SAFETY: function contract; `forget` keeps `Drop` from freeing it again.
        let b = unsafe { Box::from_raw(self.ptr.cast::<X>()) };
        std::mem::forget(self);
        *b
    }
}

impl Drop for Erased {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `drop` were made together by `new` and not taken.
        unsafe { (self.drop)(self.ptr) }
    }
}

/// What a send case holds, until `SelectedOperation::send` takes it.
pub(super) enum SendHold<T> {
    /// A deferred hand-off a receiver waits on. Dropped unfilled, it cancels (the receiver
    /// starts again).
    Deferred(Arc<Deferred<T>>),
    /// Room reserved in a buffered channel (`Chan::reserve_room`). Dropped unused, it is
    /// given back (`Chan::release_room`).
    Room(Arc<Chan<T>>),
}

/// A send case's `SendHold` (None once taken).
pub(super) struct SendHeld<T>(pub(super) Option<SendHold<T>>);

impl<T> Drop for SendHeld<T> {
    fn drop(&mut self) {
        match self.0.take() {
            Some(SendHold::Deferred(d)) => d.cancel(),
            Some(SendHold::Room(chan)) => chan.release_room(),
            None => {}
        }
    }
}
