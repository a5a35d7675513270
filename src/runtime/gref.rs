//! Where goroutines live: G blocks carved from large mappings, recycled through per-thread
//! free lists, and [`GRef`], the counted reference to one (what run queues, wake-up lists,
//! `Thread`s and `JoinHandle`s hold).
//!
//! ```text
//!   chunk (one mmap of CHUNK_BYTES, never unmapped)
//!   | block | block | block | ... carved CARVE_BLOCKS at a time ...|  not yet carved      |
//!     ^ refs: AtomicUsize, then the Goroutine (valid while refs > 0)
//!
//!   thread-local cache           global pool (one mutex)
//!   cur   : chain of free blocks  <->  full chains of BATCH free blocks
//!   spare : a full chain               the chunks, and how far each is carved
//!   fresh : never-used blocks  <-----  carved up to CARVE_BLOCKS at a time, their pages
//!                                       committed in one MADV_POPULATE_WRITE
//! ```
//!
//! **Why not `Arc<Goroutine>` and the allocator.** A spawn burst allocates a block per
//! goroutine from memory the process never touched; with glibc's malloc each 4 KiB page of
//! a thread heap cost an `mprotect` plus a page fault, and the arena lock bounced between the
//! spawning and the freeing thread. Here a spawn takes a block from its thread's cache (no
//! lock, no atomic), new blocks arrive up to 282 at a time with their pages committed by one
//! system call (about half the cost of faulting them one by one on this VM), and a finished
//! goroutine's block goes back to the cache of the thread that dropped the last reference,
//! to be reused while its cache lines are warm — Go's `gfree` lists, per thread rather than
//! per P because a goroutine cannot use its P's private state (sysmon may take the P away
//! while it runs).
//!
//! **Goroutine dumps** need every live goroutine: they walk the carved part of every chunk
//! and take a reference to each block whose count is not zero (`for_each_live`), so that
//! spawning registers nothing anywhere.
//!
//! Memory is never returned to the kernel: the blocks of the most goroutines that were ever
//! alive at once stay for reuse (as Go keeps every G it ever made). That is 232 bytes
//! per goroutine of the peak, against the 4 KiB or more of stack that such a goroutine had.
//!
//! # Safety
//! - A block's `refs` is an atomic that exists for the chunk's whole life (chunks are never
//!   unmapped, and carved memory starts zeroed, so `refs` reads 0 before the first use).
//! - The `Goroutine` in a block is valid exactly while `refs > 0`. It is written while
//!   `refs == 0` by the one thread that took the block from a free list, and published by a
//!   Release store of 1; it is dropped by the thread whose decrement took `refs` to 0 (after
//!   an Acquire fence), before the block goes on a free list.
//! - A new reference is made only from an existing one (`Clone`), or by `try_upgrade`,
//!   which increments only a non-zero count by CAS, so it never revives a dead goroutine.
//!   A block may be reused for a new goroutine as soon as its count is 0: `try_upgrade` may
//!   then return the new goroutine, which is as live as any.
//! - The free-list link of a free block is written in its goroutine's place (dead while free).
//!   A free block is owned by the list it is on: the thread-local cache, or the pool's lock.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::goroutine::Goroutine;

/// One goroutine's memory: its reference count, then the goroutine.
#[repr(C)]
struct Block {
    /// Strong references; 0 while the block is free.
    refs: AtomicUsize,
    /// The goroutine while `refs > 0`; the free-list link (`*mut Block`) while free.
    g: UnsafeCell<MaybeUninit<Goroutine>>,
}

