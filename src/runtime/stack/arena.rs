//! Arenas and the size-class pools that own them.
//!
//! An arena is one anonymous `MAP_NORESERVE` mapping cut into equal slots of one size class:
//! `[guard | stack]` repeated, so the slots' guards need no mapping of their own (guard.rs).
//! Each class has one pool: a mutex over the class's arenas, sorted by address. Processors
//! take and give back stacks in batches (cache.rs), so the lock is taken once per batch.
//!
//! ```text
//!  slot state   | where it is                    | resident pages | guard | next
//!  -------------+--------------------------------+----------------+-------+------------------
//!  fresh        | index >= Arena::fresh          | none           | no    | handed out
//!  unguarded    | Arena::unguarded (install      | none           | no    | handed out
//!               |   failed: map count reached)   |                |       |
//!  out          | a goroutine or a P's cache     | its own        | yes   | warm (put)
//!  warm         | Arena::warm                    | hot pages, and | yes   | out (checked and
//!               |                                |  deep ones if  |       |  trimmed on reuse),
//!               |                                |  used deep     |       |  cold (scavenged)
//!  cold         | Arena::cold                    | none           | yes   | out
//! ```
//!
//! Taking prefers slots that already have their guard (warm, then cold, lowest arena first),
//! then new or unguarded ones (lowest arena first), so that memory is reused before more is
//! touched, high arenas drain, and, with `mprotect` guards, stacks given back are reused
//! once the budget of mappings is spent (a new slot's guard would fail). An arena
//! whose slots are all back (`out == 0`) is wholly free; the scavenger (run by sysmon about
//! once a second, off every goroutine's path) unmaps wholly free arenas but one per class,
//! and trims warm slots beyond `WARM_KEEP_BYTES` per class to nothing (`MADV_DONTNEED`,
//! which leaves the guards in place). Unmapping an arena returns its pages and the page
//! tables that hold its guard markers.
//!
//! # Safety
//! - An `Arena` is boxed (its address never changes) and freed only by the scavenger, under
//!   the pool lock, when `out == 0`: then no `Stack` points to it, because every `Stack`
//!   counts in `out` from the moment it is taken until it is given back under that lock.
//! - A slot in `out` is owned by its `Stack` alone; the pool touches a slot's memory (guard
//!   install, trims, unmapping) only while the slot is in none of the free lists and not
//!   owned by a `Stack`: right after taking it, or after taking it out for the scavenger.

use std::io;
use std::mem;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{class_size, exhausted_error, guard, page_size, set_exhausted, Stack, GUARD_SIZE};

/// Number of size classes: 16 KiB << 0 ..= 16 KiB << 26 (1 TiB).
pub(crate) const NCLASSES: usize = 27;
/// Address space reserved by one arena (one slot when a stack is bigger).
const ARENA_BYTES: usize = 256 << 20;
/// Warm slots a class keeps (in bytes of stack size) before the scavenger trims the rest.
const WARM_KEEP_BYTES: usize = 64 << 20;
/// Most stacks set up (guards, top pages) with one system call.
const BATCH_MAX: usize = 32;
/// Most slots trimmed per scavenge, all classes together (about 1 to 3 µs each).
const SCAVENGE_MAX: usize = 2048;
/// Unmapping done per scavenge (a bound, checked after each piece).
const SCAVENGE_SLICE: Duration = Duration::from_millis(2);
/// Bytes of an arena unmapped by one `munmap` (well under 1 ms after a burst, on this VM).
const UNMAP_PIECE: usize = 8 << 20;

/// One mapping of `slots` stacks of one class.
pub(crate) struct Arena {
    /// First byte of the mapping.
    base: usize,
    /// Bytes mapped.
    len: usize,
    /// Guard plus usable size.
    stride: usize,
    /// Number of slots.
    slots: u32,
    /// Slots `fresh..slots` have never been handed out.
    fresh: u32,
    /// Free slots whose guard could not be installed.
    unguarded: SlotList,
    /// Free slots that may hold resident pages (most recently given back first).
    warm: SlotList,
    /// Fewest slots `warm` held since the last scavenge: the oldest this many have stayed
    /// free for a whole period (the scavenger trims them).
    warm_low: u32,
    /// Free slots with no resident pages.
    cold: SlotList,
    /// The next slot of each slot's free list (the lists are threaded through it, so giving
    /// slots back never allocates).
    next: Box<[u32]>,
    /// Slots handed out (owned by a `Stack`) or taken by the scavenger.
    out: u32,
}

