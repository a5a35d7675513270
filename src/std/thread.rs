//! `gort::std::thread`: std's `thread` module, on goroutines.
//!
//! Every stable item of `std::thread` with std's signature. The types are `gort::thread`'s
//! (a [`Thread`] is a goroutine or a plain thread; a [`JoinHandle`] joins a goroutine), so
//! handles from either module mix. What this module adds is std's defaults: [`spawn`],
//! [`Builder`] and [`scope`] give each goroutine std's stack size — 2 MiB, or the
//! `RUST_MIN_STACK` environment variable, read once as std reads it — instead of gort's
//! smaller default, since code written for threads may recurse as deep as a thread allows.
//! The stack is address space reserved when the goroutine first runs and committed page by
//! page as it is touched, so an idle 2 MiB stack costs what a 256 KiB one does.
//!
//! `gort::thread` stays the Go-flavoured facade (gort's small default stacks; `Builder`
//! allocates the stack at `spawn` so running out of stacks is an `io::Error` right there;
//! `ThreadId::goroutine_id`): the same types, tuned for many small goroutines rather than for
//! code that was written for a few big threads.
//!
//! ```
//! use gort::std::thread;
//! use std::time::Duration;
//!
//! let h = thread::Builder::new()
//!     .name("worker".to_string())
//!     .spawn(|| {
//!         thread::sleep(Duration::from_millis(1));
//!         thread::current().name().map(str::to_owned)
//!     })
//!     .unwrap();
//! assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
//! ```
//!
//! Not provided: `JoinHandleExt` (`as_pthread_t`, `into_pthread_t`: a goroutine has no
//! pthread) and the unstable items (`sleep_until`, `current_id`, `add_spawn_hook`,
//! `Builder::no_hooks`, `Thread::{into_raw, from_raw}`, `ThreadId::as_u64`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::runtime::spawn::{spawn_unchecked, Options};

pub use crate::runtime::yield_now;
pub use crate::runtime::JoinHandle;
pub use crate::thread::{current, park, park_timeout, Scope, ScopedJoinHandle, Thread, ThreadId};
pub use crate::time::sleep;
pub use std::thread::{available_parallelism, panicking, AccessError, LocalKey, Result};

/// std's default stack size for spawned threads on Unix.
const DEFAULT_MIN_STACK: usize = 2 * 1024 * 1024;

/// The stack size of a goroutine spawned without `Builder::stack_size`: `RUST_MIN_STACK` if
/// set to a number, else 2 MiB — read once, as std does.
pub(crate) fn min_stack() -> usize {
    // 0: not read yet; otherwise the size + 1.
    static MIN: AtomicUsize = AtomicUsize::new(0);
    match MIN.load(Ordering::Relaxed) {
        0 => {
            let amt = std::env::var_os("RUST_MIN_STACK")
                .and_then(|s| s.to_str().and_then(|s| s.parse().ok()))
                .unwrap_or(DEFAULT_MIN_STACK);
            MIN.store(amt.saturating_add(1), Ordering::Relaxed);
            amt
        }
        n => n - 1,
    }
}

/// Spawns a goroutine with std's default stack size and returns its [`JoinHandle`]
/// (std's `thread::spawn`).
///
/// # Panics
/// "failed to spawn thread" if no stack can be had, as std's does.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

/// Creates a scope for goroutines that borrow from the caller; all are joined before it
/// returns (std's `thread::scope`). If one that was not joined panicked, `scope` panics
/// ("a scoped thread panicked") after all have finished.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    crate::thread::scope_with(f, Some(min_stack()))
}

/// Sleeps `ms` milliseconds (std's deprecated `sleep_ms`).
#[deprecated(since = "1.6.0", note = "replaced by `std::thread::sleep`")]
pub fn sleep_ms(ms: u32) {
    sleep(Duration::from_millis(u64::from(ms)))
}

/// Parks for at most `ms` milliseconds (std's deprecated `park_timeout_ms`).
#[deprecated(since = "1.6.0", note = "replaced by `std::thread::park_timeout`")]
pub fn park_timeout_ms(ms: u32) {
    park_timeout(Duration::from_millis(u64::from(ms)))
}

/// Goroutine factory with std's `thread::Builder` API and defaults.
#[derive(Debug, Default)]
pub struct Builder {
    /// Set by `name`.
    name: Option<String>,
    /// Set by `stack_size`; otherwise [`min_stack`].
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and std's default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine: `current().name()`, panic messages and goroutine dumps show it.
    /// A name containing a NUL byte makes `spawn` panic, as std's does.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// The stack size in bytes (rounded up to a power of two; over 1 TiB, `spawn` returns an
    /// error): reserved address space, committed only as the goroutine touches it.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    fn options(self) -> Options {
        crate::thread::check_name(self.name.as_deref());
        Options {
            name: self.name,
            stack_size: Some(self.stack_size.unwrap_or_else(min_stack)),
            // Reserved when the goroutine first runs (a spawn fails here only once stacks
            // have run out: then the runtime allocates at spawn to report it).
            eager_stack: false,
        }
    }

    /// Spawns the goroutine. `Err` if no stack can be had (memory or `vm.max_map_count`
    /// exhausted).
    ///
    /// # Panics
    /// If the name contains a NUL byte, as std's does.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: F and T are 'static, so nothing they borrow can end.
        unsafe { self.spawn_unchecked(f) }
    }

    /// Like [`spawn`](Builder::spawn) without the `'static` bounds (std's
    /// `Builder::spawn_unchecked`).
    ///
    /// # Safety
    /// As for std's: everything `f` and its result borrow must outlive the goroutine — the
    /// caller must join it (or otherwise know it has finished) before those borrows end.
    #[track_caller]
    pub unsafe fn spawn_unchecked<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // SAFETY: the caller's contract above is `spawn_unchecked`'s.
        unsafe { spawn_unchecked(f, self.options(), None) }
    }

    /// Spawns a goroutine in `scope` (see [`scope`]).
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
