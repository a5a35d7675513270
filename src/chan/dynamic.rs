//! The dynamic [`Select`]: a select over operations chosen at run time, shaped like
//! crossbeam-channel's.
//!
//! `select*` commits to one operation, which the caller then performs with the returned
//! [`SelectedOperation`]; `ready*` only observes.
//!
//! # How `select` waits
//! It runs the `select!` algorithm (`select.rs`: look in random order, register on every
//! case in random order, park once), with entries that peers can complete as they would a
//! blocked `recv`/`send` — so that a dynamic select pairs with any other operation on the
//! opposite end, a `select!`, another dynamic select, a `try_send` or a `try_recv`, as Go's
//! selects pair:
//!
//! ```text
//!  case  | entry                                         | a peer that claims it
//!  ------+-----------------------------------------------+---------------------------------
//!  recv  | a real receiver: the packet is the case's     | writes its value into the slot
//!        | slot, inside the boxed case                   |
//!  send  | unbuffered: a real sender whose value comes   | records itself, completes the
//!        | later (`handoff::Deferred`)                   | select, waits for the value
//!        | buffered: an observer (null packet)           | wakes it to look again
//! ```
//!
//! # Committing
//! When a case can complete at once, `commit` makes it certain, under the channel lock, so
//! that the `SelectedOperation` never finds it gone (a competitor cannot take it between
//! `select()` and the operation):
//!
//! ```text
//!  case | what is ready              | the select holds                | dropped unperformed
//!  -----+----------------------------+---------------------------------+----------------------
//!  recv | a waiting plain sender     | it, reserved (claimed; it waits | released: it starts
//!       |                            | until completed, or released)   | again (Retry)
//!  recv | a buffered value, a        | the value (or the close), taken | the value goes back
//!       | waiting future, the close  | now                             | to the channel front
//!  recv | a deferred send (another   | its hand-off (the value comes   | abandoned: that
//!       | dynamic select)            | when its caller gives it)       | select sends plainly
//!  send | a waiting plain receiver   | it, reserved                    | released
//!  send | room in the buffer         | the room (`Chan::reserve_room`) | given back (to a
//!       |                            |                                 | blocked sender)
//!  send | the close; an unbounded    | nothing: the send fails / goes  | -
//!       | channel                    | in at once                      |
//!  send | a waiting future           | nothing (below)                 | -
//! ```
//!
//! A case completed while parked holds its result likewise (a received value, or a
//! receiver waiting on our deferred send). What is not held: futures are never reserved
//! (waiter.rs, "Futures"), so a send whose partner is a waiting `recv_async` is left for
//! the operation, which completes with it under the lock unless the future was dropped
//! meanwhile (then it sends as a plain `send` would, and may wait); and a receive that
//! met another dynamic select's send waits for that select's caller (if it drops its
//! operation, the receive starts again as a plain `recv`).
//!
//! # Safety
//! Entries point into the boxed cases (`RecvHandle::slot`) or to a `Deferred` the case
//! holds; the boxes live as long as the `Select` and only a `select*` call, which waits for
//! its context to be completed or aborted before returning, leaves entries. Once the context
//! is not WAITING nobody dereferences them (waiter.rs). A reserved peer's packet stays valid
//! because the peer waits for `done`. `SelectedOperation::recv`/`send` cast packets to the
//! element type of the handle they are given, after checking that its channel is the chosen
//! one (one channel, one element type).

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handoff::{Deferred, Handed};
use super::hchan::{take_from_sender, Chan, Inner, TryRecv};
use super::select::{block_forever, shuffle, OnDrop, Order};
use super::waiter::{Context, Entry, Waited, Wakes};
use super::{Receiver, RecvError, SendError, Sender};
use crate::runtime::park::WaitReason;

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
/// `select` waits until one operation can complete and commits to it; the returned
/// [`SelectedOperation`] performs it with `recv` or `send`, which should be called (a
/// dropped operation gives back what it held: a reserved peer goes, reserved room is freed,
/// a received value goes back to the channel, ahead of later values). A blocked `select` is
/// a waiting receiver or sender that any peer can meet: two dynamic selects on opposite ends
/// of one unbuffered channel pair up, as do a dynamic select and a `select!`, a `try_send`
/// or a `try_recv`. The select holds what it chose (a buffered value, reserved room in the
/// buffer, a reserved waiting peer), so the operation completes without waiting, however
/// long the caller takes and whatever competitors do meanwhile; the exceptions are a peer
/// that is an async future or another dynamic select (module doc, "Committing").
///
/// `ready` and its variants only observe: they return the index of an operation that was
/// ready and reserve nothing.
pub struct Select<'a> {
    cases: Vec<Option<Box<dyn DynCase + 'a>>>,
}

