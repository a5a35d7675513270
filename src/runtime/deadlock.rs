//! Accounting for deadlock detection and goroutine dumps.
//!
//! Plain threads that block in a gort primitive are counted here, so that the runtime can
//! tell "every thread is waiting on gort" from "some thread might still act".

use std::sync::atomic::{AtomicUsize, Ordering};

/// Plain threads blocked in a gort primitive right now.
static BLOCKED_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Runs `park` (a plain thread's blocking wait), counted as blocked in gort.
pub(crate) fn thread_blocked(park: impl FnOnce()) {
    BLOCKED_THREADS.fetch_add(1, Ordering::SeqCst);
    park();
    BLOCKED_THREADS.fetch_sub(1, Ordering::SeqCst);
}

/// A textual dump of what the runtime knows (goroutine count, processors).
pub(crate) fn dump_string() -> String {
    match super::scheduler::try_get() {
        None => "gort: runtime not started".to_string(),
        Some(s) => format!(
            "gort: {} goroutines, {} processors, {} plain threads blocked in gort",
            s.num_goroutines(),
            s.nprocs,
            BLOCKED_THREADS.load(Ordering::Relaxed)
        ),
    }
}
