//! What the `select!` expansion (go-macro/src/select.rs) calls, re-exported as
//! `gort::chan::__private`: the operands a case accepts, the cases, the select itself. Not
//! part of the public API; the names here are what the macro writes.

use std::time::Duration;

pub use super::case::{RecvCase, SelectCase, SendCase};
use crate::chan::{Receiver, Sender};

/// Runs a select (`select/mod.rs`).
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
