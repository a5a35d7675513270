//! `ErrGroup<E>`: goroutines working on subtasks of one task, with the first error kept and
//! (optionally) a context cancelled on it (golang.org/x/sync/errgroup).
//!
//! A [`WaitGroup`] counts the tasks; the first `Err` is stored under a small lock and, for a
//! group made by [`ErrGroup::with_context`], cancels the group's context. `set_limit` bounds
//! the tasks in flight with a [`Semaphore`] whose owned permit travels with each task, so
//! `go` parks while the group is full (as Go's `Group.Go` blocks).
//!
//! Panics: a task that panics does not leave `wait` hanging: the panic is caught, its task
//! counts as finished (and cancels the context like an error), and `wait` re-raises the
//! first panic in the waiting goroutine after every task has finished, as x/sync/errgroup
//! has done since 2024.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use super::{OwnedPermit, Semaphore, WaitGroup};
use crate::context::{CancelHandle, Context};

/// A group of goroutines whose first error is returned by [`wait`](ErrGroup::wait).
///
/// Clones share the group (so a task can start more tasks).
///
/// ```
/// use gort::sync::ErrGroup;
/// let g = ErrGroup::new();
/// for i in 0..5 {
///     g.go(move || if i == 3 { Err(format!("task {i} failed")) } else { Ok(()) });
/// }
/// assert_eq!(g.wait(), Err("task 3 failed".to_string()));
/// ```
pub struct ErrGroup<E> {
    /// State shared with the tasks.
    shared: Arc<Shared<E>>,
}

struct Shared<E> {
    /// Counts running tasks.
    wg: WaitGroup,
    /// Tasks started and not finished (for set_limit's misuse check).
    active: AtomicUsize,
    /// The first error, until `wait` takes it.
    err: StdMutex<Option<E>>,
    /// The first panic payload, until `wait` re-raises it.
    panic: StdMutex<Option<Box<dyn Any + Send>>>,
    /// Cancels the group's context (with_context groups).
    cancel: Option<CancelHandle>,
    /// Bounds the tasks in flight (set_limit).
    limit: StdMutex<Option<Arc<Semaphore>>>,
}

impl<E> Clone for ErrGroup<E> {
    fn clone(&self) -> ErrGroup<E> {
        ErrGroup {
            shared: self.shared.clone(),
        }
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> ErrGroup<E> {
        ErrGroup::new()
    }
}

impl<E: Send + 'static> ErrGroup<E> {
    fn build(cancel: Option<CancelHandle>) -> ErrGroup<E> {
        ErrGroup {
            shared: Arc::new(Shared {
                wg: WaitGroup::new(),
                active: AtomicUsize::new(0),
                err: StdMutex::new(None),
                panic: StdMutex::new(None),
                cancel,
                limit: StdMutex::new(None),
            }),
        }
    }

    /// An empty group with no context and no limit.
    pub fn new() -> ErrGroup<E> {
        ErrGroup::build(None)
    }

    /// A group and a child of `ctx` that is cancelled the first time a task returns an error
    /// (or panics), or when `wait` returns, whichever comes first (Go's `WithContext`).
    ///
    /// ```
    /// use gort::context::Context;
    /// use gort::sync::ErrGroup;
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(50));
    /// let (g, ctx) = ErrGroup::with_context(&ctx);
    /// g.go(move || -> Result<(), String> {
    ///     gort::select! {
    ///         recv(ctx.done()) -> _ => Err(ctx.err().unwrap().to_string()),
    ///         recv(gort::time::after(Duration::from_secs(1))) -> _ => Ok(()),
    ///     }
    /// });
    /// assert_eq!(g.wait(), Err("context deadline exceeded".to_string()));
    /// ```
    pub fn with_context(ctx: &Context) -> (ErrGroup<E>, Context) {
        let (child, cancel) = ctx.with_cancel();
        (ErrGroup::build(Some(cancel)), child)
    }

    /// Limits the number of tasks running at once to `n`: `go` then parks while `n` tasks
    /// are running.
    ///
    /// # Panics
    /// If `n` is zero, or if tasks are running (as Go's `SetLimit`).
    pub fn set_limit(&self, n: usize) {
        assert!(
            n > 0,
            "errgroup: set_limit(0): the limit must be at least 1"
        );
        let active = self.shared.active.load(Ordering::SeqCst);
        assert!(
            active == 0,
            "errgroup: modify limit while {active} goroutines in the group are still active"
        );
        *self.shared.limit.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::new(Semaphore::new(n)));
    }

    fn limit(&self) -> Option<Arc<Semaphore>> {
        self.shared
            .limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` in a new goroutine. The first error any task returns is what `wait` returns;
    /// with a limit set, parks until a slot is free.
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let permit = self.limit().map(|s| s.acquire_owned());
        self.start(permit, f);
    }

    /// Like [`go`](ErrGroup::go), but only if the limit allows a new task right now; returns
    /// whether it started (Go's `TryGo`).
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let permit = match self.limit() {
            None => None,
            Some(s) => match s.try_acquire_owned() {
                Some(p) => Some(p),
                None => return false,
            },
        };
        self.start(permit, f);
        true
    }

    fn start<F>(&self, permit: Option<OwnedPermit>, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        struct Finish<E>(Arc<Shared<E>>);
        impl<E> Drop for Finish<E> {
            fn drop(&mut self) {
                self.0.active.fetch_sub(1, Ordering::SeqCst);
                self.0.wg.done();
            }
        }
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        self.shared.wg.add(1);
        let finish = Finish(self.shared.clone());
        crate::spawn(move || {
            let finish = finish;
            let r = catch_unwind(AssertUnwindSafe(f));
            drop(permit);
            let shared = &finish.0;
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let mut slot = shared.err.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                    drop(slot);
                    shared.cancel_ctx();
                }
                Err(p) => {
                    let mut slot = shared.panic.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.is_none() {
                        *slot = Some(p);
                    }
                    drop(slot);
                    shared.cancel_ctx();
                }
            }
        });
    }

    /// Parks until every task started so far has finished, then returns the first error
    /// (or `Ok`). Cancels the group's context. Re-raises the first panic of a task, if any.
    pub fn wait(&self) -> Result<(), E> {
        self.shared.wg.wait();
        self.shared.cancel_ctx();
        if let Some(p) = self
            .shared
            .panic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            resume_unwind(p);
        }
        match self
            .shared
            .err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<E> Shared<E> {
    fn cancel_ctx(&self) {
        if let Some(c) = &self.cancel {
            c.cancel();
        }
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
