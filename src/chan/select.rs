//! `select`: wait on several channel operations, complete exactly one.
//!
//! The `select!` macro (go-macro/src/select.rs) expands to a call of [`__private::select`]
//! over its cases, each a [`__private::RecvCase`] or [`__private::SendCase`] on the caller's
//! stack. The algorithm is Go's `selectgo` with crossbeam's claim protocol (`waiter.rs`):
//!
//! 1. **Try**: visit the enabled cases in a random order and complete the first that can
//!    complete without waiting. A random permutation makes the choice among ready cases
//!    uniform. If none is ready and there is a `default` (or the deadline has passed),
//!    "no case is ready" must have been true at one instant (so that `default` is
//!    linearizable): either every channel's version (`Chan::version`: its lock's sequence
//!    number and its ring's indices) stood still across the look, or the select looks once
//!    more with every channel locked, and every ring frozen, at once, in address order
//!    (`locked_pass`, Go's `selectgo` lock order). The lock-free first look is enough for a
//!    single case.
//! 2. **Register**: create one context and, in a random order, leave an entry on each case's
//!    wait queue. If a case turns out to be ready while registering, abort the context (its
//!    entries become stale) and start again at 1.
//! 3. **Park** once. The first peer to claim the context completes its case (moving the
//!    value through the case's packet) and wakes us. Entries on the other queues are stale
//!    from that moment; queues drop them lazily (`waiter.rs`), so no lock is taken to
//!    unregister.
//!
//! A select never pairs its own send with its own receive: a case's readiness check skips
//! entries of its own context, and peers only ever claim a context they do not own.
//!
//! A peer may be a dynamic `Select` (`dynamic.rs`) that reserved one of our cases and then
//! dropped its operation: the wait ends in `Waited::Retry` and the select starts again.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Instant;

use super::handoff::{Deferred, Handed, Patience};
use super::hchan::{TryRecv, TrySend, Version};
use super::waiter::{Context, Entry, Waited, Wakes};
use super::{Receiver, RecvError, SendError, Sender};
use crate::runtime::park::{self, WaitReason};

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
pub(super) fn shuffle(order: &mut [usize]) {
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
pub(super) struct Order {
    /// The indices, when there are at most 8.
    small: [usize; 8],
    /// The indices, when there are more.
    large: Vec<usize>,
    /// How many.
    len: usize,
}

impl Order {
    #[inline]
    pub(super) fn new(enabled: impl Iterator<Item = usize>) -> Order {
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

    pub(super) fn as_mut(&mut self) -> &mut [usize] {
        if self.len <= 8 {
            &mut self.small[..self.len]
        } else {
            &mut self.large
        }
    }
}

/// Blocks the caller for ever (`select! {}`, or a select whose cases are all off).
pub(crate) fn block_forever() -> ! {
    loop {
        park::park(WaitReason::SelectNoCases);
    }
}

/// One case of a `select!`, as the select algorithm sees it. Implemented by `RecvCase` and
/// `SendCase`; not for use outside the macro.
#[doc(hidden)]
pub trait SelectCase {
    /// False if the operand was `None` (the case is off).
    fn is_on(&self) -> bool;
    /// A lock-free pre-check: false only if the operation surely cannot complete now.
    fn maybe_ready(&self) -> bool;
    /// True if the case is off, or its channel's version (`Chan::version`) is `v` and
    /// stable: the second half of `default`'s double look.
    fn unchanged(&self, v: &Version) -> bool;
    /// The version, whether the case is on, and whether it may be ready (`maybe_ready`),
    /// read in that order: the first half of `default`'s double look.
    fn look(&self) -> Look;
    /// Completes the operation if it can without waiting (but for a dynamic select's
    /// deferred value, which it waits for as `patience` allows).
    fn try_complete(&mut self, patience: Patience) -> bool;
    /// Leaves an entry for `cx` as case `index`; returns true (and leaves nothing) if the
    /// operation is ready now.
    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool;
    /// Called after a peer completed this case through its packet.
    fn selected(&mut self);
    /// The channel's address (the all-locks pass locks channels in address order).
    fn chan_addr(&self) -> usize;
    /// Locks the case's channel (all-locks pass).
    fn lock(&self);
    /// Unlocks the case's channel.
    ///
    /// # Safety
    /// The caller locked it with `lock`.
    unsafe fn unlock(&self);
    /// Completes the operation if it can without waiting; the caller holds the channel's
    /// lock (`lock`).
    ///
    /// # Safety
    /// The caller holds the lock of this case's channel.
    unsafe fn try_complete_locked(&mut self, wakes: &mut Wakes) -> bool;
    /// After the locks are released: finishes what `try_complete_locked` started (waits for
    /// a dynamic select's deferred value, as `patience` allows). False if that select
    /// dropped its operation or we gave up waiting.
    fn finish(&mut self, _patience: Patience) -> bool {
        true
    }
}

/// What `SelectCase::look` saw.
#[doc(hidden)]
pub struct Look {
    version: Version,
    on: bool,
    maybe_ready: bool,
}

/// A `recv(..)` case.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: Option<&'a Receiver<T>>,
    packet: Option<T>,
    result: Option<Result<T, RecvError>>,
    /// A claimed deferred send whose value `finish` waits for.
    deferred: Option<Arc<Deferred<T>>>,
}

impl<'a, T> RecvCase<'a, T> {
    pub fn new(rx: Option<&'a Receiver<T>>) -> Self {
        RecvCase {
            rx,
            packet: None,
            result: None,
            deferred: None,
        }
    }

    /// The result of the selected case.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result.expect("select: case was selected")
    }
}

