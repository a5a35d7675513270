//! The timer structure shared by `sleep`, `after`, `tick`, `Timer` and `Ticker`.
//!
//! One global binary min-heap of armed timers, ordered by deadline, under one mutex, plus an
//! atomic copy of the earliest deadline (`NEXT`) so that the hot check "is any timer due?" is
//! one relaxed load and usually no clock read at all. There is no timer thread:
//!
//! - every worker calls [`run_due`] each time it looks for a goroutine to run;
//! - an idle worker (the *timer watcher*, see `runtime::scheduler`) sleeps no longer than
//!   until `NEXT`, and arming a timer earlier than the watcher's deadline wakes it.
//!
//! So a timer callback always runs on a worker thread, on the worker's own stack, outside the
//! heap lock. Callbacks must be short and must never block: they unpark goroutines or do a
//! non-blocking channel send (`park.rs`, rule 4). An expired goroutine is made runnable on the
//! worker that found it due, never run on a timer thread.
//!
//! What the heap holds is anything that implements [`Fire`]: it embeds its own
//! [`HeapIndex`] and says what to do when due. A channel timer (`timer.rs`) is one
//! allocation that is at once the timer, its state and its callback; [`Timer`] wraps a
//! closure for the runtime's own timed parks. The heap holds a strong reference while the
//! timer is armed (an `after` needs no other owner until it fires).
//!
//! Invariants (all under the heap lock): `heap[i].target.index() == i` for every armed
//! timer; a timer that is not armed has `index == NOT_ARMED`; `NEXT` equals `heap[0].when`
//! or `u64::MAX` when the heap is empty. A stopped or dropped timer is removed from the heap
//! at once (it leaves nothing behind).
//!
//! # Safety
//! A `HeapIndex` is an `UnsafeCell` accessed only with the heap lock held
//! (every access takes the `MutexGuard` or runs inside `lock()`), which makes the manual
//! `Send`/`Sync` impls sound.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const NOT_ARMED: usize = usize::MAX;

/// The instant all timer deadlines are measured from, as nanoseconds.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the epoch (saturating).
pub(crate) fn to_nanos(t: Instant) -> u64 {
    t.saturating_duration_since(epoch())
        .as_nanos()
        .min(u64::MAX as u128 - 1) as u64
}

pub(crate) fn from_nanos(n: u64) -> Instant {
    epoch() + Duration::from_nanos(n)
}

/// A coarse "now" (timer-epoch ns) for bookkeeping that must not pay for a clock read: the
/// moment a goroutine parks, for the "waiting" of dumps.
///
/// A goroutine parks on every blocking operation (two parks per ping-pong round trip), and
/// a clock read costs ~20 ns here — even a bare `rdtsc` costs ~9 ns on this VM, which made
/// ping-pong ~6% slower (measured) — so the park path only loads this word. It is kept fresh
/// where the clock is read anyway or cheaply:
///
/// - when an M wakes from its idle park (a futex wait: the clock read is noise there);
/// - every 61st scheduling round of each M (the round that already looks at the global
///   queue), and by spinning Ms (they read the clock to bound their spin);
/// - by `run_due` whenever timers are armed (it reads the clock every round then);
/// - by sysmon on every wake (20 µs to 10 ms apart), and by `now_nanos` callers.
///
/// So a goroutine that parks soon after its M woke up, or on an M that switches goroutines,
/// gets its wait measured to within microseconds; one that parks after computing for a long
/// time without a switch, to within sysmon's current nap (at most 10 ms). Writers skip
/// updates smaller than `COARSE_STEP`, so that Ms that read the clock often do not fight
/// over this cache line.
static COARSE_NOW: AtomicU64 = AtomicU64::new(0);

/// Updates of the coarse time smaller than this are skipped (see `COARSE_NOW`).
const COARSE_STEP: u64 = 20_000;

/// The coarse current time (see `COARSE_NOW`).
#[inline]
pub(crate) fn coarse_now() -> u64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

/// Feeds a clock reading made anyway (`now`, timer-epoch ns) to the coarse time.
#[inline]
pub(crate) fn note_now(now: u64) {
    if now > COARSE_NOW.load(Ordering::Relaxed) + COARSE_STEP {
        COARSE_NOW.fetch_max(now, Ordering::Relaxed);
    }
}

/// Reads the clock to refresh the coarse time.
#[inline(never)]
pub(crate) fn refresh_coarse() {
    note_now(to_nanos(Instant::now()));
}

/// Reads the clock and refreshes the coarse time.
pub(crate) fn now_nanos() -> u64 {
    let n = to_nanos(Instant::now());
    COARSE_NOW.fetch_max(n, Ordering::Relaxed);
    n
}

