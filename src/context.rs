//! Cancellation trees with deadlines and values (Go's `context` package).
//!
//! A [`Context`] is an `Arc` to an immutable node with a link to its parent:
//!
//! ```text
//!  Background ── WithCancel ──┬── WithValue<User> ── WithTimeout(50ms)
//!  (never done)  (canceller)  └── WithCancel
//! ```
//!
//! Nodes made by `with_cancel` / `with_deadline` / `with_timeout` are *cancellers*: they own
//! the cancellation state (under one small lock): the error, the `done` channel (made on the
//! first `done()` call, as Go does lazily), the children to cancel with them, and the
//! deadline timer. Value nodes own nothing: `err`, `done` and `deadline` ask the nearest
//! canceller above them.
//!
//! Invariants and rules:
//! - Cancellation flows **down only**: cancelling a node cancels its registered children
//!   (with the same error: a child of a context that timed out reports `DeadlineExceeded`),
//!   never its parent. The first error wins; cancelling again does nothing.
//! - A canceller registers in its nearest canceller ancestor's `children` when created (or is
//!   cancelled at once if that ancestor already is), and removes itself when it is cancelled
//!   on its own, so a long-lived parent does not grow with short-lived children.
//! - The deadline timer is one entry in the runtime's timer heaps (`runtime::timers`), holding only
//!   a weak reference; an early cancel stops it (removes it from the heap).
//! - Locks: a node's lock is never held while another node's is taken; children are
//!   cancelled after the parent's lock is released.
//! - Every canceller is cancelled eventually, because dropping its [`CancelHandle`] cancels
//!   it; that is also what breaks the parent→child→parent reference cycle.
//!
//! **Beware** `let (ctx, _) = parent.with_cancel();`: `_` drops the handle at once, which
//! cancels `ctx` immediately. Bind it (`let (ctx, _cancel) = ...`) and keep it alive.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::chan;
use crate::chan::{Receiver, Sender};
use crate::runtime::timers::Timer;

/// Why a context was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Cancelled through a [`CancelHandle`] (or by dropping it). Displays as Go's
    /// `context canceled`.
    Canceled,
    /// Its deadline passed. Displays as Go's `context deadline exceeded`.
    DeadlineExceeded,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for ContextError {}

const NOT_CANCELED: u8 = 0;

fn err_code(e: ContextError) -> u8 {
    match e {
        ContextError::Canceled => 1,
        ContextError::DeadlineExceeded => 2,
    }
}

fn err_from(code: u8) -> Option<ContextError> {
    match code {
        1 => Some(ContextError::Canceled),
        2 => Some(ContextError::DeadlineExceeded),
        _ => None,
    }
}

/// A cancellation signal, a deadline and request-scoped values, passed down a call tree.
///
/// Contexts are cheap to clone (an `Arc`) and `Send + Sync`. Derive children with
/// [`with_cancel`](Context::with_cancel), [`with_timeout`](Context::with_timeout),
/// [`with_deadline`](Context::with_deadline) and [`with_value`](Context::with_value);
/// cancelling a context cancels all its descendants.
///
/// ```
/// use std::time::Duration;
/// use gort::context::{Context, ContextError};
///
/// let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(60));
/// let (child, _child_cancel) = ctx.with_cancel();
/// assert_eq!(child.err(), None);
/// cancel.cancel();
/// // done() is closed: a receive returns at once (usable in select!).
/// assert!(child.done().recv().is_err());
/// assert_eq!(child.err(), Some(ContextError::Canceled));
/// assert_eq!(child.err().unwrap().to_string(), "context canceled");
/// ```
#[derive(Clone)]
pub struct Context {
    /// This context's node.
    node: Arc<Node>,
}

/// Cancels its context: explicitly with [`cancel`](CancelHandle::cancel), or when dropped.
///
/// Dropping cancels, so `let (ctx, _) = parent.with_cancel();` cancels `ctx` at once: keep
/// the handle in a named binding (`_cancel`) for as long as the context should live.
#[must_use = "dropping a CancelHandle cancels its context at once"]
pub struct CancelHandle {
    /// The canceller node.
    node: Arc<Node>,
}

