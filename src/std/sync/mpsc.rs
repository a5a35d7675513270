//! std's `mpsc`: `gort::chan` behind std's names.
//!
//! `channel()` is a gort channel with no capacity limit and `sync_channel(n)` one of
//! capacity `n` (0: a rendezvous), so both park goroutines instead of threads and both can
//! be used in `gort::select!` through [`Receiver::as_gort`]. Semantics are std's, and all
//! follow from gort's channel: the last `Sender`/`SyncSender` to drop disconnects (receivers
//! drain what is buffered, then get `Disconnected`); when the `Receiver` is dropped, sends
//! fail with the value handed back, blocked senders wake, and the values still buffered are
//! dropped at once. The error types are std's own.

use std::fmt;
use std::time::Duration;

use crate::chan;

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// The sending half of [`channel`]: `send` never blocks. Cloneable, `Send` and `Sync`.
pub struct Sender<T> {
    /// The gort channel's sending end.
    inner: chan::Sender<T>,
}

/// The sending half of [`sync_channel`]: `send` parks while the buffer is full.
pub struct SyncSender<T> {
    /// The gort channel's sending end.
    inner: chan::Sender<T>,
}

/// The receiving half of a channel.
pub struct Receiver<T> {
    /// The gort channel's receiving end.
    inner: chan::Receiver<T>,
}

/// An asynchronous channel: sends never block (unbounded buffer), as std's `mpsc::channel`.
///
/// ```
/// use gort::std::sync::mpsc::{channel, TryRecvError};
/// use gort::std::thread;
///
/// let (tx, rx) = channel();
/// let sender = thread::spawn(move || tx.send(42).unwrap());
/// assert_eq!(rx.recv(), Ok(42));
/// sender.join().unwrap(); // its `tx` is dropped by then
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = chan::unbounded();
    (Sender { inner: tx }, Receiver { inner: rx })
}

/// A bounded channel of capacity `bound`: `send` parks while it is full; `bound == 0` makes
/// every send wait for a receiver (a rendezvous), as std's `mpsc::sync_channel`.
///
/// ```
/// use gort::std::sync::mpsc::{sync_channel, TrySendError};
///
/// let (tx, rx) = sync_channel(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let (tx, rx) = chan::chan(bound);
    (SyncSender { inner: tx }, Receiver { inner: rx })
}

impl<T> Sender<T> {
    /// Sends `t` (never blocks). `Err` hands it back if the `Receiver` is gone.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t).map_err(|e| SendError(e.0))
    }
}

impl<T> SyncSender<T> {
    /// Sends `t`, parking while the buffer is full (or, for a rendezvous channel, until a
    /// receiver takes it). `Err` hands it back if the `Receiver` is gone.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t).map_err(|e| SendError(e.0))
    }

    /// Sends `t` if that needs no wait: `Full(t)` if it would, `Disconnected(t)` if the
    /// `Receiver` is gone.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(t).map_err(|e| match e {
            chan::TrySendError::Full(v) => TrySendError::Full(v),
            chan::TrySendError::Closed(v) => TrySendError::Disconnected(v),
        })
    }
}

impl<T> Receiver<T> {
    /// Receives a value, parking while none is there. `Err` once every sender is gone and
    /// the buffer is drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner.recv().map_err(|_| RecvError)
    }

    /// Receives a value if one is ready: `Empty` if not, `Disconnected` once every sender is
    /// gone and the buffer is drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv().map_err(|e| match e {
            chan::TryRecvError::Empty => TryRecvError::Empty,
            chan::TryRecvError::Closed => TryRecvError::Disconnected,
        })
    }

    /// Like [`recv`](Receiver::recv), giving up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.inner.recv_timeout(timeout).map_err(|e| match e {
            chan::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
            chan::RecvTimeoutError::Closed => RecvTimeoutError::Disconnected,
        })
    }

    /// A blocking iterator: values until every sender is gone and the buffer is drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values ready now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// The gort receiver underneath, to use this channel in `gort::select!` or with gort's
    /// API (`len`, `recv_deadline`, ...). Not in std.
    pub fn as_gort(&self) -> &chan::Receiver<T> {
        &self.inner
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        SyncSender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Blocking iterator over a `&Receiver` (see [`Receiver::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

/// Non-blocking iterator over a `&Receiver` (see [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

/// Blocking iterator that owns its `Receiver` (`for v in rx`).
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
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
