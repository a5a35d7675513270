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
//! protocol in `scheduler.rs`, the search order in `worker.rs` (which also polls the network,
//! `netpoll.rs`), the hand-off of a P from a stuck M to another in `machine.rs`, and the
//! monitor that decides it in `sysmon.rs`. Timers: one heap per P in `timers.rs`, run by
//! the Ms as they schedule, on the clock of `clock.rs`.
//!
//! # Layers
//!
//! The runtime is one layer, as Go's `runtime` package is: the scheduler, the goroutines and
//! their stacks, the park primitive, the timer heap and the network poller depend on each
//! other and live here. Everything else is a façade above it. **The runtime imports nothing
//! above it**: no `chan`, `sync`, `time`, `net`, `context` or `thread` (those import the
//! runtime; a runtime module that needs something of theirs gets its own version here, as
//! `clock.rs`, `handle.rs` and `scope.rs` are).
//!
//! ```text
//!  façades        chan/    select!, Select, channels        thread.rs, std/  std::thread shape
//!  (public API)   sync/    Mutex, WaitGroup, Once, ...      time/   sleep, after, Timer, Ticker
//!                 net/     sockets (socket core, surface)   context.rs      cancellation
//!                 local.rs goroutine_local!
//!                 block through runtime::park, poll through runtime::netpoll, spawn through
//!                 runtime::spawn
//!  ======================================================================================
//!  runtime/       entry, block_on, metrics, dump, dump_json,   program entry, async bridge,
//!                 schedtrace, deadlock                          what the runtime reports
//!                 spawn, handle, scope       spawning and joining; Thread; scoped spawns
//!                 park                       THE blocking primitive (goroutine or thread)
//!                 netpoll                    epoll: registration, readiness, who polls
//!                 timers                     the timer heaps, one per P (Go's time.go)
//!                 scheduler, worker, processor, machine, sysmon, syscall   G/P/M, hand-off
//!                 goroutine, gref, stack/, signal                 G, its memory, its stack
//!                 clock, config, cgroup, output, panic, thread_arc        leaf helpers
//! ```
//!
//! Inside the runtime the modules call each other freely (a goroutine parks through `park`,
//! which unparks through `goroutine`); the one-way rule is between the layers. The check:
//! `grep -rn "crate::\(chan\|sync\|time\|net\|context\|thread\)\b" src/runtime` finds
//! nothing but comments. One
//! upward edge is left outside that list: a goroutine carries its goroutine-local slots
//! (`crate::local::Slots`) and runs their destructors when it ends.
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
pub(crate) mod handle;
pub(crate) mod machine;
pub(crate) mod metrics;
pub(crate) mod netpoll;
pub(crate) mod output;
pub(crate) mod panic;
pub(crate) mod park;
pub(crate) mod processor;
pub(crate) mod schedtrace;
pub(crate) mod scheduler;
pub(crate) mod scope;
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
pub(crate) use netpoll::io_waiters;

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
