//! Channel timers: `after`, `tick`, [`Timer`] and [`Ticker`], on the runtime's timer heaps
//! (`runtime/timers.rs`).
//!
//! Each is a capacity-1 channel plus one heap timer whose callback (on a worker thread,
//! never blocking) does a `try_send` of the current time. A ticker's callback re-arms itself
//! one period after the deadline it fired for, so the phase is kept; if the receiver is slow
//! the buffered tick stays and later ticks are dropped (Go's `time.Ticker`).
//!
//! # Go 1.23 semantics: no stale values
//! A `state` lock orders the callback's send against `stop`/`reset`: the callback sends only
//! if the deadline it fired for is still the armed one, and `stop`/`reset` drain the channel
//! under the same lock. So after `stop` or `reset` returns, no value from before can be
//! received. `stop`/`reset` return true if they prevented a delivery (the timer was armed,
//! or its value was still unreceived and is discarded), as Go 1.23's do.
//!
//! # Two allocations per timer, and leaving nothing behind
//! `Shared` is at once the timer's state, its place in the timer heap (`timers::Fire`), its
//! callback and its channel's one-slot ring (`chan::OneSlot`): `after(d)` allocates the
//! channel and `Shared`, nothing else. The channel holds `Shared` (its `on_rx_gone` hook,
//! which keeps the ring's memory alive) and `Shared` holds the channel's Sender until every
//! Receiver is gone, when the hook stops the timer and lets the Sender go (so the two do
//! not keep each other alive). The heap holds a strong reference while the timer is armed,
//! so `after` and `tick` need no other owner; dropping a `Timer` or `Ticker` handle stops it
//! (removing it from the heap at once), and when every Receiver of an `after` or `tick`
//! channel is gone the hook stops it too: nothing is left in the heap for a value nobody
//! can receive. (`after_func` runs whether or not its handle is kept, as Go's does.)

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::chan::{self, OneSlot, Receiver, RxGone, Sender, TrySendError};
use crate::runtime::timers::{self, Fire, HeapIndex};

struct State {
    /// The armed deadline (timer-epoch ns), `NONE` when stopped or fired (one-shot). (Not an
    /// `Option`: with `period` so, the whole timer fits one 112-byte allocation.)
    when: u64,
    /// The period of a ticker in nanoseconds (saturating), 0 for a one-shot timer.
    period: u64,
    /// The channel's Sender; let go when every Receiver is gone (the channel holds this
    /// `Shared`, so this would otherwise be a cycle).
    tx: Option<Sender<Instant>>,
}

/// What to run instead of sending (`after_func`), in a new goroutine.
type Func = Arc<dyn Fn() + Send + Sync>;

/// `State::when` of a timer that is not armed (no deadline is this late: `to_nanos`).
const NONE: u64 = u64::MAX;

impl State {
    /// Disarms (as far as the callback is concerned); true if it was armed.
    fn take_armed(&mut self) -> bool {
        std::mem::replace(&mut self.when, NONE) != NONE
    }

    fn period(&self) -> Option<Duration> {
        (self.period != 0).then(|| Duration::from_nanos(self.period))
    }
}

/// A period as `State::period`.
fn period_nanos(d: Duration) -> u64 {
    d.as_nanos().clamp(1, u64::MAX as u128) as u64
}

#[repr(C)]
struct Shared {
    /// Its place in the timer heap (first: `timers::Fire`'s contract).
    index: HeapIndex,
    /// `after_func`'s function: fired in a new goroutine instead of sending (boxed: a thin
    /// pointer, for the size of every other timer).
    func: Option<Box<Func>>,
    state: Mutex<State>,
    /// The channel's one-slot ring, kept here rather than in an allocation of its own; the
    /// channel holds this `Shared` (`on_rx_gone`) for as long as it lives.
    slot: OneSlot<Instant>,
}

// SAFETY: `repr(C)` with `index` first (the trait's contract).
unsafe impl Fire for Shared {
    fn index(&self) -> &HeapIndex {
        &self.index
    }

    fn fire(self: Arc<Self>, deadline: u64) {
        Shared::fired(&self, deadline);
    }
}

