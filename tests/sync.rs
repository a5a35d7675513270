//! gort::sync: Mutex, RwLock, Condvar, WaitGroup, Once/OnceLock/once_value, Semaphore,
//! Barrier, ErrGroup. The `go_*` tests mirror Go's own `sync` tests (named after them);
//! every behaviour runs on goroutines, several also on plain threads.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::sync::{
    once_func, once_value, Barrier, Condvar, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup,
};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

/// Joins `h`, failing the test if it takes longer than `secs` (a liveness check, not timing).
fn join_within<T>(h: gort::JoinHandle<T>, secs: u64, what: &str) -> T {
    match h.join_deadline(Instant::now() + Duration::from_secs(secs)) {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("{what}: not done within {secs} s"),
    }
}

// ---------------------------------------------------------------------------------------
// WaitGroup

/// Go: TestWaitGroup — wg2 holds n goroutines until the test releases them one by one; none
/// may leave early, and all must leave once the counter reaches zero. Reused 8 times.
#[gort::test]
fn go_wait_group() {
    let wg1 = WaitGroup::new();
    let wg2 = WaitGroup::new();
    for _ in 0..8 {
        let n = 16;
        wg1.add(n);
        wg2.add(n);
        let exited = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (wg1, wg2, exited) = (wg1.clone(), wg2.clone(), exited.clone());
                gort::spawn(move || {
                    wg1.done();
                    wg2.wait();
                    exited.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        wg1.wait();
        for _ in 0..n {
            assert_eq!(
                exited.load(Ordering::SeqCst),
                0,
                "WaitGroup released group too soon"
            );
            wg2.done();
        }
        for h in hs {
            join_within(h, 30, "wait group waiter");
        }
        assert_eq!(exited.load(Ordering::SeqCst), n);
    }
}

/// Go: TestWaitGroupMisuse.
#[test]
#[should_panic(expected = "sync: negative WaitGroup counter")]
fn go_wait_group_misuse() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.done();
}

#[gort::test]
fn wait_group_go_and_plain_thread_waiter() {
    let wg = WaitGroup::new();
    let sum = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let sum = sum.clone();
        wg.go(move || {
            gort::yield_now();
            sum.fetch_add(i, Ordering::SeqCst);
        });
    }
    // A plain OS thread waits on the same group (it parks the thread).
    let wg2 = wg.clone();
    let t = std::thread::spawn(move || wg2.wait());
    wg.wait();
    t.join().unwrap();
    assert_eq!(sum.load(Ordering::SeqCst), 4950);
    assert_eq!(wg.count(), 0);
}

#[gort::test]
fn wait_group_go_dones_on_panic() {
    let wg = WaitGroup::new();
    let h = wg.go(|| panic!("task failed"));
    wg.wait();
    assert!(h.join().is_err());
}

#[test]
fn wait_group_zero_does_not_block() {
    WaitGroup::new().wait();
}

// ---------------------------------------------------------------------------------------
// Mutex

fn hammer_mutex(m: Arc<Mutex<u64>>, loops: usize) {
    for i in 0..loops {
        if i % 3 == 0 {
            if let Some(mut g) = m.try_lock() {
                *g += 1;
                continue;
            }
        }
        *m.lock() += 1;
    }
}

/// Go: TestMutex — many goroutines hammer one mutex; no increment is lost.
#[gort::test]
fn go_mutex() {
    let m = Arc::new(Mutex::new(0u64));
    assert!(m.try_lock().is_some(), "try_lock of an unlocked mutex");
    {
        let _g = m.lock();
        assert!(m.try_lock().is_none(), "try_lock of a locked mutex");
    }
    let n = 10;
    let loops = common::stress(1000);
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let m = m.clone();
            gort::spawn(move || hammer_mutex(m, loops))
        })
        .collect();
    for h in hs {
        join_within(h, 60, "mutex hammer");
    }
    assert_eq!(*m.lock(), (n * loops) as u64);
}

/// The same mutex used by goroutines and plain threads at once.
#[gort::test]
fn mutex_goroutines_and_threads() {
    let m = Arc::new(Mutex::new(0u64));
    let loops = common::stress(2000);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || hammer_mutex(m, loops))
        })
        .collect();
    let gs: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            gort::spawn(move || hammer_mutex(m, loops))
        })
        .collect();
    for h in gs {
        join_within(h, 60, "goroutine");
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), 6 * loops as u64);
}