/// Byte offset of the goroutine in its block.
const G_OFFSET: usize = std::mem::offset_of!(Block, g);
/// Bytes one block takes (a multiple of its alignment).
const BLOCK: usize = std::mem::size_of::<Block>();
/// Address space reserved per chunk.
const CHUNK_BYTES: usize = 32 << 20;
/// Most blocks carved at once into a thread's `fresh` range (about 64 KiB). A thread's first
/// carve is `FIRST_CARVE` blocks, doubling from one carve to the next up to this: a plain
/// thread that spawns a few goroutines commits a few KiB, a spawning worker 64 KiB at a time.
const CARVE_BLOCKS: usize = (64 << 10) / BLOCK;
/// Blocks of a thread's first carve.
const FIRST_CARVE: usize = 16;
/// Free blocks moved between a thread's cache and the pool at once.
const BATCH: usize = 256;

/// A reference-counted pointer to a goroutine (the runtime's `Arc<Goroutine>`).
pub(crate) struct GRef(NonNull<Block>);

// SAFETY: a GRef is a counted shared reference to a `Goroutine`, which is Send + Sync
// (goroutine.rs); the count is atomic.
unsafe impl Send for GRef {}
// SAFETY: as above.
unsafe impl Sync for GRef {}

impl GRef {
    /// Puts the goroutine `make` returns in a free block, and returns two references to it
    /// (one for the run queue, one for the `JoinHandle`: one count store instead of an
    /// increment). `make` runs after the block is taken, so that the goroutine can be built
    /// in place rather than copied there.
    #[inline(always)]
    pub(crate) fn new_pair(make: impl FnOnce() -> Goroutine) -> (GRef, GRef) {
        let b = alloc();
        // SAFETY: a block from a free list is ours alone, with `refs == 0` (module notes):
        // nobody reads its goroutine until the Release store below publishes it.
        unsafe {
            (*b.as_ptr()).g.get().cast::<Goroutine>().write(make());
            (*b.as_ptr()).refs.store(2, Ordering::Release);
        }
        (GRef(b), GRef(b))
    }

    #[inline]
    fn block(&self) -> &Block {
        // SAFETY: our count keeps the block's goroutine alive; the block itself never goes.
        unsafe { self.0.as_ref() }
    }

    /// The goroutine's address (stable for its life; its identity).
    #[inline]
    pub(crate) fn as_ptr(this: &GRef) -> *const Goroutine {
        Self::g_of(this.0)
    }

    #[inline]
    fn g_of(b: NonNull<Block>) -> *const Goroutine {
        // SAFETY: in bounds of the block.
        unsafe { b.as_ptr().cast::<u8>().add(G_OFFSET).cast() }
    }

    /// The block holding the goroutine at `p` (as `as_ptr` returned).
    #[inline]
    fn block_of(p: *const Goroutine) -> NonNull<Block> {
        // SAFETY: `p` is a block's goroutine (callers' contracts), G_OFFSET bytes in.
        unsafe { NonNull::new_unchecked(p.cast::<u8>().sub(G_OFFSET) as *mut Block) }
    }

    /// Gives up the reference without dropping it; `from_raw` takes it back.
    #[inline]
    pub(crate) fn into_raw(this: GRef) -> *const Goroutine {
        let p = Self::as_ptr(&this);
        std::mem::forget(this);
        p
    }

    /// Takes back a reference given up by `into_raw`.
    ///
    /// # Safety
    /// `p` came from `into_raw`, and that reference is taken back once.
    #[inline]
    pub(crate) unsafe fn from_raw(p: *const Goroutine) -> GRef {
        GRef(Self::block_of(p))
    }

    /// Adds a reference to the goroutine at `p` (to be taken with `from_raw`).
    ///
    /// # Safety
    /// `p` is the address of a goroutine that some reference keeps alive during the call.
    #[inline]
    pub(crate) unsafe fn increment_strong_count(p: *const Goroutine) {
        // SAFETY: the caller's contract: the block is live.
        let b = unsafe { Self::block_of(p).as_ref() };
        inc(&b.refs);
    }

    /// True if both refer to the same goroutine.
    pub(crate) fn ptr_eq(a: &GRef, b: &GRef) -> bool {
        a.0 == b.0
    }