struct Node {
    /// The parent context (None for the background).
    parent: Option<Context>,
    /// What this node adds.
    kind: Kind,
}

enum Kind {
    /// The root: never cancelled, no deadline, no values.
    Background,
    /// One typed value.
    Value {
        /// The value's type (the key).
        type_id: TypeId,
        /// Its name, for Debug.
        type_name: &'static str,
        /// The value.
        value: Box<dyn Any + Send + Sync>,
    },
    /// A node that can be cancelled (with_cancel / with_deadline / with_timeout).
    Canceller(Canceller),
}

struct Canceller {
    /// The deadline, for with_deadline / with_timeout nodes.
    deadline: Option<Instant>,
    /// NOT_CANCELED or an error code; written under `state`'s lock, read without it.
    err: AtomicU8,
    /// Everything else about the cancellation.
    state: StdMutex<CancelState>,
}

#[derive(Default)]
struct CancelState {
    /// The done channel once somebody asked for it: the sender is taken and closed on cancel.
    done: Option<(Option<Sender<()>>, Receiver<()>)>,
    /// Cancellers registered below this one, by node address (kept alive by the entry).
    children: HashMap<usize, Arc<Node>>,
    /// The deadline timer, until it fires or the context is cancelled.
    timer: Option<Timer>,
}

impl Canceller {
    fn state(&self) -> StdGuard<'_, CancelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self) -> Option<ContextError> {
        err_from(self.err.load(Ordering::Acquire))
    }
}