/// The operation a [`Select`] chose: complete it with `recv` or `send`.
#[must_use = "a selected operation must be completed with `recv` or `send`"]
pub struct SelectedOperation<'a> {
    /// The chosen case.
    index: usize,
    /// Its channel (checked against the handle passed to `recv`/`send`).
    addr: *const (),
    /// The chosen case is a send.
    is_send: bool,
    /// What the select holds for the operation.
    commit: Commit,
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
        self.cases.push(Some(Box::new(RecvHandle {
            rx: r,
            slot: UnsafeCell::new(None),
        })));
        self.cases.len() - 1
    }

    /// Adds a send; returns its index.
    pub fn send<T>(&mut self, s: &'a Sender<T>) -> usize {
        self.cases.push(Some(Box::new(SendHandle {
            tx: s,
            pending: UnsafeCell::new(None),
        })));
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
        self.run(Some(None), false)
            .map(|(i, _)| i)
            .ok_or(TryReadyError)
    }

    /// Waits until an operation is ready; returns its index. Blocks for ever if there are
    /// no operations.
    pub fn ready(&mut self) -> usize {
        self.run(None, false).expect("no deadline").0
    }

    /// Waits at most `timeout` for an operation to be ready.
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        self.ready_deadline(super::deadline_after(timeout))
    }

    /// Waits at most until `deadline` for an operation to be ready.
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        self.run(Some(Some(deadline)), false)
            .map(|(i, _)| i)
            .ok_or(ReadyTimeoutError)
    }

    /// Selects an operation that is ready now, if any.
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.select_inner(Some(None)).ok_or(TrySelectError)
    }

    /// Waits until an operation is ready and selects it.
    pub fn select(&mut self) -> SelectedOperation<'a> {
        self.select_inner(None).expect("no deadline")
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
        self.select_inner(Some(Some(deadline)))
            .ok_or(SelectTimeoutError)
    }

    fn select_inner(&mut self, wait: Option<Option<Instant>>) -> Option<SelectedOperation<'a>> {
        let (index, commit) = self.run(wait, true)?;
        let case = self.cases[index].as_ref().expect("case exists");
        Some(SelectedOperation {
            index,
            addr: case.addr(),
            is_send: case.is_send(),
            commit,
            _marker: PhantomData,
        })
    }

    fn case(&self, i: usize) -> &dyn DynCase {
        self.cases[i].as_deref().expect("enabled")
    }

    /// Go's all-locks check (as `select.rs`'s `locked_pass`): the first case in `order`
    /// that is ready (committed, if `commit`) with every channel locked at once, so that
    /// "none is ready" holds at one instant.
    fn locked_look(&self, order: &[usize], commit: bool) -> Option<(usize, Commit)> {
        let mut by_addr = Order::new(order.iter().copied());
        let by_addr = by_addr.as_mut();
        by_addr.sort_unstable_by_key(|&i| self.case(i).addr() as usize);
        let mut prev = std::ptr::null();
        for &i in by_addr.iter() {
            if self.case(i).addr() != prev {
                self.case(i).lock();
                prev = self.case(i).addr();
            }
        }
        let mut wakes = Wakes::default();
        let mut got = None;
        {
            // Unlocks even if a case panics under the locks (as `select.rs`'s `locked_pass`).
            let _unlock = OnDrop(|| {
                let mut prev = std::ptr::null();
                for &i in by_addr.iter() {
                    if self.case(i).addr() != prev {
                        // SAFETY: locked above, once per distinct channel.
                        unsafe { self.case(i).unlock() };
                        prev = self.case(i).addr();
                    }
                }
            });
            for &i in order {
                // SAFETY: every channel of the cases in `order` is locked (above).
                let r = unsafe {
                    if commit {
                        self.case(i).commit_locked(&mut wakes)
                    } else {
                        self.case(i)
                            .ready_locked(&mut wakes)
                            .then_some(Commit::Later)
                    }
                };
                if let Some(c) = r {
                    got = Some((i, c));
                    break;
                }
            }
        }
        wakes.run();
        got
    }

    /// The select. `wait`: None blocks, Some(None) does not wait, Some(Some(d)) waits
    /// until d. `commit`: `select*` (commit, real entries) or `ready*` (observe).
    fn run(&mut self, wait: Option<Option<Instant>>, commit: bool) -> Option<(usize, Commit)> {
        let mut order = Order::new((0..self.cases.len()).filter(|&i| self.cases[i].is_some()));
        let order = order.as_mut();
        let deadline = wait.flatten();
        loop {
            shuffle(order);
            for &i in order.iter() {
                let r = if commit {
                    self.case(i).commit()
                } else {
                    self.case(i).ready().then_some(Commit::Later)
                };
                if let Some(c) = r {
                    return Some((i, c));
                }
            }
            if wait == Some(None) {
                // One case: that look was one instant's truth; several: look again with
                // every channel locked.
                return if order.len() < 2 {
                    None
                } else {
                    self.locked_look(order, commit)
                };
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
                return self.locked_look(order, commit);
            }
            let cx = Context::new();
            let mut ready = false;
            for &i in order.iter() {
                if self.case(i).register(&cx, i, commit) {
                    ready = true;
                    break;
                }
            }
            if ready && cx.try_abort() {
                continue; // a case became ready while registering; our entries are stale
            }
            match cx.wait(WaitReason::Select, deadline) {
                Waited::Case(i) => {
                    if commit {
                        if let Some(c) = self.case(i).woken() {
                            return Some((i, c));
                        }
                    }
                    // An observer woken: the condition may hold now; look again.
                }
                Waited::Retry => {} // a reserving peer let us go
                Waited::Timeout => return None,
            }
        }
    }
}

