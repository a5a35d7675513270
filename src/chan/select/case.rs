//! A case of a `select!`: the [`SelectCase`] trait the select algorithm (`select/mod.rs`)
//! works through, and [`Case`], the one implementation, generic over the side of the
//! channel it waits on (`hchan/side.rs`): a `recv(..)` case is a [`RecvCase`], a
//! `send(..)` case a [`SendCase`].
//!
//! # The packet is the result
//! A case lives on the caller's stack; its `packet` is the `Option<T>` its entries point
//! to (waiter.rs, "Packets"): None for a receive, the value for a send. Every way a case
//! completes — at once (`try_complete`), under the all-locks pass (`try_complete_locked`,
//! then `finish`), or by a peer while it was parked (`selected`) — leaves the packet as the
//! side's packet convention says (a receive's holds what it got, a send's is empty once
//! sent; `hchan/side.rs`), so the result is read off the packet once, at the end
//! (`into_result`), and nothing else differs between the two directions here.
//!
//! A receive may meet a dynamic select's deferred send (`handoff.rs`), whose value comes
//! when that select's caller gives it: `try_complete` waits for it as its `Patience`
//! allows; under the locks it is only claimed (`deferred`), and `finish` waits after the
//! locks are released.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::chan::handoff::{Deferred, Handed, Patience};
use crate::chan::hchan::{Attempt, Chan, RecvSide, SendSide, Side, Version};
use crate::chan::waiter::{Context, Wakes};
use crate::chan::{Receiver, RecvError, SendError, Sender};

/// One case of a `select!`, as the select algorithm sees it. Implemented by [`Case`]; not
/// for use outside the macro.
#[doc(hidden)]
pub trait SelectCase {
    /// False if the operand was `None` (the case is off).
    fn is_on(&self) -> bool;
    /// A lock-free pre-check: false only if the operation surely cannot complete now.
    fn maybe_ready(&self) -> bool;
    /// True if the case is off, or its channel's version (`Chan::version`) is `v` and
    /// stable: the second half of `default`'s double look.
    fn unchanged(&self, v: &Version) -> bool;
    /// The version, whether the case is on, and whether it may be ready (`maybe_ready`),
    /// read in that order: the first half of `default`'s double look.
    fn look(&self) -> Look;
    /// Completes the operation if it can without waiting (but for a dynamic select's
    /// deferred value, which it waits for as `patience` allows).
    fn try_complete(&mut self, patience: Patience) -> bool;
    /// Leaves an entry for `cx` as case `index`; returns true (and leaves nothing) if the
    /// operation is ready now.
    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool;
    /// Called after a peer completed this case through its packet.
    fn selected(&mut self);
    /// The channel's address (the all-locks pass locks channels in address order).
    fn chan_addr(&self) -> usize;
    /// Locks the case's channel (all-locks pass).
    fn lock(&self);
    /// Unlocks the case's channel.
    ///
    /// # Safety
    /// The caller locked it with `lock`.
    unsafe fn unlock(&self);
    /// Completes the operation if it can without waiting; the caller holds the channel's
    /// lock (`lock`).
    ///
    /// # Safety
    /// The caller holds the lock of this case's channel.
    unsafe fn try_complete_locked(&mut self, wakes: &mut Wakes) -> bool;
    /// After the locks are released: finishes what `try_complete_locked` started (waits for
    /// a dynamic select's deferred value, as `patience` allows). False if that select
    /// dropped its operation or we gave up waiting.
    fn finish(&mut self, patience: Patience) -> bool;
}

/// What `SelectCase::look` saw.
#[doc(hidden)]
pub struct Look {
    pub(super) version: Version,
    pub(super) on: bool,
    pub(super) maybe_ready: bool,
}

/// A case on side `S` of a channel of `T` (module doc).
#[doc(hidden)]
pub struct Case<'a, T, S> {
    /// The channel; None if the case is off.
    chan: Option<&'a Arc<Chan<T>>>,
    /// The packet of its entries, and its result once completed (module doc).
    packet: Option<T>,
    /// A deferred send claimed under the all-locks pass, whose value `finish` waits for
    /// (receive cases only).
    deferred: Option<Arc<Deferred<T>>>,
    /// The case completed (`into_result` may read the packet).
    completed: bool,
    _side: PhantomData<S>,
}

