//! The dynamic [`Select`]: a select over operations chosen at run time, shaped like
//! crossbeam-channel's.
//!
//! `select*` commits to one operation, which the caller then performs with the returned
//! [`SelectedOperation`]; `ready*` only observes.
//!
//! ```text
//!  mod.rs     Select, SelectedOperation, their errors; the select loop (`run`)
//!  case.rs    the type-erased cases (DynCase): RecvHandle, SendHandle; what each commits to
//!  commit.rs  what a select holds for its chosen operation (Commit), given back if dropped
//! ```
//!
//! # How `select` waits
//! It runs the `select!` algorithm (`select/mod.rs`: look in random order, register on every
//! case in random order, park once; the same order, registration and all-locks pass), with
//! entries that peers can complete as they would a blocked `recv`/`send` — so that a
//! dynamic select pairs with any other operation on the opposite end, a `select!`, another
//! dynamic select, a `try_send` or a `try_recv`, as Go's selects pair:
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
//!       | dynamic select)            | when its caller gives it)       | select looks again,
//!       |                            |                                 | or its send gives
//!       |                            |                                 | the value back
//!  send | a waiting plain receiver   | it, reserved                    | released
//!  send | room in the buffer         | the room (`Chan::reserve_room`) | given back (to a
//!       |                            |                                 | blocked sender)
//!  send | the close; an unbounded    | nothing: the send fails / goes  | -
//!       | channel                    | in at once                      |
//!  send | a waiting future           | nothing (below)                 | -
//! ```
//!
//! A case completed while parked holds its result likewise (a received value, or a
//! receiver waiting on our deferred send). A receiver that claims our deferred send but
//! cannot wait (`try_recv`, `select!` with `default`, a timed receive at its deadline),
//! or whose operation is dropped, abandons it, one CAS deciding against our accepting it
//! (handoff.rs): abandoned first, we look at all our cases again; accepted first (our
//! `select()` returned the send), our `SelectedOperation::send` gives the value to the
//! channel for the next receiver, as that receive would have given it back
//! (`Chan::put_back`). The send never waits for a partner that is gone. What is not held: futures are never reserved
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

use super::locked::{locked_pass, LockedCases};
use super::order::{shuffle, Order};
use super::{no_cases, register_all};
use crate::chan::handoff::Handed;
use crate::chan::waiter::{Context, Waited, Wakes};
use crate::chan::{Receiver, RecvError, SendError, Sender};
use crate::runtime::park::WaitReason;
use case::{DynCase, RecvHandle, SendHandle};
use commit::{Commit, Held, RecvHeld, SendHeld, SendHold};

mod case;
mod commit;

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
/// that is an async future or another dynamic select (module doc, "Committing"). A
/// blocking receive that meets a blocked `select`'s send waits for that select's caller to
/// call `send`; one that cannot wait (`try_recv`, `select!` with `default`, a timed one at
/// its deadline) does not: it gives up, and the select either goes on waiting on all its
/// cases or, if it had already returned the send, its `send` gives the value to the
/// channel for the next receiver (it never blocks for want of the receiver that left).
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
        self.ready_deadline(crate::time::deadline_after(timeout))
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
        self.select_deadline(crate::time::deadline_after(timeout))
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

    /// Go's all-locks check (`select/locked.rs`): the first case in `order` that is ready
    /// (committed, if `commit`) with every channel locked at once, so that "none is ready"
    /// holds at one instant.
    fn locked_look(&self, order: &[usize], commit: bool) -> Option<(usize, Commit)> {
        locked_pass(
            &mut Looking {
                select: self,
                commit,
            },
            order,
        )
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
                no_cases(deadline);
                return None;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.locked_look(order, commit);
            }
            let cx = Context::new();
            if !register_all(&cx, order, |i| self.case(i).register(&cx, i, commit)) {
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

/// A dynamic select under the all-locks pass: commits to (`select*`) or observes
/// (`ready*`) the first ready case.
struct Looking<'s, 'a> {
    select: &'s Select<'a>,
    commit: bool,
}

impl LockedCases for Looking<'_, '_> {
    type Got = Commit;

    fn chan_addr(&self, i: usize) -> usize {
        self.select.case(i).addr() as usize
    }

    fn lock(&self, i: usize) {
        self.select.case(i).lock();
    }

    unsafe fn unlock(&self, i: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.select.case(i).unlock() }
    }

    unsafe fn try_locked(&mut self, i: usize, wakes: &mut Wakes) -> Option<Commit> {
        let case = self.select.case(i);
        // SAFETY: forwarded contract.
        unsafe {
            if self.commit {
                case.commit_locked(wakes)
            } else {
                case.ready_locked(wakes).then_some(Commit::Later)
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
                    Held::Value(v) => {
                        if v.is_ok() {
                            r.chan.release_held(); // consumed (it was counted: commit.rs)
                        }
                        v
                    }
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
                unsafe { s.chan.fill_receiver(&e, v) };
                e.complete_now();
                return Ok(());
            }
            Commit::Held(h) => {
                // SAFETY: a send case of this channel holds a `SendHeld<T>`.
                match unsafe { h.take::<SendHeld<T>>() }.0.take() {
                    Some(SendHold::Deferred(d)) => {
                        if let Err(v) = d.fill(v) {
                            // The receiver's operation was dropped after we paired: the
                            // value goes to the channel as that receive would give it back.
                            s.chan.put_back(v, false);
                        }
                        return Ok(());
                    }
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
            Err(crate::chan::TrySendError::Closed(v)) => Err(SendError(v)),
            Err(crate::chan::TrySendError::Full(v)) => s.send(v),
        }
    }
}
