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
//! finished and dropped its result (`ScopeData::running` reaches zero), as std's does.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::goroutine::{self, GRef};
use crate::runtime::park::{self, Unparker, WaitReason};
use crate::runtime::spawn::{spawn_unchecked, spawn_with, Options};
use crate::runtime::thread_arc::ThreadArc;

pub use crate::runtime::spawn::{spawn, JoinHandle};
pub use crate::runtime::yield_now;
pub use crate::time::sleep;

/// A unique identifier of a goroutine or plain thread.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ThreadId(Kind);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Goroutine(u64),
    Thread(NonZeroU64),
}

impl ThreadId {
    /// The goroutine id, if this identifies a goroutine.
    pub fn goroutine_id(&self) -> Option<u64> {
        match self.0 {
            Kind::Goroutine(n) => Some(n),
            Kind::Thread(_) => None,
        }
    }
}

/// A handle to a goroutine or plain thread: its id, name, and `unpark`.
#[derive(Clone)]
pub struct Thread {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Goroutine(GRef),
    Os(Arc<OsThread>),
}

struct OsThread {
    id: NonZeroU64,
    name: Option<String>,
    token: AtomicBool,
    unparker: Unparker,
}

/// A plain thread's handle: a `ThreadArc`, not a `thread_local!`, so that `current()`,
/// `park` and `unpark` work in thread-local destructors too, as std's do.
static OS_THREAD: ThreadArc<OsThread> = ThreadArc::new(|| {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let std_thread = std::thread::current();
    Arc::new(OsThread {
        id: NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)).expect("non-zero"),
        name: std_thread.name().map(str::to_owned),
        token: AtomicBool::new(false),
        unparker: park::current(),
    })
});

impl Thread {
    pub(crate) fn for_goroutine(g: GRef) -> Thread {
        Thread {
            inner: Inner::Goroutine(g),
        }
    }

    /// The goroutine of a handle made by `for_goroutine`.
    pub(crate) fn goroutine(&self) -> &GRef {
        match &self.inner {
            Inner::Goroutine(g) => g,
            Inner::Os(_) => unreachable!("a JoinHandle's thread is a goroutine"),
        }
    }

    /// The id.
    pub fn id(&self) -> ThreadId {
        match &self.inner {
            Inner::Goroutine(g) => ThreadId(Kind::Goroutine(g.id)),
            Inner::Os(t) => ThreadId(Kind::Thread(t.id)),
        }
    }

    /// The name given by `Builder::name` (for goroutines) or std's thread name.
    pub fn name(&self) -> Option<&str> {
        match &self.inner {
            Inner::Goroutine(g) => g.name.as_deref().map(String::as_str),
            Inner::Os(t) => t.name.as_deref(),
        }
    }

    /// Makes the token of [`park`] available (std's `Thread::unpark`).
    pub fn unpark(&self) {
        match &self.inner {
            Inner::Goroutine(g) => {
                g.user_token.store(true, Ordering::Release);
                goroutine::unpark(g);
            }
            Inner::Os(t) => {
                t.token.store(true, Ordering::Release);
                t.unparker.unpark();
            }
        }
    }

    /// Internal state for debugging (park state, tokens). Not part of the API.
    #[doc(hidden)]
    pub fn debug_state(&self) -> String {
        match &self.inner {
            Inner::Goroutine(g) => format!(
                "goroutine {} park={} user_token={} reason={:?}",
                g.id,
                g.debug_park_state(),
                g.user_token.load(Ordering::SeqCst),
                g.wait_reason()
            ),
            Inner::Os(t) => format!("thread token={}", t.token.load(Ordering::SeqCst)),
        }
    }

    fn take_token(&self) -> bool {
        match &self.inner {
            Inner::Goroutine(g) => g.user_token.swap(false, Ordering::Acquire),
            Inner::Os(t) => t.token.swap(false, Ordering::Acquire),
        }
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// The current goroutine, or the current plain thread.
pub fn current() -> Thread {
    match goroutine::current() {
        Some(g) => Thread::for_goroutine(g),
        None => os_thread(),
    }
}

/// The current plain thread's handle (out of line: the goroutine path stays small).
#[cold]
#[inline(never)]
fn os_thread() -> Thread {
    Thread {
        inner: Inner::Os(OS_THREAD.with(Arc::clone)),
    }
}

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

/// What a scope's goroutines share with the scope's owner.
pub(crate) struct ScopeData {
    running: AtomicUsize,
    a_goroutine_panicked: AtomicBool,
    owner: Unparker,
}

impl ScopeData {
    /// Called when a scoped goroutine's result is dropped (it finished and was joined or not).
    pub(crate) fn decrement(&self, unhandled_panic: bool) {
        if unhandled_panic {
            self.a_goroutine_panicked.store(true, Ordering::Relaxed);
        }
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            self.owner.unpark();
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
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            a_goroutine_panicked: AtomicBool::new(false),
            owner: park::current(),
        }),
        stack_size,
        scope: PhantomData,
        env: PhantomData,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    while scope.data.running.load(Ordering::Acquire) != 0 {
        park::park(WaitReason::Join);
    }
    match result {
        Err(e) => std::panic::resume_unwind(e),
        Ok(_) if scope.data.a_goroutine_panicked.load(Ordering::Relaxed) => {
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
        self.data.running.fetch_add(1, Ordering::Relaxed);
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
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