/// Earliest armed deadline in nanoseconds since the epoch, `u64::MAX` when none is armed.
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
/// The heap: a 4-ary min-heap (shallower than a binary one: ~9 levels at 100,000 timers) of
/// entries that carry their deadline inline, so comparisons never touch the slots.
static HEAP: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Children per node.
const ARITY: usize = 4;

/// A heap entry: the deadline (a copy of the target's, for cache-friendly comparisons).
struct Entry {
    when: u64,
    target: Arc<dyn Fire>,
}

/// A timer as the heap sees it.
///
/// # Safety
/// An implementing type is `#[repr(C)]` with its [`HeapIndex`] as its first field, and
/// `index` returns that field: the heap reaches the index of every entry it moves through
/// the entry's data pointer, without a call through the vtable (a sift moves ~9 entries at
/// 100,000 timers).
pub(crate) unsafe trait Fire: Send + Sync + 'static {
    /// Its position in the heap.
    fn index(&self) -> &HeapIndex;
    /// Runs on a worker when the timer fires for `deadline`, outside the heap lock, with
    /// the reference the heap held (to re-arm with). Must not block (park.rs rule 4).
    fn fire(self: Arc<Self>, deadline: Instant);
}

/// A timer's position in the heap, or NOT_ARMED. Guarded by the heap lock.
pub(crate) struct HeapIndex(UnsafeCell<usize>);

// SAFETY: the cell is only accessed with the heap lock held (module doc, Safety).
unsafe impl Send for HeapIndex {}
// SAFETY: as above.
unsafe impl Sync for HeapIndex {}

impl HeapIndex {
    pub(crate) const fn new() -> HeapIndex {
        HeapIndex(UnsafeCell::new(NOT_ARMED))
    }
}

/// Arms `t` for `when`, moving it if it was already armed. Returns true if it was armed (so
/// this moved a pending firing).
pub(crate) fn start(t: &Arc<dyn Fire>, when: Instant) -> bool {
    crate::runtime::ensure_started();
    let when = to_nanos(when);
    let mut heap = lock();
    let was_armed = remove(&mut heap, &**t);
    push(&mut heap, t.clone(), when);
    let earliest = NEXT.load(Ordering::Relaxed);
    drop(heap);
    if earliest == when {
        crate::runtime::scheduler::timer_armed(when);
    }
    was_armed
}

/// Disarms `t`. Returns true if it was armed (the firing was prevented); false if it had
/// already fired (or is firing right now) or was never armed.
pub(crate) fn stop(t: &dyn Fire) -> bool {
    let mut heap = lock();
    remove(&mut heap, t)
}

/// A closure timer (the runtime's timed parks, contexts).
#[repr(C)]
struct Slot<F> {
    index: HeapIndex,
    callback: F,
}

// SAFETY: `repr(C)` with `index` first (the trait's contract).
unsafe impl<F: Fn(Instant) + Send + Sync + 'static> Fire for Slot<F> {
    fn index(&self) -> &HeapIndex {
        &self.index
    }
    fn fire(self: Arc<Self>, deadline: Instant) {
        (self.callback)(deadline)
    }
}

/// A one-shot timer that runs a closure, can be (re)armed and stopped. Dropping it stops it.
pub(crate) struct Timer {
    slot: Arc<dyn Fire>,
}

impl Timer {
    /// A disarmed timer that will run `callback(deadline)` each time it fires. The callback
    /// runs on a worker thread and must not block.
    pub(crate) fn new(callback: impl Fn(Instant) + Send + Sync + 'static) -> Timer {
        Timer {
            slot: Arc::new(Slot {
                index: HeapIndex::new(),
                callback,
            }),
        }
    }

    /// Arms the timer for `when`, moving it if it was already armed. Returns true if it was
    /// armed (so this moved a pending firing).
    pub(crate) fn start(&self, when: Instant) -> bool {
        start(&self.slot, when)
    }

    /// Disarms the timer. Returns true if it was armed (the firing was prevented); false if
    /// it had already fired (or is firing right now) or was never armed.
    pub(crate) fn stop(&self) -> bool {
        stop(&*self.slot)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // An armed timer's slot is also held by the heap; `stop` re-checks under the lock.
        if Arc::strong_count(&self.slot) > 1 {
            self.stop();
        }
    }
}

fn lock() -> MutexGuard<'static, Vec<Entry>> {
    HEAP.lock().unwrap_or_else(|e| e.into_inner())
}

/// The earliest armed deadline, if any (one atomic load).
#[inline]
pub(crate) fn next_deadline() -> Option<u64> {
    match NEXT.load(Ordering::Acquire) {
        u64::MAX => None,
        n => Some(n),
    }
}

