//! Goroutine stacks: slots carved from large arenas, guarded, committed lazily, pooled by size
//! class, trimmed on reuse, and returned to the kernel when an arena is wholly free.
//!
//! ```text
//!   one arena (one mmap, MAP_NORESERVE, no huge pages), slots of one size class:
//!
//!   | guard | stack 0 ......... | guard | stack 1 ......... | guard | stack 2 ...
//!   ^ base                      ^ base + stride
//!
//!   one slot, high addresses first:
//!   +---------------------------+ <- top (Stack::base(): corosensei starts here)
//!   |  hot zone (HOT_ZONE)      |   committed by the kernel on first touch; a shallow
//!   |                           |   goroutine only ever touches these pages
//!   +- - - - - - - - - - - - - -+ <- probe line (first words below the hot zone)
//!   |  deep zone                |   touched only by deep recursion; released with
//!   |                           |   madvise(MADV_DONTNEED) before the stack is reused
//!   +---------------------------+ <- limit (Stack::limit())
//!   |  guard (GUARD_SIZE)       |   a touch faults: a stack overflow (signal.rs)
//!   +---------------------------+ <- slot start
//! ```
//!
//! **Sizes.** A requested size is rounded up to its class: a power of two from 16 KiB
//! (`MIN_STACK_SIZE`) to 1 TiB (`MAX_STACK_SIZE`). Larger requests are an `io::Error` (never a
//! wrapped-around tiny stack). Every class is pooled the same way, so a 2 MiB stack (std's
//! default) costs what a 256 KiB one does: address space, and the pages it touches.
//!
//! **Guards.** On Linux 6.13 and later the guard is a set of page-table markers
//! (`MADV_GUARD_INSTALL`): no kernel mapping per stack, so a million suspended goroutines fit
//! under the default `vm.max_map_count`. Elsewhere (or with `GORT_STACK_GUARD=mprotect`) it is
//! `mprotect(PROT_NONE)`, two mappings per stack, and running out of mappings is an error that
//! names `vm.max_map_count` (guard.rs). A guard is installed once, when its slot is first
//! handed out, and stays for the arena's life: trimming (`MADV_DONTNEED`) never removes it.
//! So a guard is always present below a live stack.
//!
//! **Where free stacks are kept.** A goroutine takes its stack when it first runs and gives
//! it back when it ends, to the cache of the processor it ran on (cache.rs; a few per class,
//! most recent first: their pages are hot). A cache refills from, and overflows into, the
//! class pool in batches, so bursts of spawns take the pool lock once per batch. The pool
//! (arena.rs) records each free slot in its arena as warm (may hold pages) or cold (holds
//! none), and hands out the lowest arena's slots first so that high arenas drain.
//!
//! **Trimming.** A stack is checked when it is reused, not when it is given back (a stack
//! given back and never reused costs nothing more; a goroutine's exit path stays short): the
//! words on the probe line read zero unless a call chain went below the hot zone and left
//! return addresses and saved registers there. A non-zero word means "used deep": the deep
//! zone is released before the next goroutine gets the stack. As a backstop for deep frames
//! that happen to be zero on the probe line (a big zeroed buffer), every `MINCORE_EVERY`th
//! reuse asks `mincore` about the second deep page (reading the probe line maps the zero
//! page into the first). A processor going idle runs that check on the stacks it caches
//! (cache.rs). Free stacks in the pools that were not reused for a whole scavenger period,
//! and those beyond a budget per class, are trimmed whole by the scavenger.
//!
//! **Returning.** An arena is never unmapped while any of its slots is out (in use or in a
//! processor's cache). The scavenger, run by sysmon about once a second, unmaps wholly free
//! arenas but one per class (the lowest, kept as a spare) and trims idle warm slots, off
//! every goroutine's path, a slice of a few milliseconds at a time (arena.rs); after a
//! burst it also trims the C heap (`scavenge`).
//!
//! **The smallest stack** (16 KiB) holds a goroutine's panic report: the panic hook walks
//! the frames on the goroutine's stack but resolves and prints them on the worker's own
//! (panic.rs), as debug-info parsing needs tens of KiB.
//!
//! Costs measured on the 2-core VM (kernel 6.18), per new slot: guard marker plus first touch
//! of the top page 2.65 µs one by one, 2.2 µs when a batch of 16 slots gets its guards and its
//! top pages in two `process_madvise` calls (arena.rs); against 7 µs for mmap + mprotect +
//! first touch of a stack of its own, and 6 µs more for its munmap. Nearly all of it is the
//! kernel handing out and zeroing the page. A reused stack costs the probe read.
//!
//! # Safety
//! A `Stack` owns its slot exclusively from `arena::take` until it is given back (cache or
//! pool, under the pool lock) or dropped. The region between `limit` and `top` is readable
//! and writable for the arena's whole life, and the arena outlives every `Stack` of it
//! (arena.rs). The probe read and trims happen only while no coroutine runs on the stack.

