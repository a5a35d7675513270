//! The per-processor timer heaps (runtime/timers.rs): what having one heap per P makes
//! new. A timer armed on a P fires while that P's goroutine computes or its thread blocks
//! in a raw system call (another M or sysmon runs it); timers armed from plain threads;
//! stop and reset from another P or thread than the one that armed; many timers on every
//! P at once, each firing exactly once unless stopped first.
//!
//! Only behaviour is asserted; time bounds are generous (a loaded two-core machine).
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gort::time::{after, after_func, armed_count, Timer};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Long enough for any timer of these tests to fire on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// Waits (sleeping the goroutine) until `cond` holds; panics after `PATIENCE`.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < PATIENCE, "{what}: not after {PATIENCE:?}");
        gort::time::sleep(ms(1));
    }
}

/// A timer armed by a goroutine fires while that goroutine computes without a switch: its
/// P's M never returns to the scheduler, so another M (or sysmon, with one P) runs it.
#[gort::test]
fn fires_while_its_processor_computes() {
    let _g = common::heap_test();
    let fired = Arc::new(AtomicBool::new(false));
    let rx = after(ms(2));
    let f = fired.clone();
    let _t = after_func(ms(2), move || f.store(true, Ordering::SeqCst));
    let t = Instant::now();
    let mut spins = 0u64;
    // Spin (no blocking point) until the channel timer has delivered.
    while rx.try_recv().is_err() {
        assert!(
            t.elapsed() < PATIENCE,
            "the timer did not fire while its P computed"
        );
        spins = std::hint::black_box(spins + 1);
    }
    // The `after_func` goroutine needs a P: with one P it runs once this one switches.
    eventually("after_func", || fired.load(Ordering::SeqCst));
}

/// A timer armed by a goroutine fires, and is received by a plain thread, while that
/// goroutine's thread is blocked in a raw system call (`std::thread::sleep`).
#[gort::test]
fn fires_while_its_thread_blocks_in_a_raw_syscall() {
    let _g = common::heap_test();
    let rx = after(ms(2));
    let t = gort::spawn(move || {
        // A plain thread: blocks its OS thread in recv.
        let got = std::thread::spawn(move || rx.recv_timeout(PATIENCE))
            .join()
            .unwrap();
        got.is_ok()
    });
    // Keep this goroutine's thread in nanosleep while the timer is due.
    let t0 = Instant::now();
    std::thread::sleep(ms(50));
    assert!(t0.elapsed() >= ms(50));
    assert!(
        t.join().unwrap(),
        "the timer did not fire while its M slept"
    );
}

/// Timers armed from plain threads (the off-processor heap) fire, and can be stopped and
/// reset from goroutines, and the other way round.
#[gort::test]
fn timers_armed_from_plain_threads() {
    let _g = common::heap_test();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let _w = common::watchdog(60, "plain-thread timers");
                // Fires.
                after(ms(1 + i)).recv().unwrap();
                let t = Timer::new(ms(1 + i));
                t.receiver().recv().unwrap();
                // Armed here, stopped by a goroutine.
                let long = Timer::new(Duration::from_secs(3600));
                let stopped = gort::spawn(move || long.stop()).join().unwrap();
                assert!(stopped, "stop from a goroutine prevented the firing");
                i
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Armed by a goroutine, reset and received on a plain thread.
    let t = Timer::new(Duration::from_secs(3600));
    let got = std::thread::spawn(move || {
        assert!(
            t.reset(ms(1)),
            "reset of an armed timer reports it was armed"
        );
        t.receiver().recv_timeout(PATIENCE).is_ok()
    })
    .join()
    .unwrap();
    assert!(got);
}