fn addr(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

impl Node {
    /// The nearest canceller at or above this node.
    fn canceller(self: &Arc<Node>) -> Option<&Arc<Node>> {
        let mut n = self;
        loop {
            match &n.kind {
                Kind::Canceller(_) => return Some(n),
                Kind::Background => return None,
                Kind::Value { .. } => n = &n.parent.as_ref().expect("value has a parent").node,
            }
        }
    }

    fn as_canceller(&self) -> &Canceller {
        match &self.kind {
            Kind::Canceller(c) => c,
            _ => unreachable!("context: not a canceller"),
        }
    }
}

/// Cancels `node` (a canceller) with `err` and all its descendants; with `remove`, also takes
/// it out of its parent's children. Idempotent: the first error wins. Iterative (a work list,
/// not recursion), so a chain of a hundred thousand nested contexts cannot overflow a
/// goroutine's stack.
fn cancel(node: &Arc<Node>, err: ContextError, remove: bool) {
    let mut work: Vec<Arc<Node>> = Vec::new();
    if !cancel_one(node, err, &mut work) {
        return;
    }
    while let Some(child) = work.pop() {
        cancel_one(&child, err, &mut work);
    }
    if remove {
        if let Some(p) = node.parent.as_ref().and_then(|p| p.node.canceller()) {
            p.as_canceller().state().children.remove(&addr(node));
        }
    }
}

/// Cancels one node: records `err`, closes `done`, stops the timer, and moves its children
/// to `work`. Returns false if it was already cancelled.
fn cancel_one(node: &Arc<Node>, err: ContextError, work: &mut Vec<Arc<Node>>) -> bool {
    let c = node.as_canceller();
    let (children, tx, timer) = {
        let mut st = c.state();
        if c.err.load(Ordering::Relaxed) != NOT_CANCELED {
            return false;
        }
        c.err.store(err_code(err), Ordering::Release);
        let tx = st.done.as_mut().and_then(|(tx, _)| tx.take());
        (std::mem::take(&mut st.children), tx, st.timer.take())
    };
    if let Some(tx) = tx {
        tx.close();
    }
    drop(timer); // stops it: the heap keeps nothing of an early-cancelled context
    work.extend(children.into_values());
    true
}

impl Drop for Node {
    /// Unlinks the parent chain iteratively: dropping the last reference to the leaf of a
    /// long chain must not recurse once per ancestor.
    fn drop(&mut self) {
        let mut parent = self.parent.take();
        while let Some(p) = parent {
            match Arc::try_unwrap(p.node) {
                Ok(mut n) => parent = n.parent.take(), // `n` drops here with no parent left
                Err(_) => break,                       // still referenced elsewhere
            }
        }
    }
}

/// A channel that is never closed (Go's nil `Done()` of Background).
fn never() -> Receiver<()> {
    static NEVER: OnceLock<(Sender<()>, Receiver<()>)> = OnceLock::new();
    NEVER.get_or_init(|| chan::<()>(0)).1.clone()
}

impl Context {
    /// The root context: never cancelled, no deadline, no values. Go's
    /// `context.Background()`.
    pub fn background() -> Context {
        static BACKGROUND: OnceLock<Context> = OnceLock::new();
        BACKGROUND
            .get_or_init(|| Context {
                node: Arc::new(Node {
                    parent: None,
                    kind: Kind::Background,
                }),
            })
            .clone()
    }

    /// The same as [`background`](Context::background), for code that has not decided yet
    /// which context to use (Go's `context.TODO()`).
    pub fn todo() -> Context {
        Context::background()
    }

    fn new_canceller(&self, deadline: Option<Instant>) -> (Context, CancelHandle) {
        let node = Arc::new(Node {
            parent: Some(self.clone()),
            kind: Kind::Canceller(Canceller {
                deadline,
                err: AtomicU8::new(NOT_CANCELED),
                state: StdMutex::new(CancelState::default()),
            }),
        });
        // Register with the nearest canceller above, or follow it if it is already done.
        if let Some(p) = self.node.canceller() {
            let pc = p.as_canceller();
            let mut st = pc.state();
            match pc.err() {
                Some(err) => {
                    drop(st);
                    cancel(&node, err, false);
                }
                None => {
                    st.children.insert(addr(&node), node.clone());
                }
            }
        }
        (Context { node: node.clone() }, CancelHandle { node })
    }

    /// A child that is cancelled when the returned handle is cancelled or dropped, or when
    /// this context is. Go's `context.WithCancel`.
    ///
    /// Keep the handle: `let (ctx, _) = parent.with_cancel();` drops it, which cancels `ctx`
    /// at once.
    pub fn with_cancel(&self) -> (Context, CancelHandle) {
        self.new_canceller(None)
    }

    /// A child that is also cancelled, with [`ContextError::DeadlineExceeded`], at
    /// `deadline`. If this context's deadline is earlier, the child simply follows it.
    /// Go's `context.WithDeadline`.
    pub fn with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        if self.deadline().is_some_and(|d| d <= deadline) {
            return self.with_cancel(); // the parent's deadline comes first anyway
        }
        let (ctx, handle) = self.new_canceller(Some(deadline));
        if ctx.node.as_canceller().err().is_some() {
            return (ctx, handle);
        }
        if deadline <= Instant::now() {
            cancel(&ctx.node, ContextError::DeadlineExceeded, true);
            return (ctx, handle);
        }
        let weak: Weak<Node> = Arc::downgrade(&ctx.node);
        let timer = Timer::new(move || {
            if let Some(node) = weak.upgrade() {
                cancel(&node, ContextError::DeadlineExceeded, true);
            }
        });
        let c = ctx.node.as_canceller();
        let mut st = c.state();
        if c.err().is_none() {
            timer.start(deadline);
            st.timer = Some(timer);
        }
        drop(st);
        (ctx, handle)
    }

    /// `with_deadline(now + timeout)`. Go's `context.WithTimeout`.
    pub fn with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.with_deadline(d),
            None => self.with_cancel(),
        }
    }

    /// A child carrying `value`, found by its type with [`value`](Context::value). Use a
    /// dedicated type (a newtype) per key, as Go code uses an unexported key type.
    ///
    /// ```
    /// use gort::context::Context;
    /// #[derive(Debug, PartialEq)]
    /// struct RequestId(u64);
    /// let ctx = Context::background().with_value(RequestId(7));
    /// let (child, _cancel) = ctx.with_cancel();
    /// assert_eq!(child.value::<RequestId>(), Some(&RequestId(7)));
    /// assert_eq!(child.value::<String>(), None);
    /// ```
    pub fn with_value<V: Any + Send + Sync>(&self, value: V) -> Context {
        Context {
            node: Arc::new(Node {
                parent: Some(self.clone()),
                kind: Kind::Value {
                    type_id: TypeId::of::<V>(),
                    type_name: std::any::type_name::<V>(),
                    value: Box::new(value),
                },
            }),
        }
    }

    /// The nearest value of type `V` set on this context or its ancestors.
    pub fn value<V: Any + Send + Sync>(&self) -> Option<&V> {
        let mut n = &self.node;
        loop {
            if let Kind::Value { type_id, value, .. } = &n.kind {
                if *type_id == TypeId::of::<V>() {
                    return value.downcast_ref::<V>();
                }
            }
            n = &n.parent.as_ref()?.node;
        }
    }

    /// A channel that is closed when this context is cancelled, to use in `select!`
    /// (`recv(ctx.done()) -> _ => ...`); a receive on it returns `Err(RecvError)` once
    /// cancelled. Nothing is ever sent on it. For the background context it never closes.
    pub fn done(&self) -> Receiver<()> {
        let Some(n) = self.node.canceller() else {
            return never();
        };
        let c = n.as_canceller();
        let mut st = c.state();
        let (_, rx) = st.done.get_or_insert_with(|| {
            let (tx, rx) = chan::<()>(0);
            (Some(tx), rx)
        });
        let rx = rx.clone();
        if c.err().is_some() {
            if let Some((tx, _)) = st.done.as_mut() {
                if let Some(tx) = tx.take() {
                    tx.close();
                }
            }
        }
        rx
    }

    /// `None` while the context is live; why it was cancelled once it is (the first reason).
    pub fn err(&self) -> Option<ContextError> {
        self.node.canceller().and_then(|n| n.as_canceller().err())
    }

    /// True once the context is cancelled (`err().is_some()`).
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// The time at which this context will be cancelled with `DeadlineExceeded`, if any
    /// (the earliest deadline on the way to the root).
    pub fn deadline(&self) -> Option<Instant> {
        let mut n = &self.node;
        loop {
            if let Kind::Canceller(c) = &n.kind {
                if c.deadline.is_some() {
                    return c.deadline;
                }
            }
            n = &n.parent.as_ref()?.node;
        }
    }

    /// Number of cancellable children registered on this context's nearest canceller (a
    /// diagnostic used by the tests: cancelled children are removed).
    #[doc(hidden)]
    pub fn registered_children(&self) -> usize {
        self.node
            .canceller()
            .map_or(0, |n| n.as_canceller().state().children.len())
    }
}

impl CancelHandle {
    /// Cancels the context (and its descendants) with [`ContextError::Canceled`], unless it
    /// is already cancelled. Idempotent; safe from any goroutine or thread.
    pub fn cancel(&self) {
        cancel(&self.node, ContextError::Canceled, true);
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field(
                "context",
                &Context {
                    node: self.node.clone(),
                },
            )
            .finish()
    }
}

impl Default for Context {
    fn default() -> Context {
        Context::background()
    }
}

/// Go's `String()` form: `context.Background.WithCancel.WithValue(type)`.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chain = vec![&*self.node];
        while let Some(p) = &chain[chain.len() - 1].parent {
            chain.push(&p.node);
        }
        for n in chain.iter().rev() {
            match &n.kind {
                Kind::Background => f.write_str("context.Background")?,
                Kind::Value { type_name, .. } => write!(f, ".WithValue({type_name})")?,
                Kind::Canceller(c) => match c.deadline {
                    None => f.write_str(".WithCancel")?,
                    Some(d) => write!(
                        f,
                        ".WithDeadline({:?} left)",
                        d.saturating_duration_since(Instant::now())
                    )?,
                },
            }
        }
        Ok(())
    }
}