mod arena;
mod cache;
mod guard;

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use corosensei::stack::StackPointer;

pub(crate) use cache::StackCache;
pub(crate) use guard::{count_thread, mode as guard_mode, GuardMode};

/// Default usable size of a goroutine stack (reserved address space, committed lazily).
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest usable stack size (the smallest class); smaller requests are rounded up to it.
pub(crate) const MIN_STACK_SIZE: usize = 1 << MIN_SHIFT;
/// Largest usable stack size (the largest class).
pub(crate) const MAX_STACK_SIZE: usize = MIN_STACK_SIZE << (arena::NCLASSES - 1);
/// Size of the guard region below each stack.
pub(crate) const GUARD_SIZE: usize = 16 * 1024;
const MIN_SHIFT: u32 = 14;
/// The top part of a stack that is never trimmed.
const HOT_ZONE: usize = 64 * 1024;
/// Every this many reuses (per cache), `mincore` double-checks the deep zone.
const MINCORE_EVERY: u32 = 32;

/// Set when a new stack could not be had (no mappings or memory left); cleared when a stack
/// is given back. `spawn` looks at it to fail at the call (as std does) instead of later.
static EXHAUSTED: AtomicBool = AtomicBool::new(false);
/// Number of deep-zone trims done (a regression test checks shallow stacks are not trimmed).
static TRIMS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let n = if n <= 0 { 4096 } else { n as usize };
    PAGE.store(n, Ordering::Relaxed);
    n
}

/// Rounds a requested stack size up to its class (a power of two, at least 16 KiB); an error
/// naming the limit if it is larger than the largest stack.
pub(crate) fn round_size(size: usize) -> io::Result<usize> {
    if size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "gort: a goroutine stack of {size} bytes cannot be honoured: stacks are at \
                 most {} bytes (1 TiB)",
                MAX_STACK_SIZE
            ),
        ));
    }
    Ok(size
        .max(MIN_STACK_SIZE)
        .max(page_size())
        .next_power_of_two())
}

/// Class index of a class size (as `round_size` returns).
fn class_of(size: usize) -> usize {
    debug_assert!(size.is_power_of_two() && size >= MIN_STACK_SIZE);
    (size.trailing_zeros() - MIN_SHIFT) as usize
}

/// Usable size of class `class`.
fn class_size(class: usize) -> usize {
    MIN_STACK_SIZE << class
}

/// One goroutine stack: a slot of an arena, owned until given back.
pub(crate) struct Stack {
    /// The arena the slot belongs to.
    arena: NonNull<arena::Arena>,
    /// Highest address of the stack, exclusive; where the stack begins growing down (the
    /// lowest usable address, the guard's end, is `low()`: 24 bytes in all, as every
    /// goroutine carries one).
    top: usize,
    /// Index of the slot in its arena.
    slot: u32,
    /// Size class.
    class: u8,
    /// The stack has been used since it was last checked: look at its probe line before
    /// reusing it (module comment, "Trimming").
    needs_check: bool,
    /// Its guard is installed (false only inside `arena::take`).
    guarded: bool,
}

// SAFETY: a Stack is an owned memory region; the arena pointer is only dereferenced under the
// pool lock. Moving it between threads is how pools hand stacks to workers.
unsafe impl Send for Stack {}

impl Stack {
    /// Usable size in bytes.
    pub(crate) fn size(&self) -> usize {
        class_size(self.class as usize)
    }

    /// Lowest usable address (the guard's end; corosensei's `limit`).
    fn low(&self) -> usize {
        self.top - self.size()
    }

