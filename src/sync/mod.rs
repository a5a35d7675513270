//! Synchronisation primitives whose waiters park: a blocked goroutine frees its worker thread
//! for other goroutines, a blocked plain thread sleeps. Go's `sync` package, std-shaped where
//! std has the type, Go-named where it does not; no poisoning, no `Result`s.
//!
//! | type | Go | notes |
//! |------|----|-------|
//! | [`Mutex<T>`] | `sync.Mutex` | one CAS to lock; spins briefly, then parks; starvation mode after 1 ms |
//! | [`RwLock<T>`] | `sync.RWMutex` | writers are not starved by a stream of readers |
//! | [`Condvar`] | `sync.Cond` | used with gort's `Mutex` |
//! | [`WaitGroup`] | `sync.WaitGroup` | clones share one counter; `go(f)` adds, spawns, dones |
//! | [`Once`], [`OnceLock<T>`], [`once_value`], [`once_func`] | `sync.Once`, `OnceValue`, `OnceFunc` | |
//! | [`Semaphore`] | `x/sync/semaphore` | weighted, FIFO, RAII permits |
//! | [`Barrier`] | — | reusable generations |
//! | [`ErrGroup<E>`] | `x/sync/errgroup` | first error, context cancellation, limit |
//!
//! # Design
//! Everything blocks through `runtime/park.rs` and nothing else. The shared pieces are a `Waiter`
//! (`waiter.rs`: one parked goroutine or thread in a queue, woken exactly once by whoever
//! dequeues it) and a counting semaphore with a FIFO queue (`sema.rs`, Go's
//! `runtime/sema.go`) under `Mutex`, `RwLock`, `WaitGroup` and `Once`. The queues' own locks
//! are std mutexes held only for queue surgery, never across a park or user code (park
//! rule 2), so a worker thread blocks on one for at most a few instructions.
//!
//! ```text
//!  src/sync/
//!    waiter.rs     Waiter: a parked goroutine/thread + its wake-up result
//!    sema.rs       Sema: counting semaphore + FIFO of Waiters (handoff for starvation mode)
//!    mutex.rs      RawMutex (state word + Sema) and Mutex<T>
//!    rwlock.rs     RwLock<T>: RawMutex for writers + reader/writer Semas (Go's RWMutex)
//!    condvar.rs    Condvar: FIFO of Waiters
//!    waitgroup.rs  WaitGroup: one u64 (counter | waiters) + Sema
//!    once.rs       Once, OnceLock, once_value, once_func: done flag + RawMutex
//!    semaphore.rs  Semaphore: weighted, FIFO, RAII permits
//!    barrier.rs    Barrier: generation count + Waiters
//!    errgroup.rs   ErrGroup: WaitGroup + first error + CancelHandle + Semaphore limit
//! ```
//!
//! # Thread identity
//! None of these guards is tied to the OS thread: holding a `MutexGuard` across a channel
//! operation or a sleep (after which the goroutine may run on another worker thread) is
//! fine, and the guard may even be sent to another goroutine. Std's guards are not like
//! this: do not hold a `std::sync::MutexGuard` across a gort blocking point.

mod barrier;
mod condvar;
mod errgroup;
mod mutex;
mod once;
mod rwlock;
pub(crate) mod sema;
mod semaphore;
pub(crate) mod waiter;
mod waitgroup;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use errgroup::ErrGroup;
pub use mutex::{Mutex, MutexGuard};
pub use once::{once_func, once_value, Once, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{OwnedPermit, Permit, Semaphore};
pub use waitgroup::WaitGroup;

use std::sync::atomic::{AtomicU8, Ordering};

/// Spinning rounds before parking (Go's `active_spin`).
const SPIN_ROUNDS: u32 = 4;
/// Pause instructions per round (Go's `active_spin_cnt`).
const SPIN_PAUSES: u32 = 30;

/// Whether spinning can help at all: more than one CPU and more than one processor.
/// 0 = not computed yet, 1 = no, 2 = yes.
static MULTICORE: AtomicU8 = AtomicU8::new(0);

/// Go's `sync_runtime_canSpin`: spin only a few rounds, only on a multi-core machine with
/// more than one processor, and only if this worker has nothing else to run (spinning would
/// delay the goroutine that holds the lock, if it is queued behind us).
#[inline]
pub(crate) fn can_spin(iter: u32) -> bool {
    if iter >= SPIN_ROUNDS {
        return false;
    }
    let mc = match MULTICORE.load(Ordering::Relaxed) {
        0 => {
            let yes = crate::max_procs() > 1
                && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
            MULTICORE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    };
    if !mc {
        return false;
    }
    match crate::runtime::machine::current_processor() {
        Some(p) => p.is_empty(),
        None => true,
    }
}

/// One spinning round.
#[inline]
pub(crate) fn spin() {
    for _ in 0..SPIN_PAUSES {
        std::hint::spin_loop();
    }
}
