//! `select`: wait on several channel operations, complete exactly one.
//!
//! The `select!` macro (go-macro/src/select.rs) expands to a call of [`__private::select`]
//! over its cases, each a [`__private::RecvCase`] or [`__private::SendCase`] on the caller's
//! stack. The algorithm is Go's `selectgo` with crossbeam's claim protocol (`waiter.rs`):
//!
//! 1. **Try**: visit the enabled cases in a random order and complete the first that can
//!    complete without waiting. A random permutation makes the choice among ready cases
//!    uniform. If none is ready: take `default` if there is one.
//! 2. **Register**: create one context and, in a random order, leave an entry on each case's
//!    wait queue. If a case turns out to be ready while registering, abort the context (its
//!    entries become stale) and start again at 1.
//! 3. **Park** once. The first peer to claim the context completes its case (moving the
//!    value through the case's packet) and wakes us. Entries on the other queues are stale
//!    from that moment; queues drop them lazily (`waiter.rs`), so no lock is taken to
//!    unregister.
//!
//! A select never pairs its own send with its own receive: a case's readiness check skips
//! entries of its own context, and peers only ever claim a context they do not own.
//!
//! [`Select`] is the dynamic form, shaped like crossbeam-channel's: it waits for
//! *readiness* through observer entries (null packet), then `SelectedOperation::recv` /
//! `send` performs the operation.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hchan::{Chan, TryRecv, TrySend};
use super::waiter::{Context, Entry, Wakes};
use super::{Receiver, RecvError, SendError, Sender};
use crate::park::{self, WaitReason};

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let x = 0u8;
        let seed = (&x as *const u8 as u64)
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64));
        seed | 1
    });
}

/// A fast thread-local pseudo-random number (xorshift64*); fairness, not cryptography.
#[inline]
fn rand_u64() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A random number below `n` (n < 2^32).
#[inline]
fn rand_below(n: usize) -> usize {
    (((rand_u64() >> 32) * n as u64) >> 32) as usize
}

/// Shuffles `order` (Fisher–Yates). Up to 20 elements draw from one 64-bit random number
/// (20! < 2^64), so a small select costs one RNG step.
#[inline]
fn shuffle(order: &mut [usize]) {
    let n = order.len();
    if n < 2 {
        return;
    }
    if n <= 20 {
        let mut r = rand_u64();
        for i in (1..n).rev() {
            let k = i as u64 + 1;
            let j = (r % k) as usize;
            r /= k;
            order.swap(i, j);
        }
    } else {
        for i in (1..n).rev() {
            let j = rand_below(i + 1);
            order.swap(i, j);
        }
    }
}

/// Case indices in a random order, on the stack for up to 16 cases.
struct Order {
    /// The indices, when there are at most 16.
    small: [usize; 16],
    /// The indices, when there are more.
    large: Vec<usize>,
    /// How many.
    len: usize,
}

impl Order {
    fn new(enabled: impl Iterator<Item = usize>) -> Order {
        let mut o = Order {
            small: [0; 16],
            large: Vec::new(),
            len: 0,
        };
        for i in enabled {
            if o.len < 16 {
                o.small[o.len] = i;
            } else {
                if o.large.is_empty() {
                    o.large.extend_from_slice(&o.small);
                }
                o.large.push(i);
            }
            o.len += 1;
        }
        o
    }

    fn as_mut(&mut self) -> &mut [usize] {
        if self.len <= 16 {
            &mut self.small[..self.len]
        } else {
            &mut self.large
        }
    }
}

/// Blocks the caller for ever (`select! {}`, or a select whose cases are all off).
pub(crate) fn block_forever() -> ! {
    loop {
        park::park(WaitReason::SelectNoCases);
    }
}

/// One case of a `select!`, as the select algorithm sees it. Implemented by `RecvCase` and
/// `SendCase`; not for use outside the macro.
#[doc(hidden)]
pub trait SelectCase {
    /// False if the operand was `None` (the case is off).
    fn is_on(&self) -> bool;
    /// A lock-free pre-check: false only if the operation surely cannot complete now.
    fn maybe_ready(&self) -> bool;
    /// Completes the operation if it can without waiting.
    fn try_complete(&mut self) -> bool;
    /// Leaves an entry for `cx` as case `index`; returns true (and leaves nothing) if the
    /// operation is ready now.
    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool;
    /// Called after a peer completed this case through its packet.
    fn selected(&mut self);
}