impl SelectedOperation<'_> {
    /// The index of the selected operation.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes a selected receive. It never waits, unless the select was met by another
    /// dynamic select's send (whose value comes when that select's caller gives it; if it
    /// drops its operation instead, this one receives as a plain `recv`).
    ///
    /// # Panics
    /// If `r` is not the receiver of the selected operation, or the selected operation is a
    /// send. (Nothing is lost: what the select held goes back, as if the operation had been
    /// dropped.)
    pub fn recv<T>(mut self, r: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            self.addr == Arc::as_ptr(&r.chan).cast(),
            "SelectedOperation::recv: the receiver is not the selected operation's"
        );
        assert!(
            !self.is_send,
            "SelectedOperation::recv: the selected operation is a send"
        );
        match std::mem::replace(&mut self.commit, Commit::Later) {
            Commit::Reserved(res) => {
                let e = res.take();
                // SAFETY: `e` is a plain sender we reserved on this very channel (checked
                // above: its packet is an `Option<T>`); it waits for `done`.
                let v = unsafe { (*(e.packet as *mut Option<T>)).take() };
                e.complete_now();
                Ok(v.expect("a waiting sender holds its value"))
            }
            Commit::Held(h) => {
                // SAFETY: a receive case of this channel holds a `RecvHeld<T>` (the case
                // and the channel were checked above).
                let held = unsafe { h.take::<RecvHeld<T>>() }.held.take();
                match held.expect("held once") {
                    Held::Value(v) => v,
                    Held::Deferred(d) => match d.wait() {
                        Handed::Value(v) => Ok(v),
                        Handed::Cancelled => r.recv(),
                    },
                }
            }
            // (A receive always holds what it chose; kept for completeness.)
            Commit::Later => r.recv(),
        }
    }

    /// Completes a selected send. It never waits (the select holds a waiting receiver or
    /// reserved room for the value), except in the cases the type's doc names.
    ///
    /// # Panics
    /// If `s` is not the sender of the selected operation, or the selected operation is a
    /// receive (the reservation is let go, as if the operation had been dropped).
    pub fn send<T>(mut self, s: &Sender<T>, v: T) -> Result<(), SendError<T>> {
        assert!(
            self.addr == Arc::as_ptr(&s.chan).cast(),
            "SelectedOperation::send: the sender is not the selected operation's"
        );
        assert!(
            self.is_send,
            "SelectedOperation::send: the selected operation is a receive"
        );
        let v = match std::mem::replace(&mut self.commit, Commit::Later) {
            Commit::Reserved(res) => {
                let e = res.take();
                // SAFETY: `e` is a receiver we reserved on this very channel (checked above:
                // its packet is an `Option<T>`, None); it waits for `done`.
                unsafe { *(e.packet as *mut Option<T>) = Some(v) };
                e.complete_now();
                return Ok(());
            }
            Commit::Held(h) => {
                // SAFETY: a send case of this channel holds a `SendHeld<T>`.
                match unsafe { h.take::<SendHeld<T>>() }.0.take() {
                    Some(SendHold::Deferred(d)) => match d.fill(v) {
                        Ok(()) => return Ok(()),
                        Err(v) => v, // the receiver gave up: send the ordinary way
                    },
                    Some(SendHold::Room(chan)) => {
                        return chan.send_reserved(v).map_err(SendError);
                    }
                    None => unreachable!("held once"),
                }
            }
            Commit::Later => v,
        };
        match s.try_send(v) {
            Ok(()) => Ok(()),
            Err(super::TrySendError::Closed(v)) => Err(SendError(v)),
            Err(super::TrySendError::Full(v)) => s.send(v),
        }
    }
}