impl Arena {
    /// Maps a new arena for `class`.
    fn map(class: usize) -> io::Result<Box<Arena>> {
        let stride = class_size(class) + GUARD_SIZE;
        let slots = (ARENA_BYTES / stride).clamp(1, u32::MAX as usize);
        let len = stride * slots;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(exhausted_error(io::Error::last_os_error(), "mmap", len));
        }
        // Transparent huge pages would commit 2 MiB where a stack touches 4 KiB. Best effort:
        // without it, stacks still work.
        // SAFETY: advice on the mapping just made.
        unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
        Ok(Box::new(Arena {
            base: p as usize,
            len,
            stride,
            slots: slots as u32,
            fresh: 0,
            unguarded: SlotList::EMPTY,
            warm: SlotList::EMPTY,
            warm_low: 0,
            cold: SlotList::EMPTY,
            next: vec![NIL; slots].into_boxed_slice(),
            out: 0,
        }))
    }

    fn has_free(&self) -> bool {
        self.fresh < self.slots
            || self.warm.len != 0
            || self.cold.len != 0
            || self.unguarded.len != 0
    }

    /// Pushes `slot` on one of this arena's free lists.
    fn push(&mut self, list: fn(&mut Arena) -> &mut SlotList, slot: u32) {
        let head = list(self).head;
        self.next[slot as usize] = head;
        let l = list(self);
        l.head = slot;
        l.len += 1;
    }

    /// Pops a slot from one of this arena's free lists.
    fn pop(&mut self, list: fn(&mut Arena) -> &mut SlotList) -> Option<u32> {
        let slot = list(self).head;
        if slot == NIL {
            return None;
        }
        let next = self.next[slot as usize];
        let l = list(self);
        l.head = next;
        l.len -= 1;
        Some(slot)
    }

    /// Takes the last (oldest) `n` slots off the warm list, passing each to `f`.
    fn take_warm_tail(&mut self, n: u32, mut f: impl FnMut(u32)) {
        if n == 0 {
            return;
        }
        let keep = self.warm.len - n;
        let mut slot = if keep == 0 {
            let first = self.warm.head;
            self.warm.head = NIL;
            first
        } else {
            let mut last_kept = self.warm.head;
            for _ in 1..keep {
                last_kept = self.next[last_kept as usize];
            }
            std::mem::replace(&mut self.next[last_kept as usize], NIL)
        };
        self.warm.len = keep;
        while slot != NIL {
            f(slot);
            slot = self.next[slot as usize];
        }
    }

    /// Lowest address of slot `i` (its guard).
    fn slot_start(&self, i: u32) -> usize {
        self.base + i as usize * self.stride
    }
}

/// End of a slot list.
const NIL: u32 = u32::MAX;

/// A free list of slots, threaded through `Arena::next`.
#[derive(Clone, Copy)]
struct SlotList {
    head: u32,
    len: u32,
}

impl SlotList {
    const EMPTY: SlotList = SlotList { head: NIL, len: 0 };
}

fn warm(a: &mut Arena) -> &mut SlotList {
    &mut a.warm
}

fn cold(a: &mut Arena) -> &mut SlotList {
    &mut a.cold
}

fn unguarded(a: &mut Arena) -> &mut SlotList {
    &mut a.unguarded
}

/// The arenas of one class.
struct PoolState {
    /// Sorted by address. Boxed: a `Stack` points to its arena, which must not move when
    /// this vector grows.
    #[allow(clippy::vec_box)]
    arenas: Vec<Box<Arena>>,
    /// No arena below this address has a free slot (an address, not an index, so that
    /// giving a slot back needs no search).
    low: usize,
    /// Warm slots in all arenas.
    warm: usize,
    /// Cold slots in all arenas.
    cold: usize,
}