/// Fires every timer due by now. Returns the number fired. Called by workers; cheap when
/// nothing is due (no clock read when no timer is armed).
pub(crate) fn run_due() -> usize {
    let next = NEXT.load(Ordering::Acquire);
    if next == u64::MAX {
        return 0;
    }
    let now = to_nanos(Instant::now());
    note_now(now);
    if next > now {
        return 0;
    }
    run_due_at(now)
}

#[cold]
fn run_due_at(now: u64) -> usize {
    let mut fired: Vec<(u64, Arc<dyn Fire>)> = Vec::new();
    {
        let mut heap = lock();
        while let Some(top) = heap.first() {
            let when = top.when;
            if when > now {
                break;
            }
            let target = pop_min(&mut heap);
            fired.push((when, target));
            if fired.len() >= 4096 {
                break; // bound the time spent here; the rest fire on the next check
            }
        }
    }
    let n = fired.len();
    for (when, target) in fired {
        target.fire(from_nanos(when));
    }
    n
}

fn set_index(t: &dyn Fire, i: usize) {
    // SAFETY: only called with the heap lock held (from push/remove/sift).
    unsafe { *t.index().0.get() = i };
}

/// `set_index` for an entry being moved, without the virtual call: the index is the first
/// field of every `Fire` type (the trait's contract).
#[inline]
fn set_entry_index(e: &Entry, i: usize) {
    let index = Arc::as_ptr(&e.target) as *const () as *const HeapIndex;
    // SAFETY: `index` is the target's first field (`Fire`'s contract), alive while the
    // entry holds the target; only touched with the heap lock held (we are sifting).
    unsafe { *(*index).0.get() = i };
}

fn push(heap: &mut MutexGuard<'_, Vec<Entry>>, target: Arc<dyn Fire>, when: u64) {
    heap.push(Entry { when, target });
    let i = heap.len() - 1;
    sift_up(heap, i);
    publish_next(heap);
}

/// Removes the earliest entry (the heap is not empty) and returns its target.
fn pop_min(heap: &mut MutexGuard<'_, Vec<Entry>>) -> Arc<dyn Fire> {
    let last = heap.pop().expect("not empty");
    let top = if heap.is_empty() {
        last
    } else {
        let top = std::mem::replace(&mut heap[0], last);
        sift_down(heap, 0);
        top
    };
    set_index(&*top.target, NOT_ARMED);
    publish_next(heap);
    top.target
}

/// Removes `t` if armed; returns whether it was.
fn remove(heap: &mut MutexGuard<'_, Vec<Entry>>, t: &dyn Fire) -> bool {
    // SAFETY: heap lock held (the guard is borrowed).
    let i = unsafe { *t.index().0.get() };
    if i == NOT_ARMED {
        return false;
    }
    debug_assert!(std::ptr::addr_eq(Arc::as_ptr(&heap[i].target), t));
    let last = heap.pop().expect("an armed timer is in the heap");
    if i < heap.len() {
        // Put the last entry in the hole and restore the order around it.
        let removed = std::mem::replace(&mut heap[i], last);
        set_index(&*removed.target, NOT_ARMED);
        sift_down(heap, i);
        sift_up(heap, i);
    } else {
        set_index(&*last.target, NOT_ARMED);
    }
    publish_next(heap);
    true
}

fn publish_next(heap: &[Entry]) {
    let next = heap.first().map_or(u64::MAX, |e| e.when);
    NEXT.store(next, Ordering::Release);
}

/// Moves the entry at `i` up to its place; records the final index of every entry it moves.
fn sift_up(heap: &mut [Entry], mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / ARITY;
        if heap[parent].when <= heap[i].when {
            break;
        }
        heap.swap(i, parent);
        set_entry_index(&heap[i], i);
        i = parent;
    }
    set_entry_index(&heap[i], i);
}

/// Moves the entry at `i` down to its place; records the final index of every entry it moves.
fn sift_down(heap: &mut [Entry], mut i: usize) {
    loop {
        let first = ARITY * i + 1;
        if first >= heap.len() {
            break;
        }
        let end = (first + ARITY).min(heap.len());
        let mut c = first;
        for k in first + 1..end {
            if heap[k].when < heap[c].when {
                c = k;
            }
        }
        if heap[i].when <= heap[c].when {
            break;
        }
        heap.swap(i, c);
        set_entry_index(&heap[i], i);
        i = c;
    }
    set_entry_index(&heap[i], i);
}

/// Number of armed timers (for tests: stopped timers must leave nothing behind).
#[doc(hidden)]
pub fn armed_count() -> usize {
    lock().len()
}