/// A `recv(..)` case.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: Option<&'a Receiver<T>>,
    packet: Option<T>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    pub fn new(rx: Option<&'a Receiver<T>>) -> Self {
        RecvCase {
            rx,
            packet: None,
            result: None,
        }
    }

    /// The result of the selected case.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result.expect("select: case was selected")
    }
}

impl<T> SelectCase for RecvCase<'_, T> {
    #[inline]
    fn is_on(&self) -> bool {
        self.rx.is_some()
    }

    #[inline]
    fn maybe_ready(&self) -> bool {
        self.rx.is_some_and(|rx| !rx.chan.surely_empty())
    }

    #[inline]
    fn try_complete(&mut self) -> bool {
        let chan = &self.rx.expect("case is on").chan;
        if chan.surely_empty() {
            return false;
        }
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = chan.try_recv_locked(&mut inner, &mut wakes);
        drop(inner);
        wakes.run();
        self.result = match r {
            TryRecv::Got(v) => Some(Ok(v)),
            TryRecv::Closed => Some(Err(RecvError)),
            TryRecv::Empty => return false,
        };
        true
    }

    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool {
        let chan = &self.rx.expect("case is on").chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let ready = chan.recv_ready_locked(&mut inner, Some(cx), true, &mut wakes);
        if !ready {
            inner.recvq.push(Entry {
                cx: cx.clone(),
                case: index,
                packet: std::ptr::addr_of_mut!(self.packet).cast(),
            });
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn selected(&mut self) {
        self.result = Some(self.packet.take().ok_or(RecvError));
    }
}

/// A `send(.., v)` case.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: Option<&'a Sender<T>>,
    packet: Option<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    pub fn new(tx: Option<&'a Sender<T>>, v: T) -> Self {
        SendCase {
            tx,
            packet: Some(v),
            result: None,
        }
    }

    /// The result of the selected case.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result.expect("select: case was selected")
    }
}

