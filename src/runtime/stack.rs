//! Goroutine stacks: guarded mmap regions, lazily committed, pooled and trimmed.
//!
//! ```text
//!   high addresses
//!   +---------------------------+ <- top (Stack::base(): corosensei starts here)
//!   |  hot zone (HOT_ZONE)      |   pages committed by the kernel on first touch;
//!   |                           |   a shallow goroutine only ever touches these
//!   +- - - - - - - - - - - - - -+ <- probe line (first words below the hot zone)
//!   |  deep zone                |   touched only by deep recursion; trimmed with
//!   |                           |   madvise(MADV_DONTNEED) before the stack is reused
//!   +---------------------------+ <- limit (Stack::limit())
//!   |  guard (PROT_NONE)        |   a fault here is a stack overflow (see signal.rs)
//!   +---------------------------+ <- mapping start
//!   low addresses
//! ```
//!
//! Each stack is one `mmap` (`MAP_NORESERVE`, so only touched pages cost memory) split by one
//! `mprotect` into two kernel mappings: the guard and the usable part. With Linux's default
//! `vm.max_map_count` (65530) that caps stacks alive at once near 32K; the error names the
//! limit and how to raise it.
//!
//! A goroutine takes its stack when it first runs and gives it back when it ends, to the
//! cache of the processor it ran on (`StackCache`), which overflows into a global pool.
//! So a million short goroutines need only a handful of stacks.
//!
//! Trimming: `mincore` would tell exactly which pages are resident, but costs ~1 µs here —
//! too much for every goroutine exit. Instead, when a stack comes back, the words on the
//! probe line are read: below the hot zone a never-touched (or trimmed) stack reads zero, and
//! a call chain that went deep leaves return addresses and saved registers there. A non-zero
//! word means "used deep": the deep zone is released with `madvise`. As a backstop for
//! deep frames that happen to be zero on the probe line (a big zeroed buffer), every
//! `MINCORE_EVERY`th return asks `mincore` about the second deep page (the probe read
//! itself maps the zero page into the first, which `mincore` counts as resident).
//!
//! # Safety
//! A `Stack` owns its mapping exclusively: it is unmapped exactly once, in `Drop`. The
//! region between `limit` and `top` is readable and writable for the stack's whole life; the
//! probe read happens only while no coroutine runs on the stack (it has been returned).

use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use corosensei::stack::StackPointer;

/// Default usable size of a goroutine stack (reserved address space, committed lazily).
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest usable stack size; smaller requests are rounded up to it.
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
/// Size of the guard region below each stack.
pub(crate) const GUARD_SIZE: usize = 16 * 1024;
/// The top part of a stack that is never trimmed.
const HOT_ZONE: usize = 64 * 1024;
/// Every this many returns of one stack, `mincore` double-checks the deep zone.
const MINCORE_EVERY: u32 = 32;
/// Stacks kept by one processor's cache before they spill to the global pool.
const CACHE_MAX: usize = 32;
/// Stacks kept in the global pool before they are unmapped. Pooled stacks cost no map-count
/// capacity (a new goroutine takes one before mapping a new stack) and little memory (a
/// trimmed stack keeps at most its hot zone, usually one or two pages); unmapping and
/// re-mapping thousands of stacks after a burst of parked goroutines costs far more.
const GLOBAL_MAX: usize = 4096;

/// Set when an allocation failed for lack of mappings or memory; cleared when a stack is
/// released. `spawn` looks at it to fail at the call (as std does) instead of later.
static EXHAUSTED: AtomicBool = AtomicBool::new(false);
/// Stacks of the default size returned by caches that were full.
static GLOBAL: Mutex<Vec<Stack>> = Mutex::new(Vec::new());
/// Number of trims done (a regression test checks shallow stacks are never trimmed).
static TRIMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n <= 0 {
        4096
    } else {
        n as usize
    }
}

/// Rounds a requested stack size to a whole number of pages, at least `MIN_STACK_SIZE`.
pub(crate) fn round_size(size: usize) -> usize {
    let page = page_size();
    size.max(MIN_STACK_SIZE).div_ceil(page) * page
}

