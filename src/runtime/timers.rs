//! The timer heaps: the runtime's timers, under `sleep`, `after`, `tick`, `Timer`, `Ticker`,
//! timed parks and context deadlines (Go's `runtime/time.go`; `gort::time` is the façade).
//!
//! # Structure
//! One 4-ary min-heap per processor (P), plus one for timers armed off the processors
//! (plain threads: the *off-P heap*), each behind its own mutex, with an atomic copy of its
//! earliest deadline (`Heap::next`), and a count of the heaps that hold a timer, so that
//! "is any timer due?" is one load while nothing is armed and a few (and a clock read)
//! while something is. Entries carry their deadline inline (timer-epoch ns, `clock.rs`),
//! so sifts compare integers without touching the timers; removing the earliest entry
//! sinks the hole to the bottom and sifts the last entry up from there (Floyd), as the
//! last entry is usually among the latest. A timer is armed on the heap of the P its caller
//! runs on: a goroutine arming and re-arming timers (a select timeout in a loop, `after`
//! in a burst) takes a lock nobody else wants, and the Ms firing other Ps' timers touch
//! that lock once per batch, not once per timer.
//!
//! # Who runs timers
//! There is no timer thread. A timer callback runs on an M, outside the heap's lock:
//!
//! - every M in the scheduler calls [`run_due`] on each scheduling round (and while it
//!   spins): it runs every heap's due timers, its own P's and the others' (Go's
//!   `checkTimers`, and `stealWork`'s timer stealing);
//! - the timers of a P whose M is running a goroutine (phase RUNNING or BLOCKING: a long
//!   computation, a raw system call) are run by another M once they are `STEAL_SLACK` late
//!   (their own M runs them on time at its next switch). So a busy arming goroutine and an
//!   M firing its timers meet on the lock once per slack window, not per timer: that
//!   batching is what makes 100,000 pending `after`s cheap. 50 µs is Linux's default
//!   timer slack; Go's idle Ms sleep for timers in `epoll_wait`, whose timeout is whole
//!   milliseconds. An M woken only to run timers that readied nothing parks again without
//!   spinning (`worker.rs`), so that batch costs one wake-up;
//! - an idle M, the *watcher* (`scheduler::Sched::park_idle`), sleeps until the earliest
//!   deadline across all heaps ([`wake_deadline`], the slack above included); arming a
//!   timer earlier than that wakes it (`scheduler::timer_armed`), and an M going idle with
//!   its own P's timers pending nudges it in the same way;
//! - sysmon runs timers overdue by a millisecond, when every M is busy.
//!
//! Callbacks must be short and must never block: they unpark goroutines or do a
//! non-blocking channel send (`park.rs`, rule 4). An expired goroutine is made runnable on
//! the M that found it due.
//!
//! What a heap holds is anything that implements [`Fire`]: it embeds its own [`HeapIndex`]
//! and says what to do when due. A channel timer (`time/timer.rs`) is one allocation that
//! is at once the timer, its state and its callback; [`Timer`] wraps a closure for the
//! runtime's own timed parks. A heap holds a strong reference while the timer is armed (an
//! `after` needs no other owner until it fires).
//!
//! # Invariants
//! - A timer is in at most one heap. `HeapIndex::heap` names it (or `NO_HEAP`); it changes
//!   only with that heap's lock held: to `NO_HEAP` by removal or firing, and from `NO_HEAP`
//!   to a heap by a compare-exchange made holding that heap's lock (two racing arms: one
//!   wins, the other retries and moves it).
//! - Under heap `h`'s lock: `entries[i].target.index() == i` for every timer whose `heap`
//!   is `h`; `next == entries[0].when`, or `u64::MAX` when empty.
//! - A stopped or dropped timer is removed from its heap at once (it leaves nothing behind).
//!
//! # Safety
//! `HeapIndex::index` is an `UnsafeCell` accessed only with the lock of the heap named by
//! `HeapIndex::heap` held (every access holds that heap's `MutexGuard`), which makes the
//! manual `Send`/`Sync` impls sound.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

pub(crate) use super::clock::{
    coarse_now, deadline_after, from_nanos, note_now, now_nanos, refresh_coarse, to_nanos,
};
use super::machine::{self, BLOCKING, RUNNING};
use super::scheduler;

const NOT_ARMED: u32 = u32::MAX;
/// `HeapIndex::heap` of a timer in no heap.
const NO_HEAP: u32 = u32::MAX;
/// The most timers one heap holds (positions are `u32`s).
const MAX_ARMED: usize = NOT_ARMED as usize - 1;