impl PoolState {
    /// Index of the lowest arena that may have a free slot.
    fn first(&self) -> usize {
        self.arenas.partition_point(|a| a.base < self.low)
    }

    /// Moves up to `n` free slots of `class` into `out` (unguarded ones marked so): slots
    /// that have a guard first, from any arena (lowest first), then new or unguarded ones
    /// (lowest arena first). Guarded slots first, because a new slot needs a guard, and with
    /// `mprotect` guards the budget of mappings may be spent: then only slots given back
    /// can be handed out again, wherever they are.
    fn take(&mut self, class: usize, n: usize, out: &mut Vec<Stack>) {
        let need = self.take_from(class, n, out, true);
        self.take_from(class, need, out, false);
    }

    /// One pass of `take`: guarded free slots only, or any. Returns how many are still
    /// needed.
    fn take_from(
        &mut self,
        class: usize,
        mut need: usize,
        out: &mut Vec<Stack>,
        guarded_only: bool,
    ) -> usize {
        let mut i = self.first();
        while need > 0 && i < self.arenas.len() {
            if guarded_only && self.warm + self.cold == 0 {
                break;
            }
            let a: &mut Arena = &mut self.arenas[i];
            let ptr = NonNull::from(&mut *a);
            while need > 0 {
                let (slot, was_warm, guarded) = if let Some(s) = a.pop(warm) {
                    self.warm -= 1;
                    a.warm_low = a.warm_low.min(a.warm.len);
                    (s, true, true)
                } else if let Some(s) = a.pop(cold) {
                    self.cold -= 1;
                    (s, false, true)
                } else if guarded_only {
                    break;
                } else if let Some(s) = a.pop(unguarded) {
                    (s, false, false)
                } else if a.fresh < a.slots {
                    a.fresh += 1;
                    (a.fresh - 1, false, false)
                } else {
                    break;
                };
                a.out += 1;
                need -= 1;
                let start = a.slot_start(slot);
                out.push(Stack {
                    arena: ptr,
                    top: start + a.stride,
                    slot,
                    class: class as u8,
                    needs_check: was_warm,
                    guarded,
                });
            }
            if !a.has_free() && self.low <= a.base {
                self.low = a.base + 1;
            }
            i += 1;
        }
        need
    }

    /// Records that `s` is free again (the caller then forgets or has dropped it).
    fn give_back(&mut self, s: &Stack) {
        // SAFETY: `s` counts in its arena's `out`, so the arena is alive (module safety
        // notes); the pool lock is held, so nobody else touches it.
        let a = unsafe { &mut *s.arena.as_ptr() };
        if !s.guarded {
            a.push(unguarded, s.slot);
        } else if s.needs_check {
            a.push(warm, s.slot);
            self.warm += 1;
        } else {
            a.push(cold, s.slot);
            self.cold += 1;
        }
        a.out -= 1;
        self.low = self.low.min(a.base);
    }
}

/// The pool of one size class.
struct Pool {
    state: Mutex<PoolState>,
    /// Whether some arena had a free slot when the lock was last released (read without
    /// the lock by `has_free`).
    has_free: AtomicBool,
}

static POOLS: [Pool; NCLASSES] = [const {
    Pool {
        state: Mutex::new(PoolState {
            arenas: Vec::new(),
            low: 0,
            warm: 0,
            cold: 0,
        }),
        has_free: AtomicBool::new(false),
    }
}; NCLASSES];

/// The locked pool of `class`; it republishes `has_free` when unlocked.
struct Locked {
    class: usize,
    state: MutexGuard<'static, PoolState>,
}

impl std::ops::Deref for Locked {
    type Target = PoolState;
    fn deref(&self) -> &PoolState {
        &self.state
    }
}

impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut PoolState {
        &mut self.state
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let st = &mut *self.state;
        let mut i = st.first();
        while i < st.arenas.len() && !st.arenas[i].has_free() {
            st.low = st.arenas[i].base + 1;
            i += 1;
        }
        let free = i < st.arenas.len();
        let flag = &POOLS[self.class].has_free;
        if flag.load(Ordering::Relaxed) != free {
            flag.store(free, Ordering::Relaxed);
        }
    }
}