impl RxGone for Shared {
    /// Every Receiver is gone: nobody can receive a value any more; stop (`after_func`
    /// runs regardless, as Go's does), and let the Sender go.
    fn rx_gone(&self) {
        let mut st = lock(&self.state);
        // Not armed once `when` is None (fired or stopped): no heap lock to take.
        if self.func.is_none() && st.take_armed() {
            timers::stop(self);
        }
        let tx = st.tx.take();
        drop(st);
        drop(tx);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// A timer armed for `d` from now.
    fn new(
        period: Option<Duration>,
        func: Option<Func>,
        d: Duration,
    ) -> (Arc<Shared>, Receiver<Instant>) {
        let func = func.map(Box::new);
        let period = period.map_or(0, period_nanos);
        let shared = Arc::new(Shared {
            index: HeapIndex::new(),
            func,
            state: Mutex::new(State {
                when: NONE,
                period,
                tx: None,
            }),
            slot: OneSlot::new(),
        });
        // SAFETY: `slot` is fresh, inside `shared` (which does not move), and the channel
        // holds `shared` from the start, so the slot outlives the channel's ring.
        let (tx, rx) = unsafe { chan::chan_in_block(&shared.slot, shared.clone()) };
        let mut st = lock(&shared.state);
        st.tx = Some(tx);
        shared.arm(&mut st, d);
        drop(st);
        (shared, rx)
    }

    /// The heap timer fired for `deadline` (timer-epoch ns; runs on a worker; must not
    /// block).
    fn fired(self: &Arc<Self>, deadline: u64) {
        let mut st = lock(&self.state);
        if st.when != deadline {
            return; // stopped or reset since it was armed
        }
        let now = Instant::now();
        let sent = match &self.func {
            Some(f) => {
                let f = Func::clone(f);
                drop(crate::runtime::spawn(move || f()));
                Ok(())
            }
            None => match &st.tx {
                Some(tx) => tx.try_send(now),
                None => Err(TrySendError::Closed(now)),
            },
        };
        match st.period() {
            None => st.when = NONE,
            Some(_) if matches!(sent, Err(TrySendError::Closed(_))) => {
                // Every Receiver is gone: nobody can tick any more.
                st.when = NONE;
            }
            Some(p) => {
                let deadline = timers::from_nanos(deadline);
                let mut next = super::saturating_add(deadline, p);
                if next <= now {
                    // Fell behind (a stalled runtime): skip whole periods, keep the phase.
                    let behind = (now - deadline).as_nanos();
                    let k = (behind / p.as_nanos().max(1) + 1).min(u32::MAX as u128) as u32;
                    next = super::saturating_add(deadline, p.saturating_mul(k));
                }
                let next = timers::to_nanos(next);
                st.when = next;
                let t: Arc<dyn Fire> = self.clone();
                timers::start_at(t, next);
            }
        }
    }

    /// Arms for `now + d`, or delivers at once if `d` is zero (one-shot only).
    fn arm(self: &Arc<Self>, st: &mut State, d: Duration) {
        let now = Instant::now();
        let when = super::saturating_add(now, d);
        // Already due (zero, or shorter than reading the clock): deliver now rather than
        // through the heap, as Go 1.23 runs an expired channel timer synchronously.
        // (A second clock read only when the duration is below the clock's granularity.)
        if st.period == 0 && self.func.is_none() && d < Duration::from_micros(1) {
            let fired = Instant::now();
            if fired >= when {
                st.when = NONE;
                if let Some(tx) = &st.tx {
                    let _ = tx.try_send(fired);
                }
                return;
            }
        }
        let when = timers::to_nanos(when);
        st.when = when;
        // The heap owns it while armed (`after_func`: runs whether or not a handle is kept).
        let t: Arc<dyn Fire> = self.clone();
        timers::start_at(t, when);
    }

    /// Disarms and drains; true if a delivery was prevented.
    fn stop(&self, rx: &Receiver<Instant>) -> bool {
        let mut st = lock(&self.state);
        let pending = st.take_armed();
        timers::stop(self);
        let drained = rx.try_recv().is_ok();
        drop(st);
        pending || drained
    }

    /// The handle is dropped: disarm (unless `after_func`, which runs regardless).
    fn drop_handle(&self) {
        if self.func.is_none() {
            let mut st = lock(&self.state);
            if st.take_armed() {
                timers::stop(self);
            }
        }
    }

    fn reset(
        self: &Arc<Self>,
        rx: &Receiver<Instant>,
        d: Duration,
        period: Option<Duration>,
    ) -> bool {
        let mut st = lock(&self.state);
        let pending = st.take_armed();
        timers::stop(&**self);
        let drained = rx.try_recv().is_ok();
        if let Some(p) = period {
            st.period = period_nanos(p);
        }
        self.arm(&mut st, d);
        pending || drained
    }
}

/// A single event: after the duration, the current time is sent on [`Timer::receiver`]
/// (Go's `time.Timer`). Dropping the Timer stops it.
///
/// Go 1.23 semantics: once [`stop`](Timer::stop) or [`reset`](Timer::reset) returns, no
/// value from before can be received. The channel never closes.
///
/// ```
/// use std::time::Duration;
/// let t = gort::time::Timer::new(Duration::from_millis(1));
/// assert!(t.receiver().recv().is_ok());
/// ```
pub struct Timer {
    shared: Arc<Shared>,
    rx: Receiver<Instant>,
}

impl Timer {
    /// A timer that fires once after `d` (at once if `d` is zero).
    pub fn new(d: Duration) -> Timer {
        let (shared, rx) = Shared::new(None, None, d);
        Timer { shared, rx }
    }

