//! Room reserved in a buffered channel by a dynamic `Select` that chose a send
//! (`select/dynamic`, "Committing"): the select holds the room until its caller sends into
//! it (`send_reserved`) or drops the operation (`release_room`), so that the send never
//! finds the buffer full.
//!
//! # Invariants (under the lock)
//! - `Inner::reserved` counts the reservations; buffered values plus `reserved` never
//!   exceed `cap` (values put back by dropped receive futures aside), and every room check
//!   under the lock (`Chan::has_room`) counts them.
//! - While `reserved` is not 0 a ring's `tail` is FROZEN (`ring.rs`): every push comes to
//!   the lock, so none can take reserved room; pops go on (they only make room). The first
//!   reservation freezes it, the last one given up thaws it.

use std::sync::atomic::Ordering;

use super::send::TrySend;
use super::{Chan, Inner};
use crate::chan::waiter::Wakes;

impl<T> Chan<T> {
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
}