/// One goroutine stack: an owned mapping with a guard region at its low end.
pub(crate) struct Stack {
    /// Start of the mapping (the guard's first byte).
    start: usize,
    /// Highest address of the stack, exclusive; where the stack begins growing down.
    top: usize,
    /// Lowest usable address (the guard's end).
    limit: usize,
    /// How many times the stack has been returned to a pool (for the mincore backstop).
    returns: u32,
}

// SAFETY: a Stack is a plain owned memory region; no thread-affine state. Moving it between
// threads is how pools hand stacks to workers.
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a new stack with `size` usable bytes (already rounded) below a guard region.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        let total = size + GUARD_SIZE;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(exhausted_error(io::Error::last_os_error(), "mmap"));
        }
        // SAFETY: the guard is the first GUARD_SIZE bytes of the mapping we just made.
        if unsafe { libc::mprotect(start, GUARD_SIZE, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping the region we mapped above, which nothing else references.
            unsafe { libc::munmap(start, total) };
            return Err(exhausted_error(err, "mprotect"));
        }
        let start = start as usize;
        Ok(Stack {
            start,
            top: start + total,
            limit: start + GUARD_SIZE,
            returns: 0,
        })
    }

    /// Usable size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.top - self.limit
    }

    /// The guard region, `[low, high)`: a fault there is this stack's overflow.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.start, self.limit)
    }

    /// Releases the deep zone's pages if this stack was used deep (see the module comment).
    fn trim_if_deep(&mut self) {
        if self.size() <= HOT_ZONE {
            return;
        }
        self.returns = self.returns.wrapping_add(1);
        let probe_line = self.top - HOT_ZONE - 64;
        // SAFETY: the probe line lies inside [limit, top), readable for the stack's life, and
        // no coroutine runs on this stack now. Volatile: the compiler must not assume zeros.
        let deep = (0..8)
            .any(|i| unsafe { std::ptr::read_volatile((probe_line as *const usize).add(i)) != 0 })
            || (self.returns % MINCORE_EVERY == 0 && self.deep_page_resident());
        if deep {
            TRIMS.fetch_add(1, Ordering::Relaxed);
            let len = self.top - HOT_ZONE - self.limit;
            // SAFETY: [limit, top - HOT_ZONE) is inside our own mapping and unused now;
            // MADV_DONTNEED turns it back into zero-fill-on-demand pages.
            unsafe { libc::madvise(self.limit as *mut _, len, libc::MADV_DONTNEED) };
        }
    }

    /// Asks the kernel whether the second page below the hot zone is resident. Not the
    /// first: reading the probe line maps the shared zero page there, which `mincore`
    /// would report as resident.
    fn deep_page_resident(&self) -> bool {
        let page = page_size();
        if self.top - HOT_ZONE - 2 * page < self.limit {
            return false;
        }
        let addr = self.top - HOT_ZONE - 2 * page;
        let mut vec = [0u8; 1];
        // SAFETY: addr is page aligned (top and HOT_ZONE are) and inside our mapping; vec
        // has room for the one page asked about.
        let r = unsafe { libc::mincore(addr as *mut _, page, vec.as_mut_ptr()) };
        r == 0 && vec[0] & 1 != 0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this Stack alone and unmapped only here.
        unsafe { libc::munmap(self.start as *mut _, self.top - self.start) };
        EXHAUSTED.store(false, Ordering::Relaxed);
    }
}

// SAFETY: `base` and `limit` bound a readable, writable region owned by this Stack for as
// long as it lives, with a PROT_NONE guard region directly below `limit` — the contract of
// corosensei's `Stack` trait.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        NonZeroUsize::new(self.top).expect("stack top is not null")
    }
    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.limit).expect("stack limit is not null")
    }
}

fn read_max_map_count() -> Option<String> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Builds the error for a failed stack allocation, naming vm.max_map_count.
fn exhausted_error(err: io::Error, call: &str) -> io::Error {
    EXHAUSTED.store(true, Ordering::Relaxed);
    let limit = read_max_map_count().unwrap_or_else(|| "unknown".into());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "gort: cannot allocate a goroutine stack ({call}: {err}). Each suspended goroutine \
             holds a stack of two kernel memory mappings, and the kernel allows \
             vm.max_map_count = {limit} mappings per process (about {} suspended goroutines); \
             raise it with `sysctl -w vm.max_map_count=1048576` (as root), or the system is \
             out of memory",
            limit.parse::<usize>().map(|n| n / 2).unwrap_or(32_000)
        ),
    )
}

