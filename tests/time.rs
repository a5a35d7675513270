//! Timers: Go's time tests (TestAfter, TestAfterStop, TestAfterQueuing, TestTimerStopStress,
//! TestReset, TestTicker), written afresh, plus Go 1.23's no-stale-value rules and "a stopped
//! or dropped timer leaves nothing behind".
//!
//! Timing assertions are lower bounds, or generous upper bounds with retries at larger
//! scales (as Go's own tests retry), so they hold on a loaded two-core machine.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{RecvTimeoutError, TryRecvError};
use gort::time::{after, after_func, armed_count, sleep, tick, Ticker, Timer};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `f(scale)` with growing scales until it succeeds (Go's timing-test retries).
fn with_retries(mut f: impl FnMut(u64) -> Result<(), String>) {
    let mut errs = Vec::new();
    for scale in [1, 2, 4, 8] {
        match f(scale) {
            Ok(()) => return,
            Err(e) => errs.push(e),
        }
    }
    panic!("failed at every scale: {errs:?}");
}

// TestAfter
#[gort::test]
fn after_fires_no_earlier_than_asked() {
    let d = ms(20);
    let t0 = Instant::now();
    let fired = after(d).recv().unwrap();
    let t1 = Instant::now();
    assert!(fired >= t0 + d, "fired too early");
    assert!(t1 - t0 >= d, "recv returned too early");
}

#[gort::test]
fn after_zero_is_ready_at_once_and_never_closes() {
    let rx = after(Duration::ZERO);
    assert!(rx.try_recv().is_ok());
    assert_eq!(rx.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
    assert!(!rx.is_closed());
}

// TestAfterStop
#[gort::test]
fn after_stop() {
    with_retries(|k| {
        let t0 = Timer::new(ms(10 * k));
        let c1 = Arc::new(AtomicUsize::new(0));
        let c = c1.clone();
        let t1 = after_func(ms(30 * k), move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let c2 = after(ms(40 * k));
        if !t0.stop() {
            return Err("stop of a pending timer returned false".into());
        }
        if !t1.stop() {
            return Err("stop of a pending after_func returned false".into());
        }
        c2.recv().unwrap();
        if t0.receiver().try_recv().is_ok() {
            return Err("stopped timer fired".into());
        }
        sleep(ms(5));
        if c1.load(Ordering::SeqCst) != 0 {
            return Err("stopped after_func ran".into());
        }
        if t1.stop() {
            return Err("second stop returned true".into());
        }
        Ok(())
    });
}

// TestAfterQueuing: timers fire in deadline order whatever order they were started in.
#[gort::test]
fn after_queuing_fires_in_order() {
    let slots = [5u64, 3, 6, 6, 6, 1, 1, 2, 7, 9, 4, 8, 0];
    with_retries(|k| {
        let delta = ms(10 * k);
        let (tx, rx) = gort::chan::<(u64, Instant)>(slots.len());
        let t0 = Instant::now();
        for &s in &slots {
            let tx = tx.clone();
            gort::go!(move || {
                let fired = after(delta * s as u32).recv().unwrap();
                tx.send((s, fired)).unwrap();
            });
        }
        let mut order = Vec::new();
        for _ in 0..slots.len() {
            let (s, fired) = rx.recv().unwrap();
            if fired < t0 + delta * s as u32 {
                return Err(format!("slot {s} fired early"));
            }
            order.push(s);
        }
        let mut sorted = order.clone();
        sorted.sort();
        if order != sorted {
            return Err(format!("out of order: {order:?}"));
        }
        Ok(())
    });
}

// TestTimerStopStress
#[gort::test]
fn timer_stop_stress() {
    let _g = common::heap_test();
    let fired = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let fired = fired.clone();
            gort::go!(move || {
                let t = after_func(ms(1000), move || {
                    fired.fetch_add(1, Ordering::SeqCst);
                });
                sleep(ms(10));
                assert!(t.stop(), "stop of a pending timer returned false");
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    sleep(ms(1200));
    assert_eq!(fired.load(Ordering::SeqCst), 0, "a stopped timer ran");
}

// TestReset
#[gort::test]
fn reset() {
    with_retries(|k| {
        let d = ms(25 * k);
        let t0 = Timer::new(2 * d);
        sleep(d);
        if !t0.reset(3 * d) {
            return Err("resetting an unexpired timer returned false".into());
        }
        sleep(2 * d);
        if t0.receiver().try_recv().is_ok() {
            return Err("timer fired early".into());
        }
        sleep(2 * d);
        if t0.receiver().try_recv().is_err() {
            return Err("reset timer did not fire".into());
        }
        if t0.reset(ms(50)) {
            return Err("resetting an expired, received timer returned true".into());
        }
        t0.stop();
        Ok(())
    });
}

// TestTicker
#[gort::test]
fn ticker() {
    with_retries(|k| {
        let delta = ms(10 * k);
        let count = 10;
        let t = Ticker::new(delta);
        let t0 = Instant::now();
        for _ in 0..count {
            t.receiver().recv().unwrap();
        }
        let elapsed = t0.elapsed();
        t.stop();
        if elapsed < delta * (count - 1) {
            return Err(format!("{count} ticks of {delta:?} took only {elapsed:?}"));
        }
        if elapsed > delta * count * 4 {
            return Err(format!("{count} ticks of {delta:?} took {elapsed:?}"));
        }
        sleep(2 * delta);
        if t.receiver().try_recv().is_ok() {
            return Err("ticker did not stop".into());
        }
        // Reset starts it again with the new period.
        t.reset(delta / 2);
        if t.receiver().recv_timeout(delta * 20).is_err() {
            return Err("reset ticker did not tick".into());
        }
        Ok(())
    });
}

#[gort::test]
fn slow_ticker_receiver_loses_ticks_but_keeps_phase() {
    let d = ms(20);
    // Before the ticker: its ticks are due from the instant it reads inside `new`, so a tick
    // that fires on time may carry an instant before a `start` read after it (a loaded
    // machine widens that gap to milliseconds).
    let start = Instant::now();
    let t = Ticker::new(d);
    sleep(ms(200)); // about ten ticks pass; the channel holds one
    let first = t.receiver().recv().unwrap();
    assert!(first >= start + d);
    // At most one more can have arrived since (a tick may land right now): the rest were lost.
    let extra = t.receiver().try_iter().count();
    assert!(extra <= 1, "{extra} ticks buffered");
    let next = t.receiver().recv().unwrap();
    assert!(next >= start + ms(200), "ticks keep coming after the stall");
    t.stop();
}

#[test]
#[should_panic(expected = "non-positive interval for Ticker")]
fn zero_ticker_panics() {
    let _ = Ticker::new(Duration::ZERO);
}

#[gort::test]
fn tick_zero_never_delivers() {
    let rx = tick(Duration::ZERO);
    assert_eq!(rx.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
}

#[gort::test]
fn tick_delivers() {
    let rx = tick(ms(2));
    for _ in 0..3 {
        rx.recv().unwrap();
    }
}

// Go 1.23: no stale values after stop or reset.
#[gort::test]
fn no_stale_value_after_stop_or_reset() {
    let t = Timer::new(ms(1));
    sleep(ms(20)); // fired; value unreceived
    assert!(t.stop(), "stop discarding an unreceived value returns true");
    assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));
    let t = Timer::new(ms(1));
    sleep(ms(20));
    assert!(t.reset(ms(10_000)));
    assert_eq!(
        t.receiver().recv_timeout(ms(30)),
        Err(RecvTimeoutError::Timeout),
        "stale value after reset"
    );
    let tk = Ticker::new(ms(1));
    sleep(ms(20));
    tk.stop();
    assert_eq!(
        tk.receiver().recv_timeout(ms(20)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[gort::test]
fn stopped_or_dropped_timers_leave_nothing_behind() {
    let _g = common::heap_test();
    let n = 1000;
    let long = Duration::from_secs(3600);
    let timers: Vec<Timer> = (0..n).map(|_| Timer::new(long)).collect();
    assert!(armed_count() >= n);
    for t in &timers[..n / 2] {
        assert!(t.stop());
    }
    drop(timers);
    let tickers: Vec<Ticker> = (0..n).map(|_| Ticker::new(long)).collect();
    assert!(armed_count() >= n);
    drop(tickers);
    let funcs: Vec<Timer> = (0..n).map(|_| after_func(long, || {})).collect();
    for f in &funcs {
        assert!(f.stop());
    }
    drop(funcs);
    // Other tests' timers (sleeps, timeouts) are few.
    assert!(armed_count() < 100, "armed: {}", armed_count());
}

#[gort::test]
fn after_and_tick_leave_nothing_once_their_receiver_is_gone() {
    let _g = common::heap_test();
    // Go 1.23 collects unreferenced timers; gort stops them when the Receiver drops, so a
    // `select!` loop with a long `after` per iteration does not pile up armed timers.
    let (tx, rx) = gort::chan::<u32>(1);
    for i in 0..1000 {
        tx.send(i).unwrap();
        gort::select! {
            recv(rx) -> v => assert_eq!(v, Ok(i)),
            recv(after(Duration::from_secs(3600))) -> _ => unreachable!(),
        }
    }
    for _ in 0..1000 {
        drop(tick(Duration::from_secs(3600)));
    }
    assert!(armed_count() < 100, "armed: {}", armed_count());
}

#[gort::test]
fn tick_stops_once_its_receiver_is_gone() {
    let _g = common::heap_test();
    let before = Instant::now();
    for _ in 0..200 {
        drop(tick(ms(1)));
    }
    sleep(ms(30));
    assert!(armed_count() < 100, "armed: {}", armed_count());
    let _ = before;
}

#[test]
fn timers_work_from_plain_threads() {
    let t = Timer::new(ms(5));
    assert!(t.receiver().recv().is_ok());
    let r = gort::select! {
        recv(after(ms(5))) -> _ => 1,
        recv(tick(Duration::ZERO)) -> _ => 2,
    };
    assert_eq!(r, 1);
}