/// Go: TestMutexFairness — a goroutine that keeps re-locking cannot starve another one:
/// after 1 ms of waiting the waiter gets the lock next (starvation mode).
#[gort::test]
fn go_mutex_fairness() {
    let mu = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let hog = {
        let (mu, stop) = (mu.clone(), stop.clone());
        gort::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let g = mu.lock();
                gort::time::sleep(Duration::from_micros(100));
                drop(g);
            }
        })
    };
    let waiter = {
        let mu = mu.clone();
        gort::spawn(move || {
            for _ in 0..10 {
                gort::time::sleep(Duration::from_micros(100));
                drop(mu.lock());
            }
        })
    };
    join_within(waiter, 10, "can't acquire Mutex in 10 seconds");
    stop.store(true, Ordering::Relaxed);
    join_within(hog, 10, "hog");
}

/// The guard is not tied to the OS thread: held across blocking points, moved to another
/// goroutine and dropped there.
#[gort::test]
fn mutex_guard_across_blocking_and_goroutines() {
    let m = Arc::new(Mutex::new(vec![1]));
    let mut g = m.lock();
    gort::time::sleep(Duration::from_millis(1));
    gort::yield_now();
    g.push(2);
    let m2 = m.clone();
    let contender = gort::spawn(move || m2.lock().push(4));
    // Move the guard to another goroutine, which unlocks it.
    gort::thread::scope(|s| {
        s.spawn(move || {
            let mut g = g;
            g.push(3);
        });
    });
    join_within(contender, 10, "contender");
    assert_eq!(*m.lock(), vec![1, 2, 3, 4]);
}

#[test]
fn mutex_no_poisoning_and_misc() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = gort::spawn(move || {
        let _g = m2.lock();
        panic!("panic while holding the lock");
    })
    .join();
    assert!(r.is_err());
    *m.lock() += 1; // not poisoned
    let mut m = Arc::try_unwrap(m).unwrap();
    *m.get_mut() += 1;
    assert_eq!(format!("{m:?}"), "Mutex { data: 3, .. }");
    assert_eq!(m.into_inner(), 3);
    static GLOBAL: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    GLOBAL.lock().push(1);
    assert_eq!(GLOBAL.lock().len(), 1);
}

// ---------------------------------------------------------------------------------------
// RwLock

/// Go: TestParallelReaders — n readers hold the read lock at the same time (each waits at a
/// barrier while holding it, which only works if they are all inside together).
#[gort::test]
fn go_parallel_readers() {
    let n = 8;
    let lock = Arc::new(RwLock::new(0));
    let barrier = Arc::new(Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (lock, barrier) = (lock.clone(), barrier.clone());
            gort::spawn(move || {
                let g = lock.read();
                barrier.wait();
                drop(g);
            })
        })
        .collect();
    for h in hs {
        join_within(h, 30, "reader");
    }
    assert!(lock.try_write().is_some());
}