fn lock(class: usize) -> Locked {
    Locked {
        class,
        state: POOLS[class].state.lock().unwrap_or_else(|e| e.into_inner()),
    }
}

/// True if a stack of `class` can probably be had without mapping a new arena (a racy
/// hint: another taker may get there first).
pub(crate) fn has_free(class: usize) -> bool {
    POOLS[class].has_free.load(Ordering::Relaxed)
}

/// Appends up to `n` (at least one) stacks of `class` to `out`, guarded; maps a new arena if
/// every slot is taken. Errors only if not even one stack could be had.
pub(crate) fn take(class: usize, n: usize, out: &mut Vec<Stack>) -> io::Result<()> {
    let start = out.len();
    loop {
        lock(class).take(class, n, out);
        if out.len() > start {
            break;
        }
        // Every slot is out: map another arena (outside the lock; two takers racing here
        // both map one, and the spare is used later).
        let arena = Arena::map(class)?;
        let mut st = lock(class);
        let i = st.arenas.partition_point(|a| a.base < arena.base);
        st.low = st.low.min(arena.base);
        st.arenas.insert(i, arena);
    }
    // Install the guards of new slots, and commit the top pages of a batch of stacks without
    // pages, outside the lock: those slots are ours.
    let mut failure = None;
    let mut at = start;
    while at < out.len() {
        let chunk = at..out.len().min(at + BATCH_MAX);
        at = chunk.end;
        let mut ranges = [EMPTY_IOVEC; BATCH_MAX];
        let mut k = 0;
        for s in &out[chunk.clone()] {
            if !s.guarded {
                ranges[k] = iovec(s.guard().0, GUARD_SIZE);
                k += 1;
            }
        }
        let guarded = if failure.is_some() {
            0
        } else {
            // SAFETY: the guard regions of slots we own, untouched so far.
            match unsafe { guard::install(&ranges[..k]) } {
                Ok(()) => k,
                Err((done, e)) => {
                    failure = Some(e);
                    done
                }
            }
        };
        let (mut seen, mut fresh) = (0, 0);
        for s in &mut out[chunk] {
            if !s.guarded {
                s.guarded = seen < guarded;
                seen += 1;
            }
            if s.guarded && !s.needs_check {
                ranges[fresh] = iovec(s.top - page_size(), page_size());
                fresh += 1;
            }
        }
        // SAFETY: the top pages of guarded slots we own, holding no data yet.
        unsafe { guard::populate(&ranges[..fresh]) };
    }
    let mut unguarded = Vec::new();
    let mut i = start;
    while i < out.len() {
        if out[i].guarded {
            i += 1;
        } else {
            unguarded.push(out.swap_remove(i));
        }
    }
    if !unguarded.is_empty() {
        give_back(class, unguarded);
    }
    match failure {
        Some(e) if out.len() == start => Err(exhausted_error(e, guard::mode().name(), 0)),
        _ => Ok(()),
    }
}

const EMPTY_IOVEC: libc::iovec = libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
};

fn iovec(addr: usize, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: addr as *mut _,
        iov_len: len,
    }
}

/// Gives stacks of `class` back to their arenas.
pub(crate) fn give_back(class: usize, stacks: impl IntoIterator<Item = Stack>) {
    let mut st = lock(class);
    for s in stacks {
        debug_assert_eq!(s.class as usize, class);
        st.give_back(&s);
        mem::forget(s);
    }
    drop(st);
    set_exhausted(false);
}

/// Gives one stack back (from `Stack::drop`).
pub(super) fn give_back_one(s: &Stack) {
    lock(s.class as usize).give_back(s);
    set_exhausted(false);
}

/// An arena out of its pool, being unmapped a piece at a time (`scavenge`).
struct Unmapping {
    /// First byte not unmapped yet.
    at: usize,
    /// End of the mapping.
    end: usize,
    /// Guards it holds (given back to the budget when it is gone).
    guards: usize,
}

