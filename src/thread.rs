//! A `std::thread`-shaped facade over goroutines: port thread code by changing imports.
//!
//! ```
//! use gort::thread;
//! use std::time::Duration;
//!
//! let h = thread::Builder::new().name("worker".into()).spawn(|| {
//!     thread::sleep(Duration::from_millis(1));
//!     thread::current().name().map(str::to_owned)
//! }).unwrap();
//! assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
//!
//! let mut v = vec![1, 2, 3];
//! thread::scope(|s| {
//!     s.spawn(|| assert_eq!(v.len(), 3));
//! });
//! v.push(4);
//! ```
//!
//! This module is the Go-flavoured facade: std's shapes with gort's defaults, made for many
//! small goroutines (256 KiB stacks by default; `Builder::spawn` allocates the stack at once
//! so that running out is an `io::Error` there; [`ThreadId::goroutine_id`]). The exact std
//! mirror — std's 2 MiB default stack and `RUST_MIN_STACK`, lazily reserved, for code written
//! for OS threads — is [`gort::std::thread`](crate::std::thread). The two share every type
//! (`Thread`, `ThreadId`, `JoinHandle`, `Scope`, `ScopedJoinHandle`), so handles pass between
//! code written against either; only the defaults differ, which is why this module is kept
//! rather than made a re-export.
//!
//! Differences from std, all following from "a thread here is a goroutine":
//! - `current()` inside a goroutine is the goroutine; its `id()` is the goroutine id.
//! - Goroutines start with small committed stacks that grow on demand up to `stack_size`
//!   (default 256 KiB of reserved address space, `GORT_STACK_SIZE` or `Config::stack_size`
//!   to change), so `stack_size` is a reservation, not a cost.
//! - Thread-locals and OS-thread-bound values must not be held across blocking points: a
//!   goroutine may resume on another OS thread (see the crate docs).
//!
//! # Safety
//! Scoped goroutines borrow from the caller: `Scope::spawn` erases the closure's lifetime,
//! which is sound because `scope` does not return until every goroutine spawned in it has
//! finished and dropped its result (`ScopeData::running` reaches zero: runtime/scope.rs), as std's does.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::park::{self, WaitReason};
use crate::runtime::scope::ScopeData;
use crate::runtime::spawn::{spawn_unchecked, spawn_with, Options};

pub use crate::runtime::handle::{current, Thread, ThreadId};
pub use crate::runtime::spawn::{spawn, JoinHandle};
pub use crate::runtime::yield_now;
pub use crate::time::sleep;

/// Blocks until the current goroutine's (or thread's) token is made available by
/// [`Thread::unpark`]; like std's, it may also return spuriously.
pub fn park() {
    let me = current();
    if !me.take_token() {
        park::park(WaitReason::ThreadPark);
        me.take_token();
    }
}

/// Like [`park`], but returns after `dur` at the latest.
pub fn park_timeout(dur: Duration) {
    let me = current();
    if !me.take_token() {
        park::park_until(WaitReason::ThreadPark, crate::time::deadline_after(dur));
        me.take_token();
    }
}

/// Goroutine factory, shaped like `std::thread::Builder`.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown by `current().name()`, panics, dumps).
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Usable stack size in bytes, rounded up to a power of two, at least 16 KiB. Reserved
    /// address space; memory is committed only as the goroutine touches it, so 2 MiB (std's
    /// default) costs a goroutine no more memory than 256 KiB. Sizes beyond 1 TiB make
    /// `spawn` return an `io::Error`.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    fn options(self) -> Options {
        check_name(self.name.as_deref());
        Options {
            name: self.name,
            stack_size: self.stack_size,
            eager_stack: true,
        }
    }

    /// Spawns the goroutine.
    ///
    /// A stack size that cannot be honoured (more than 1 TiB, or more address space than the
    /// process may reserve) and running out of stacks (memory, or `vm.max_map_count` on
    /// kernels without `MADV_GUARD_INSTALL`) are an `io::Error` here rather than a failure
    /// later: the stack is taken at the call whenever it might not be had later.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_with(f, self.options())
    }

    /// Spawns a scoped goroutine (see [`scope`]).
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        scope.spawn_with(f, self.options())
    }
}

/// Panics as std's `Builder::spawn` does for a name that cannot be a C string (the name is
/// checked at spawn, not in `name`, as std does).
pub(crate) fn check_name(name: Option<&str>) {
    if let Some(n) = name {
        if n.as_bytes().contains(&0) {
            std::ffi::CString::new(n).expect("thread name may not contain interior null bytes");
        }
    }
}

/// A scope to spawn goroutines that borrow from the caller (see [`scope`]).
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    /// Stack size of goroutines spawned by `Scope::spawn` (None: the runtime's default;
    /// `gort::std::thread::scope` sets std's).
    stack_size: Option<usize>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// Owned permission to join a scoped goroutine.
pub struct ScopedJoinHandle<'scope, T> {
    handle: JoinHandle<T>,
    _scope: PhantomData<&'scope ()>,
}

/// Creates a scope in which goroutines may borrow non-`'static` data; every goroutine
/// spawned in it is joined before `scope` returns.
///
/// If a goroutine that was not joined panicked, `scope` panics after all have finished,
/// as `std::thread::scope` does. From a goroutine the wait parks only the goroutine.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    scope_with(f, None)
}

/// [`scope`] whose `Scope::spawn` gives goroutines `stack_size` (None: the runtime default).
#[track_caller]
pub(crate) fn scope_with<'env, F, T>(f: F, stack_size: Option<usize>) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData::new()),
        stack_size,
        scope: PhantomData,
        env: PhantomData,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    scope.data.wait();
    match result {
        Err(e) => std::panic::resume_unwind(e),
        Ok(_) if scope.data.a_goroutine_panicked() => {
            panic!("a scoped thread panicked")
        }
        Ok(r) => r,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a goroutine that may borrow from outside the scope.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`crate::spawn`]).
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let opts = Options {
            stack_size: self.stack_size,
            ..Options::default()
        };
        self.spawn_with(f, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    #[track_caller]
    pub(crate) fn spawn_with<F, T>(
        &'scope self,
        f: F,
        opts: Options,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.data.increment();
        // SAFETY: `scope` does not return before every goroutine spawned here has finished
        // and dropped its packet (running reaches 0), so the borrows outlive the goroutine.
        let r = unsafe { spawn_unchecked(f, opts, Some(self.data.clone())) };
        if r.is_err() {
            self.data.decrement(false);
        }
        r.map(|handle| ScopedJoinHandle {
            handle,
            _scope: PhantomData,
        })
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the goroutine; returns its value or its panic payload.
    pub fn join(self) -> std::thread::Result<T> {
        self.handle.join()
    }

    /// True once the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The goroutine's handle.
    pub fn thread(&self) -> &Thread {
        self.handle.thread()
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running())
            .finish_non_exhaustive()
    }
}