/// A `recv(..)` case.
#[doc(hidden)]
pub type RecvCase<'a, T> = Case<'a, T, RecvSide>;

/// A `send(.., v)` case.
#[doc(hidden)]
pub type SendCase<'a, T> = Case<'a, T, SendSide>;

impl<'a, T, S> Case<'a, T, S> {
    #[inline]
    fn with(chan: Option<&'a Arc<Chan<T>>>, packet: Option<T>) -> Self {
        Case {
            chan,
            packet,
            deferred: None,
            completed: false,
            _side: PhantomData,
        }
    }

    /// The channel of a case that is on.
    #[inline]
    fn chan(&self) -> &'a Arc<Chan<T>> {
        self.chan.expect("case is on")
    }

    /// The packet of the completed case.
    #[inline]
    fn into_packet(self) -> Option<T> {
        assert!(self.completed, "select: case was selected");
        self.packet
    }
}

impl<'a, T> RecvCase<'a, T> {
    pub fn new(rx: Option<&'a Receiver<T>>) -> Self {
        Case::with(rx.map(|rx| &rx.chan), None)
    }

    /// The result of the selected case.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.into_packet().ok_or(RecvError)
    }
}

impl<'a, T> SendCase<'a, T> {
    pub fn new(tx: Option<&'a Sender<T>>, v: T) -> Self {
        Case::with(tx.map(|tx| &tx.chan), Some(v))
    }

    /// The result of the selected case.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        match self.into_packet() {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        }
    }
}

impl<T, S: Side> SelectCase for Case<'_, T, S> {
    #[inline]
    fn is_on(&self) -> bool {
        self.chan.is_some()
    }

    #[inline]
    fn maybe_ready(&self) -> bool {
        self.chan.is_some_and(|c| S::maybe_ready(c))
    }

    #[inline]
    fn unchanged(&self, v: &Version) -> bool {
        self.chan.map_or(true, |c| v.stable() && c.version() == *v)
    }

    #[inline]
    fn look(&self) -> Look {
        match self.chan {
            Some(c) => Look {
                version: c.version(),
                on: true,
                maybe_ready: S::maybe_ready(c),
            },
            None => Look {
                version: Version::default(),
                on: false,
                maybe_ready: false,
            },
        }
    }

    #[inline]
    fn try_complete(&mut self, patience: Patience) -> bool {
        self.completed = match S::try_packet(self.chan(), &mut self.packet) {
            Attempt::Done => true,
            Attempt::NotReady => false,
            Attempt::Deferred(d) => self.wait_deferred(d, patience),
        };
        self.completed
    }

    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool {
        let packet = std::ptr::addr_of_mut!(self.packet).cast();
        self.chan()
            .register_as::<S>(cx, index, true, false, false, || packet)
    }

    #[inline]
    fn selected(&mut self) {
        self.completed = true;
    }

    fn chan_addr(&self) -> usize {
        self.chan.map_or(0, |c| Arc::as_ptr(c) as usize)
    }

    fn lock(&self) {
        self.chan().lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: the caller locked it (trait contract).
        unsafe { self.chan().unlock_raw() }
    }

    unsafe fn try_complete_locked(&mut self, wakes: &mut Wakes) -> bool {
        let chan = self.chan();
        // SAFETY: the caller holds the lock (trait contract); the reference ends here.
        let inner = unsafe { chan.inner_locked() };
        self.completed = match S::try_packet_locked(chan, inner, &mut self.packet, wakes) {
            Attempt::Done => true,
            Attempt::NotReady => false,
            Attempt::Deferred(d) => {
                // Claimed: the case is chosen; its value is waited for in `finish`.
                self.deferred = Some(d);
                true
            }
        };
        self.completed
    }

    fn finish(&mut self, patience: Patience) -> bool {
        match self.deferred.take() {
            None => true,
            Some(d) => {
                self.completed = self.wait_deferred(d, patience);
                self.completed
            }
        }
    }
}

impl<T, S> Case<'_, T, S> {
    /// Waits for a claimed deferred send's value, as `patience` allows, into the packet.
    /// False if its select dropped the operation or we gave up waiting.
    fn wait_deferred(&mut self, d: Arc<Deferred<T>>, patience: Patience) -> bool {
        match d.wait_with(patience) {
            Some(Handed::Value(v)) => {
                self.packet = Some(v);
                true
            }
            Some(Handed::Cancelled) | None => false,
        }
    }
}