/// Go: TestRWMutex (hammerRWMutex) — readers never see a writer inside, writers are
/// exclusive.
#[gort::test]
fn go_rwmutex_hammer() {
    let lock = Arc::new(RwLock::new(()));
    let activity = Arc::new(AtomicUsize::new(0)); // readers + 10000 * writers
    let loops = common::stress(300);
    let mut hs = Vec::new();
    for i in 0..10 {
        let (lock, activity) = (lock.clone(), activity.clone());
        hs.push(gort::spawn(move || {
            for _ in 0..loops {
                if i % 3 == 0 {
                    let _g = lock.write();
                    let n = activity.fetch_add(10000, Ordering::SeqCst);
                    assert_eq!(n, 0, "writer with activity {n}");
                    gort::yield_now();
                    activity.fetch_sub(10000, Ordering::SeqCst);
                } else {
                    let _g = lock.read();
                    let n = activity.fetch_add(1, Ordering::SeqCst);
                    assert!(n < 10000, "reader with a writer inside: {n}");
                    gort::yield_now();
                    activity.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for h in hs {
        join_within(h, 60, "rwlock hammer");
    }
}

/// Writers are not starved: with readers overlapping all the time (so the lock is never
/// free of readers), a writer still gets in, and readers arriving after it wait for it.
#[gort::test]
fn rwlock_writer_not_starved() {
    let lock = Arc::new(RwLock::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (lock, stop) = (lock.clone(), stop.clone());
            gort::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let g = lock.read();
                    gort::time::sleep(Duration::from_micros(200));
                    reads += *g;
                    drop(g);
                }
                reads
            })
        })
        .collect();
    gort::time::sleep(Duration::from_millis(2));
    let writer = {
        let lock = lock.clone();
        gort::spawn(move || {
            for _ in 0..5 {
                *lock.write() += 1;
            }
        })
    };
    join_within(writer, 10, "writer starved by readers");
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        join_within(r, 10, "reader");
    }
    assert_eq!(*lock.read(), 5);
}

#[test]
fn rwlock_try_and_threads() {
    let lock = RwLock::new(1);
    {
        let r = lock.read();
        assert!(lock.try_read().is_some());
        assert!(lock.try_write().is_none());
        drop(r);
    }
    {
        let _w = lock.write();
        assert!(lock.try_read().is_none());
        assert!(lock.try_write().is_none());
    }
    let lock = Arc::new(lock);
    let ts: Vec<_> = (0..4)
        .map(|_| {
            let lock = lock.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    *lock.write() += 1;
                    let _ = *lock.read();
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(*lock.read(), 2001);
}

// ---------------------------------------------------------------------------------------
// Condvar

/// Go: TestCondSignal — each notify_one wakes exactly one waiter.
#[gort::test]
fn go_cond_signal() {
    let n = 2;
    let state = Arc::new((Mutex::new(0usize), Condvar::new())); // number of waiters inside
    let running = Arc::new(AtomicUsize::new(0));
    let awake = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (state, running, awake) = (state.clone(), running.clone(), awake.clone());
            gort::spawn(move || {
                let (m, c) = &*state;
                let mut g = m.lock();
                *g += 1;
                running.fetch_add(1, Ordering::SeqCst);
                g = c.wait(g);
                awake.fetch_add(1, Ordering::SeqCst);
                drop(g);
            })
        })
        .collect();
    // Wait until both wait (they unlock the mutex inside wait).
    loop {
        let g = state.0.lock();
        if *g == n {
            break;
        }
        drop(g);
        gort::time::sleep(Duration::from_millis(1));
    }
    for i in 0..n {
        // Locking the mutex proves every waiter is inside `wait` (or woken).
        drop(state.0.lock());
        state.1.notify_one();
        let deadline = Instant::now() + Duration::from_secs(10);
        while awake.load(Ordering::SeqCst) < i + 1 {
            assert!(Instant::now() < deadline, "notify_one woke nobody");
            gort::yield_now();
        }
        assert_eq!(awake.load(Ordering::SeqCst), i + 1, "too many awake");
    }
    for h in hs {
        join_within(h, 10, "cond waiter");
    }
}

/// Go: TestCondBroadcast — notify_all wakes every waiter, over several rounds.
#[gort::test]
fn go_cond_broadcast() {
    let n = 20;
    let rounds = 10;
    let state = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new())); // (round, waiting)
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let state = state.clone();
            gort::spawn(move || {
                let (m, c) = &*state;
                for r in 0..rounds {
                    let mut g = m.lock();
                    g.1 += 1;
                    c.notify_all(); // wake the broadcaster waiting for everybody
                    g = c.wait_while(g, |s| s.0 == r);
                    drop(g);
                }
            })
        })
        .collect();
    let (m, c) = &*state;
    for _ in 0..rounds {
        let mut g = c.wait_while(m.lock(), |s| s.1 < n);
        g.1 = 0;
        g.0 += 1;
        c.notify_all();
    }
    for h in hs {
        join_within(h, 30, "broadcast waiter");
    }
}

#[gort::test]
fn cond_wait_timeout() {
    let m = Mutex::new(0);
    let c = Condvar::new();
    let t = Instant::now();
    let (g, r) = c.wait_timeout(m.lock(), Duration::from_millis(20));
    assert!(r.timed_out());
    assert!(t.elapsed() >= Duration::from_millis(20));
    drop(g);
    // A notification arriving in time is not a timeout.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    let h = gort::spawn(move || {
        gort::time::sleep(Duration::from_millis(5));
        *p2.0.lock() = true;
        p2.1.notify_all();
    });
    let (g, r) = pair
        .1
        .wait_timeout_while(pair.0.lock(), Duration::from_secs(30), |ready| !*ready);
    assert!(*g && !r.timed_out());
    drop(g);
    h.join().unwrap();
}