/// True after an allocation failed and no stack has been released since.
pub(crate) fn exhausted() -> bool {
    EXHAUSTED.load(Ordering::Relaxed)
}

/// Gives a stack back to the global pool (from an M that holds no processor).
pub(crate) fn put_global(mut stack: Stack, default_size: usize) {
    if stack.size() != default_size {
        return; // dropped: unmapped
    }
    stack.trim_if_deep();
    EXHAUSTED.store(false, Ordering::Relaxed); // a stack is free again
    let mut global = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    if global.len() < GLOBAL_MAX {
        global.push(stack);
    }
}

/// A processor's private cache of default-size stacks.
///
/// Only the thread that currently holds the processor uses its cache.
#[derive(Default)]
pub(crate) struct StackCache {
    /// Free stacks, most recently returned last (they are the warmest).
    stacks: Vec<Stack>,
}

impl StackCache {
    /// Takes a stack of `size` usable bytes: from the cache, the global pool, or a new mapping.
    pub(crate) fn get(&mut self, size: usize, default_size: usize) -> io::Result<Stack> {
        if size != default_size {
            return Stack::new(size);
        }
        if let Some(s) = self.stacks.pop() {
            return Ok(s);
        }
        {
            let mut global = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
            let n = global.len().min(CACHE_MAX / 2);
            if n > 0 {
                let at = global.len() - n;
                self.stacks.extend(global.drain(at..));
            }
        }
        match self.stacks.pop() {
            Some(s) => Ok(s),
            None => Stack::new(size),
        }
    }

    /// Gives a stack back after its goroutine ended.
    pub(crate) fn put(&mut self, mut stack: Stack, default_size: usize) {
        if stack.size() != default_size {
            return; // dropped: unmapped
        }
        stack.trim_if_deep();
        if EXHAUSTED.load(Ordering::Relaxed) {
            EXHAUSTED.store(false, Ordering::Relaxed);
        }
        if self.stacks.len() < CACHE_MAX {
            self.stacks.push(stack);
            return;
        }
        let mut global = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        global.extend(self.stacks.drain(CACHE_MAX / 2..));
        if global.len() < GLOBAL_MAX {
            global.push(stack);
        }
        let excess = global.len().saturating_sub(GLOBAL_MAX);
        global.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_use_is_trimmed_and_shallow_is_kept() {
        let size = 256 * 1024;
        let mut s = Stack::new(size).unwrap();
        // Touch the deep zone as deep recursion would.
        let deep = (s.top - HOT_ZONE - 64) as *mut usize;
        // SAFETY: inside the usable region of a stack no coroutine runs on.
        unsafe { deep.write(0x1234) };
        s.trim_if_deep();
        // SAFETY: same region; after MADV_DONTNEED it reads as zero again.
        assert_eq!(unsafe { deep.read() }, 0, "deep zone was not trimmed");
        let hot = (s.top - 64) as *mut usize;
        // SAFETY: inside the usable region.
        unsafe { hot.write(7) };
        s.trim_if_deep();
        // SAFETY: inside the usable region.
        assert_eq!(unsafe { hot.read() }, 7, "hot zone must survive");
    }

    #[test]
    fn shallow_stack_is_never_trimmed() {
        let mut s = Stack::new(256 * 1024).unwrap();
        let hot = (s.top - 128) as *mut usize;
        let before = TRIMS.load(Ordering::Relaxed);
        for i in 0..(3 * MINCORE_EVERY as usize) {
            // SAFETY: inside the usable region of a stack no coroutine runs on.
            unsafe { hot.write(i + 1) };
            s.trim_if_deep();
        }
        // Other tests in this binary may trim their own stacks concurrently, but this one
        // runs alone in its module's scope: compare only our own calls' effect.
        let after = TRIMS.load(Ordering::Relaxed);
        assert!(
            after - before <= 1,
            "a shallow stack was trimmed {} times",
            after - before
        );
    }

    #[test]
    fn sizes_round_up() {
        assert_eq!(round_size(1), MIN_STACK_SIZE);
        assert_eq!(round_size(MIN_STACK_SIZE + 1) % page_size(), 0);
    }
}
