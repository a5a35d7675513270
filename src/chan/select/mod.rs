//! `select`: wait on several channel operations, complete exactly one — the `select!`
//! runtime, and (in `dynamic/`) the dynamic [`Select`](dynamic::Select).
//!
//! ```text
//!  mod.rs        the select! algorithm: fast pass, `default`'s double look, register, park
//!  case.rs       SelectCase, and Case: one case, generic over the channel side it waits on
//!  expansion.rs  what the macro's expansion calls (`gort::chan::__private`): operands, cases
//!  order.rs      the random case order (shared with Select)
//!  locked.rs     the all-locks pass: "none is ready" at one instant (shared with Select)
//!  dynamic/      Select, SelectedOperation: a select over operations chosen at run time
//! ```
//!
//! The `select!` macro (go-macro/src/select.rs) expands to a call of [`select`] over its
//! cases, each a `RecvCase` or `SendCase` (`case.rs`) on the caller's stack. The algorithm is
//! Go's `selectgo` with crossbeam's claim protocol (`waiter.rs`):
//!
//! 1. **Try**: visit the enabled cases in a random order (`order.rs`) and complete the first
//!    that can complete without waiting. A random permutation makes the choice among ready
//!    cases uniform. If none is ready and there is a `default` (or the deadline has passed),
//!    "no case is ready" must have been true at one instant (so that `default` is
//!    linearizable): either every channel's version (`Chan::version`: its lock's sequence
//!    number and its ring's indices) stood still across the look, or the select looks once
//!    more with every channel locked, and every ring frozen, at once, in address order
//!    (`locked.rs`, Go's `selectgo` lock order). The lock-free first look is enough for a
//!    single case.
//! 2. **Register**: create one context and, in a random order, leave an entry on each case's
//!    wait queue (`register_all`). If a case turns out to be ready while registering, abort
//!    the context (its entries become stale) and start again at 1.
//! 3. **Park** once. The first peer to claim the context completes its case (moving the
//!    value through the case's packet) and wakes us. Entries on the other queues are stale
//!    from that moment; queues drop them lazily (`waiter.rs`), so no lock is taken to
//!    unregister.
//!
//! A select never pairs its own send with its own receive: a case's readiness check skips
//! entries of its own context, and peers only ever claim a context they do not own.
//!
//! A peer may be a dynamic `Select` that reserved one of our cases and then dropped its
//! operation: the wait ends in `Waited::Retry` and the select starts again.
//!
//! Why `select!`'s cases and the dynamic `Select`'s are two kinds: a `select!` case lives
//! on the caller's stack, typed, and its select completes it before returning; a dynamic
//! select's cases are boxed and type-erased, and it only *commits* to one (holding a value,
//! a waiting peer or reserved room) for the caller to complete later. What both share is
//! the order, the all-locks pass, the registration and the channel side's operations
//! (`hchan/side.rs`).

use std::mem::MaybeUninit;
use std::time::Instant;

use crate::chan::handoff::Patience;
use crate::chan::hchan::Version;
use crate::chan::waiter::{Context, Waited, Wakes};
use crate::runtime::park::{self, WaitReason};
use case::SelectCase;
use locked::{locked_pass, LockedCases};
use order::{shuffle, Order};

mod case;
pub(super) mod dynamic;
#[doc(hidden)]
pub mod expansion;
mod locked;
mod order;

/// Blocks the caller for ever (`select! {}`, or a select whose cases are all off).
pub(crate) fn block_forever() -> ! {
    loop {
        park::park(WaitReason::SelectNoCases);
    }
}

/// A select with no enabled case: blocks for ever, or returns at `deadline`.
fn no_cases(deadline: Option<Instant>) {
    match deadline {
        None => block_forever(),
        Some(d) => crate::time::sleep_until(d),
    }
}

/// Registers one context, `cx`, on every case in `order`, in that order: `register(i)`
/// leaves case `i`'s entry, or returns true (leaving nothing) if the case is ready now,
/// which ends the registration. False if a case was ready and `cx` could be aborted (its
/// entries are stale: look again); true if the select must wait on `cx` (registered on
/// every case, or claimed by a peer meanwhile).
#[inline]
fn register_all(cx: &Context, order: &[usize], mut register: impl FnMut(usize) -> bool) -> bool {
    let ready = order.iter().any(|&i| register(i));
    !(ready && cx.try_abort())
}

/// The all-locks pass over `select!`'s cases completes the first that can.
impl LockedCases for [&mut dyn SelectCase] {
    type Got = ();

    fn chan_addr(&self, i: usize) -> usize {
        self[i].chan_addr()
    }

    fn lock(&self, i: usize) {
        self[i].lock();
    }

    unsafe fn unlock(&self, i: usize) {
        // SAFETY: forwarded contract.
        unsafe { self[i].unlock() }
    }