#[test]
fn cond_plain_threads() {
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let ts: Vec<_> = (0..3)
        .map(|_| {
            let pair = pair.clone();
            std::thread::spawn(move || {
                let g = pair.1.wait_while(pair.0.lock(), |v| *v == 0);
                *g
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    *pair.0.lock() = 7;
    pair.1.notify_all();
    for t in ts {
        assert_eq!(t.join().unwrap(), 7);
    }
}

// ---------------------------------------------------------------------------------------
// Once, OnceLock, once_value

/// Go: TestOnce — ten goroutines, one call.
#[gort::test]
fn go_once() {
    let once = Arc::new(Once::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let (once, calls) = (once.clone(), calls.clone());
            gort::spawn(move || {
                once.call_once(|| {
                    gort::time::sleep(Duration::from_millis(2)); // others park meanwhile
                    calls.fetch_add(1, Ordering::SeqCst);
                });
                // Every caller returns only after the call has finished.
                assert_eq!(calls.load(Ordering::SeqCst), 1, "once failed inside run");
            })
        })
        .collect();
    for h in hs {
        join_within(h, 10, "once caller");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(once.is_completed());
}

/// Go: TestOncePanic — a panicking call still counts as done.
#[test]
fn go_once_panic() {
    let once = Once::new();
    let r = std::panic::catch_unwind(|| once.call_once(|| panic!("failed")));
    assert!(r.is_err(), "once.call_once did not panic");
    once.call_once(|| panic!("once.call_once called twice"));
    assert!(once.is_completed());
}

#[gort::test]
fn once_lock_concurrent_init() {
    let cell = Arc::new(OnceLock::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let (cell, inits) = (cell.clone(), inits.clone());
            gort::spawn(move || {
                *cell.get_or_init(|| {
                    gort::time::sleep(Duration::from_millis(1));
                    inits.fetch_add(1, Ordering::SeqCst);
                    42
                })
            })
        })
        .collect();
    for h in hs {
        assert_eq!(join_within(h, 10, "once_lock"), 42);
    }
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert_eq!(cell.get(), Some(&42));
    assert_eq!(cell.set(1), Err(1));
}

#[test]
fn once_lock_panic_leaves_it_empty() {
    let cell: OnceLock<String> = OnceLock::new();
    let r = std::panic::catch_unwind(|| {
        cell.get_or_init(|| panic!("init failed"));
    });
    assert!(r.is_err());
    assert!(cell.get().is_none());
    assert_eq!(cell.get_or_init(|| "second".into()), "second");
    assert_eq!(cell.into_inner().as_deref(), Some("second"));
}

#[gort::test]
fn once_value_and_func() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let v = Arc::new(once_value(move || {
        c2.fetch_add(1, Ordering::SeqCst);
        String::from("parsed")
    }));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let v = v.clone();
            gort::spawn(move || v())
        })
        .collect();
    for h in hs {
        assert_eq!(join_within(h, 10, "once_value"), "parsed");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let c3 = calls.clone();
    let f = once_func(move || {
        c3.fetch_add(10, Ordering::SeqCst);
    });
    f();
    f();
    assert_eq!(calls.load(Ordering::SeqCst), 11);
}

/// Go: TestOnceValuePanic — every call re-panics with the same value.
#[test]
fn once_value_panic_repeats() {
    let f = once_value(|| -> u32 { panic!("bad config") });
    for _ in 0..3 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&f));
        let p = r.expect_err("once_value must panic");
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap();
        assert_eq!(msg, "bad config");
    }
}

// ---------------------------------------------------------------------------------------
// Semaphore