    /// A new reference to the goroutine in `b`, unless its count is 0 (free, or dying).
    fn try_upgrade(b: NonNull<Block>) -> Option<GRef> {
        // SAFETY: blocks are never unmapped, and `refs` is valid in every carved block.
        let refs = unsafe { &(*b.as_ptr()).refs };
        let mut n = refs.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return None;
            }
            match refs.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(GRef(b)),
                Err(now) => n = now,
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn drop_slow(&mut self) {
        // SAFETY: our decrement took the count to 0: nobody else can reach the goroutine
        // (module notes), so it is dropped here, once, and the block becomes free.
        unsafe { ptr::drop_in_place((*self.0.as_ptr()).g.get().cast::<Goroutine>()) };
        free(self.0);
    }
}

/// Adds one to a count that is not zero; aborts on overflow, as `Arc` does.
#[inline]
fn inc(refs: &AtomicUsize) {
    if refs.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
        std::process::abort();
    }
}

impl Clone for GRef {
    #[inline]
    fn clone(&self) -> GRef {
        inc(&self.block().refs);
        GRef(self.0)
    }
}

impl Drop for GRef {
    #[inline]
    fn drop(&mut self) {
        if self.block().refs.fetch_sub(1, Ordering::Release) == 1 {
            // Every other holder's writes happen before the drop (as in Arc).
            fence(Ordering::Acquire);
            self.drop_slow();
        }
    }
}

impl Deref for GRef {
    type Target = Goroutine;
    #[inline]
    fn deref(&self) -> &Goroutine {
        // SAFETY: our count keeps the goroutine alive (module notes).
        unsafe { &*Self::as_ptr(self) }
    }
}

/// Calls `f` with a reference to every live goroutine (for dumps). Goroutines spawned or
/// ending meanwhile may or may not be seen.
pub(crate) fn for_each_live(mut f: impl FnMut(GRef)) {
    let chunks: Vec<(usize, usize)> = pool().chunks.clone();
    for (base, carved) in chunks {
        for i in 0..carved {
            let b = (base + i * BLOCK) as *mut Block;
            // SAFETY: a carved block of a chunk, which is never unmapped.
            if let Some(g) = GRef::try_upgrade(unsafe { NonNull::new_unchecked(b) }) {
                f(g);
            }
        }
    }
}

/// A singly linked list of free blocks, threaded through their goroutine space.
#[derive(Clone, Copy)]
struct Chain {
    head: *mut Block,
    len: usize,
}

impl Chain {
    const EMPTY: Chain = Chain {
        head: ptr::null_mut(),
        len: 0,
    };

    /// The link of a free block.
    fn next_of(b: *mut Block) -> *mut *mut Block {
        // SAFETY: the goroutine space of a free block holds its link (module notes).
        unsafe { (*b).g.get().cast() }
    }

    fn push(&mut self, b: *mut Block) {
        // SAFETY: `b` is a free block owned by whoever owns this chain.
        unsafe { Self::next_of(b).write(self.head) };
        self.head = b;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<*mut Block> {
        if self.head.is_null() {
            return None;
        }
        let b = self.head;
        // SAFETY: as in `push`.
        self.head = unsafe { Self::next_of(b).read() };
        self.len -= 1;
        Some(b)
    }
}

/// What every thread shares: full chains of free blocks and the chunks.
struct Pool {
    /// Chains of `BATCH` free blocks (the last may be shorter).
    full: Vec<Chain>,
    /// Each chunk's base and how many blocks of it are carved (for dumps).
    chunks: Vec<(usize, usize)>,
    /// Next block to carve in the last chunk, and the end of that chunk.
    carve: usize,
    end: usize,
}

// SAFETY: the raw pointers are free blocks owned by the pool (under its lock).
unsafe impl Send for Pool {}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    full: Vec::new(),
    chunks: Vec::new(),
    carve: 0,
    end: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread's free blocks.
struct Cache {
    /// Blocks freed most recently (reused first: their lines are warm).
    cur: Cell<Chain>,
    /// A full chain kept back, so that a thread that frees and allocates around a multiple
    /// of `BATCH` does not go to the pool each time.
    spare: Cell<Chain>,
    /// Never-used blocks `[fresh, fresh_end)`, carved for this thread.
    fresh: Cell<usize>,
    fresh_end: Cell<usize>,
    /// Blocks the next carve takes.
    carve: Cell<usize>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        // The thread is ending: its free blocks, and the fresh ones it never used, go to
        // the pool.
        let mut fresh = Chain::EMPTY;
        let mut b = self.fresh.get();
        while b < self.fresh_end.get() {
            fresh.push(b as *mut Block);
            b += BLOCK;
        }
        let mut p = pool();
        for c in [self.cur.get(), self.spare.get(), fresh] {
            if c.len > 0 {
                p.full.push(c);
            }
        }
    }
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            cur: Cell::new(Chain::EMPTY),
            spare: Cell::new(Chain::EMPTY),
            fresh: Cell::new(0),
            fresh_end: Cell::new(0),
            carve: Cell::new(FIRST_CARVE),
        }
    };
}

