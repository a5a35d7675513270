//! Spawning goroutines and joining them.
//!
//! A spawn allocates the goroutine (no stack yet: it takes one when it first runs), wraps the
//! user's function so that a panic is caught and the result delivered to the `Packet`, and
//! makes it runnable (runnext of the spawner's processor, like Go's `newproc`).
//!
//! `Packet` protocol (one result, at most one waiting joiner):
//!
//! ```text
//!  state    | meaning                                   | next
//!  ---------+-------------------------------------------+-----------------------------------
//!  RUNNING  | no result yet, nobody waiting              | WAITING (joiner), DONE (goroutine)
//!  WAITING  | joiner stored its Unparker and parks       | DONE (goroutine wakes the joiner),
//!           |                                            | RUNNING (joiner gave up: timeout)
//!  DONE     | result written; readable by the joiner     | final
//! ```
//!
//! # Safety
//! `result` is written once by the goroutine before it moves the state to DONE (Release), and
//! read only by the joiner after it sees DONE (Acquire). `waiter` is written by the joiner
//! before it moves the state to WAITING and read by the goroutine only after it sees WAITING.

use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::goroutine::{Entry, Goroutine, Start};
use super::scheduler;
use super::stack;
use crate::park::{self, Unparker, WaitReason};
use crate::thread::{ScopeData, Thread};

const RUNNING: u8 = 0;
const WAITING: u8 = 1;
const DONE: u8 = 2;

/// Where a goroutine leaves its result for its joiner.
pub(crate) struct Packet<T> {
    state: AtomicU8,
    waiter: UnsafeCell<Option<Unparker>>,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
    /// The scope this goroutine belongs to (scoped spawns).
    scope: Option<Arc<ScopeData>>,
}

// SAFETY: the cells follow the protocol in the module comment; T crosses threads once.
unsafe impl<T: Send> Sync for Packet<T> {}

impl<T> Packet<T> {
    fn new(scope: Option<Arc<ScopeData>>) -> Packet<T> {
        Packet {
            state: AtomicU8::new(RUNNING),
            waiter: UnsafeCell::new(None),
            result: UnsafeCell::new(None),
            scope,
        }
    }

    fn complete(&self, r: std::thread::Result<T>) {
        // SAFETY: only the goroutine writes `result`, once, before DONE.
        unsafe { *self.result.get() = Some(r) };
        if self.state.swap(DONE, Ordering::AcqRel) == WAITING {
            // SAFETY: the joiner wrote `waiter` before WAITING and no longer touches it.
            if let Some(w) = unsafe { (*self.waiter.get()).take() } {
                w.unpark();
            }
        }
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Waits for the result until `deadline`. Returns false on timeout.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.is_done() {
            return true;
        }
        // SAFETY: state is RUNNING, so the goroutine does not read `waiter` until it sees
        // WAITING, which we store after this write.
        unsafe { *self.waiter.get() = Some(park::current()) };
        if self
            .state
            .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return true; // DONE meanwhile
        }
        loop {
            match deadline {
                None => park::park(WaitReason::Join),
                Some(d) => park::park_until(WaitReason::Join, d),
            }
            if self.is_done() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Err: DONE after all.
                return self
                    .state
                    .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                    .is_err();
            }
        }
    }

    /// Takes the result; only after `wait` returned true.
    fn take(&self) -> std::thread::Result<T> {
        debug_assert!(self.is_done());
        // SAFETY: DONE was observed with Acquire: the goroutine's write is visible and it
        // will not touch `result` again.
        unsafe { (*self.result.get()).take() }.expect("join result taken twice")
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        if let Some(scope) = &self.scope {
            let unhandled_panic = matches!(self.result.get_mut(), Some(Err(_)));
            // Drop the result before the scope is told: it may borrow from the scope.
            *self.result.get_mut() = None;
            scope.decrement(unhandled_panic);
        }
    }
}

/// An owned permission to join a goroutine (block until it finishes and take its result).
///
/// Dropping a `JoinHandle` detaches the goroutine: it goes on running, and if it panics, the
/// panic is still reported on stderr. Shaped like `std::thread::JoinHandle`.
pub struct JoinHandle<T> {
    task: Arc<dyn Joinable<T>>,
    thread: Thread,
}

impl<T> JoinHandle<T> {
    /// Waits for the goroutine to finish; returns its value, or the payload of its panic.
    ///
    /// From a goroutine this parks only the goroutine; from a plain thread it blocks the thread.
    pub fn join(self) -> std::thread::Result<T> {
        self.task.packet().wait(None);
        self.task.packet().take()
    }

    /// True once the goroutine has finished (returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.task.packet().is_done()
    }

    /// The goroutine's handle (id, name, `unpark`).
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Waits until `deadline`; `Err(self)` if the goroutine is still running then.
    #[doc(hidden)]
    pub fn join_deadline(self, deadline: Instant) -> Result<std::thread::Result<T>, Self> {
        if self.task.packet().wait(Some(deadline)) {
            Ok(self.task.packet().take())
        } else {
            Err(self)
        }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// How to spawn: what `thread::Builder` sets.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    /// Report a failure to get a stack to the caller (Builder spawns): the stack is taken
    /// at the call when it might not be had later (`stack::must_take_now`).
    pub(crate) eager_stack: bool,
}

