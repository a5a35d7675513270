//! The buffer of a bounded channel: a lock-free ring (Dmitry Vyukov's bounded MPMC queue,
//! the algorithm of crossbeam-channel's array flavour), so that a send into room or a
//! receive of a buffered value never takes the channel lock.
//!
//! # Layout
//! One allocation holds `head`, `tail` and `cap` slots (or, for a timer's one-slot channel,
//! a `OneSlot` inside the timer, which the channel keeps alive). `head` and `tail` are on cache lines
//! of their own when the slots take at least as much memory as the padding (a busy channel:
//! producers write `tail`'s line, consumers `head`'s, and neither steals the other's); a
//! small ring (a timer's one-slot channel) keeps them adjacent and small. The block is
//! zeroed memory: a slot's stamp is stored relative to its index, so that zero is a valid
//! initial stamp and a large ring's pages are not touched until used.
//!
//! # Indices and stamps
//! `head` and `tail` are `lap | bits | index` with `index < cap`: the lap counts trips
//! around the ring (so an index never repeats for 2^64 / (4 * cap) laps, and two reads of
//! `head` and `tail` that agree mean that nothing was pushed or popped in between — the
//! version `select!`'s `default` relies on). Each slot has a stamp:
//!
//! ```text
//!  slot stamp        | meaning                                | next move
//!  ------------------+----------------------------------------+-----------------------------
//!  == tail           | empty, its turn to be written this lap | a sender CASes tail, writes
//!                    |                                        | the value, stamps tail + 1
//!  == head + 1       | holds the value of this lap            | a receiver CASes head, reads
//!                    |                                        | it, stamps head + one_lap
//!  anything else     | a peer is between its CAS and its      | wait (a few instructions)
//!                    | stamp, or the ring is full / empty     |
//! ```
//!
//! # Bits
//! ```text
//!  bit     | in         | meaning                                   | set / cleared by
//!  --------+------------+-------------------------------------------+---------------------------
//!  MARK    | tail       | no more sends (closed, or every Receiver   | `mark`, under the channel
//!          |            | gone); receivers drain, then see Closed    | lock; never cleared
//!  FROZEN  | head, tail | the ring may not move: lock-free pushes    | `freeze` / `thaw`, by the
//!          |            | and pops go to the channel lock and wait   | holder of the channel lock
//!  FROZEN  | tail alone | room is reserved (a dynamic select chose   | `freeze_tail` / `thaw_tail`
//!          |            | a send): lock-free pushes go to the lock,  | under the channel lock, while
//!          |            | which counts the reservations; pops go on  | `Inner::reserved > 0`
//! ```
//!
//! A pusher or popper that loaded the word before a bit was set fails its CAS (the word
//! changed) and sees the bit on the reload. So the holder of the channel lock that froze a
//! ring sees `head` and `tail` stand still until it thaws them: that is how a select's
//! all-locks pass (`select/locked.rs`) makes "no case is ready" true at one instant over rings too.
//! Operations done under the channel lock (`locked`) accept and keep the FROZEN bit: under
//! the lock it can only have been set by the caller itself, or stand for reserved room,
//! which the channel (`hchan/`) checks before it pushes under the lock.
//!
//! # Safety
//! - A slot's value is written only by the sender whose CAS on `tail` reserved it, and read
//!   only by the receiver whose CAS on `head` reserved it; the stamp (Release store, Acquire
//!   load) hands the slot from one to the other. So `value` is accessed by one thread at a
//!   time, and a value is read exactly once.
//! - The slots between `head` and `tail` (those whose stamps say "written" or are being
//!   written) are the only initialized ones; `drain` and `Drop` drop exactly those.

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A slot: its stamp (stored minus the slot's index, so that zeroed memory is the initial
/// state) and its value.
struct Slot<T> {
    /// `stamp - index` (module doc).
    stamp: AtomicUsize,
    /// The value, initialized between a sender's write and a receiver's read.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Padding between `head` and `tail` when the ring is large enough to deserve it.
const PAD: usize = 128;

/// What a push found.
pub(crate) enum Push<T> {
    /// The value is in the ring.
    Done,
    /// No room; the value comes back.
    Full(T),
    /// MARK is set: no more sends.
    Closed(T),
    /// Another thread holds the ring frozen (only for lock-free calls): wait for the
    /// channel lock, then try again.
    Frozen(T),
}

/// What a pop found.
pub(crate) enum Pop<T> {
    Got(T),
    Empty,
    /// Empty and MARKed: drained for good.
    Closed,
    /// Frozen by another thread (lock-free calls only).
    Frozen,
}

/// Why a reservation failed.
pub(crate) enum NoSlot {
    Full,
    Closed,
    Frozen,
}

/// A slot reserved for writing (by `reserve_push`).
pub(crate) struct PushSlot {
    /// The slot.
    slot: *const u8,
    /// Its stamp once written, as stored (minus the slot's index).
    stored: usize,
}

/// The lock-free ring of a bounded channel (module doc). Two words: the geometry is
/// derived from `cap` (a channel keeps one of these inline, and timers make many channels).
pub(crate) struct Ring<T> {
    /// The block: head, tail, slots.
    block: NonNull<u8>,
    /// Number of slots (at most `chan`'s ring limit, far below 2^32).
    cap: u32,
    /// log2 of the MARK bit (a power of two above every index).
    mark_shift: u8,
    /// `head` and `tail` on cache lines of their own.
    padded: bool,
    /// The block is ours to free (else it is a `OneSlot` that its owner keeps alive).
    owned: bool,
    _values: PhantomData<T>,
}

/// The block of a one-slot ring, laid out as `Ring::layout(1, false)` lays it out, to be
/// embedded in a structure that outlives the ring (a timer keeps its channel's, so that
/// `after` allocates once less). Zeroed is its initial state.
#[repr(C)]
pub(crate) struct OneSlot<T> {
    head: AtomicUsize,
    tail: AtomicUsize,
    slot: Slot<T>,
}

impl<T> OneSlot<T> {
    pub(crate) fn new() -> OneSlot<T> {
        OneSlot {
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            slot: Slot {
                stamp: AtomicUsize::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            },
        }
    }
}

// SAFETY: only a `Ring` reads or writes it, under the ring's protocol.
unsafe impl<T: Send> Send for OneSlot<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for OneSlot<T> {}

// SAFETY: the ring hands each value from exactly one sender to exactly one receiver through
// the stamp protocol (module Safety), so sharing it is as safe as sending a `T`.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `cap` slots (`0 < cap <= u32::MAX / 8`). Panics if it cannot be allocated.
    pub(crate) fn new(cap: usize) -> Ring<T> {
        assert!(cap > 0 && cap <= (u32::MAX / 8) as usize);
        let mark = (cap + 1).next_power_of_two();
        let padded = std::mem::size_of::<Slot<T>>().saturating_mul(cap) >= 2 * PAD;
        let layout = Self::layout(cap, padded).unwrap_or_else(|| {
            panic!(
                "gort::chan: capacity {cap} is too large to allocate ({} bytes per element)",
                std::mem::size_of::<T>()
            )
        });
        // SAFETY: the layout has a non-zero size (at least the two words).
        let p = unsafe { alloc::alloc_zeroed(layout) };
        let Some(block) = NonNull::new(p) else {
            panic!(
                "gort::chan: capacity {cap} is too large to allocate: {} bytes",
                layout.size()
            );
        };
        Ring {
            block,
            cap: cap as u32,
            mark_shift: mark.trailing_zeros() as u8,
            padded,
            owned: true,
            _values: PhantomData,
        }
    }

    /// A one-slot ring in `block`.
    ///
    /// # Safety
    /// `block` is in its initial (`OneSlot::new`) state, does not move, and outlives the
    /// ring; nothing else touches it.
    pub(crate) unsafe fn in_block(block: &OneSlot<T>) -> Ring<T> {
        debug_assert!(
            std::mem::size_of::<Slot<T>>() < 2 * PAD,
            "a one-slot ring is unpadded"
        );
        debug_assert_eq!(
            Self::layout(1, false).map(|l| l.size()),
            Some(std::mem::size_of::<OneSlot<T>>())
        );
        Ring {
            block: NonNull::from(block).cast(),
            cap: 1,
            mark_shift: 1, // (1 + 1).next_power_of_two() == 2
            padded: false,
            owned: false,
            _values: PhantomData,
        }
    }

    /// The block's layout: the header (head and tail, padded or not), then the slots.
    fn layout(cap: usize, padded: bool) -> Option<Layout> {
        let slots = Layout::array::<Slot<T>>(cap).ok()?;
        let header = if padded {
            Layout::from_size_align(2 * PAD, PAD).ok()?
        } else {
            Layout::new::<[AtomicUsize; 2]>()
        };
        let (layout, _) = header.extend(slots).ok()?;
        Some(layout.pad_to_align())
    }

    /// Byte offset of `tail` in the block.
    #[inline]
    fn tail_off(&self) -> usize {
        if self.padded {
            PAD
        } else {
            std::mem::size_of::<AtomicUsize>()
        }
    }

    /// Byte offset of the first slot (where `layout` places it).
    #[inline]
    fn slots_off(&self) -> usize {
        let header = if self.padded {
            2 * PAD
        } else {
            2 * std::mem::size_of::<AtomicUsize>()
        };
        let align = std::mem::align_of::<Slot<T>>();
        (header + align - 1) & !(align - 1)
    }

    #[inline]
    fn cap(&self) -> usize {
        self.cap as usize
    }

    /// The MARK bit.
    #[inline]
    fn mark(&self) -> usize {
        1 << self.mark_shift
    }

    /// One lap: MARK << 2 (FROZEN is MARK << 1).
    #[inline]
    fn one_lap(&self) -> usize {
        self.mark() << 2
    }

    #[inline]
    fn frozen(&self) -> usize {
        self.mark() << 1
    }

    /// The index and lap of a head or tail word, without the bits.
    #[inline]
    fn pos(&self, w: usize) -> usize {
        w & !(self.mark() | self.frozen())
    }

    #[inline]
    fn head(&self) -> &AtomicUsize {
        // SAFETY: offset 0 of the block is an initialized (zeroed) AtomicUsize, aligned.
        unsafe { &*self.block.as_ptr().cast::<AtomicUsize>() }
    }

    #[inline]
    fn tail(&self) -> &AtomicUsize {
        // SAFETY: `tail_off` is inside the block, aligned for a word, zero-initialized.
        unsafe {
            &*self
                .block
                .as_ptr()
                .add(self.tail_off())
                .cast::<AtomicUsize>()
        }
    }

    #[inline]
    fn slot(&self, index: usize) -> &Slot<T> {
        debug_assert!(index < self.cap());
        // SAFETY: `index < cap` and the slots start at `slots_off`, aligned (Layout::extend).
        unsafe {
            &*self
                .block
                .as_ptr()
                .add(self.slots_off())
                .cast::<Slot<T>>()
                .add(index)
        }
    }

    #[inline]
    fn stamp(&self, slot: &Slot<T>, index: usize, order: Ordering) -> usize {
        slot.stamp.load(order).wrapping_add(index)
    }

    /// The position after `pos` (same lap, next index; or the next lap's index 0).
    #[inline]
    fn next(&self, pos: usize, mark: usize) -> usize {
        let index = pos & (mark - 1);
        if index + 1 < self.cap() {
            pos + 1
        } else {
            let one_lap = mark << 2;
            (pos & !(one_lap - 1)).wrapping_add(one_lap)
        }
    }

    /// Reserves the slot at the tail for a send. `locked`: the caller holds the channel
    /// lock (a FROZEN bit is then its own, and kept).
    #[inline]
    pub(crate) fn reserve_push(&self, locked: bool) -> Result<PushSlot, NoSlot> {
        // The common case in a few instructions: no bits, the slot free, the CAS won.
        let mark = self.mark();
        let tail = self.tail().load(Ordering::Relaxed);
        if tail & (mark | mark << 1) == 0 {
            let index = tail & (mark - 1);
            let slot = self.slot(index);
            if self.stamp(slot, index, Ordering::Acquire) == tail
                && self
                    .tail()
                    .compare_exchange_weak(
                        tail,
                        self.next(tail, mark),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Ok(PushSlot {
                    slot: (slot as *const Slot<T>).cast(),
                    stored: tail.wrapping_add(1).wrapping_sub(index),
                });
            }
        }
        self.reserve_push_slow(locked)
    }

    /// `reserve_push`'s loop: bits, a full ring, a peer between its two steps, a lost CAS.
    #[inline(never)]
    fn reserve_push_slow(&self, locked: bool) -> Result<PushSlot, NoSlot> {
        let mark = self.mark();
        let frozen = mark << 1;
        let one_lap = mark << 2;
        let mut spins = 0u32;
        let mut tail = self.tail().load(Ordering::Relaxed);
        loop {
            if tail & (mark | frozen) != 0 {
                if tail & mark != 0 {
                    return Err(NoSlot::Closed);
                }
                if !locked {
                    return Err(NoSlot::Frozen);
                }
            }
            let pos = tail & !(mark | frozen);
            let index = pos & (mark - 1);
            let slot = self.slot(index);
            let stamp = self.stamp(slot, index, Ordering::Acquire);
            if stamp == pos {
                let new = self.next(pos, mark) | (tail & frozen);
                match self.tail().compare_exchange_weak(
                    tail,
                    new,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return Ok(PushSlot {
                            slot: (slot as *const Slot<T>).cast(),
                            stored: pos.wrapping_add(1).wrapping_sub(index),
                        })
                    }
                    Err(t) => {
                        tail = t;
                        spin(&mut spins);
                    }
                }
            } else if stamp.wrapping_add(one_lap) == pos.wrapping_add(1) {
                // The slot still holds last lap's value: full, unless a receiver is
                // between its CAS on head and its stamp. (Full when `head` is read: the
                // indices only grow. The waiters' handshake uses its own SeqCst reads.)
                let head = self.head().load(Ordering::Acquire);
                if (head & !frozen).wrapping_add(one_lap) == pos {
                    return Err(NoSlot::Full);
                }
                spin(&mut spins);
                tail = self.tail().load(Ordering::Relaxed);
            } else {
                // A sender reserved this slot and has not stamped it yet.
                spin(&mut spins);
                tail = self.tail().load(Ordering::Relaxed);
            }
        }
    }

    /// Writes `v` into a reserved slot.
    ///
    /// # Safety
    /// `s` came from `reserve_push` on this ring and is written once.
    #[inline]
    pub(crate) unsafe fn write(&self, s: PushSlot, v: T) {
        // SAFETY: `s.slot` points at a slot of this ring (contract).
        let slot = unsafe { &*s.slot.cast::<Slot<T>>() };
        // SAFETY: the reservation gives us the slot alone until we stamp it (module Safety).
        unsafe { (*slot.value.get()).write(v) };
        slot.stamp.store(s.stored, Ordering::Release);
    }

    /// Pushes `v` (module doc for `locked`).
    #[inline]
    pub(crate) fn push(&self, v: T, locked: bool) -> Push<T> {
        match self.reserve_push(locked) {
            Ok(s) => {
                // SAFETY: just reserved.
                unsafe { self.write(s, v) };
                Push::Done
            }
            Err(NoSlot::Full) => Push::Full(v),
            Err(NoSlot::Closed) => Push::Closed(v),
            Err(NoSlot::Frozen) => Push::Frozen(v),
        }
    }

    /// Pops the oldest value (module doc for `locked`).
    #[inline]
    pub(crate) fn pop(&self, locked: bool) -> Pop<T> {
        // The common case in a few instructions: not frozen, the slot written, the CAS won.
        let mark = self.mark();
        let head = self.head().load(Ordering::Relaxed);
        if head & (mark << 1) == 0 {
            let index = head & (mark - 1);
            let slot = self.slot(index);
            if self.stamp(slot, index, Ordering::Acquire) == head.wrapping_add(1)
                && self
                    .head()
                    .compare_exchange_weak(
                        head,
                        self.next(head, mark),
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // SAFETY: the CAS reserved the written slot for us alone; read once.
                let v = unsafe { (*slot.value.get()).assume_init_read() };
                slot.stamp.store(
                    head.wrapping_add(mark << 2).wrapping_sub(index),
                    Ordering::Release,
                );
                return Pop::Got(v);
            }
        }
        self.pop_slow(locked)
    }

    /// `pop`'s loop: FROZEN, an empty ring, a peer between its two steps, a lost CAS.
    #[inline(never)]
    fn pop_slow(&self, locked: bool) -> Pop<T> {
        let mark = self.mark();
        let frozen = mark << 1;
        let one_lap = mark << 2;
        let mut spins = 0u32;
        let mut head = self.head().load(Ordering::Relaxed);
        loop {
            if head & frozen != 0 && !locked {
                return Pop::Frozen;
            }
            let pos = head & !frozen;
            let index = pos & (mark - 1);
            let slot = self.slot(index);
            let stamp = self.stamp(slot, index, Ordering::Acquire);
            if stamp == pos.wrapping_add(1) {
                let new = self.next(pos, mark) | (head & frozen);
                match self.head().compare_exchange_weak(
                    head,
                    new,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS reserved the written slot for us alone; read once.
                        let v = unsafe { (*slot.value.get()).assume_init_read() };
                        slot.stamp.store(
                            pos.wrapping_add(one_lap).wrapping_sub(index),
                            Ordering::Release,
                        );
                        return Pop::Got(v);
                    }
                    Err(h) => {
                        head = h;
                        spin(&mut spins);
                    }
                }
            } else if stamp == pos {
                // Empty at this slot, unless a sender is between its CAS and its stamp.
                // (Empty when `tail` is read, as above.)
                let tail = self.tail().load(Ordering::Acquire);
                if tail & !(mark | frozen) == pos {
                    return if tail & mark != 0 {
                        Pop::Closed
                    } else {
                        Pop::Empty
                    };
                }
                spin(&mut spins);
                head = self.head().load(Ordering::Relaxed);
            } else {
                // A receiver took this slot and has not stamped it yet.
                spin(&mut spins);
                head = self.head().load(Ordering::Relaxed);
            }
        }
    }

    /// `head` and `tail` as they are now (SeqCst: the second half of a waiter's Dekker
    /// handshake, and the version of `select!`'s `default` check).
    #[inline]
    pub(crate) fn head_tail(&self) -> (usize, usize) {
        let tail = self.tail().load(Ordering::SeqCst);
        let head = self.head().load(Ordering::SeqCst);
        (head, tail)
    }

    /// Nothing to receive now (values being written count as there: their senders are
    /// between reservation and stamp, and a receiver waits for them).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let (head, tail) = self.head_tail();
        self.pos(head) == self.pos(tail)
    }

    /// No room now.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        let (head, tail) = self.head_tail();
        self.pos(head).wrapping_add(self.one_lap()) == self.pos(tail)
    }

    /// True if either word of a `head_tail` pair has FROZEN set.
    #[inline]
    pub(crate) fn any_frozen(&self, (head, tail): (usize, usize)) -> bool {
        (head | tail) & self.frozen() != 0
    }

    /// Number of values in the ring (reserved ones included).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail().load(Ordering::SeqCst);
            let head = self.head().load(Ordering::SeqCst);
            if self.tail().load(Ordering::SeqCst) != tail {
                continue;
            }
            let (h, t) = (self.pos(head), self.pos(tail));
            let (hi, ti) = (h & (self.mark() - 1), t & (self.mark() - 1));
            return if hi < ti {
                ti - hi
            } else if hi > ti {
                self.cap() - hi + ti
            } else if t == h {
                0
            } else {
                self.cap()
            };
        }
    }

    /// MARKs the tail: no more sends. Call under the channel lock.
    pub(crate) fn close(&self) {
        self.tail().fetch_or(self.mark(), Ordering::SeqCst);
    }

    /// Sets FROZEN on both words. Call under the channel lock; `thaw` before unlocking.
    pub(crate) fn freeze(&self) {
        self.tail().fetch_or(self.frozen(), Ordering::SeqCst);
        self.head().fetch_or(self.frozen(), Ordering::SeqCst);
    }

    /// Clears FROZEN (the channel lock is still held); on `tail` only unless `keep_tail`
    /// (room is reserved: see `freeze_tail`).
    pub(crate) fn thaw(&self, keep_tail: bool) {
        self.head().fetch_and(!self.frozen(), Ordering::SeqCst);
        if !keep_tail {
            self.tail().fetch_and(!self.frozen(), Ordering::SeqCst);
        }
    }

    /// Sets FROZEN on `tail` alone: lock-free pushes go to the channel lock (which counts
    /// the room reserved by dynamic selects), pops go on. Call under the channel lock.
    pub(crate) fn freeze_tail(&self) {
        self.tail().fetch_or(self.frozen(), Ordering::SeqCst);
    }

    /// Clears what `freeze_tail` set. Call under the channel lock.
    pub(crate) fn thaw_tail(&self) {
        self.tail().fetch_and(!self.frozen(), Ordering::SeqCst);
    }

    /// Takes every value out (every Receiver is gone: no pop can race with this; pushes
    /// that reserved a slot before the MARK are waited for). Call under the channel lock,
    /// after `mark`.
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut out = Vec::new();
        loop {
            match self.pop(true) {
                Pop::Got(v) => out.push(v),
                Pop::Empty | Pop::Closed | Pop::Frozen => return out,
            }
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        if std::mem::needs_drop::<T>() {
            // Exclusive access: every value between head and tail is initialized.
            let head = self.pos(self.head().load(Ordering::Relaxed));
            let tail = self.pos(self.tail().load(Ordering::Relaxed));
            let mut pos = head;
            while pos != tail {
                let index = pos & (self.mark() - 1);
                // SAFETY: between head and tail, stamped (no operation is in progress:
                // we are the last owner), so initialized; dropped once.
                unsafe { (*self.slot(index).value.get()).assume_init_drop() };
                pos = self.next(pos, self.mark());
            }
        }
        if self.owned {
            let layout = Self::layout(self.cap(), self.padded).expect("allocated with it");
            // SAFETY: allocated in `new` with this layout.
            unsafe { alloc::dealloc(self.block.as_ptr(), layout) };
        }
    }
}

