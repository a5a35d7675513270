//! The send side of a channel: `send`, `try_send`, their under-the-lock cores, and what a
//! sender does for waiting receivers.
//!
//! A send gives its value, in this order: to the first waiting receiver (straight into its
//! packet, Go's `send` to a sudog), into room in the buffer (a ring's without the lock),
//! else it waits on `sendq` with the value in its packet (`Chan::wait_as`), or finds the
//! channel closed (or every Receiver gone) and hands the value back. A lock-free push that
//! finds receivers waiting on the empty ring pops the oldest value into the first one's
//! packet (`notify_locked`; module doc of `hchan`, "The ring and the waiters").
//!
//! `send` and `try_send` are `#[inline]` fast paths (a ring's lock-free push); what needs
//! the lock is out of line (`send_slow`, `serve_receivers`).
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Chan, Inner, RecvSide, SendSide};
use crate::chan::ring::{Pop, Push};
use crate::chan::waiter::{Entry, Waited, Wakes};

/// What an attempt to send found; the value comes back unless sent.
pub(crate) enum TrySend<T> {
    Sent,
    Full(T),
    Closed(T),
}

impl<T> Chan<T> {
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

    /// After a lock-free push: the Dekker check for receivers waiting on the empty ring.
    #[inline]
    fn after_push(&self) {
        if self.receivers_waiting.load(Ordering::SeqCst) {
            self.serve_receivers();
        }
    }

    #[cold]
    #[inline(never)]
    fn serve_receivers(&self) {
        #[cfg(test)]
        super::tests::pause_point(self as *const Self as usize);
        let mut wakes = Wakes::default();
        let mut inner = self.lock();
        self.notify_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
    }

    /// A value entered the ring and receivers may wait: serve them, and the senders their
    /// pops make room for (`Chan::serve_waiters`). (Under the lock; bounded channels.)
    fn notify_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) {
        self.serve_waiters::<RecvSide>(inner, wakes);
    }

    /// Pops the oldest value into the first waiting receiver's packet (`Chan::serve_first`);
    /// true if one was served. (Under the lock; bounded channels.)
    pub(super) fn serve_receiver_locked(&self, inner: &mut Inner<T>, wakes: &mut Wakes) -> bool {
        let r = self.ring.as_ref().expect("a bounded channel");
        self.serve_first::<RecvSide>(inner, wakes, |_, e| match r.pop(true) {
            Pop::Got(v) => {
                // SAFETY: `e` is claimed, so its packet (a waiting receiver's `Option<T>`,
                // None) is alive and ours to fill until it is completed.
                unsafe { self.fill_receiver(e, v) };
                true
            }
            Pop::Empty | Pop::Closed | Pop::Frozen => false,
        })
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
            unsafe { self.fill_receiver(&e, v) };
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
    pub(super) fn claim_receiver(&self, inner: &mut Inner<T>, wakes: &mut Wakes) -> Option<Entry> {
        if !self.receivers_waiting.load(Ordering::Relaxed) {
            return None;
        }
        let e = inner.recvq.claim_first(wakes);
        self.update_receivers_waiting(inner);
        e
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
            let Some(r) = self.wait_as::<SendSide>(inner, wakes, p, deadline) else {
                // Room came meanwhile: try again.
                v = packet.expect("an unclaimed send keeps its value");
                continue;
            };
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
}