    /// The guard region, `[low, high)`: a fault there is this stack's overflow.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.low() - GUARD_SIZE, self.low())
    }

    /// Before reuse: releases the deep zone's pages if the last user went deep.
    fn reuse_check(&mut self, backstop: bool) {
        if !std::mem::take(&mut self.needs_check) || self.size() <= HOT_ZONE {
            return;
        }
        let probe_line = self.top - HOT_ZONE - 64;
        // SAFETY: the probe line lies inside [limit, top), readable for the arena's life, and
        // no coroutine runs on this stack now. Volatile: the compiler must not assume zeros.
        let deep = (0..8)
            .any(|i| unsafe { std::ptr::read_volatile((probe_line as *const usize).add(i)) != 0 })
            || (backstop && self.deep_page_resident());
        if deep {
            TRIMS.fetch_add(1, Ordering::Relaxed);
            let len = self.top - HOT_ZONE - self.low();
            // SAFETY: [limit, top - HOT_ZONE) is inside our own slot and unused now;
            // MADV_DONTNEED turns it back into zero-fill-on-demand pages (the guard below
            // `limit` is not in the range, and guard markers survive it anyway).
            unsafe { libc::madvise(self.low() as *mut _, len, libc::MADV_DONTNEED) };
        }
    }

    /// Asks the kernel whether the second page below the hot zone is resident. Not the
    /// first: reading the probe line maps the shared zero page there, which `mincore`
    /// would report as resident.
    fn deep_page_resident(&self) -> bool {
        let page = page_size();
        let Some(addr) = (self.top - HOT_ZONE)
            .checked_sub(2 * page)
            .filter(|&a| a >= self.low())
        else {
            return false;
        };
        let mut vec = [0u8; 1];
        // SAFETY: addr is page aligned (top and HOT_ZONE are) and inside our slot; vec has
        // room for the one page asked about.
        let r = unsafe { libc::mincore(addr as *mut _, page, vec.as_mut_ptr()) };
        r == 0 && vec[0] & 1 != 0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Dropped outside the pools (a goroutine that never ran, a coroutine dropped): give
        // the slot back; it may have been used.
        self.needs_check = true;
        arena::give_back_one(self);
    }
}

// SAFETY: `base` and `limit` bound a readable, writable region owned by this Stack for as
// long as it lives, with a guard region directly below `limit` (installed before the Stack
// left `arena::take`, never removed while the arena lives) — the contract of corosensei's
// `Stack` trait.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        NonZeroUsize::new(self.top).expect("stack top is not null")
    }
    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.low()).expect("stack limit is not null")
    }
}

/// Most goroutines alive at once since the C heap was last trimmed (sysmon's alone).
static LIVE_PEAK: AtomicUsize = AtomicUsize::new(0);
/// A peak of live goroutines this high, fallen to a quarter, trims the C heap.
const TRIM_PEAK: usize = 10_000;

/// Gives memory back after bursts; called by sysmon, with the number of live goroutines.
/// Returns true if more is to be done soon (arena.rs, `scavenge`).
///
/// Besides stacks (`arena::scavenge`), once the number of live goroutines has fallen to a
/// quarter of a peak of at least `TRIM_PEAK`, the C heap is trimmed (`malloc_trim`, glibc):
/// what goroutines allocated with `malloc` while they lived (channel buffers, boxed tasks,
/// their own data) and freed when they ended stays in glibc's heaps otherwise (13 MB after
/// a million goroutines here).
pub(crate) fn scavenge(aging: bool, live: usize) -> bool {
    let more = arena::scavenge(aging);
    let (trim, peak) = heap_trim_due(LIVE_PEAK.load(Ordering::Relaxed), live);
    if trim {
        trim_heap();
    }
    LIVE_PEAK.store(peak, Ordering::Relaxed);
    more
}

/// Whether the C heap is due a trim, given the peak of live goroutines since the last trim
/// and the number alive now; and the peak to keep.
fn heap_trim_due(peak: usize, live: usize) -> (bool, usize) {
    let peak = peak.max(live);
    if peak >= TRIM_PEAK && live <= peak / 4 {
        (true, live)
    } else {
        (false, peak)
    }
}

/// Returns the free memory of the C heap to the kernel, where the allocator can.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Takes a stack of `size` usable bytes (a class size) straight from its pool: for a thread
/// that holds no processor (and so no cache), or a stack allocated at spawn.
pub(crate) fn get(size: usize) -> io::Result<Stack> {
    let mut v = Vec::with_capacity(1);
    arena::take(class_of(size), 1, &mut v)?;
    let mut s = v.pop().expect("take gives at least one stack");
    s.reuse_check(false);
    Ok(s)
}

/// Gives a stack back to its pool (from a thread that holds no processor).
pub(crate) fn put(mut stack: Stack) {
    stack.needs_check = true;
    let class = stack.class as usize;
    arena::give_back(class, [stack]);
}

