//! What a scope's goroutines share with the scope's owner: how many are still running, and
//! whether one of them panicked unhandled.
//!
//! The runtime's half of `thread::scope` (the façade in `thread.rs` builds `Scope` on
//! it): a scoped spawn counts itself in ([`ScopeData::increment`]), and its packet counts it
//! out when the goroutine's result is dropped, joined or not (`spawn.rs`,
//! [`ScopeData::decrement`]); the last one out wakes the owner parked in
//! [`ScopeData::wait`]. The count reaching zero is what makes a scoped goroutine's borrows
//! sound: nothing of the goroutine's task is touched after its decrement (Release here,
//! Acquire in `wait`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::park::{self, Unparker, WaitReason};

/// A scope's count of running goroutines and its owner's wake-up handle.
pub(crate) struct ScopeData {
    running: AtomicUsize,
    a_goroutine_panicked: AtomicBool,
    owner: Unparker,
}

impl ScopeData {
    /// A scope owned by the calling goroutine or thread (the one [`wait`](Self::wait) parks).
    pub(crate) fn new() -> ScopeData {
        ScopeData {
            running: AtomicUsize::new(0),
            a_goroutine_panicked: AtomicBool::new(false),
            owner: park::current(),
        }
    }

    /// Called before a scoped goroutine is spawned (undone by `decrement` if the spawn fails).
    pub(crate) fn increment(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// Called when a scoped goroutine's result is dropped (it finished and was joined or not).
    pub(crate) fn decrement(&self, unhandled_panic: bool) {
        if unhandled_panic {
            self.a_goroutine_panicked.store(true, Ordering::Relaxed);
        }
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            self.owner.unpark();
        }
    }

    /// How many of the scope's goroutines have not dropped their result yet.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Parks the owner until every goroutine of the scope has dropped its result.
    pub(crate) fn wait(&self) {
        while self.running() != 0 {
            park::park(WaitReason::Join);
        }
    }

    /// True if a goroutine of the scope panicked and nobody joined it.
    pub(crate) fn a_goroutine_panicked(&self) -> bool {
        self.a_goroutine_panicked.load(Ordering::Relaxed)
    }
}
