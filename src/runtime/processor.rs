//! The processor (P): a local run queue, a `runnext` slot, and the caches a worker needs.
//!
//! - `runnext` holds the goroutine that runs next on this P: the one most recently woken or
//!   spawned by the running goroutine. Ping-pong and spawn-then-wait hand control over
//!   through it without touching a queue. A goroutine it displaces goes to the queue's tail.
//! - `queue` is a bounded MPMC ring (256). The owner pushes and pops; thieves pop too (half
//!   of it at a time). When it is full, half of it moves to the global queue (Go's
//!   `runqputslow`), so the owner never blocks on a full queue.
//! - `local` is used only by the thread that currently holds the P (an M), and only while that
//!   M is in the scheduler (phase SCHED, see machine.rs): its stack cache, scheduling tick and
//!   random source. A P in SCHED cannot be taken away, so this access is exclusive.
//!
//! # Safety
//! `runnext` stores `Arc::into_raw` pointers: whoever swaps a non-null pointer out owns that
//! reference and turns it back into a `GRef` exactly once. `local` follows the exclusive
//! holding rule above.

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::goroutine::{GRef, Goroutine};
use super::stack::StackCache;

/// Capacity of a processor's local run queue.
pub(crate) const LOCAL_QUEUE: usize = 256;

/// State touched only by the thread holding the processor.
pub(crate) struct Local {
    /// Free stacks (default size).
    pub(crate) stacks: StackCache,
    /// Random source for steal victims.
    pub(crate) rng: SmallRng,
}

/// A processor.
pub(crate) struct Processor {
    /// Index in the scheduler's processor table.
    pub(crate) id: usize,
    /// The goroutine to run next (`Arc::into_raw`), or null.
    runnext: AtomicPtr<Goroutine>,
    /// Runnable goroutines, in FIFO order.
    pub(crate) queue: ArrayQueue<GRef>,
    /// Counters (goroutines created and finished: the shards of `num_goroutines`; steals;
    /// scheduling latency), on cache lines of their own (metrics.rs).
    pub(crate) stats: super::metrics::ProcStats,
    /// Owner-only state (module safety notes).
    local: UnsafeCell<Local>,
    /// Owner M id and phase (machine.rs has the table); the hand-off protocol.
    pub(crate) state: AtomicU64,
    /// The M holding this processor (valid while `state` names it as owner).
    pub(crate) owner: AtomicPtr<super::machine::Machine>,
    /// Goroutine switches on this processor; sysmon watches it to spot a stuck M.
    pub(crate) schedtick: AtomicU32,
}

// SAFETY: `runnext` and `queue` are thread-safe; `local` is only accessed by the single
// thread holding the processor (module safety notes).
unsafe impl Sync for Processor {}
// SAFETY: as above.
unsafe impl Send for Processor {}

impl Processor {
    pub(crate) fn new(id: usize) -> Processor {
        Processor {
            id,
            runnext: AtomicPtr::new(ptr::null_mut()),
            queue: ArrayQueue::new(LOCAL_QUEUE),
            local: UnsafeCell::new(Local {
                stacks: StackCache::default(),
                rng: SmallRng::seed_from_u64(0x9E37_79B9_7F4A_7C15 ^ id as u64),
            }),
            state: AtomicU64::new(super::machine::pack(0, super::machine::FREE)),
            owner: AtomicPtr::new(ptr::null_mut()),
            schedtick: AtomicU32::new(0),
            stats: super::metrics::ProcStats::default(),
        }
    }

    /// The owner-only state.
    ///
    /// # Safety
    /// The caller's M holds this processor in phase SCHED, and no other reference from
    /// `local` is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &mut Local {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.local.get() }
    }

    /// Puts `g` in the runnext slot. Returns true if that displaced a goroutine into the
    /// queue (so there is now stealable work). `#[inline]`: it is on every wake-up's path
    /// (`scheduler::ready`), and without the hint whether it inlines depends on how the
    /// crate happens to be split into codegen units.
    #[inline]
    pub(crate) fn push_next(&self, g: GRef) -> bool {
        let old = self
            .runnext
            .swap(GRef::into_raw(g) as *mut Goroutine, Ordering::AcqRel);
        if old.is_null() {
            return false;
        }
        // SAFETY: we swapped `old` out of the slot, so we own its reference.
        self.push_tail(unsafe { GRef::from_raw(old) });
        true
    }

    /// Appends `g` to the queue; on overflow moves half of the queue to the global queue.
    pub(crate) fn push_tail(&self, g: GRef) {
        if let Err(g) = self.queue.push(g) {
            let half = (0..LOCAL_QUEUE / 2).map_while(|_| self.queue.pop());
            super::scheduler::get().push_global_batch(half.chain(std::iter::once(g)));
        }
    }

    /// Takes the runnext goroutine, if any.
    pub(crate) fn take_next(&self) -> Option<GRef> {
        if self.runnext.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let p = self.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: a non-null pointer swapped out of the slot is a reference we now own.
        (!p.is_null()).then(|| unsafe { GRef::from_raw(p) })
    }

    /// True if runnext holds a goroutine.
    pub(crate) fn has_next(&self) -> bool {
        !self.runnext.load(Ordering::Acquire).is_null()
    }

    /// Takes the runnext goroutine only if it is still `expected` (a thief's check that the
    /// owner did not run it meanwhile).
    pub(crate) fn steal_next(&self, expected: *mut Goroutine) -> Option<GRef> {
        if expected.is_null() {
            return None;
        }
        self.runnext
            .compare_exchange(
                expected,
                ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()
            // SAFETY: we swapped the pointer out of the slot, so we own its reference.
            .map(|p| unsafe { GRef::from_raw(p) })
    }

    /// The raw runnext pointer, for `steal_next`.
    pub(crate) fn peek_next(&self) -> *mut Goroutine {
        self.runnext.load(Ordering::Acquire)
    }

    /// Next goroutine to run from this processor: runnext first, then the queue.
    pub(crate) fn pop(&self) -> Option<GRef> {
        self.take_next().or_else(|| self.queue.pop())
    }

    /// True if there is nothing runnable on this processor.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty() && !self.has_next()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        drop(self.take_next());
    }
}
