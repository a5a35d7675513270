//! A processor's cache of free stacks, one short list per size class.
//!
//! Only the thread holding the processor uses its cache (processor.rs), so it needs no lock.
//! The most recently returned stack is reused first (its top pages are resident and in the
//! CPU's caches). A list that runs empty takes a batch from the class pool; one that
//! overflows gives its oldest batch back: the pool lock is taken once per batch, so spawn
//! bursts on several processors do not serialise on it. When its processor goes idle, the
//! cache releases the deep pages of the stacks it holds (`trim_idle`); the pool's free
//! stacks are trimmed by the scavenger (arena.rs). While the `mprotect` guard budget is
//! spent (guard.rs) no new stack can be made, so stacks given back skip the cache, and an
//! idle processor empties its cache into the pools: any taker can then have them.

use std::io;

use super::arena::{self, NCLASSES};
use super::{class_of, class_size, guard, Stack, MINCORE_EVERY};

/// Address space a processor keeps cached per class: 32 default stacks, 4 of 2 MiB.
const CACHE_BYTES: usize = 8 << 20;

/// Stacks of `class` a cache holds at most.
fn max_cached(class: usize) -> usize {
    (CACHE_BYTES / class_size(class)).clamp(1, 32)
}

/// Stacks moved between a cache and its pool at once.
fn batch(class: usize) -> usize {
    (max_cached(class) / 2).max(1)
}

/// A processor's free stacks.
pub(crate) struct StackCache {
    /// Per class, most recently returned last.
    free: [Vec<Stack>; NCLASSES],
    /// Reuses so far (every `MINCORE_EVERY`th one runs the trim backstop).
    reuses: u32,
    /// Classes given a stack since the last `trim_idle` (bit `class`): the lists it checks.
    unchecked: u32,
}

impl Default for StackCache {
    fn default() -> StackCache {
        StackCache {
            free: std::array::from_fn(|_| Vec::new()),
            reuses: 0,
            unchecked: 0,
        }
    }
}

impl StackCache {
    /// Takes a stack of `size` usable bytes (a class size, see `round_size`).
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        let class = class_of(size);
        let list = &mut self.free[class];
        if list.is_empty() {
            arena::take(class, batch(class), list)?;
        }
        let mut s = list.pop().expect("take gives at least one stack");
        self.reuses = self.reuses.wrapping_add(1);
        s.reuse_check(self.reuses % MINCORE_EVERY == 0);
        Ok(s)
    }

    /// The processor goes idle: its cached stacks that were used deep give their deep pages
    /// back now rather than when next reused (the check is the one reuse would make, done
    /// earlier, not twice), so that an idle processor holds only its stacks' hot pages.
    pub(crate) fn trim_idle(&mut self) {
        if guard::budget_spent() {
            // Stacks are scarce: let every processor (and thread) have these.
            for (class, list) in self.free.iter_mut().enumerate() {
                if !list.is_empty() {
                    arena::give_back(class, list.drain(..));
                }
            }
            return;
        }
        while self.unchecked != 0 {
            let class = self.unchecked.trailing_zeros() as usize;
            self.unchecked &= self.unchecked - 1;
            for s in self.free[class].iter_mut().filter(|s| s.needs_check) {
                self.reuses = self.reuses.wrapping_add(1);
                s.reuse_check(self.reuses % MINCORE_EVERY == 0);
            }
        }
    }

    /// Gives back a stack whose goroutine has ended.
    pub(crate) fn put(&mut self, mut stack: Stack) {
        stack.needs_check = true;
        let class = stack.class as usize;
        if guard::budget_spent() {
            // No new stack can be made: this one goes where any taker finds it.
            arena::give_back(class, [stack]);
            return;
        }
        self.unchecked |= 1 << class;
        let list = &mut self.free[class];
        if list.len() >= max_cached(class) {
            arena::give_back(class, list.drain(..batch(class)));
        }
        list.push(stack);
    }
}