    unsafe fn try_locked(&mut self, i: usize, wakes: &mut Wakes) -> Option<()> {
        // SAFETY: forwarded contract.
        unsafe { self[i].try_complete_locked(wakes) }.then_some(())
    }
}

/// Lock-free looks before `select_default` falls back to `locked_pass`.
const DEFAULT_LOOKS: usize = 4;

/// A select with `default`: complete a ready case, or return None if at one instant none
/// was ready.
///
/// Each look reads every case's version and readiness (`SelectCase::look`), tries the cases
/// that may be ready in random order, and if none looked ready reads every version again:
/// if none moved (nor was unstable), each case was unready over an interval from its first
/// read to its second, and all the first reads precede all the second ones, so the
/// intervals share an instant at which no case was ready. One case needs no second read.
/// A channel that keeps moving sends the select to `locked_pass` after a few looks.
fn select_default(cases: &mut [&mut dyn SelectCase]) -> Option<usize> {
    if cases.len() <= 8 {
        let mut versions = [MaybeUninit::<Version>::uninit(); 8];
        for _ in 0..DEFAULT_LOOKS {
            let mut maybe = 0u32;
            let mut on = 0;
            for (i, c) in cases.iter().enumerate() {
                let look = c.look();
                versions[i].write(look.version);
                on += look.on as usize;
                maybe |= (look.maybe_ready as u32) << i;
            }
            if maybe != 0 {
                let mut ready = Order::new((0..cases.len()).filter(|&i| maybe & (1 << i) != 0));
                let ready = ready.as_mut();
                shuffle(ready);
                for &i in ready.iter() {
                    if cases[i].try_complete(Patience::None) {
                        return Some(i);
                    }
                }
                continue;
            }
            if on < 2 {
                return None;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            if cases
                .iter()
                .zip(&versions)
                // SAFETY: the loop above wrote the version of every case.
                .all(|(c, v)| c.unchanged(unsafe { v.assume_init_ref() }))
            {
                return None;
            }
        }
    }
    let mut maybe = Order::new((0..cases.len()).filter(|&i| cases[i].maybe_ready()));
    let maybe = maybe.as_mut();
    shuffle(maybe);
    for &i in maybe.iter() {
        if cases[i].try_complete(Patience::None) {
            return Some(i);
        }
    }
    let mut order = Order::new((0..cases.len()).filter(|&i| cases[i].is_on()));
    let order = order.as_mut();
    if order.len() < 2 {
        // One case (or none): a lock-free look is one instant's truth.
        return None;
    }
    loop {
        shuffle(order);
        match locked_pass(cases, order) {
            Some((i, ())) if !cases[i].finish(Patience::None) => continue,
            r => return r.map(|(i, ())| i),
        }
    }
}

/// Runs a select over `cases`. Returns the completed case, or None if `default` was taken
/// (`has_default`) or `deadline` passed.
pub(crate) fn select(
    cases: &mut [&mut dyn SelectCase],
    has_default: bool,
    deadline: Option<Instant>,
) -> Option<usize> {
    if has_default {
        return select_default(cases);
    }
    let patience = Patience::until(deadline);
    let mut order = Order::new((0..cases.len()).filter(|&i| cases[i].is_on()));
    let order = order.as_mut();
    shuffle(order);
    // Fast pass, in random order: complete the first case that can, skipping without a lock
    // those that surely cannot.
    for &i in order.iter() {
        if cases[i].maybe_ready() && cases[i].try_complete(patience) {
            return Some(i);
        }
    }
    loop {
        if order.is_empty() {
            no_cases(deadline);
            return None;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            match locked_pass(cases, order) {
                Some((i, ())) if !cases[i].finish(patience) => {
                    shuffle(order);
                    continue;
                }
                r => return r.map(|(i, ())| i),
            }
        }
        // Register in the (random) order of the pass; each registration looks once more,
        // under the channel's lock.
        let cx = Context::new();
        let r = if register_all(&cx, order, |i| cases[i].register(&cx, i)) {
            // Registered on every case: from here any peer that makes a case ready claims
            // us, so a timeout (abort) happens at an instant when none was ready.
            cx.wait(WaitReason::Select, deadline)
        } else {
            // A case became ready: our entries are stale now.
            Waited::Retry
        };
        Context::recycle(cx);
        match r {
            Waited::Case(i) => {
                cases[i].selected();
                return Some(i);
            }
            Waited::Timeout => return None,
            // A case became ready while registering, or a dynamic select reserved one of
            // our cases and then dropped its operation: look again.
            Waited::Retry => {
                shuffle(order);
                for &i in order.iter() {
                    if cases[i].try_complete(patience) {
                        return Some(i);
                    }
                }
            }
        }
    }
}