fn set_exhausted(v: bool) {
    if EXHAUSTED.load(Ordering::Relaxed) != v {
        EXHAUSTED.store(v, Ordering::Relaxed);
    }
}

/// Builds the error for a failed stack allocation (`call` failed with `err`; `len` bytes of
/// address space were asked for when `call` is mmap).
fn exhausted_error(err: io::Error, call: &str, len: usize) -> io::Error {
    set_exhausted(true);
    let msg = if guard_mode() == GuardMode::Mprotect {
        let (limit, left) = guard::limit_and_left();
        format!(
            "gort: cannot allocate a goroutine stack ({call}: {err}). Each suspended goroutine \
             holds a stack of two kernel memory mappings (guard pages by mprotect: this kernel \
             lacks MADV_GUARD_INSTALL, Linux 6.13 or later, or GORT_STACK_GUARD=mprotect is \
             set), and the kernel allows vm.max_map_count = {limit} mappings per process, of \
             which gort leaves {left} to the rest of the program and its threads: about {} \
             suspended goroutines; raise it with `sysctl -w vm.max_map_count=1048576` (as \
             root), or the system is out of memory",
            guard::mprotect_budget(),
        )
    } else if call == "mmap" {
        format!(
            "gort: cannot reserve {len} bytes of address space for goroutine stacks \
             ({call}: {err}): the address space or memory is exhausted (see `ulimit -v` and \
             vm.overcommit_memory)"
        )
    } else {
        format!("gort: cannot install a goroutine stack's guard ({call}: {err}): out of memory")
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

/// True after an allocation failed and no stack has been given back since.
pub(crate) fn exhausted() -> bool {
    EXHAUSTED.load(Ordering::Relaxed)
}

/// True if a spawn must take its stack of `size` bytes now, so that a failure is reported
/// at the call (an `io::Error` from `Builder::spawn`, a panic from `spawn`): once stacks did
/// run out, when no arena of the class has a free slot (a new one must be mapped, which may
/// fail: a size beyond the address space), and, for spawns that promise to report running
/// out at the call (`exact`: `Builder::spawn`), wherever kernel mappings can run out
/// (mprotect guards). Otherwise the goroutine takes its stack, without a lock, from its
/// processor's cache when it first runs.
pub(crate) fn must_take_now(size: usize, exact: bool) -> bool {
    exhausted()
        || !arena::has_free(class_of(size))
        || (exact && guard_mode() == GuardMode::Mprotect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_stack(size: usize) -> Stack {
        get(round_size(size).unwrap()).unwrap()
    }

    #[test]
    fn deep_use_is_trimmed_on_reuse_and_shallow_is_kept() {
        let mut s = with_stack(256 * 1024);
        // Touch the deep zone as deep recursion would.
        let deep = (s.top - HOT_ZONE - 64) as *mut usize;
        // SAFETY: inside the usable region of a stack no coroutine runs on.
        unsafe { deep.write(0x1234) };
        let hot = (s.top - 64) as *mut usize;
        // SAFETY: inside the usable region.
        unsafe { hot.write(7) };
        s.needs_check = true; // as a cache does when a goroutine gives it back
        s.reuse_check(false);
        // SAFETY: same region; after MADV_DONTNEED it reads as zero again.
        assert_eq!(unsafe { deep.read() }, 0, "deep zone was not trimmed");
        // SAFETY: inside the usable region.
        assert_eq!(unsafe { hot.read() }, 7, "hot zone must survive");
    }

    #[test]
    fn shallow_stack_is_never_trimmed() {
        let mut s = with_stack(512 * 1024);
        let hot = (s.top - 128) as *mut usize;
        for i in 0..(3 * MINCORE_EVERY as usize) {
            // SAFETY: inside the usable region of a stack no coroutine runs on.
            unsafe { hot.write(i + 1) };
            s.needs_check = true;
            s.reuse_check(i % MINCORE_EVERY as usize == 0);
            // SAFETY: as above. A trim would have zeroed the whole deep zone, not the hot
            // zone, so look at the deep page directly.
            assert_eq!(unsafe { hot.read() }, i + 1);
            assert!(!s.deep_page_resident(), "a shallow stack has no deep page");
        }
    }

    #[test]
    fn sizes_round_up_to_classes_and_huge_sizes_are_errors() {
        assert_eq!(round_size(1).unwrap(), MIN_STACK_SIZE);
        assert_eq!(round_size(MIN_STACK_SIZE + 1).unwrap(), 2 * MIN_STACK_SIZE);
        assert_eq!(round_size(DEFAULT_STACK_SIZE).unwrap(), DEFAULT_STACK_SIZE);
        assert_eq!(round_size(MAX_STACK_SIZE).unwrap(), MAX_STACK_SIZE);
        for huge in [MAX_STACK_SIZE + 1, usize::MAX / 2, usize::MAX] {
            let e = round_size(huge).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("1 TiB"), "{e}");
        }
        assert_eq!(class_size(class_of(2 << 20)), 2 << 20);
    }

    /// True if the page at `addr` is a guard: a guard marker (bit 58 of its /proc/self/pagemap
    /// entry, Linux 6.15+) or inside a `---p` mapping. Looks without touching.
    pub(crate) fn is_guard(addr: usize) -> bool {
        match guard_mode() {
            GuardMode::Madvise => {
                use std::os::unix::fs::FileExt;
                let f = std::fs::File::open("/proc/self/pagemap").unwrap();
                let mut e = [0u8; 8];
                f.read_exact_at(&mut e, (addr / page_size() * 8) as u64)
                    .unwrap();
                u64::from_ne_bytes(e) >> 58 & 1 == 1
            }
            GuardMode::Mprotect => std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .any(|l| {
                    let mut f = l.split_whitespace();
                    let (range, perms) = (f.next().unwrap(), f.next().unwrap());
                    let (lo, hi) = range.split_once('-').unwrap();
                    let lo = usize::from_str_radix(lo, 16).unwrap();
                    let hi = usize::from_str_radix(hi, 16).unwrap();
                    (lo..hi).contains(&addr) && perms.starts_with("---")
                }),
        }
    }

    #[test]
    fn a_guard_is_below_every_stack_and_survives_trims() {
        // Each test uses its own size class: tests run in parallel and share the pools.
        let mut s = with_stack(1 << 20);
        let (lo, hi) = s.guard();
        assert_eq!((hi - lo, hi), (GUARD_SIZE, s.low()));
        let guarded = |s: &Stack| {
            (s.guard().0..s.guard().1)
                .step_by(page_size())
                .all(is_guard)
        };
        assert!(guarded(&s), "no guard below a new stack");
        assert!(!is_guard(s.low()) && !is_guard(s.top - page_size()));
        // Used deep, down to the guard, then trimmed on reuse: the guard must still be there.
        for a in (s.low()..s.top).step_by(page_size()) {
            // SAFETY: inside the usable region of a stack no coroutine runs on.
            unsafe { (a as *mut u8).write(1) };
        }
        s.needs_check = true;
        s.reuse_check(false);
        assert!(guarded(&s), "a trim removed the guard");
        // And when the slot comes back from the pool (warm, checked on reuse).
        let top = s.top;
        put(s);
        let s = with_stack(1 << 20);
        assert_eq!(s.top, top);
        assert!(guarded(&s), "a reused slot lost its guard");
    }

    /// Review item 4: the C heap is trimmed after a burst ends (live goroutines down to a
    /// quarter of a peak of 10,000 or more: once per fourfold fall), not at every scavenge,
    /// and not after small bursts.
    #[test]
    fn the_heap_is_trimmed_after_a_burst_ends() {
        let mut peak = 0;
        let mut trimmed = Vec::new();
        for live in [
            10, 5_000, 200_000, 1_000_000, 600_000, 240_000, 10, 10, 10, 9_000, 5,
        ] {
            let (trim, p) = heap_trim_due(peak, live);
            peak = p;
            if trim {
                trimmed.push(live);
            }
        }
        assert_eq!(trimmed, [240_000, 10]);
        assert_eq!(heap_trim_due(9_999, 0), (false, 9_999), "a small burst");
        // The next burst trims again.
        assert!(heap_trim_due(heap_trim_due(5, 50_000).1, 12_000).0);
    }

    #[test]
    fn freed_stacks_are_reused_before_new_slots() {
        let class = class_of(round_size(128 * 1024).unwrap());
        let a = with_stack(128 * 1024);
        let addr = a.top;
        put(a);
        let b = with_stack(128 * 1024);
        assert_eq!(b.top, addr, "the freed slot is handed out again first");
        let (arenas, out, _) = arena::stats(class);
        assert!(arenas >= 1 && out >= 1);
    }
}