/// Arenas taken out of their pools and not wholly unmapped yet.
static UNMAPPING: Mutex<Vec<Unmapping>> = Mutex::new(Vec::new());

/// Returns free stacks' memory to the kernel, a bounded amount of work at a time. Called by
/// sysmon about once a second (`aging`: a period has passed), and again on its next round
/// (within about 10 ms, not `aging`) while this returns true (more to do):
///
/// - wholly free arenas but the lowest of each class (a spare) leave their pools and are
///   unmapped, `UNMAP_PIECE` bytes per `munmap` (one `munmap` of a big arena after a burst
///   of a million goroutines took up to 9 ms here, 120 ms for all of them);
/// - when `aging`, warm slots that stayed free for a whole period (the oldest
///   `Arena::warm_low` of an arena's list: nobody took them since the last period) are
///   trimmed whole and become cold,
///   so that an idle program gives back the pages of its free stacks, deep ones included;
/// - so are warm slots beyond `WARM_KEEP_BYTES` per class, newest arenas first.
///
/// At most `SCAVENGE_MAX` trims and about `SCAVENGE_SLICE` of unmapping per call, so
/// sysmon's other duties (retaking processors, firing overdue timers) keep their cadence.
pub(crate) fn scavenge(aging: bool) -> bool {
    let deadline = Instant::now() + SCAVENGE_SLICE;
    let mut more = false;
    let mut budget = SCAVENGE_MAX;
    for class in 0..NCLASSES {
        if Instant::now() >= deadline {
            return true;
        }
        let mut trims: Vec<(NonNull<Arena>, u32)> = Vec::new();
        {
            let mut st = lock(class);
            if st.arenas.is_empty() {
                continue;
            }
            let mut spare = false;
            let mut i = 0;
            while i < st.arenas.len() {
                if st.arenas[i].out != 0 || !spare {
                    spare |= st.arenas[i].out == 0;
                    i += 1;
                    continue;
                }
                let a = st.arenas.remove(i);
                st.warm -= a.warm.len as usize;
                st.cold -= a.cold.len as usize;
                UNMAPPING
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Unmapping {
                        at: a.base,
                        end: a.base + a.len,
                        // Every slot handed out got a guard, but those on the unguarded list.
                        guards: (a.fresh - a.unguarded.len) as usize,
                    });
            }
            // Idle slots first (oldest first), then the excess beyond what the class keeps.
            let keep = WARM_KEEP_BYTES / class_size(class);
            let st = &mut *st;
            for a in st.arenas.iter_mut().filter(|_| aging) {
                let idle = a.warm_low.min(a.warm.len) as usize;
                let n = idle.min(budget);
                more |= n < idle;
                budget -= n;
                st.warm -= n;
                let ptr = NonNull::from(&mut **a);
                a.take_warm_tail(n as u32, |slot| trims.push((ptr, slot)));
            }
            let mut excess = st.warm.saturating_sub(keep);
            more |= excess > budget;
            excess = excess.min(budget);
            budget -= excess;
            st.warm -= excess;
            for a in st.arenas.iter_mut().rev() {
                while excess > 0 {
                    let Some(slot) = a.pop(warm) else { break };
                    excess -= 1;
                    trims.push((NonNull::from(&mut **a), slot));
                }
            }
            for a in st.arenas.iter_mut().filter(|_| aging) {
                a.warm_low = a.warm.len;
            }
            for &(a, _) in &trims {
                // SAFETY: the arena is in this pool (lock held); the slot is ours until
                // given back below.
                unsafe { (*a.as_ptr()).out += 1 };
            }
        }
        if trims.is_empty() {
            continue;
        }
        let mut done = 0;
        for &(a, slot) in &trims {
            if Instant::now() >= deadline {
                more = true; // the rest stay warm until the next round
                break;
            }
            // SAFETY: the slot was taken out of the free lists above (counted in `out`, so
            // the arena stays mapped); its usable part holds no live data.
            unsafe {
                let a = a.as_ref();
                let lo = a.slot_start(slot) + GUARD_SIZE;
                libc::madvise(lo as *mut _, a.stride - GUARD_SIZE, libc::MADV_DONTNEED);
            }
            done += 1;
        }
        let mut st = lock(class);
        for (i, (a, slot)) in trims.into_iter().enumerate() {
            // SAFETY: counted in `out` since we took it: the arena is alive; lock held.
            let a = unsafe { &mut *a.as_ptr() };
            if i < done {
                a.push(cold, slot);
                st.cold += 1;
            } else {
                a.push(warm, slot);
                st.warm += 1;
            }
            a.out -= 1;
            st.low = st.low.min(a.base);
        }
    }
    more | unmap_some(deadline)
}