/// A semaphore never lets more than its permits in: track the maximum in flight.
#[gort::test]
fn semaphore_never_exceeds_permits() {
    let permits = 3;
    let sem = Arc::new(Semaphore::new(permits));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..30)
        .map(|i| {
            let (sem, in_flight, max) = (sem.clone(), in_flight.clone(), max.clone());
            gort::spawn(move || {
                for _ in 0..common::stress(10) {
                    let w = 1 + i % 2; // weighted: 1 or 2 permits
                    let _p = sem.acquire_many(w);
                    let now = in_flight.fetch_add(w, Ordering::SeqCst) + w;
                    max.fetch_max(now, Ordering::SeqCst);
                    gort::yield_now();
                    in_flight.fetch_sub(w, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for h in hs {
        join_within(h, 60, "semaphore user");
    }
    let max = max.load(Ordering::SeqCst);
    assert!(
        max <= permits,
        "{max} permits in flight, only {permits} exist"
    );
    assert!(max >= 2, "the semaphore never let two in ({max})");
    assert_eq!(sem.available_permits(), permits);
}

#[gort::test]
fn semaphore_try_and_timeout() {
    let sem = Arc::new(Semaphore::new(2));
    let a = sem.acquire_many(2);
    assert!(sem.try_acquire().is_none());
    let t = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(10));
    // A big request at the front is served before smaller ones behind it (FIFO).
    let order = Arc::new(Mutex::new(Vec::new()));
    let big = {
        let (sem, order) = (sem.clone(), order.clone());
        gort::spawn(move || {
            let _p = sem.acquire_many(2);
            order.lock().push("big");
        })
    };
    while sem.waiters() == 0 {
        gort::yield_now(); // until the big waiter is queued
    }
    let small = {
        let (sem, order) = (sem.clone(), order.clone());
        gort::spawn(move || {
            let _p = sem.acquire();
            order.lock().push("small");
        })
    };
    while sem.waiters() < 2 {
        gort::yield_now();
    }
    drop(a);
    join_within(big, 10, "big");
    join_within(small, 10, "small");
    assert_eq!(*order.lock(), vec!["big", "small"]);
    // Owned permits move into goroutines.
    let p = sem.acquire_owned();
    gort::spawn(move || drop(p)).join().unwrap();
    assert_eq!(sem.available_permits(), 2);
}

#[test]
#[should_panic(expected = "at least one permit")]
fn semaphore_zero_panics() {
    let _ = Semaphore::new(0);
}

#[test]
#[should_panic(expected = "exceeds the semaphore's size")]
fn semaphore_oversized_acquire_panics() {
    let _ = Semaphore::new(2).acquire_many(3);
}

// ---------------------------------------------------------------------------------------
// Barrier

/// Generations: nobody leaves round r before all n have arrived in round r, one leader per
/// round, and the barrier is reused across rounds.
#[gort::test]
fn barrier_generations() {
    let n = 6;
    let rounds = common::stress(20);
    let b = Arc::new(Barrier::new(n));
    let arrived = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (b, arrived, leaders) = (b.clone(), arrived.clone(), leaders.clone());
            gort::spawn(move || {
                for r in 0..rounds {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    if b.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                    let a = arrived.load(Ordering::SeqCst);
                    assert!(a >= (r + 1) * n, "left round {r} with {a} arrivals");
                }
            })
        })
        .collect();
    for h in hs {
        join_within(h, 30, "barrier party");
    }
    assert_eq!(leaders.load(Ordering::SeqCst), rounds);
}

#[test]
fn barrier_plain_threads_and_one_party() {
    assert!(Barrier::new(1).wait().is_leader());
    let b = Arc::new(Barrier::new(3));
    let ts: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || b.wait().is_leader())
        })
        .collect();
    let leaders = ts.into_iter().filter(|_| true).map(|t| t.join().unwrap());
    assert_eq!(leaders.filter(|&l| l).count(), 1);
}

#[test]
#[should_panic(expected = "at least one party")]
fn barrier_zero_panics() {
    let _ = Barrier::new(0);
}

// ---------------------------------------------------------------------------------------
// ErrGroup

/// wait returns the first error, and only after every task has finished.
#[gort::test]
fn errgroup_first_error_after_all_finish() {
    let g = gort::sync::ErrGroup::new();
    let finished = Arc::new(AtomicUsize::new(0));
    for i in 0..10u64 {
        let finished = finished.clone();
        g.go(move || {
            let r = match i {
                2 => Err("first"),
                7 => {
                    gort::time::sleep(Duration::from_millis(20));
                    Err("second")
                }
                _ => {
                    gort::time::sleep(Duration::from_millis(i));
                    Ok(())
                }
            };
            finished.fetch_add(1, Ordering::SeqCst);
            r
        });
    }
    assert_eq!(g.wait(), Err("first"));
    assert_eq!(finished.load(Ordering::SeqCst), 10);
    // Reusable: the error was taken.
    g.go(|| Ok(()));
    assert_eq!(g.wait(), Ok(()));
}

