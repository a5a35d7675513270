//! The all-locks pass (Go's `selectgo` lock order), shared by `select!` and the dynamic
//! `Select`: where a select decides that *no* case is ready (`default`, a deadline that has
//! passed, `try_select`), it looks once with every channel of its cases locked, and every
//! ring frozen, at once.
//!
//! Checking the cases one lock at a time could see every channel empty although at each
//! instant one held a value (a peer moving a value from one case's channel to another's);
//! holding every lock, with every ring frozen (`Chan::lock_raw`: its lock-free operations
//! wait too), makes "none is ready" true at one instant. The locks are taken in address
//! order, once per distinct channel (a select may name one channel twice), so that two
//! passes never deadlock; they are released even if a case panics under them.

use super::order::Order;
use crate::chan::waiter::Wakes;

/// The cases of a select, as the all-locks pass sees them (by index).
pub(super) trait LockedCases {
    /// What a case that completes (or commits) under the locks gives.
    type Got;
    /// The address of case `i`'s channel (the lock order).
    fn chan_addr(&self, i: usize) -> usize;
    /// Locks case `i`'s channel and freezes its ring (`Chan::lock_raw`).
    fn lock(&self, i: usize);
    /// Unlocks case `i`'s channel.
    ///
    /// # Safety
    /// The caller locked it with `lock`.
    unsafe fn unlock(&self, i: usize);
    /// Completes (or commits) case `i` if it can without waiting.
    ///
    /// # Safety
    /// The caller holds the lock of case `i`'s channel.
    unsafe fn try_locked(&mut self, i: usize, wakes: &mut Wakes) -> Option<Self::Got>;
}

/// Locks every distinct channel of the cases in `order`, in address order, then tries the
/// cases in `order`; the first that can complete does. None: at the instant the locks were
/// all held, no case was ready.
pub(super) fn locked_pass<C: LockedCases + ?Sized>(
    cases: &mut C,
    order: &[usize],
) -> Option<(usize, C::Got)> {
    let mut by_addr = Order::new(order.iter().copied());
    let by_addr = by_addr.as_mut();
    by_addr.sort_unstable_by_key(|&i| cases.chan_addr(i));
    let mut prev = 0;
    for &i in by_addr.iter() {
        let a = cases.chan_addr(i);
        if a != prev {
            cases.lock(i);
            prev = a;
        }
    }
    let mut wakes = Wakes::default();
    let mut got = None;
    {
        // Unlocks even if a case panics under the locks (`park::current` during a thread's
        // teardown, say): a panic must not leave channels locked and rings frozen.
        // Both the unlock and the pass reach the cases through this one pointer.
        let cases_ptr: *mut C = cases;
        let _unlock = OnDrop(move || {
            // SAFETY: runs when this block ends (normally or by unwinding), after the pass's
            // last use of `cases_ptr`; `cases` outlives the block.
            let cases = unsafe { &*cases_ptr };
            let mut prev = 0;
            for &i in by_addr.iter() {
                let a = cases.chan_addr(i);
                if a != prev {
                    // SAFETY: locked above, once per distinct channel.
                    unsafe { cases.unlock(i) };
                    prev = a;
                }
            }
        });
        for &i in order {
            // SAFETY: every channel of the cases in `order` is locked (above); `cases_ptr`
            // is `cases`, borrowed for this block, and no other reference to it lives
            // while this one does.
            if let Some(g) = unsafe { (*cases_ptr).try_locked(i, &mut wakes) } {
                got = Some((i, g));
                break;
            }
        }
    }
    wakes.run();
    got
}

/// Runs a closure when dropped (also while unwinding): the pass's unlock.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}