/// Stop and reset from other processors and threads than the arming one: each stop of an
/// armed timer reports true exactly once, a reset timer fires once, nothing is left armed.
#[gort::test]
fn stop_and_reset_across_processors() {
    let _g = common::heap_test();
    let base = armed_count();
    let n = common::stress(200);
    let (tx, rx) = gort::chan::<Timer>(n);
    // Armers: goroutines (spread over the Ps) and a plain thread.
    let armers: Vec<_> = (0..4)
        .map(|_| {
            let tx = tx.clone();
            gort::spawn(move || {
                for _ in 0..n / 5 {
                    tx.send(Timer::new(Duration::from_secs(3600))).unwrap();
                    gort::yield_now();
                }
            })
        })
        .collect();
    let plain = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for _ in 0..n / 5 {
                tx.send(Timer::new(Duration::from_secs(3600))).unwrap();
            }
        })
    };
    drop(tx);
    let stops = Arc::new(AtomicUsize::new(0));
    let fired = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|k| {
            let (rx, stops, fired) = (rx.clone(), stops.clone(), fired.clone());
            gort::spawn(move || {
                for (i, t) in rx.iter().enumerate() {
                    if (i + k) % 2 == 0 {
                        assert!(t.stop(), "first stop of an armed timer");
                        assert!(!t.stop(), "second stop");
                        stops.fetch_add(1, Ordering::SeqCst);
                    } else {
                        assert!(t.reset(Duration::from_micros(100)));
                        t.receiver().recv().unwrap();
                        assert!(!t.stop(), "a fired and received timer is not armed");
                        fired.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for a in armers {
        a.join().unwrap();
    }
    plain.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        stops.load(Ordering::SeqCst) + fired.load(Ordering::SeqCst),
        5 * (n / 5)
    );
    eventually("nothing left armed", || armed_count() == base);
}

/// Many timers armed on every processor and from plain threads at once, some stopped at
/// once: each that was not stopped in time fires exactly once, each stopped never does.
#[gort::test]
fn many_timers_across_processors_fire_exactly_once() {
    let _g = common::heap_test();
    let base = armed_count();
    let per = common::stress(2000);
    let armers = 6;
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..armers * per).map(|_| AtomicUsize::new(0)).collect());
    let prevented = Arc::new(AtomicUsize::new(0));
    let arm = {
        let (counts, prevented) = (counts.clone(), prevented.clone());
        move |a: usize| {
            let mut kept = Vec::new();
            for i in 0..per {
                let id = a * per + i;
                let c = counts.clone();
                let d = Duration::from_micros(((id * 7919) % 3000) as u64);
                let t = after_func(d, move || {
                    c[id].fetch_add(1, Ordering::SeqCst);
                });
                if i % 3 == 0 && t.stop() {
                    prevented.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                kept.push(t);
                if i % 64 == 0 {
                    gort::yield_now();
                }
            }
            kept.len()
        }
    };
    let mut hs = Vec::new();
    for a in 0..armers - 2 {
        let arm = arm.clone();
        hs.push(gort::spawn(move || arm(a)));
    }
    let plain: Vec<_> = (armers - 2..armers)
        .map(|a| {
            let arm = arm.clone();
            std::thread::spawn(move || arm(a))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    for p in plain {
        p.join().unwrap();
    }
    let expected = armers * per - prevented.load(Ordering::SeqCst);
    let total = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    let t = Instant::now();
    while total() < expected {
        assert!(
            t.elapsed() < PATIENCE,
            "fired {} of {expected} after {PATIENCE:?}; {} armed; {}",
            total(),
            armed_count(),
            gort::dump_json()
        );
        gort::time::sleep(ms(1));
    }
    // Let any duplicate show up.
    gort::time::sleep(ms(20));
    assert_eq!(total(), expected);
    assert!(
        counts.iter().all(|c| c.load(Ordering::SeqCst) <= 1),
        "a timer fired twice"
    );
    eventually("nothing left armed", || armed_count() == base);
}

/// The deadlock detector sees timers armed on any processor's heap: a goroutine waiting on
/// a timer armed by another goroutine is not reported (see tests/deadlock.rs for the
/// detector itself), and a select timeout armed on one P fires when another P receives.
#[gort::test]
fn select_timeouts_on_every_processor() {
    let _g = common::heap_test();
    let n = common::stress(50);
    let hs: Vec<_> = (0..8)
        .map(|_| {
            gort::spawn(move || {
                let (_tx, rx) = gort::chan::<()>(0);
                let mut timeouts = 0;
                for _ in 0..n {
                    gort::select! {
                        recv(rx) -> _ => unreachable!(),
                        recv(after(Duration::from_micros(200))) -> _ => timeouts += 1,
                    }
                }
                timeouts
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), n);
    }
}

/// Timers re-armed from their own callbacks on whatever M runs them (tickers) keep going
/// while every P is busy computing.
#[gort::test]
fn tickers_tick_while_every_processor_computes() {
    let _g = common::heap_test();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let busy: Vec<_> = (0..gort::runtime::max_procs())
        .map(|_| {
            let ticks = ticks.clone();
            gort::spawn(move || {
                let t = gort::time::Ticker::new(ms(1));
                let start = Instant::now();
                // Compute; count the ticks that arrived, without a blocking point.
                let mut got = 0;
                while got < 3 {
                    assert!(start.elapsed() < PATIENCE, "no ticks while computing");
                    if t.receiver().try_recv().is_ok() {
                        got += 1;
                    }
                }
                ticks.lock().unwrap().push(got);
            })
        })
        .collect();
    for b in busy {
        b.join().unwrap();
    }
    assert_eq!(ticks.lock().unwrap().len(), gort::runtime::max_procs());
}