/// with_context: the first error cancels the group's context; the other tasks see it and stop.
#[gort::test]
fn errgroup_with_context_cancels_on_first_error() {
    use gort::context::{Context, ContextError};
    let (parent, _pc) = Context::background().with_cancel();
    let (g, ctx) = gort::sync::ErrGroup::<String>::with_context(&parent);
    for i in 0..5 {
        let ctx = ctx.clone();
        g.go(move || {
            if i == 0 {
                gort::time::sleep(Duration::from_millis(2));
                return Err("boom".to_string());
            }
            // Block until cancelled (would hang without the cancellation).
            let _ = ctx.done().recv();
            Err(format!("task {i}: {}", ctx.err().unwrap()))
        });
    }
    assert_eq!(g.wait(), Err("boom".to_string()));
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    assert_eq!(parent.err(), None, "cancellation does not flow upward");
    // Without errors the context is cancelled when wait returns.
    let (g, ctx) = gort::sync::ErrGroup::<String>::with_context(&parent);
    g.go(|| Ok(()));
    assert!(g.wait().is_ok());
    assert!(ctx.err().is_some());
}

/// set_limit bounds the tasks in flight; try_go refuses when full.
#[gort::test]
fn errgroup_limit() {
    let g = gort::sync::ErrGroup::<()>::new();
    g.set_limit(2);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let (in_flight, max) = (in_flight.clone(), max.clone());
        g.go(move || {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            gort::time::sleep(Duration::from_micros(200));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    assert!(g.wait().is_ok());
    assert!(max.load(Ordering::SeqCst) <= 2);
    // try_go: two slots, both taken by blocked tasks, a third is refused.
    let gate = Arc::new(Barrier::new(3));
    for _ in 0..2 {
        let gate = gate.clone();
        assert!(g.try_go(move || {
            gate.wait();
            Ok(())
        }));
    }
    assert!(!g.try_go(|| Ok(())));
    gate.wait();
    assert!(g.wait().is_ok());
}

/// A panicking task does not hang wait: wait re-raises it after the others finish.
#[gort::test]
fn errgroup_panic_reraised_by_wait() {
    let g = gort::sync::ErrGroup::<()>::new();
    g.go(|| panic!("task exploded"));
    g.go(|| Ok(()));
    let g2 = g.clone();
    let r = gort::spawn(move || g2.wait()).join();
    let p = r.expect_err("wait must re-raise the panic");
    assert_eq!(p.downcast_ref::<&str>(), Some(&"task exploded"));
}

#[test]
#[should_panic(expected = "errgroup: set_limit(0)")]
fn errgroup_zero_limit_panics() {
    gort::sync::ErrGroup::<()>::new().set_limit(0);
}

/// Blocked lockers park their goroutines, not the worker threads: with a thousand goroutines
/// waiting on a held Mutex (and on a WaitGroup and a Condvar), the holder still runs on the
/// same two (or one) workers and releases them.
#[gort::test]
fn waiters_park_goroutines_not_threads() {
    let m = Arc::new(Mutex::new(0usize));
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let gate = WaitGroup::new();
    gate.add(1);
    let g = m.lock();
    let n: usize = 1000;
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (m, pair, gate) = (m.clone(), pair.clone(), gate.clone());
            gort::spawn(move || match i % 3 {
                0 => *m.lock() += 1,
                1 => gate.wait(),
                _ => {
                    let (l, c) = &*pair;
                    drop(c.wait_while(l.lock(), |go| !*go));
                }
            })
        })
        .collect();
    gort::time::sleep(Duration::from_millis(10));
    gort::yield_now();
    drop(g);
    gate.done();
    *pair.0.lock() = true;
    pair.1.notify_all();
    for h in hs {
        join_within(h, 30, "waiter");
    }
    assert_eq!(*m.lock(), n.div_ceil(3));
}

/// Go: TestCondSignalStealing — a waiter that was already waiting when notify_all was
/// called must be woken, even if a new waiter arrives concurrently.
#[gort::test]
fn go_cond_signal_stealing() {
    for _ in 0..common::stress(200) {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, rx) = gort::chan::<()>(0);
        let first = {
            let (state, tx) = (state.clone(), tx.clone());
            gort::spawn(move || {
                let (m, c) = &*state;
                let g = m.lock();
                tx.send(()).unwrap();
                let g = c.wait(g);
                drop(g);
                tx.send(()).unwrap();
            })
        };
        rx.recv().unwrap();
        drop(state.0.lock()); // the first waiter is inside wait()
        let s2 = state.clone();
        let b = gort::spawn(move || s2.1.notify_all());
        let s3 = state.clone();
        let second = gort::spawn(move || {
            let (m, c) = &*s3;
            drop(c.wait_while(m.lock(), |done| !*done));
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {}
            Err(e) => panic!("first waiter didn't get broadcast: {e:?}"),
        }
        *state.0.lock() = true;
        state.1.notify_all();
        for h in [first, b, second] {
            join_within(h, 10, "cond stealing");
        }
    }
}