/// A free block, from this thread's cache if it can. Not inlined: a goroutine can move to
/// another thread, and the thread-local's address must not be kept across that
/// (llvm-project#98479; there is no switch inside, but callers may be inlined around one).
#[inline(never)]
fn alloc() -> NonNull<Block> {
    let b = CACHE
        .try_with(|c| {
            let mut cur = c.cur.get();
            if let Some(b) = cur.pop() {
                c.cur.set(cur);
                return b;
            }
            let spare = c.spare.replace(Chain::EMPTY);
            if spare.len > 0 {
                let mut cur = spare;
                let b = cur.pop().expect("a non-empty chain");
                c.cur.set(cur);
                return b;
            }
            let f = c.fresh.get();
            if f < c.fresh_end.get() {
                c.fresh.set(f + BLOCK);
                return f as *mut Block;
            }
            refill(c)
        })
        .unwrap_or_else(|_| alloc_shared());
    // SAFETY: blocks are never null.
    unsafe { NonNull::new_unchecked(b) }
}

/// The cache is empty: takes a chain from the pool, or carves fresh blocks.
#[cold]
fn refill(c: &Cache) -> *mut Block {
    let mut p = pool();
    if let Some(mut chain) = p.full.pop() {
        drop(p);
        let b = chain.pop().expect("pool chains are not empty");
        c.cur.set(chain);
        return b;
    }
    let n = c.carve.get();
    c.carve.set((n * 2).min(CARVE_BLOCKS));
    let (start, end) = carve(&mut p, n);
    drop(p);
    populate(start, end);
    c.fresh.set(start + BLOCK);
    c.fresh_end.set(end);
    start as *mut Block
}

/// For a thread whose cache is gone (it is exiting): a block straight from the pool.
#[cold]
fn alloc_shared() -> *mut Block {
    let mut p = pool();
    if let Some(mut chain) = p.full.pop() {
        let b = chain.pop().expect("pool chains are not empty");
        if chain.len > 0 {
            p.full.push(chain);
        }
        return b;
    }
    // Carve a range and keep all but one block in the pool as a chain.
    let (start, end) = carve(&mut p, FIRST_CARVE);
    let mut chain = Chain::EMPTY;
    let mut b = start + BLOCK;
    while b < end {
        chain.push(b as *mut Block);
        b += BLOCK;
    }
    if chain.len > 0 {
        p.full.push(chain);
    }
    start as *mut Block
}

