//! The hand-off to runnext (`runtime/worker.rs`, `hand_off`) and the wake-up token
//! (`runtime/park.rs`: an unparker that takes a goroutine out of PARKED leaves no token)
//! under stress.
//!
//! Ping-pong pairs over unbuffered channels hand over through runnext at every step; around
//! them, everything that makes the hand-off take its other branches: spurious unparks (a
//! token that comes before the worker commits the park: run it again), goroutines spawned in
//! the loop (a first run: back to the scheduler's phase for a stack), a pair member locked
//! to its thread (declined), `blocking` sections (the P in BLOCKING or handed off), CPU hogs
//! that make sysmon take processors while pairs run, timers firing on the same processors,
//! and a select fed by two producers. (A retake landing *inside* a hand-off's few hundred
//! instructions is rare here: a review reached both of its branches only by widening the
//! window with a spin in an instrumented copy, where this file passed too.) Every value is checked: each pair's
//! values arrive in order, exactly once, and every goroutine finishes (a lost wake-up hangs
//! the test, which the watchdog turns into a failure).
//!
//! `GORT_STRESS=k` runs k times more round trips.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gort::chan;
use gort::thread::Thread;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// One ping-pong pair; `flavour` picks what the echo side does besides echoing.
/// The driver makes at least `n` round trips, and goes on until `hogs` reaches 3 (so that
/// the hogs' processor hand-offs happen while the pairs run); returns the echo's count and
/// its own.
fn pair(
    flavour: usize,
    n: u64,
    handles: Arc<Mutex<Vec<Thread>>>,
    hogs: Arc<AtomicU64>,
) -> gort::JoinHandle<(u64, u64)> {
    let (ping_tx, ping_rx) = chan::<u64>(0);
    let (pong_tx, pong_rx) = chan::<u64>(0);
    let h = handles.clone();
    let echo = gort::spawn(move || {
        h.lock().unwrap().push(gort::thread::current());
        if flavour == 1 {
            gort::lock_os_thread();
        }
        let mut expect = 0;
        for v in ping_rx.iter() {
            assert_eq!(v, expect, "pair {flavour}: out of order or lost");
            expect += 1;
            if flavour == 2 && v % 97 == 0 {
                gort::blocking(|| std::hint::black_box(v));
            }
            pong_tx.send(v.wrapping_mul(3)).unwrap();
        }
        expect
    });
    gort::spawn(move || {
        handles.lock().unwrap().push(gort::thread::current());
        let mut i = 0;
        while i < n || hogs.load(Ordering::Relaxed) < 3 {
            ping_tx.send(i).unwrap();
            if flavour == 3 && i % 500 == 0 {
                // A goroutine that has never run goes into runnext, then this one parks.
                let h = gort::spawn(move || i + 1);
                assert_eq!(pong_rx.recv().unwrap(), i.wrapping_mul(3));
                assert_eq!(h.join().unwrap(), i + 1);
            } else {
                assert_eq!(pong_rx.recv().unwrap(), i.wrapping_mul(3));
            }
            i += 1;
        }
        drop(ping_tx);
        (echo.join().unwrap(), i)
    })
}

#[test]
fn ping_pong_pairs_hand_off_in_order_exactly_once_under_disturbance() {
    let _w = common::watchdog(240, "ping_pong_pairs_hand_off");
    let n = common::stress(5_000) as u64;
    let handles = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let hogs = Arc::new(AtomicU64::new(0));
    let pairs: Vec<_> = (0..8)
        .map(|k| pair(k % 4, n, handles.clone(), hogs.clone()))
        .collect();

    // Spurious unparks of the pair members, at random moments of their hand-offs.
    let (s, hs) = (stop.clone(), handles.clone());
    let unparker = gort::spawn(move || {
        let mut unparks = 0u64;
        while !s.load(Ordering::Acquire) {
            for t in hs.lock().unwrap().iter() {
                t.unpark();
                unparks += 1;
            }
            gort::yield_now();
        }
        unparks
    });
    // Timers firing on the processors the pairs run on.
    let s = stop.clone();
    let timers = gort::spawn(move || {
        let mut fired = 0u64;
        while !s.load(Ordering::Acquire) {
            gort::time::after(Duration::from_micros(50 + fired % 200))
                .recv()
                .unwrap();
            fired += 1;
        }
        fired
    });
    // CPU hogs: sysmon takes the processor of a goroutine that runs too long, while the
    // goroutines queued on it hand over to each other.
    let (s, h) = (stop.clone(), hogs.clone());
    let hog = gort::spawn(move || {
        while !s.load(Ordering::Acquire) {
            let until = Instant::now() + Duration::from_millis(15);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            h.fetch_add(1, Ordering::Relaxed);
            gort::time::sleep(Duration::from_millis(5));
        }
    });

    for p in pairs {
        let (echoed, sent) = p.join().unwrap();
        assert!(sent >= n);
        assert_eq!(echoed, sent);
    }
    stop.store(true, Ordering::Release);
    assert!(unparker.join().unwrap() > 0);
    timers.join().unwrap();
    hog.join().unwrap();
}