impl<T> SelectCase for RecvCase<'_, T> {
    #[inline]
    fn is_on(&self) -> bool {
        self.rx.is_some()
    }

    #[inline]
    fn maybe_ready(&self) -> bool {
        self.rx.is_some_and(|rx| !rx.chan.surely_empty())
    }

    #[inline]
    fn unchanged(&self, v: &Version) -> bool {
        self.rx
            .map_or(true, |rx| v.stable() && rx.chan.version() == *v)
    }

    #[inline]
    fn look(&self) -> Look {
        match self.rx {
            Some(rx) => Look {
                version: rx.chan.version(),
                on: true,
                maybe_ready: !rx.chan.surely_empty(),
            },
            None => Look {
                version: Version::default(),
                on: false,
                maybe_ready: false,
            },
        }
    }

    #[inline]
    fn try_complete(&mut self, patience: Patience) -> bool {
        let chan = &self.rx.expect("case is on").chan;
        self.result = match chan.try_recv() {
            TryRecv::Got(v) => Some(Ok(v)),
            TryRecv::Closed => Some(Err(RecvError)),
            TryRecv::Empty => return false,
            TryRecv::Deferred(d) => match d.wait_with(patience) {
                Some(Handed::Value(v)) => Some(Ok(v)),
                Some(Handed::Cancelled) | None => return false,
            },
        };
        true
    }

    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool {
        let chan = &self.rx.expect("case is on").chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let mut ready = chan.recv_ready_locked(&mut inner, Some(cx), true, &mut wakes);
        if !ready {
            inner.recvq.push(Entry::shared(
                cx,
                index,
                std::ptr::addr_of_mut!(self.packet).cast(),
                false,
            ));
            // A value that came meanwhile makes the case ready: the caller aborts (the
            // entry goes stale).
            ready = chan.mark_receivers_waiting();
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn selected(&mut self) {
        self.result = Some(self.packet.take().ok_or(RecvError));
    }

    fn chan_addr(&self) -> usize {
        self.rx.map_or(0, |rx| Arc::as_ptr(&rx.chan) as usize)
    }

    fn lock(&self) {
        self.rx.expect("case is on").chan.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: the caller locked it (trait contract).
        unsafe { self.rx.expect("case is on").chan.unlock_raw() }
    }

    unsafe fn try_complete_locked(&mut self, wakes: &mut Wakes) -> bool {
        let chan = &self.rx.expect("case is on").chan;
        // SAFETY: the caller holds the lock (trait contract); the reference ends here.
        let inner = unsafe { chan.inner_locked() };
        self.result = match chan.try_recv_locked(inner, wakes) {
            TryRecv::Got(v) => Some(Ok(v)),
            TryRecv::Closed => Some(Err(RecvError)),
            TryRecv::Empty => return false,
            TryRecv::Deferred(d) => {
                self.deferred = Some(d);
                None
            }
        };
        true
    }

    fn finish(&mut self, patience: Patience) -> bool {
        match self.deferred.take() {
            None => true,
            Some(d) => match d.wait_with(patience) {
                Some(Handed::Value(v)) => {
                    self.result = Some(Ok(v));
                    true
                }
                Some(Handed::Cancelled) | None => false,
            },
        }
    }
}

/// A `send(.., v)` case.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: Option<&'a Sender<T>>,
    packet: Option<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    pub fn new(tx: Option<&'a Sender<T>>, v: T) -> Self {
        SendCase {
            tx,
            packet: Some(v),
            result: None,
        }
    }

    /// The result of the selected case.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result.expect("select: case was selected")
    }
}