// An operation dropped without being completed (or whose `recv`/`send` panicked on a wrong
// handle) drops its `Commit`: a reserved peer is let go (it starts again), reserved room
// is given back, a deferred send is cancelled (the receiver waiting on it starts again), a
// received value goes back into the channel (`RecvHeld`'s drop).

/// What a dynamic select holds for its chosen operation.
enum Commit {
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
struct Reservation(Option<Entry>);

impl Reservation {
    fn take(mut self) -> Entry {
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
enum Held<T> {
    /// The result: received while parked (None in the slot: the channel closed), or taken
    /// at commit (a buffered value, a waiting future's value, the close).
    Value(Result<T, RecvError>),
    /// A deferred send (another dynamic select) we claimed: its value comes later.
    Deferred(Arc<Deferred<T>>),
}

/// A receive case's `Held`, until `SelectedOperation::recv` takes it. Dropped with it, it
/// gives a received value back to the channel (to the next receiver, ahead of later
/// values: `Chan::put_back_locked`) and a deferred sender its value (`abandon`).
struct RecvHeld<T> {
    held: Option<Held<T>>,
    chan: Arc<Chan<T>>,
}

impl<T> RecvHeld<T> {
    /// The commit of a receive case holding `held`.
    fn commit(held: Held<T>, chan: &Arc<Chan<T>>) -> Commit {
        Commit::Held(Erased::new(RecvHeld {
            held: Some(held),
            chan: chan.clone(),
        }))
    }
}

impl<T> Drop for RecvHeld<T> {
    fn drop(&mut self) {
        let v = match self.held.take() {
            Some(Held::Deferred(d)) => {
                // Give the sender its value back, or else it is here already.
                if d.abandon() {
                    return;
                }
                match d.wait() {
                    Handed::Value(v) => v,
                    Handed::Cancelled => return,
                }
            }
            Some(Held::Value(Ok(v))) => v,
            Some(Held::Value(Err(_))) | None => return,
        };
        let mut wakes = Wakes::default();
        let mut inner = self.chan.lock();
        let unreceivable = self.chan.put_back_locked(&mut inner, v, &mut wakes);
        drop(inner);
        wakes.run();
        drop(unreceivable); // every Receiver is gone: dropped, as buffered values are
    }
}

/// A box of a type known to the case that made it (the `Select` is not generic).
struct Erased {
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
    fn new<X>(x: X) -> Erased {
        Erased {
            ptr: Box::into_raw(Box::new(x)).cast(),
            drop: drop_box::<X>,
        }
    }

    /// # Safety
    /// `X` is the type `new` was called with.
    unsafe fn take<X>(self) -> X {
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

// ---------------------------------------------------------------------------------------
// The cases.

/// One operation of a dynamic [`Select`], type-erased.
trait DynCase {
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
struct RecvHandle<'a, T> {
    rx: &'a Receiver<T>,
    slot: UnsafeCell<Option<T>>,
}

/// A send case. `pending` is the deferred hand-off of its real entry on an unbuffered
/// channel.
struct SendHandle<'a, T> {
    tx: &'a Sender<T>,
    pending: UnsafeCell<Option<Arc<Deferred<T>>>>,
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
        TryRecv::Got(v) => Held::Value(Ok(v)),
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

    unsafe fn ready_locked(&self, wakes: &mut Wakes) -> bool {
        let chan = &self.rx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        chan.recv_ready_locked(unsafe { chan.inner_locked() }, None, false, wakes)
    }

    fn commit(&self) -> Option<Commit> {
        let chan = &self.rx.chan;
        if chan.surely_empty() {
            return None;
        }
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = recv_commit(chan, &mut inner, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    unsafe fn commit_locked(&self, wakes: &mut Wakes) -> Option<Commit> {
        let chan = &self.rx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        recv_commit(chan, unsafe { chan.inner_locked() }, wakes)
    }

    fn register(&self, cx: &Arc<Context>, index: usize, real: bool) -> bool {
        let chan = &self.rx.chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        // A real receiver about to wait makes "send ready" true for observers: tell them.
        let mut ready = chan.recv_ready_locked(&mut inner, Some(cx), real, &mut wakes);
        if !ready {
            let packet = if real {
                // SAFETY: no entry of ours is live (the select's previous context, if
                // any, is no longer WAITING), so nobody else touches the slot now.
                unsafe { *self.slot.get() = None };
                self.slot.get().cast()
            } else {
                std::ptr::null_mut()
            };
            inner.recvq.push(Entry::shared(cx, index, packet, false));
            ready = chan.mark_receivers_waiting();
        }
        drop(inner);
        wakes.run();
        ready
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
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = chan.send_ready_locked(&mut inner, None, false, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    unsafe fn ready_locked(&self, wakes: &mut Wakes) -> bool {
        let chan = &self.tx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        chan.send_ready_locked(unsafe { chan.inner_locked() }, None, false, wakes)
    }

    fn commit(&self) -> Option<Commit> {
        let chan = &self.tx.chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let r = send_commit(chan, &mut inner, &mut wakes);
        drop(inner);
        wakes.run();
        r
    }

    unsafe fn commit_locked(&self, wakes: &mut Wakes) -> Option<Commit> {
        let chan = &self.tx.chan;
        // SAFETY: the caller holds the lock (contract); the reference ends here.
        send_commit(chan, unsafe { chan.inner_locked() }, wakes)
    }

    fn register(&self, cx: &Arc<Context>, index: usize, real: bool) -> bool {
        let chan = &self.tx.chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let real = real && chan.cap == 0;
        let mut ready = chan.send_ready_locked(&mut inner, Some(cx), real, &mut wakes);
        if !ready {
            let packet = if real {
                let d = Deferred::<T>::new();
                let p = Arc::as_ptr(&d) as *mut ();
                // SAFETY: only this select (which is running, not waiting) touches
                // `pending`.
                unsafe { *self.pending.get() = Some(d) };
                p
            } else {
                std::ptr::null_mut()
            };
            inner.sendq.push(Entry::shared(cx, index, packet, real));
            ready = chan.mark_senders_waiting(&inner);
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn woken(&self) -> Option<Commit> {
        // SAFETY: our context is completed (Acquire on `done`); only we touch `pending`.
        let d = unsafe { (*self.pending.get()).take() }?;
        // Claimed by a receiver (it waits for our value), or else woken by close: look
        // again (the send then reports the closed channel).
        d.claimed()
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

/// What a send case holds, until `SelectedOperation::send` takes it.
enum SendHold<T> {
    /// A deferred hand-off a receiver waits on. Dropped unfilled, it cancels (the receiver
    /// starts again).
    Deferred(Arc<Deferred<T>>),
    /// Room reserved in a buffered channel (`Chan::reserve_room`). Dropped unused, it is
    /// given back (`Chan::release_room`).
    Room(Arc<Chan<T>>),
}

/// A send case's `SendHold` (None once taken).
struct SendHeld<T>(Option<SendHold<T>>);

impl<T> Drop for SendHeld<T> {
    fn drop(&mut self) {
        match self.0.take() {
            Some(SendHold::Deferred(d)) => d.cancel(),
            Some(SendHold::Room(chan)) => chan.release_room(),
            None => {}
        }
    }
}