/// A goroutine's body and its result packet in one allocation: the goroutine holds it as a
/// `dyn Run` (its entry), the `JoinHandle` as a `dyn Joinable<T>`.
struct Task<F, T> {
    /// The user's function; taken once, by the goroutine. Declared first so that it is
    /// dropped before `packet`, whose drop may tell a scope its borrows have ended.
    f: UnsafeCell<Option<F>>,
    packet: Packet<T>,
    id: u64,
}

// SAFETY: `f` is taken exactly once, by the goroutine that runs the task (the only caller of
// `Run::run`); `packet` follows its own protocol.
unsafe impl<F: Send, T: Send> Sync for Task<F, T> {}

/// A goroutine's entry, as the runtime sees it.
pub(crate) trait Run: Send + Sync {
    /// Runs the body (or reports that it could not start), then delivers the result.
    fn run(self: Arc<Self>, start: Start);
}

/// What a JoinHandle needs from a task.
trait Joinable<T>: Send + Sync {
    fn packet(&self) -> &Packet<T>;
}

impl<F: FnOnce() -> T + Send, T: Send> Run for Task<F, T> {
    fn run(self: Arc<Self>, start: Start) {
        // SAFETY: only the goroutine running the task calls `run`, once.
        let f = unsafe { (*self.f.get()).take() }.expect("a task runs once");
        let r = match start {
            Start::Run => catch_unwind(AssertUnwindSafe(f)),
            Start::Fail(e) => {
                drop(f);
                let msg = format!("goroutine {} could not start: {e}", self.id);
                eprintln!("{msg}");
                Err(Box::new(msg) as Box<dyn Any + Send>)
            }
        };
        scheduler::get().count_live(-1);
        self.packet.complete(r);
    }
}

impl<F: Send, T: Send> Joinable<T> for Task<F, T> {
    fn packet(&self) -> &Packet<T> {
        &self.packet
    }
}

/// Spawns a goroutine running `f`.
///
/// # Safety
/// Everything `f` and `T` borrow must outlive the goroutine (the caller joins it before the
/// borrows end, as `thread::scope` does). With `F: 'static, T: 'static` this always holds.
pub(crate) unsafe fn spawn_unchecked<'a, F, T>(
    f: F,
    opts: Options,
    scope: Option<Arc<ScopeData>>,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let sched = scheduler::get();
    let size = match opts.stack_size {
        Some(n) => stack::round_size(n)?,
        None => sched.stack_size,
    };
    // A spawn that must report a failure at the call takes its stack now if one might not
    // be had later (stack::must_take_now); otherwise the goroutine takes one from its
    // processor's cache when it first runs.
    let stack = if (opts.eager_stack && stack::must_take_now(size)) || stack::exhausted() {
        Some(stack::get(size)?)
    } else {
        None
    };
    let id = super::machine::new_goroutine_id(&sched.next_id);
    let task = Arc::new(Task {
        f: UnsafeCell::new(Some(f)),
        packet: Packet::new(scope),
        id,
    });
    let joinable: Arc<dyn Joinable<T> + 'a> = task.clone();
    let entry: Arc<dyn Run + 'a> = task;
    // SAFETY: only the lifetimes change; the caller guarantees the borrows outlive the
    // goroutine (this function's contract), and `T: 'a` outlives the handle's use.
    let (joinable, entry) = unsafe {
        (
            std::mem::transmute::<Arc<dyn Joinable<T> + 'a>, Arc<dyn Joinable<T>>>(joinable),
            std::mem::transmute::<Arc<dyn Run + 'a>, Entry>(entry),
        )
    };
    let g = Arc::new(Goroutine::new(
        id,
        opts.name.map(String::into_boxed_str),
        size,
        entry,
        stack,
    ));
    sched.count_live(1);
    super::dump::register(&g);
    let thread = Thread::for_goroutine(g.clone());
    scheduler::ready(g, true);
    Ok(JoinHandle {
        task: joinable,
        thread,
    })
}

/// Spawns a goroutine with options; the `'static` (safe) form.
pub(crate) fn spawn_with<F, T>(f: F, opts: Options) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: F and T are 'static, so nothing they borrow can end.
    unsafe { spawn_unchecked(f, opts, None) }
}

/// Spawns a new goroutine and returns a [`JoinHandle`] for it.
///
/// The goroutine starts on one of the runtime's worker threads (the runtime starts on first
/// use). It gets its stack when it first runs, so spawning is cheap and a million spawns
/// that finish quickly need only a handful of stacks.
///
/// # Panics
/// If no goroutine stack can be allocated (memory or address space is exhausted, or, on
/// kernels without `MADV_GUARD_INSTALL`, the `vm.max_map_count` limit is reached), with a
/// message that says what ran out and how to raise the limit — as `std::thread::spawn`
/// panics when it cannot create a thread. Use
/// [`thread::Builder::spawn`](crate::thread::Builder::spawn) to get an `io::Error` instead.
///
/// ```
/// let h = gort::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn_with(f, Options::default()) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}