    /// The channel the time is sent on.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer. Returns true if this prevented a delivery (the timer had not fired,
    /// or its value had not been received and is now discarded); false if it was already
    /// stopped or its value already received.
    pub fn stop(&self) -> bool {
        self.shared.stop(&self.rx)
    }

    /// Re-arms the timer to fire after `d`, discarding any unreceived value. Returns what
    /// `stop` would have.
    pub fn reset(&self, d: Duration) -> bool {
        self.shared.reset(&self.rx, d, None)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("armed", &(lock(&self.shared.state).when != NONE))
            .finish()
    }
}

/// Delivers the time every period on [`Ticker::receiver`] (Go's `time.Ticker`). The channel
/// holds one tick: a slow receiver loses ticks, but the phase is kept. Dropping the Ticker
/// stops it. Same no-stale-value guarantee as [`Timer`].
pub struct Ticker {
    shared: Arc<Shared>,
    rx: Receiver<Instant>,
}

impl Ticker {
    /// A ticker with period `d`.
    ///
    /// # Panics
    /// `non-positive interval for Ticker` if `d` is zero.
    pub fn new(d: Duration) -> Ticker {
        if d.is_zero() {
            panic!("non-positive interval for Ticker");
        }
        let (shared, rx) = Shared::new(Some(d), None, d);
        Ticker { shared, rx }
    }

    /// The channel the ticks are sent on.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker (no tick is received afterwards). Returns true if it was running or
    /// an unreceived tick was discarded.
    pub fn stop(&self) -> bool {
        self.shared.stop(&self.rx)
    }

    /// Restarts the ticker with period `d`, the next tick `d` from now; discards an
    /// unreceived tick.
    ///
    /// # Panics
    /// `non-positive interval for Ticker.Reset` if `d` is zero.
    pub fn reset(&self, d: Duration) -> bool {
        if d.is_zero() {
            panic!("non-positive interval for Ticker.Reset");
        }
        self.shared.reset(&self.rx, d, Some(d))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("Ticker")
            .field("period", &st.period())
            .field("running", &(st.when != NONE))
            .finish()
    }
}

/// Runs `f` in its own goroutine after `d` (Go's `time.AfterFunc`). The returned Timer's
/// `stop` cancels the call if it has not started (returns true then); its receiver never
/// receives. As in Go, dropping the handle does not cancel the call.
pub fn after_func(d: Duration, f: impl Fn() + Send + Sync + 'static) -> Timer {
    let (shared, rx) = Shared::new(None, Some(Arc::new(f)), d);
    Timer { shared, rx }
}

/// A channel that receives the time once, after `d` (Go's `time.After`). Ready at once if
/// `d` is zero. The channel never closes. Use it for timeouts in `select!`:
///
/// ```
/// use std::time::Duration;
/// let (_tx, rx) = gort::chan::<i32>(0);
/// let r = gort::select! {
///     recv(rx) -> v => v.ok(),
///     recv(gort::time::after(Duration::from_millis(1))) -> _ => None,
/// };
/// assert_eq!(r, None);
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    let (_, rx) = Shared::new(None, None, d);
    rx
}

/// A channel that receives the time every `d` (Go's `time.Tick`): a slow receiver loses
/// ticks. It stops once every Receiver is gone. `tick(Duration::ZERO)` never delivers (Go's
/// `time.Tick(0)` is nil).
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        let (_tx, rx) = chan::chan_keep_open(0);
        return rx;
    }
    let (_, rx) = Shared::new(Some(d), None, d);
    rx
}