/// A blocking 2-case `select!` fed by one producer per channel (issue 9's shape), with
/// the producers' values checked per channel: in order, exactly once; both cases chosen.
#[test]
fn select_fed_by_two_producers_hands_off_in_order_exactly_once() {
    let _w = common::watchdog(240, "select_fed_by_two_producers");
    let n = common::stress(20_000) as u64;
    let (a_tx, a_rx) = chan::<u64>(0);
    let (b_tx, b_rx) = chan::<u64>(0);
    let producers: Vec<_> = [a_tx, b_tx]
        .into_iter()
        .map(|tx| {
            gort::spawn(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
                tx // kept open: a closed channel would be a ready case
            })
        })
        .collect();
    let consumer = gort::spawn(move || {
        let (mut next_a, mut next_b) = (0u64, 0u64);
        let mut chosen = 0u8;
        while next_a < n || next_b < n {
            gort::select! {
                recv(a_rx) -> v => {
                    assert_eq!(v.unwrap(), next_a);
                    next_a += 1;
                    chosen |= 1;
                },
                recv(b_rx) -> v => {
                    assert_eq!(v.unwrap(), next_b);
                    next_b += 1;
                    chosen |= 2;
                },
            }
        }
        chosen
    });
    assert_eq!(consumer.join().unwrap(), 3);
    for p in producers {
        drop(p.join().unwrap());
    }
}

/// Goroutines that park and are woken over and over by whoever comes (a plain thread, a
/// goroutine, a timer), with wake-ups racing the worker's commit of the park: no wake-up is
/// lost (each round's condition is seen), none is invented (the counter is exact).
#[test]
fn tokens_racing_the_commit_of_a_park_are_never_lost() {
    let _w = common::watchdog(240, "tokens_racing_the_commit");
    let rounds = common::stress(2_000) as u64;
    let turn = Arc::new(AtomicU64::new(0));
    let (t, done) = (turn.clone(), Arc::new(AtomicBool::new(false)));
    let turn_end = turn.clone();
    let done_end = done.clone();
    let waiter = gort::spawn(move || {
        for i in 0..rounds {
            while t.load(Ordering::Acquire) != 2 * i + 1 {
                gort::thread::park();
            }
            t.store(2 * i + 2, Ordering::Release);
        }
    });
    let me = waiter.thread().clone();
    // Wakers take turns: a plain thread and a goroutine; each also unparks spuriously.
    let waker = move |w: u64, in_goroutine: bool| {
        let (turn, me, done) = (turn.clone(), me.clone(), done.clone());
        move || {
            let mut i = w;
            while i < rounds && !done.load(Ordering::Acquire) {
                if turn.load(Ordering::Acquire) == 2 * i {
                    turn.store(2 * i + 1, Ordering::Release);
                    me.unpark();
                    i += 2;
                } else {
                    me.unpark(); // spurious
                    if in_goroutine {
                        gort::yield_now();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    };
    let thread_waker = std::thread::spawn(waker(0, false));
    let goroutine_waker = gort::spawn(waker(1, true));
    waiter.join().unwrap();
    done_end.store(true, Ordering::Release);
    thread_waker.join().unwrap();
    goroutine_waker.join().unwrap();
    assert_eq!(turn_end.load(Ordering::Acquire), 2 * rounds);
}

/// Regression: a goroutine in the local run queue ran only once the goroutines handing over
/// to each other through runnext stopped (with one processor: never, while a ping-pong went
/// on). The scheduler's fairness round (every 61st) now takes the local queue before
/// runnext. Here a ping-pong goes on until a goroutine spawned from it — queued behind the
/// partner it wakes next — has run.
#[test]
fn a_ping_pong_does_not_starve_the_local_run_queue() {
    let _w = common::watchdog(120, "a_ping_pong_does_not_starve_the_local_run_queue");
    let ran = Arc::new(AtomicBool::new(false));
    let (ping_tx, ping_rx) = chan::<u64>(0);
    let (pong_tx, pong_rx) = chan::<u64>(0);
    let echo = gort::spawn(move || {
        for v in ping_rx.iter() {
            pong_tx.send(v).unwrap();
        }
    });
    let r = ran.clone();
    let driver = gort::spawn(move || {
        let mut i = 0u64;
        let mut queued = None;
        while !r.load(Ordering::Acquire) {
            if i == 100 {
                // Into runnext; the ping below wakes the partner into runnext and moves
                // this one to the local queue.
                let r = r.clone();
                queued = Some(gort::spawn(move || r.store(true, Ordering::Release)));
            }
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i);
            i += 1;
        }
        drop(ping_tx);
        queued.expect("spawned").join().unwrap();
        i
    });
    assert!(driver.join().unwrap() > 100);
    echo.join().unwrap();
}