/// Unmaps pieces of the arenas in `UNMAPPING` until `deadline`; true if some are left.
fn unmap_some(deadline: Instant) -> bool {
    let mut list = UNMAPPING.lock().unwrap_or_else(|e| e.into_inner());
    while let Some(u) = list.last_mut() {
        let len = (u.end - u.at).min(UNMAP_PIECE);
        // SAFETY: the arena is out of its pool and was wholly free: nothing uses its memory,
        // and this part of it was not unmapped yet.
        unsafe { libc::munmap(u.at as *mut _, len) };
        u.at += len;
        if u.at == u.end {
            guard::forget(u.guards);
            list.pop();
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    !list.is_empty()
}

/// Per class: (arenas, slots handed out, warm free slots). For tests and benchmarks.
#[cfg(test)]
pub(crate) fn stats(class: usize) -> (usize, usize, usize) {
    let st = lock(class);
    let out = st.arenas.iter().map(|a| a.out as usize).sum();
    (st.arenas.len(), out, st.warm)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scavenger trims the slots that stayed free longest: the tail of the warm list.
    #[test]
    fn the_oldest_warm_slots_are_taken_from_the_tail() {
        let mut a2 = Arena::map(0).unwrap();
        for slot in 0..6 {
            a2.push(warm, slot); // 0 given back first: the oldest
        }
        let mut got = Vec::new();
        a2.take_warm_tail(2, |s| got.push(s));
        assert_eq!(got, [1, 0]);
        assert_eq!(a2.warm.len, 4);
        let mut rest = Vec::new();
        a2.take_warm_tail(4, |s| rest.push(s));
        assert_eq!(rest, [5, 4, 3, 2]);
        assert_eq!((a2.warm.len, a2.warm.head), (0, NIL));
        a2.take_warm_tail(0, |_| unreachable!());
        // SAFETY: the test's own mapping, never handed out.
        unsafe { libc::munmap(a2.base as *mut _, a2.len) };
    }

    /// Review item 6: a big arena is unmapped a piece at a time, so that one scavenge
    /// round stays short; the rest waits for the next round.
    #[test]
    fn arenas_are_unmapped_a_piece_at_a_time() {
        let a = Arena::map(6).unwrap(); // 1 MiB stacks, 256 MiB
        let (base, len) = (a.base, a.len);
        assert!(len > 2 * UNMAP_PIECE);
        let mut probe = [0u8; 1];
        let mapped = |addr: usize, v: &mut [u8; 1]| {
            // SAFETY: mincore only reads page tables (ENOMEM when unmapped).
            unsafe { libc::mincore(addr as *mut _, 1, v.as_mut_ptr()) == 0 }
        };
        // Another caller (sysmon, if the runtime runs in this test binary) may work on the
        // list too; the pieces below are still unmapped one at a time.
        let mut list = UNMAPPING.lock().unwrap_or_else(|e| e.into_inner());
        list.push(Unmapping {
            at: base,
            end: base + len,
            guards: 0,
        });
        drop(list);
        std::mem::forget(a);
        // A deadline already past: one piece per call.
        let past = Instant::now();
        assert!(unmap_some(past), "more to unmap");
        assert!(!mapped(base, &mut probe), "the first piece is gone");
        assert!(
            mapped(base + UNMAP_PIECE, &mut probe),
            "the rest is still mapped"
        );
        while unmap_some(Instant::now() + Duration::from_secs(1)) {}
        assert!(
            !mapped(base + len - 4096, &mut probe),
            "all of it in the end"
        );
    }
}