impl<T> SelectCase for SendCase<'_, T> {
    #[inline]
    fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    #[inline]
    fn maybe_ready(&self) -> bool {
        self.tx.is_some_and(|tx| !tx.chan.surely_full())
    }

    #[inline]
    fn unchanged(&self, v: &Version) -> bool {
        self.tx
            .map_or(true, |tx| v.stable() && tx.chan.version() == *v)
    }

    #[inline]
    fn look(&self) -> Look {
        match self.tx {
            Some(tx) => Look {
                version: tx.chan.version(),
                on: true,
                maybe_ready: !tx.chan.surely_full(),
            },
            None => Look {
                version: Version::default(),
                on: false,
                maybe_ready: false,
            },
        }
    }

    #[inline]
    fn try_complete(&mut self, _patience: Patience) -> bool {
        let chan = &self.tx.expect("case is on").chan;
        let v = self.packet.take().expect("a send case holds its value");
        self.result = match chan.try_send(v) {
            TrySend::Sent => Some(Ok(())),
            TrySend::Closed(v) => Some(Err(SendError(v))),
            TrySend::Full(v) => {
                self.packet = Some(v);
                return false;
            }
        };
        true
    }

    fn register(&mut self, cx: &Arc<Context>, index: usize) -> bool {
        let chan = &self.tx.expect("case is on").chan;
        let mut wakes = Wakes::default();
        let mut inner = chan.lock();
        let mut ready = chan.send_ready_locked(&mut inner, Some(cx), true, &mut wakes);
        if !ready {
            inner.sendq.push(Entry::shared(
                cx,
                index,
                std::ptr::addr_of_mut!(self.packet).cast(),
                false,
            ));
            ready = chan.mark_senders_waiting(&inner);
        }
        drop(inner);
        wakes.run();
        ready
    }

    fn selected(&mut self) {
        self.result = Some(match self.packet.take() {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        });
    }

    fn chan_addr(&self) -> usize {
        self.tx.map_or(0, |tx| Arc::as_ptr(&tx.chan) as usize)
    }

    fn lock(&self) {
        self.tx.expect("case is on").chan.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: the caller locked it (trait contract).
        unsafe { self.tx.expect("case is on").chan.unlock_raw() }
    }

    unsafe fn try_complete_locked(&mut self, wakes: &mut Wakes) -> bool {
        let chan = &self.tx.expect("case is on").chan;
        let v = self.packet.take().expect("a send case holds its value");
        // SAFETY: the caller holds the lock (trait contract); the reference ends here.
        let inner = unsafe { chan.inner_locked() };
        self.result = match chan.try_send_locked(inner, v, wakes) {
            TrySend::Sent => Some(Ok(())),
            TrySend::Closed(v) => Some(Err(SendError(v))),
            TrySend::Full(v) => {
                self.packet = Some(v);
                return false;
            }
        };
        true
    }
}

/// Go's `selectgo` check, used where a select decides that *no* case is ready (`default`,
/// a deadline that has passed): every distinct channel of the cases in `order` is locked, in
/// address order (so that two such passes never deadlock), then the cases are tried in
/// `order` and the first that can complete does. Checking the cases one lock at a time
/// could see every channel empty although at each instant one held a value (a peer moving
/// a value from one case's channel to another's); holding every lock, with every ring
/// frozen (`Chan::lock_raw`: its lock-free operations wait too), makes "none is ready" true
/// at one instant.
fn locked_pass(cases: &mut [&mut dyn SelectCase], order: &[usize]) -> Option<usize> {
    let mut by_addr = Order::new(order.iter().copied());
    let by_addr = by_addr.as_mut();
    by_addr.sort_unstable_by_key(|&i| cases[i].chan_addr());
    let mut prev = 0;
    for &i in by_addr.iter() {
        let a = cases[i].chan_addr();
        if a != prev {
            cases[i].lock();
            prev = a;
        }
    }
    let mut wakes = Wakes::default();
    let mut got = None;
    {
        // Unlocks even if a case panics under the locks (`park::current` during a thread's
        // teardown, say): a panic must not leave channels locked and rings frozen.
        // Both the unlock and the pass reach the cases through this one pointer.
        let cases_ptr: *mut [&mut dyn SelectCase] = cases;
        let _unlock = OnDrop(move || {
            // SAFETY: runs when this block ends (normally or by unwinding), after the pass's
            // last use of `cases_ptr`; `cases` outlives the block.
            let cases = unsafe { &*cases_ptr };
            let mut prev = 0;
            for &i in by_addr.iter() {
                let a = cases[i].chan_addr();
                if a != prev {
                    // SAFETY: locked above, once per distinct channel.
                    unsafe { cases[i].unlock() };
                    prev = a;
                }
            }
        });
        for &i in order {
            // SAFETY: every channel of the cases in `order` is locked (above); `cases_ptr`
            // is `cases`, borrowed for this block, and no other reference to it lives
            // while this one does.
            if unsafe { (&mut (*cases_ptr))[i].try_complete_locked(&mut wakes) } {
                got = Some(i);
                break;
            }
        }
    }
    wakes.run();
    got
}