/// How late another M lets the timers of a P whose M is running a goroutine get before it
/// runs them itself (module doc, "Who runs timers").
const STEAL_SLACK: u64 = 50_000;

/// The most timers one M fires per visit to a heap (bounds the time spent there; the rest
/// fire on its next check).
const BATCH: usize = 4096;

/// One heap: a P's, or the off-P heap. On cache lines of its own (its owner writes it).
#[repr(align(128))]
struct Heap {
    /// Earliest deadline (timer-epoch ns), `u64::MAX` when empty. Written under the lock.
    next: AtomicU64,
    /// A 4-ary min-heap (shallower than a binary one: ~9 levels at 100,000 timers).
    entries: Mutex<Vec<Entry>>,
}

impl Heap {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the earliest deadline (the lock is held: `entries` is its guard's).
    fn publish(&self, entries: &[Entry]) {
        let next = entries.first().map_or(u64::MAX, |e| e.when);
        // Only lock holders write `next`.
        let old = self.next.load(Ordering::Relaxed);
        if old == next {
            return; // most arms: a later deadline than the earliest
        }
        self.next.store(next, Ordering::Release);
        if (old == u64::MAX) != (next == u64::MAX) {
            if next == u64::MAX {
                NONEMPTY.fetch_sub(1, Ordering::SeqCst);
            } else {
                NONEMPTY.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// The heaps: one per processor, then the off-P heap. Made with the scheduler.
static HEAPS: OnceLock<Box<[Heap]>> = OnceLock::new();

/// How many heaps hold a timer: while none does (a program without timers, or between
/// them), the scheduler's timer checks are this one load.
static NONEMPTY: AtomicUsize = AtomicUsize::new(0);

/// The heaps, if any holds a timer.
#[inline]
fn armed_heaps() -> Option<&'static [Heap]> {
    if NONEMPTY.load(Ordering::SeqCst) == 0 {
        return None;
    }
    HEAPS.get().map(|h| &h[..])
}

fn heaps() -> &'static [Heap] {
    HEAPS.get_or_init(|| {
        (0..=scheduler::get().nprocs)
            .map(|_| Heap {
                next: AtomicU64::new(u64::MAX),
                entries: Mutex::new(Vec::new()),
            })
            .collect()
    })
}

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
    /// Its position in the heaps.
    fn index(&self) -> &HeapIndex;
    /// Runs on an M when the timer fires for `deadline` (timer-epoch ns), outside the heap
    /// lock, with the reference the heap held (to re-arm with). Must not block (park.rs
    /// rule 4).
    fn fire(self: Arc<Self>, deadline: u64);
}

/// A timer's heap and position in it (module doc, Invariants). Eight bytes: it is in every
/// timer, and 100,000 pending timers are 100,000 of them.
#[repr(C)]
pub(crate) struct HeapIndex {
    /// Position in the heap; guarded by that heap's lock. First (`set_entry_index`).
    index: UnsafeCell<u32>,
    /// The heap holding the timer, or `NO_HEAP`.
    heap: AtomicU32,
}

// SAFETY: `index` is only accessed with the lock of the heap named by `heap` held (module
// doc, Safety); `heap` is atomic.
unsafe impl Send for HeapIndex {}
// SAFETY: as above.
unsafe impl Sync for HeapIndex {}

impl HeapIndex {
    pub(crate) const fn new() -> HeapIndex {
        HeapIndex {
            index: UnsafeCell::new(NOT_ARMED),
            heap: AtomicU32::new(NO_HEAP),
        }
    }
}

/// Is processor `i`'s M running a goroutine (so not in the scheduler to run its timers)?
fn busy(i: usize) -> bool {
    scheduler::try_get()
        .and_then(|s| s.procs.get(i))
        .is_some_and(|p| {
            let phase = p.state.load(Ordering::Relaxed) & 0xff;
            phase == RUNNING || phase == BLOCKING
        })
}

/// When heap `i`, whose earliest deadline is `next`, must be run by whatever M checks:
/// `next`, or `next + STEAL_SLACK` while its P's M runs a goroutine.
fn run_at(i: usize, next: u64) -> u64 {
    if busy(i) {
        next.saturating_add(STEAL_SLACK)
    } else {
        next
    }
}

/// Arms `t` for `when` on the caller's heap, moving it if it was already armed. Returns
/// true if it was armed (so this moved a pending firing).
pub(crate) fn start(t: &Arc<dyn Fire>, when: Instant) -> bool {
    start_at(t.clone(), to_nanos(when))
}

/// [`start`] for a deadline in timer-epoch ns, with the reference the heap will hold.
pub(crate) fn start_at(t: Arc<dyn Fire>, when: u64) -> bool {
    super::ensure_started();
    let heaps = heaps();
    let home = machine::current_processor().map_or(heaps.len() - 1, |p| p.id) as u32;
    let ix = t.index();
    let mut was_armed = false;
    loop {
        let h = ix.heap.load(Ordering::Acquire);
        let heap = &heaps[if h == NO_HEAP { home } else { h } as usize];
        let mut entries = heap.lock();
        if ix.heap.load(Ordering::Acquire) != h {
            continue; // moved or disarmed meanwhile: look again
        }
        if h != NO_HEAP {
            remove(&mut entries, &*t);
            was_armed = true;
            if h != home {
                heap.publish(&entries);
                continue;
            }
        }
        // Claim it for `home` (whose lock we hold); a racing arm on another heap wins or
        // loses this exchange as a whole.
        if ix
            .heap
            .compare_exchange(NO_HEAP, home, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        push(&mut entries, t, when);
        let first = entries[0].when == when;
        heap.publish(&entries);
        drop(entries);
        if first {
            scheduler::timer_armed(run_at(home as usize, when));
        }
        return was_armed;
    }
}

/// Disarms `t`. Returns true if it was armed (the firing was prevented); false if it had
/// already fired (or is firing right now) or was never armed.
pub(crate) fn stop(t: &dyn Fire) -> bool {
    let ix = t.index();
    loop {
        let h = ix.heap.load(Ordering::Acquire);
        if h == NO_HEAP {
            return false;
        }
        let heap = &heaps()[h as usize];
        let mut entries = heap.lock();
        if ix.heap.load(Ordering::Acquire) != h {
            continue;
        }
        remove(&mut entries, t);
        heap.publish(&entries);
        return true;
    }
}

/// A closure timer (the runtime's timed parks, contexts).
#[repr(C)]
struct Slot<F> {
    index: HeapIndex,
    callback: F,
}

// SAFETY: `repr(C)` with `index` first (the trait's contract).
unsafe impl<F: Fn() + Send + Sync + 'static> Fire for Slot<F> {
    fn index(&self) -> &HeapIndex {
        &self.index
    }
    fn fire(self: Arc<Self>, _deadline: u64) {
        (self.callback)()
    }
}

/// A one-shot timer that runs a closure, can be (re)armed and stopped. Dropping it stops it.
pub(crate) struct Timer {
    slot: Arc<dyn Fire>,
}

impl Timer {
    /// A disarmed timer that will run `callback` each time it fires. The callback runs on
    /// an M (a worker or sysmon) and must not block.
    pub(crate) fn new(callback: impl Fn() + Send + Sync + 'static) -> Timer {
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
        // An armed timer's slot is also held by a heap; `stop` re-checks under its lock.
        if Arc::strong_count(&self.slot) > 1 {
            self.stop();
        }
    }
}

/// The earliest armed deadline across all heaps, if any (for the deadlock detector).
pub(crate) fn next_deadline() -> Option<u64> {
    let next = armed_heaps()?
        .iter()
        .map(|h| h.next.load(Ordering::Acquire))
        .min()?;
    (next != u64::MAX).then_some(next)
}

/// When an idle M must wake to run timers: the earliest of every heap's [`run_at`].
pub(crate) fn wake_deadline() -> Option<u64> {
    let heaps = armed_heaps()?;
    let mut earliest = u64::MAX;
    for (i, h) in heaps.iter().enumerate() {
        let next = h.next.load(Ordering::Acquire);
        if next != u64::MAX {
            earliest = earliest.min(run_at(i, next));
        }
    }
    (earliest != u64::MAX).then_some(earliest)
}

/// The earliest deadline on processor `p`'s own heap (an M going idle with it pending
/// makes sure the watcher will wake for it).
pub(crate) fn own_next(p: usize) -> Option<u64> {
    let next = HEAPS.get()?.get(p)?.next.load(Ordering::Acquire);
    (next != u64::MAX).then_some(next)
}

/// Is a timer due that [`run_due`] would run now? (The idle re-check.)
pub(crate) fn any_due() -> bool {
    wake_deadline().is_some_and(|d| d <= to_nanos(Instant::now()))
}

/// Fires the due timers of every heap (another P's once `STEAL_SLACK` late while its M
/// runs a goroutine). Returns the number fired. Called by Ms in the scheduler and by
/// sysmon; a few relaxed loads and no clock read when nothing is armed.
pub(crate) fn run_due() -> usize {
    run_due_on(usize::MAX)
}

/// `run_due` by the M holding P `own` while it keeps the P RUNNING across a switch
/// (`worker.rs`, the hand-off to runnext): its own timers are due on time, as at any switch.
#[inline]
pub(crate) fn run_due_on(own: usize) -> usize {
    let Some(heaps) = armed_heaps() else { return 0 };
    let mut now = 0;
    let mut fired = 0;
    for (i, h) in heaps.iter().enumerate() {
        let next = h.next.load(Ordering::Acquire);
        if next == u64::MAX {
            continue;
        }
        if now == 0 {
            now = to_nanos(Instant::now());
            note_now(now);
        }
        if next <= now && (i == own || run_at(i, next) <= now) {
            fired += run_heap(h, now);
        }
    }
    fired
}

#[cold]
fn run_heap(heap: &Heap, now: u64) -> usize {
    let mut fired: Vec<(u64, Arc<dyn Fire>)> = Vec::new();
    {
        let mut entries = heap.lock();
        while let Some(top) = entries.first() {
            let when = top.when;
            if when > now || fired.len() >= BATCH {
                break;
            }
            fired.push((when, pop_min(&mut entries)));
        }
        heap.publish(&entries);
    }
    let n = fired.len();
    for (when, target) in fired {
        target.fire(when);
    }
    n
}

fn set_index(t: &dyn Fire, i: u32) {
    // SAFETY: only called with the lock of the timer's heap held (push/remove/pop_min).
    unsafe { *t.index().index.get() = i };
}

/// `set_index` for an entry being moved, without the virtual call: the index is the first
/// field of every `Fire` type, and `HeapIndex::index` the first of that (`repr(C)`).
#[inline]
fn set_entry_index(e: &Entry, i: usize) {
    let index = Arc::as_ptr(&e.target) as *const () as *const UnsafeCell<u32>;
    // SAFETY: `index` is the target's first field (`Fire`'s contract), alive while the
    // entry holds the target; only touched with its heap's lock held (we are sifting).
    // `push` keeps every position below `NOT_ARMED`.
    unsafe { *(*index).get() = i as u32 };
}

fn push(entries: &mut Vec<Entry>, target: Arc<dyn Fire>, when: u64) {
    assert!(
        entries.len() < MAX_ARMED,
        "gort: too many timers armed on one processor"
    );
    entries.push(Entry { when, target });
    let i = entries.len() - 1;
    sift_up(entries, i);
}

/// Removes the earliest entry (the heap is not empty), marks it in no heap, returns it.
fn pop_min(entries: &mut Vec<Entry>) -> Arc<dyn Fire> {
    let last = entries.pop().expect("not empty");
    let top = if entries.is_empty() {
        last
    } else {
        let top = std::mem::replace(&mut entries[0], last);
        // Floyd's: the former last entry (typically among the latest deadlines) would sink
        // to the bottom anyway: move the hole down along the smaller children without
        // comparing it, then sift it up the little way back.
        let i = sink(entries, 0);
        sift_up(entries, i);
        top
    };
    set_index(&*top.target, NOT_ARMED);
    top.target.index().heap.store(NO_HEAP, Ordering::Release);
    top.target
}

/// Removes `t`, which is armed in this heap, and marks it in no heap.
fn remove(entries: &mut Vec<Entry>, t: &dyn Fire) {
    // SAFETY: the lock of `t`'s heap is held (the caller checked `heap` under it).
    let i = unsafe { *t.index().index.get() } as usize;
    debug_assert!(std::ptr::addr_eq(Arc::as_ptr(&entries[i].target), t));
    let last = entries.pop().expect("an armed timer is in its heap");
    if i < entries.len() {
        // Put the last entry in the hole and restore the order around it.
        let removed = std::mem::replace(&mut entries[i], last);
        set_index(&*removed.target, NOT_ARMED);
        sift_down(entries, i);
        sift_up(entries, i);
    } else {
        set_index(&*last.target, NOT_ARMED);
    }
    t.index().heap.store(NO_HEAP, Ordering::Release);
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

/// Moves the entry at `i` down to the bottom along the smaller children; returns where it
/// ended (its index is not yet recorded: `sift_up` follows).
fn sink(heap: &mut [Entry], mut i: usize) -> usize {
    loop {
        let first = ARITY * i + 1;
        if first >= heap.len() {
            return i;
        }
        let end = (first + ARITY).min(heap.len());
        let mut c = first;
        for k in first + 1..end {
            if heap[k].when < heap[c].when {
                c = k;
            }
        }
        heap.swap(i, c);
        set_entry_index(&heap[i], i);
        i = c;
    }
}

/// Number of armed timers (for tests: stopped timers must leave nothing behind).
#[doc(hidden)]
pub fn armed_count() -> usize {
    HEAPS
        .get()
        .map_or(0, |hs| hs.iter().map(|h| h.lock().len()).sum())
}