/// Carves up to `n` never-used blocks; maps a new chunk when the last is used up.
fn carve(p: &mut Pool, n: usize) -> (usize, usize) {
    if p.carve + BLOCK > p.end {
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let m = unsafe {
            libc::mmap(
                ptr::null_mut(),
                CHUNK_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if m == libc::MAP_FAILED {
            // As the global allocator does when memory runs out.
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(CHUNK_BYTES, 4096).expect("valid layout"),
            );
        }
        p.carve = m as usize;
        p.end = m as usize + CHUNK_BYTES / BLOCK * BLOCK;
        p.chunks.push((m as usize, 0));
    }
    let start = p.carve;
    let end = (start + n * BLOCK).min(p.end);
    p.carve = end;
    let last = p.chunks.last_mut().expect("a chunk was mapped");
    last.1 = (end - last.0) / BLOCK;
    (start, end)
}

/// Commits the pages of newly carved blocks in one system call (best effort: pages not
/// committed here are faulted in when first written).
fn populate(start: usize, end: usize) {
    let page = super::stack::page_size();
    let lo = start & !(page - 1);
    let hi = (end + page - 1) & !(page - 1);
    // SAFETY: MADV_POPULATE_WRITE only commits (zero) pages where none are, in a range of
    // our own chunk: it changes no data.
    unsafe { libc::madvise(lo as *mut _, hi - lo, libc::MADV_POPULATE_WRITE) };
}

/// Puts a block whose goroutine was just dropped on this thread's free list.
#[inline(never)]
fn free(b: NonNull<Block>) {
    let b = b.as_ptr();
    let done = CACHE.try_with(|c| {
        let mut cur = c.cur.get();
        cur.push(b);
        if cur.len >= BATCH {
            let spare = c.spare.replace(cur);
            if spare.len > 0 {
                pool().full.push(spare);
            }
            cur = Chain::EMPTY;
        }
        c.cur.set(cur);
    });
    if done.is_err() {
        let mut chain = Chain::EMPTY;
        chain.push(b);
        pool().full.push(chain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_and_dumps_see_only_live_ones() {
        // A few goroutines' worth of blocks: the dump sees each live one exactly once.
        let hs: Vec<_> = (0..1000).map(|_| crate::spawn(|| ())).collect();
        let ids: Vec<u64> = hs
            .iter()
            .map(|h| h.thread().id().goroutine_id().unwrap())
            .collect();
        let mut seen = Vec::new();
        for_each_live(|g| seen.push(g.id));
        for id in &ids {
            assert_eq!(seen.iter().filter(|&&s| s == *id).count(), 1);
        }
        for h in hs {
            h.join().unwrap();
        }
        // Their blocks are free again: spawning as many more maps no new chunk.
        let chunks = pool().chunks.len();
        let hs: Vec<_> = (0..1000).map(|_| crate::spawn(|| ())).collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(pool().chunks.len(), chunks);
    }

    #[test]
    fn an_exiting_thread_gives_its_unused_fresh_blocks_back() {
        // A thread's cache holding never-used blocks (as after its first carve) is dropped
        // when the thread exits: those blocks must go to the pool, not be lost.
        let (start, end) = carve(&mut pool(), FIRST_CARVE);
        let cache = Cache {
            cur: Cell::new(Chain::EMPTY),
            spare: Cell::new(Chain::EMPTY),
            fresh: Cell::new(start + BLOCK), // the first one "used"
            fresh_end: Cell::new(end),
            carve: Cell::new(FIRST_CARVE),
        };
        drop(cache);
        let p = pool();
        for b in (start + BLOCK..end).step_by(BLOCK) {
            let in_pool = p.full.iter().any(|chain| {
                let mut at = chain.head;
                while !at.is_null() {
                    if at as usize == b {
                        return true;
                    }
                    // SAFETY: a free block on a pool chain; we hold the pool's lock.
                    at = unsafe { Chain::next_of(at).read() };
                }
                false
            });
            // Another thread may have taken the chain since (then the block is in use, or
            // in that thread's cache: its count tells the first case only, so look at the
            // pool first).
            // SAFETY: a carved block's count is always readable.
            let taken = unsafe { (*(b as *const Block)).refs.load(Ordering::Relaxed) } > 0;
            assert!(in_pool || taken, "a dead thread's fresh blocks were lost");
        }
    }
}