impl<T> SelectCase for SendCase<'_, T> {
    #[inline]
    fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    #[inline]
    fn maybe_ready(&self) -> bool {
        self.tx.is_some()
    }

    #[inline]
    fn try_complete(&mut self) -> bool {
        let chan = &self.tx.expect("case is on").chan;
        let v = self.packet.take().expect("a send case holds its value");
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = chan.try_send_locked(&mut inner, v, &mut wakes);
        drop(inner);
        wakes.run();
        self.result = match r {
            TrySend::Sent => Some(Ok(())),
            TrySend::Closed(v) => Some(Err(SendError(v))),
            TrySend::Full(v) => {
                self.packet = Some(v);
                return false;
            }
        };
        true
    }

    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool {
        let chan = &self.tx.expect("case is on").chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let ready = chan.send_ready_locked(&mut inner, Some(cx), true, &mut wakes);
        if !ready {
            inner.sendq.push(Entry {
                cx: cx.clone(),
                case: index,
                packet: std::ptr::addr_of_mut!(self.packet).cast(),
            });
            chan.mark_senders_waiting();
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn selected(&mut self) {
        self.result = Some(match self.packet.take() {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        });
    }
}

/// Runs a select over `cases`. Returns the completed case, or None if `default` was taken
/// (`has_default`) or `deadline` passed.
pub(crate) fn select(
    cases: &mut [&mut dyn SelectCase],
    has_default: bool,
    deadline: Option<Instant>,
) -> Option<usize> {
    // Fast pass: only the cases that may be ready, found without locks. With `default`
    // and nothing ready (Go's non-blocking select on empty channels) this is all we do.
    let mut maybe = Order::new((0..cases.len()).filter(|&i| cases[i].maybe_ready()));
    let maybe = maybe.as_mut();
    shuffle(maybe);
    for &i in maybe.iter() {
        if cases[i].try_complete() {
            return Some(i);
        }
    }
    if has_default {
        return None;
    }
    let mut order = Order::new((0..cases.len()).filter(|&i| cases[i].is_on()));
    let order = order.as_mut();
    loop {
        shuffle(order);
        for &i in order.iter() {
            if cases[i].try_complete() {
                return Some(i);
            }
        }
        if has_default {
            return None;
        }
        if order.is_empty() {
            match deadline {
                None => block_forever(),
                Some(d) => {
                    crate::time::sleep_until(d);
                    return None;
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let cx = Context::new();
        let mut ready = false;
        for &i in order.iter() {
            if cases[i].register(&cx, i) {
                ready = true;
                break;
            }
        }
        if ready && cx.try_abort() {
            continue; // a case became ready: try again (our entries are stale now)
        }
        let r = cx.wait(WaitReason::Select, deadline);
        Context::recycle(cx);
        return match r {
            Some(i) => {
                cases[i].selected();
                Some(i)
            }
            None => None,
        };
    }
}

/// Items the `select!` expansion uses. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    use std::time::Duration;

    use super::{Receiver, Sender};
    pub use super::{RecvCase, SelectCase, SendCase};

    /// Runs a select; see `select.rs`.
    #[inline]
    pub fn select(
        cases: &mut [&mut dyn SelectCase],
        has_default: bool,
        timeout: Option<Duration>,
    ) -> Option<usize> {
        let deadline = timeout.map(crate::time::deadline_after);
        super::select(cases, has_default, deadline)
    }

    /// Ends the borrows held by the cases that were not chosen (a plain function, so that
    /// lints about `drop` of non-`Drop` values stay quiet in user code).
    #[inline(always)]
    pub fn end<T>(_cases: T) {}

    /// `select! {}`.
    pub fn block_forever() -> ! {
        super::block_forever()
    }

    /// What a `recv(..)` operand may be: a Receiver, a reference to one, or an Option of
    /// either (None turns the case off).
    pub trait RecvOperand {
        /// The channel's element type.
        type Item;
        /// The receiver, or None if the case is off.
        fn receiver(&self) -> Option<&Receiver<Self::Item>>;
    }

    impl<T> RecvOperand for Receiver<T> {
        type Item = T;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<T>> {
            Some(self)
        }
    }

    impl<R: RecvOperand + ?Sized> RecvOperand for &R {
        type Item = R::Item;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<R::Item>> {
            (**self).receiver()
        }
    }

    impl<R: RecvOperand + ?Sized> RecvOperand for &mut R {
        type Item = R::Item;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<R::Item>> {
            (**self).receiver()
        }
    }

    impl<R: RecvOperand> RecvOperand for Option<R> {
        type Item = R::Item;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<R::Item>> {
            self.as_ref().and_then(|r| r.receiver())
        }
    }

    /// What a `send(..)` operand may be: a Sender, a reference to one, or an Option of
    /// either (None turns the case off).
    pub trait SendOperand {
        /// The channel's element type.
        type Item;
        /// The sender, or None if the case is off.
        fn sender(&self) -> Option<&Sender<Self::Item>>;
    }

    impl<T> SendOperand for Sender<T> {
        type Item = T;
        #[inline]
        fn sender(&self) -> Option<&Sender<T>> {
            Some(self)
        }
    }

    impl<S: SendOperand + ?Sized> SendOperand for &S {
        type Item = S::Item;
        #[inline]
        fn sender(&self) -> Option<&Sender<S::Item>> {
            (**self).sender()
        }
    }

    impl<S: SendOperand + ?Sized> SendOperand for &mut S {
        type Item = S::Item;
        #[inline]
        fn sender(&self) -> Option<&Sender<S::Item>> {
            (**self).sender()
        }
    }

    impl<S: SendOperand> SendOperand for Option<S> {
        type Item = S::Item;
        #[inline]
        fn sender(&self) -> Option<&Sender<S::Item>> {
            self.as_ref().and_then(|s| s.sender())
        }
    }

    /// `recv(op)`: the case for operand `op`.
    #[inline]
    pub fn recv_case<O: RecvOperand + ?Sized>(op: &O) -> RecvCase<'_, O::Item> {
        RecvCase::new(op.receiver())
    }

    /// `send(op, v)`: the case for operand `op` and value `v`.
    #[inline]
    pub fn send_case<O: SendOperand + ?Sized>(op: &O, v: O::Item) -> SendCase<'_, O::Item> {
        SendCase::new(op.sender(), v)
    }
}

// ---------------------------------------------------------------------------------------
// The dynamic Select.

/// One operation of a dynamic [`Select`], type-erased.
trait DynCase {
    /// Is the operation ready now (without performing it)?
    fn ready(&self) -> bool;
    /// Leaves an observer for `cx` as case `index`; true (and nothing left) if ready now.
    fn observe(&self, cx: &Arc<Context>, index: usize) -> bool;
    /// The channel's address (to check `SelectedOperation::recv`/`send` arguments).
    fn addr(&self) -> *const ();
}

struct RecvHandle<'a, T>(&'a Receiver<T>);
struct SendHandle<'a, T>(&'a Sender<T>);