/// Runs a closure when dropped (also while unwinding): the all-locks passes' unlock.
pub(super) struct OnDrop<F: FnMut()>(pub(super) F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
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
            Some(i) if !cases[i].finish(Patience::None) => continue,
            r => return r,
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
            match deadline {
                None => block_forever(),
                Some(d) => {
                    crate::time::sleep_until(d);
                    return None;
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            match locked_pass(cases, order) {
                Some(i) if !cases[i].finish(patience) => {
                    shuffle(order);
                    continue;
                }
                r => return r,
            }
        }
        // Register in the (random) order of the pass; each registration looks once more,
        // under the channel's lock.
        let cx = Context::new();
        let mut ready = false;
        for &i in order.iter() {
            if cases[i].register(&cx, i) {
                ready = true;
                break;
            }
        }
        let r = if ready && cx.try_abort() {
            // A case became ready: our entries are stale now.
            Waited::Retry
        } else {
            // Registered on every case: from here any peer that makes a case ready claims
            // us, so a timeout (abort) happens at an instant when none was ready.
            cx.wait(WaitReason::Select, deadline)
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

/// Items the `select!` expansion uses. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    use std::time::Duration;

    use super::{Receiver, Sender};
    pub use super::{RecvCase, SelectCase, SendCase};

    /// Runs a select; see `select.rs`.
    #[inline]
    pub fn select(
        cases: &mut [&mut dyn SelectCase],
        has_default: bool,
        timeout: Option<Duration>,
    ) -> Option<usize> {
        let deadline = timeout.map(crate::time::deadline_after);
        super::select(cases, has_default, deadline)
    }

    /// Ends the borrows held by the cases that were not chosen (a plain function, so that
    /// lints about `drop` of non-`Drop` values stay quiet in user code).
    #[inline(always)]
    pub fn end<T>(_cases: T) {}

    /// `select! {}`.
    pub fn block_forever() -> ! {
        super::block_forever()
    }

    /// What a `recv(..)` operand may be: a Receiver, a reference to one, or an Option of
    /// either (None turns the case off).
    pub trait RecvOperand {
        /// The channel's element type.
        type Item;
        /// The receiver, or None if the case is off.
        fn receiver(&self) -> Option<&Receiver<Self::Item>>;
    }

    impl<T> RecvOperand for Receiver<T> {
        type Item = T;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<T>> {
            Some(self)
        }
    }

    impl<R: RecvOperand + ?Sized> RecvOperand for &R {
        type Item = R::Item;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<R::Item>> {
            (**self).receiver()
        }
    }

    impl<R: RecvOperand + ?Sized> RecvOperand for &mut R {
        type Item = R::Item;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<R::Item>> {
            (**self).receiver()
        }
    }

    impl<R: RecvOperand> RecvOperand for Option<R> {
        type Item = R::Item;
        #[inline]
        fn receiver(&self) -> Option<&Receiver<R::Item>> {
            self.as_ref().and_then(|r| r.receiver())
        }
    }

    /// What a `send(..)` operand may be: a Sender, a reference to one, or an Option of
    /// either (None turns the case off).
    pub trait SendOperand {
        /// The channel's element type.
        type Item;
        /// The sender, or None if the case is off.
        fn sender(&self) -> Option<&Sender<Self::Item>>;
    }

    impl<T> SendOperand for Sender<T> {
        type Item = T;
        #[inline]
        fn sender(&self) -> Option<&Sender<T>> {
            Some(self)
        }
    }

    impl<S: SendOperand + ?Sized> SendOperand for &S {
        type Item = S::Item;
        #[inline]
        fn sender(&self) -> Option<&Sender<S::Item>> {
            (**self).sender()
        }
    }

    impl<S: SendOperand + ?Sized> SendOperand for &mut S {
        type Item = S::Item;
        #[inline]
        fn sender(&self) -> Option<&Sender<S::Item>> {
            (**self).sender()
        }
    }

    impl<S: SendOperand> SendOperand for Option<S> {
        type Item = S::Item;
        #[inline]
        fn sender(&self) -> Option<&Sender<S::Item>> {
            self.as_ref().and_then(|s| s.sender())
        }
    }

    /// `recv(op)`: the case for operand `op`.
    #[inline]
    pub fn recv_case<O: RecvOperand + ?Sized>(op: &O) -> RecvCase<'_, O::Item> {
        RecvCase::new(op.receiver())
    }

    /// `send(op, v)`: the case for operand `op` and value `v`.
    #[inline]
    pub fn send_case<O: SendOperand + ?Sized>(op: &O, v: O::Item) -> SendCase<'_, O::Item> {
        SendCase::new(op.sender(), v)
    }
}
