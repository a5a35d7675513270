//! The runtime: goroutines, their stacks, and the M:N work-stealing scheduler.
//!
//! # Glossary (Go's terms)
//!
//! - **G** — a goroutine (`goroutine::Goroutine`): a coroutine on its own guarded stack.
//! - **P** — a processor (`processor::Processor`): the right to run goroutines, with a local
//!   run queue and a `runnext` slot. There are `max_procs` of them.
//! - **M** — a machine: an OS worker thread (`worker.rs`, `scheduler::Machine`) that runs
//!   goroutines while it holds a P.
//! - **sudog** — a goroutine waiting in a channel's queue; here any waiter holding an
//!   `Unparker` (`park.rs`).
//!
//! # Design
//!
//! ```text
//!                 spawn / unpark (on a worker)          unpark (off the runtime), overflow
//!                          |                                        |
//!                          v                                        v
//!   M0 --holds--> P0 [runnext][local queue 256] <--steal half-->  global queue (SegQueue)
//!   M1 --holds--> P1 [runnext][local queue 256]                     ^
//!                          |                                        | every 61st round
//!                          +----------------------------------------+
//! ```
//!
//! Goroutine states are in `goroutine.rs`, the park protocol in `park.rs`, the idle and wake
//! protocol in `scheduler.rs`, the search order in `worker.rs`, the hand-off of a P from a
//! stuck M to another in `machine.rs`, and the monitor that decides it in `sysmon.rs`.
//! Timers are part of this layer (Go's `runtime/time.go`): one heap per P in `timers.rs`,
//! run by the Ms as they schedule, on the clock of `clock.rs`; `gort::time` is a façade
//! over them.
//!
//! # Thread identity
//! A goroutine may resume on a different OS thread after any blocking point (channel
//! operation, lock, sleep, yield). Thread-locals and values tied to the OS thread (std's
//! `MutexGuard`, thread ids) must not be held across a blocking point. The exception the
//! runtime makes itself: a goroutine that blocks while unwinding a panic keeps its thread
//! (std's panic count is per thread; `goroutine::Goroutine::suspend`). That costs one OS
//! thread per goroutine blocked while unwinding, counted against the thread limit (the
//! thread exhaustion message names them: machine.rs), and such a goroutine runs without a
//! processor from its wake-up until its next suspend, also after a `catch_unwind` ends the
//! unwinding.

pub(crate) mod block_on;
pub(crate) mod cgroup;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod deadlock;
pub(crate) mod dump;
pub(crate) mod dump_json;
pub(crate) mod entry;
pub(crate) mod goroutine;
pub(crate) mod gref;
pub(crate) mod machine;
pub(crate) mod metrics;
pub(crate) mod output;
pub(crate) mod panic;
pub(crate) mod processor;
pub(crate) mod schedtrace;
pub(crate) mod scheduler;
pub(crate) mod signal;
pub(crate) mod spawn;
pub(crate) mod stack;
pub(crate) mod syscall;
pub(crate) mod sysmon;
pub(crate) mod thread_arc;
pub(crate) mod timers;
pub(crate) mod worker;

pub use block_on::block_on;
pub use config::{Config, ConfigError};
pub use dump::dump;
pub use dump_json::dump_json;
pub use metrics::{metrics, Histogram, Metrics};
pub use spawn::JoinFuture;
pub use spawn::{spawn, JoinHandle};
pub use syscall::{blocking, lock_os_thread, unlock_os_thread};

/// Goroutines and threads parked waiting for I/O (the deadlock detector's view of netpoll).
pub(crate) fn io_waiters() -> usize {
    crate::net::io_waiters()
}

/// Starts the runtime if it is not running yet.
pub(crate) fn ensure_started() {
    scheduler::get();
}

/// Number of goroutines that exist now (spawned and not finished), including the one running
/// `#[gort::main]` or `#[gort::test]`; the runtime's own threads are not counted.
pub fn num_goroutines() -> usize {
    scheduler::try_get().map_or(0, |s| s.num_goroutines())
}

/// The number of processors: how many goroutines run in parallel.
///
/// Before the runtime starts, the value it will start with (`Config`, `GORT_MAXPROCS`, or
/// the default: the CPUs this process may use, lowered to its cgroup CPU quota rounded up
/// and at least 2, as Go 1.25 does).
pub fn max_procs() -> usize {
    match scheduler::try_get() {
        Some(s) => s.nprocs,
        None => config::resolve().max_procs,
    }
}

/// Lets the other runnable goroutines run; the current one runs again later.
///
/// On a plain thread this is `std::thread::yield_now`. Safe Rust cannot be preempted: a
/// goroutine in a long loop without blocking points can call this to share its processor.
pub fn yield_now() {
    if !goroutine::yield_current() {
        std::thread::yield_now();
    }
}

/// The id of the current goroutine, or `None` on a plain thread.
pub fn goroutine_id() -> Option<u64> {
    goroutine::with_current(|g| g.id)
}
