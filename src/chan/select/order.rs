//! The random order in which a select visits its cases (Go's `pollorder`), shared by
//! `select!` and the dynamic `Select`: a thread-local xorshift generator, a Fisher–Yates
//! shuffle that draws one random number for up to 20 cases, and [`Order`], the case
//! indices on the stack for up to 8 cases.
//!
//! A random permutation makes the choice among ready cases uniform, so that no case of a
//! select in a loop starves another (tests/select.rs, `fairness_*`).

use std::cell::Cell;

thread_local! {
    /// The generator's state; 0 until first used (then seeded).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A seed from the clock and a stack address (never 0).
#[cold]
fn seed() -> u64 {
    let x = 0u8;
    let seed = (&x as *const u8 as u64)
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64));
    seed | 1
}

/// A fast thread-local pseudo-random number (xorshift64*); fairness, not cryptography.
#[inline]
fn rand_u64() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        if x == 0 {
            x = seed();
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A random number below `n` (n < 2^32).
#[inline]
fn rand_below(n: usize) -> usize {
    (((rand_u64() >> 32) * n as u64) >> 32) as usize
}

/// Shuffles `order` (Fisher–Yates). Up to 20 elements draw from one 64-bit random number
/// (20! < 2^64), so a small select costs one RNG step.
#[inline]
pub(crate) fn shuffle(order: &mut [usize]) {
    let n = order.len();
    if n < 2 {
        return;
    }
    if n == 2 {
        // The common two-case select: one random bit.
        if rand_u64() >> 63 != 0 {
            order.swap(0, 1);
        }
        return;
    }
    if n <= 20 {
        let mut r = rand_u64();
        for i in (1..n).rev() {
            let k = i as u64 + 1;
            let j = (r % k) as usize;
            r /= k;
            order.swap(i, j);
        }
    } else {
        for i in (1..n).rev() {
            let j = rand_below(i + 1);
            order.swap(i, j);
        }
    }
}

/// Case indices in a random order, on the stack for up to 8 cases (small enough to be
/// built in place).
pub(crate) struct Order {
    /// The indices, when there are at most 8.
    small: [usize; 8],
    /// The indices, when there are more.
    large: Vec<usize>,
    /// How many.
    len: usize,
}

impl Order {
    #[inline]
    pub(crate) fn new(enabled: impl Iterator<Item = usize>) -> Order {
        let mut o = Order {
            small: [0; 8],
            large: Vec::new(),
            len: 0,
        };
        for i in enabled {
            if o.len < 8 {
                o.small[o.len] = i;
            } else {
                if o.large.is_empty() {
                    o.large.extend_from_slice(&o.small);
                }
                o.large.push(i);
            }
            o.len += 1;
        }
        o
    }

    pub(crate) fn as_mut(&mut self) -> &mut [usize] {
        if self.len <= 8 {
            &mut self.small[..self.len]
        } else {
            &mut self.large
        }
    }
}
