//! The handle of a goroutine or plain thread: [`Thread`] (id, name, `unpark`) and
//! [`ThreadId`], as `std::thread` has them.
//!
//! The runtime owns this type because a `JoinHandle` (`spawn.rs`) carries one; the
//! `std::thread`-shaped façades (`gort::thread`, `gort::std::thread`) re-export it and
//! build `park`, `park_timeout` and `scope` on it. A goroutine's handle is its `GRef`, with
//! the user's token in `Goroutine::user_token`; a plain thread's is an `OsThread` made the
//! first time the thread asks for itself. Either way the token is separate from the park
//! primitive's (`park.rs`): gort's own blocking never consumes a user's `unpark`, and a
//! user's `unpark` is, to gort's blocking, only a spurious wake-up (park.rs rule 1).

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::goroutine::{self, GRef};
use super::park::{self, Unparker};
use super::thread_arc::ThreadArc;

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
    #[inline]
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

    /// Makes the token of `thread::park` available (std's `Thread::unpark`).
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

    /// Consumes the token `unpark` made available, if there is one (`thread::park`).
    #[inline]
    pub(crate) fn take_token(&self) -> bool {
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
#[inline]
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