fn chan_addr<T>(c: &Arc<Chan<T>>) -> *const () {
    Arc::as_ptr(c).cast()
}

impl<T> DynCase for RecvHandle<'_, T> {
    fn ready(&self) -> bool {
        let chan = &self.0.chan;
        if chan.surely_empty() {
            return false;
        }
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = chan.recv_ready_locked(&mut inner, None, false, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    fn observe(&self, cx: &Arc<Context>, index: usize) -> bool {
        let chan = &self.0.chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let ready = chan.recv_ready_locked(&mut inner, Some(cx), false, &mut wakes);
        if !ready {
            inner.recvq.push(Entry {
                cx: cx.clone(),
                case: index,
                packet: std::ptr::null_mut(),
            });
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn addr(&self) -> *const () {
        chan_addr(&self.0.chan)
    }
}

impl<T> DynCase for SendHandle<'_, T> {
    fn ready(&self) -> bool {
        let chan = &self.0.chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = chan.send_ready_locked(&mut inner, None, false, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    fn observe(&self, cx: &Arc<Context>, index: usize) -> bool {
        let chan = &self.0.chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let ready = chan.send_ready_locked(&mut inner, Some(cx), false, &mut wakes);
        if !ready {
            inner.sendq.push(Entry {
                cx: cx.clone(),
                case: index,
                packet: std::ptr::null_mut(),
            });
            chan.mark_senders_waiting();
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn addr(&self) -> *const () {
        chan_addr(&self.0.chan)
    }
}

/// A select over operations chosen at run time (a fan-in of N channels), shaped like
/// crossbeam-channel's `Select`.
///
/// ```
/// use gort::chan;
/// use gort::chan::Select;
/// let chans: Vec<_> = (0..4).map(|_| chan::<usize>(1)).collect();
/// chans[2].0.send(42).unwrap();
/// let mut sel = Select::new();
/// for (_, rx) in &chans {
///     sel.recv(rx);
/// }
/// let op = sel.select();
/// let i = op.index();
/// assert_eq!(i, 2);
/// assert_eq!(op.recv(&chans[i].1), Ok(42));
/// ```
///
/// `select` waits until one operation is *ready*; the returned [`SelectedOperation`] then
/// performs it with `recv` or `send`. If another goroutine completes a competing operation
/// first (several receivers on one channel), that call waits as a plain `recv`/`send` would.
/// Two dynamic selects waiting on opposite ends of the same unbuffered channel do not see
/// each other as ready (neither has committed to a value): use `select!` for that.
pub struct Select<'a> {
    cases: Vec<Option<Box<dyn DynCase + 'a>>>,
}

/// The operation a [`Select`] chose: complete it with `recv` or `send`.
#[must_use = "a selected operation must be completed with `recv` or `send`"]
pub struct SelectedOperation<'a> {
    index: usize,
    addr: *const (),
    _marker: PhantomData<&'a ()>,
}

/// `Select::try_select` found no operation ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrySelectError;
/// `Select::select_timeout` timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectTimeoutError;
/// `Select::try_ready` found no operation ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryReadyError;
/// `Select::ready_timeout` timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyTimeoutError;

impl fmt::Display for TrySelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("all operations in select would block")
    }
}
impl fmt::Display for SelectTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting on select")
    }
}
impl fmt::Display for TryReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("all operations in select would block")
    }
}
impl fmt::Display for ReadyTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting on select")
    }
}
impl std::error::Error for TrySelectError {}
impl std::error::Error for SelectTimeoutError {}
impl std::error::Error for TryReadyError {}
impl std::error::Error for ReadyTimeoutError {}

impl Default for Select<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.iter().filter(|c| c.is_some()).count())
            .finish()
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish()
    }
}