/// Waits for a peer that is between two steps (CAS and stamp): spin, and after a while
/// yield the OS thread (the peer's thread may have been preempted).
#[inline]
fn spin(spins: &mut u32) {
    if *spins < 6 {
        for _ in 0..(1u32 << *spins) {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
    *spins = spins.saturating_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn got<T>(p: Pop<T>) -> Option<T> {
        match p {
            Pop::Got(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn fifo_over_many_laps_full_and_empty() {
        for cap in [1, 2, 3, 5, 8, 200] {
            let r = Ring::<u64>::new(cap);
            let mut next_in = 0u64;
            let mut next_out = 0u64;
            for round in 0..50 {
                // Fill up to a round-dependent level, then drain part of it.
                let fill = (round * 7) % (cap + 1);
                while r.len() < fill {
                    assert!(matches!(r.push(next_in, false), Push::Done));
                    next_in += 1;
                }
                if r.len() == cap {
                    assert!(r.is_full());
                    assert!(matches!(r.push(u64::MAX, false), Push::Full(u64::MAX)));
                }
                let take = (round * 3) % (r.len() + 1);
                for _ in 0..take {
                    assert_eq!(got(r.pop(false)), Some(next_out));
                    next_out += 1;
                }
                assert_eq!(r.len() as u64, next_in - next_out);
            }
            while next_out < next_in {
                assert_eq!(got(r.pop(false)), Some(next_out));
                next_out += 1;
            }
            assert!(r.is_empty());
            assert!(matches!(r.pop(false), Pop::Empty));
        }
    }

    #[test]
    fn close_drains_then_reports_closed() {
        let r = Ring::<u32>::new(4);
        assert!(matches!(r.push(1, false), Push::Done));
        assert!(matches!(r.push(2, false), Push::Done));
        r.close();
        assert!(matches!(r.push(3, false), Push::Closed(3)));
        assert_eq!(got(r.pop(false)), Some(1));
        assert_eq!(got(r.pop(false)), Some(2));
        assert!(matches!(r.pop(false), Pop::Closed));
    }

    #[test]
    fn frozen_ring_stands_still_for_everyone_but_the_lock_holder() {
        let r = Ring::<u32>::new(3);
        assert!(matches!(r.push(1, false), Push::Done));
        let before = r.head_tail();
        r.freeze();
        assert!(r.any_frozen(r.head_tail()));
        assert!(matches!(r.push(2, false), Push::Frozen(2)));
        assert!(matches!(r.pop(false), Pop::Frozen));
        // The lock holder (the freezer) moves it, keeping the bit.
        assert!(matches!(r.push(2, true), Push::Done));
        assert!(r.any_frozen(r.head_tail()));
        assert_eq!(got(r.pop(true)), Some(1));
        r.thaw(false);
        assert!(!r.any_frozen(r.head_tail()));
        assert_ne!(r.head_tail(), before);
        assert_eq!(got(r.pop(false)), Some(2));
    }

    #[test]
    fn values_are_dropped_once_by_drain_and_drop() {
        let n = Arc::new(());
        for cap in [1, 3, 64] {
            let r = Ring::<Arc<()>>::new(cap);
            for _ in 0..cap {
                assert!(matches!(r.push(n.clone(), false), Push::Done));
            }
            drop(got(r.pop(false)));
            r.close();
            assert_eq!(r.drain().len(), cap - 1);
            assert_eq!(Arc::strong_count(&n), 1);
            for _ in 0..cap.min(2) {
                let r2 = Ring::<Arc<()>>::new(cap);
                assert!(matches!(r2.push(n.clone(), false), Push::Done));
                drop(r2); // Drop drops what is left
            }
            assert_eq!(Arc::strong_count(&n), 1);
        }
    }

    #[test]
    fn concurrent_pushes_and_pops_deliver_each_value_once() {
        let r = Arc::new(Ring::<u64>::new(8));
        let per = 20_000u64;
        let mut hs = Vec::new();
        for p in 0..3u64 {
            let r = r.clone();
            hs.push(std::thread::spawn(move || {
                for i in 0..per {
                    let mut v = p * per + i;
                    loop {
                        match r.push(v, false) {
                            Push::Done => break,
                            Push::Full(w) => {
                                v = w;
                                std::hint::spin_loop();
                            }
                            _ => unreachable!(),
                        }
                    }
                }
                0
            }));
        }
        for _ in 0..3 {
            let r = r.clone();
            hs.push(std::thread::spawn(move || {
                let mut sum = 0u64;
                for _ in 0..per {
                    loop {
                        if let Some(v) = got(r.pop(false)) {
                            sum += v;
                            break;
                        }
                        std::hint::spin_loop();
                    }
                }
                sum
            }));
        }
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        let n = 3 * per;
        assert_eq!(sum, n * (n - 1) / 2);
        assert!(r.is_empty());
    }

    #[test]
    fn zero_sized_and_large_values() {
        let r = Ring::<()>::new(1000);
        for _ in 0..1000 {
            assert!(matches!(r.push((), false), Push::Done));
        }
        assert!(r.is_full());
        let r = Ring::<[u8; 300]>::new(3);
        assert!(matches!(r.push([7; 300], false), Push::Done));
        assert_eq!(got(r.pop(false)).map(|a| a[299]), Some(7));
    }
}