impl<'a> Select<'a> {
    /// An empty select.
    pub fn new() -> Select<'a> {
        Select { cases: Vec::new() }
    }

    /// Adds a receive; returns its index.
    pub fn recv<T>(&mut self, r: &'a Receiver<T>) -> usize {
        self.cases.push(Some(Box::new(RecvHandle(r))));
        self.cases.len() - 1
    }

    /// Adds a send; returns its index.
    pub fn send<T>(&mut self, s: &'a Sender<T>) -> usize {
        self.cases.push(Some(Box::new(SendHandle(s))));
        self.cases.len() - 1
    }

    /// Removes the operation with `index` (added earlier and not yet removed).
    ///
    /// # Panics
    /// If there is no such operation.
    pub fn remove(&mut self, index: usize) {
        match self.cases.get_mut(index) {
            Some(c @ Some(_)) => *c = None,
            _ => panic!("Select::remove: no operation with index {index}"),
        }
    }

    /// The index of an operation that is ready now, if any.
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        self.ready_inner(Some(None)).ok_or(TryReadyError)
    }

    /// Waits until an operation is ready; returns its index. Blocks for ever if there are
    /// no operations.
    pub fn ready(&mut self) -> usize {
        self.ready_inner(None).expect("no deadline")
    }

    /// Waits at most `timeout` for an operation to be ready.
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        self.ready_deadline(super::deadline_after(timeout))
    }

    /// Waits at most until `deadline` for an operation to be ready.
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        self.ready_inner(Some(Some(deadline)))
            .ok_or(ReadyTimeoutError)
    }

    /// Selects an operation that is ready now, if any.
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.try_ready()
            .map(|i| self.selected(i))
            .map_err(|_| TrySelectError)
    }

    /// Waits until an operation is ready and selects it.
    pub fn select(&mut self) -> SelectedOperation<'a> {
        let i = self.ready();
        self.selected(i)
    }

    /// Waits at most `timeout` for an operation.
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_deadline(super::deadline_after(timeout))
    }

    /// Waits at most until `deadline` for an operation.
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.ready_deadline(deadline)
            .map(|i| self.selected(i))
            .map_err(|_| SelectTimeoutError)
    }

    fn selected(&self, index: usize) -> SelectedOperation<'a> {
        SelectedOperation {
            index,
            addr: self.cases[index].as_ref().expect("case exists").addr(),
            _marker: PhantomData,
        }
    }

    /// `wait`: None blocks, Some(None) does not wait, Some(Some(d)) waits until d.
    fn ready_inner(&mut self, wait: Option<Option<Instant>>) -> Option<usize> {
        let mut order = Order::new((0..self.cases.len()).filter(|&i| self.cases[i].is_some()));
        let order = order.as_mut();
        let deadline = wait.flatten();
        loop {
            shuffle(order);
            for &i in order.iter() {
                if self.cases[i].as_ref().expect("enabled").ready() {
                    return Some(i);
                }
            }
            if wait == Some(None) {
                return None;
            }
            if order.is_empty() {
                match deadline {
                    None => block_forever(),
                    Some(d) => {
                        crate::time::sleep_until(d);
                        return None;
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            let cx = Context::new();
            let mut ready = false;
            for &i in order.iter() {
                if self.cases[i].as_ref().expect("enabled").observe(&cx, i) {
                    ready = true;
                    break;
                }
            }
            if ready && cx.try_abort() {
                continue;
            }
            // Woken: the observed condition may hold now; check again from the top.
            cx.wait(WaitReason::Select, deadline)?;
        }
    }
}

impl SelectedOperation<'_> {
    /// The index of the selected operation.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes a selected receive.
    ///
    /// # Panics
    /// If `r` is not the receiver of the selected operation.
    pub fn recv<T>(self, r: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            self.addr == chan_addr(&r.chan),
            "SelectedOperation::recv: the receiver is not the selected operation's"
        );
        match r.try_recv() {
            Ok(v) => Ok(v),
            Err(super::TryRecvError::Closed) => Err(RecvError),
            Err(super::TryRecvError::Empty) => r.recv(),
        }
    }

    /// Completes a selected send.
    ///
    /// # Panics
    /// If `s` is not the sender of the selected operation.
    pub fn send<T>(self, s: &Sender<T>, v: T) -> Result<(), SendError<T>> {
        assert!(
            self.addr == chan_addr(&s.chan),
            "SelectedOperation::send: the sender is not the selected operation's"
        );
        match s.try_send(v) {
            Ok(()) => Ok(()),
            Err(super::TrySendError::Closed(v)) => Err(SendError(v)),
            Err(super::TrySendError::Full(v)) => s.send(v),
        }
    }
}
