//! `gort::std::sync`: std's sync API on goroutines, poisoning included. Every test runs twice
//! (see `common::both!`): on the test's plain thread and inside a goroutine.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe, RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::assert_panics;
use gort::std::sync::{
    Arc, Barrier, Condvar, LazyLock, Mutex, MutexGuard, Once, OnceLock, OnceState, RwLock,
    RwLockReadGuard, RwLockWriteGuard, TryLockError, WaitTimeoutResult,
};
use gort::std::thread;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// A mutex poisoned by a panic in another goroutine.
fn poisoned<T: Send + 'static>(v: T) -> Arc<Mutex<T>> {
    let m = Arc::new(Mutex::new(v));
    let m2 = Arc::clone(&m);
    let r = thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("poison it");
    })
    .join();
    assert!(r.is_err());
    m
}

// Compile-time: std's auto traits and unwind-safety markers are there.
#[allow(dead_code)]
fn static_shapes() {
    fn send_sync<T: Send + Sync>() {}
    fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
    send_sync::<Mutex<Vec<u8>>>();
    send_sync::<RwLock<Vec<u8>>>();
    send_sync::<Condvar>();
    send_sync::<Barrier>();
    send_sync::<Once>();
    send_sync::<OnceLock<String>>();
    send_sync::<LazyLock<String>>();
    send_sync::<MutexGuard<'static, u8>>();
    send_sync::<RwLockReadGuard<'static, u8>>();
    send_sync::<RwLockWriteGuard<'static, u8>>();
    unwind_safe::<Mutex<Vec<u8>>>();
    unwind_safe::<RwLock<Vec<u8>>>();
    unwind_safe::<Condvar>();
    unwind_safe::<Barrier>();
    unwind_safe::<Once>();
    unwind_safe::<OnceLock<u8>>();
    unwind_safe::<LazyLock<u8>>();
    // The types that never block are std's own.
    let _: std::sync::Arc<u8> = gort::std::sync::Arc::new(1);
    let _: std::sync::Weak<u8> = gort::std::sync::Weak::new();
    let _: &std::sync::atomic::AtomicBool = &gort::std::sync::atomic::AtomicBool::new(false);
    let _: std::sync::PoisonError<u8> = gort::std::sync::PoisonError::new(1);
    let _: std::sync::LockResult<u8> = gort::std::sync::LockResult::Ok(1);
    let _: std::sync::TryLockResult<u8> =
        gort::std::sync::TryLockResult::Err(TryLockError::WouldBlock);
    // A read guard is covariant in T, as std's.
    fn shorten<'g, 'a>(g: RwLockReadGuard<'g, &'static str>) -> RwLockReadGuard<'g, &'a str> {
        g
    }
    let _ = shorten;
    // A OnceLock holding a borrow may outlive the borrowed value (dropck), as std's.
    let cell = OnceLock::new();
    {
        let s = String::from("short-lived");
        cell.set(&s).unwrap();
    }
    // The whole of std comes through gort::std, with sync and thread replaced.
    let _: gort::std::collections::HashMap<u8, u8> = std::collections::HashMap::new();
}

static STATIC_MUTEX: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static STATIC_RWLOCK: RwLock<u32> = RwLock::new(0);
static STATIC_CONDVAR: Condvar = Condvar::new();
static STATIC_BARRIER: Barrier = Barrier::new(1);

crate::both! {
    /// Many goroutines increment one counter; each increment is exclusive.
    fn mutex_excludes() {
        let m = Arc::new(Mutex::new(0u64));
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    for _ in 0..common::stress(500) {
                        let mut g = m.lock().unwrap();
                        let v = *g;
                        thread::yield_now();
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 8 * common::stress(500) as u64);
        STATIC_MUTEX.lock().unwrap().push(1);
        assert!(STATIC_MUTEX.lock().unwrap().contains(&1));
    }

    /// try_lock: Ok when free, WouldBlock while another holds it, Poisoned (guard inside)
    /// once poisoned.
    fn mutex_try_lock() {
        let m = Arc::new(Mutex::new(1));
        *m.try_lock().unwrap() += 1;
        let (held_tx, held_rx) = gort::std::sync::mpsc::channel();
        let (go_tx, go_rx) = gort::std::sync::mpsc::channel::<()>();
        let m2 = Arc::clone(&m);
        let h = thread::spawn(move || {
            let _g = m2.lock().unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        go_tx.send(()).unwrap();
        h.join().unwrap();
        assert_eq!(*m.try_lock().unwrap(), 2);
        let p = poisoned(7);
        let r = p.try_lock();
        match r {
            Err(TryLockError::Poisoned(e)) => assert_eq!(**e.get_ref(), 7),
            other => panic!("expected Poisoned, got {}", other.is_ok()),
        };
    }

    /// A panic while the lock is held poisons it: lock, into_inner and get_mut return Err
    /// with the data inside, until clear_poison.
    fn mutex_poisoning() {
        let m = poisoned(vec![1, 2]);
        assert!(m.is_poisoned());
        let err = m.lock().unwrap_err();
        assert_eq!(err.to_string(), "poisoned lock: another task failed inside");
        let mut g = err.into_inner();
        g.push(3);
        drop(g);
        assert!(m.is_poisoned(), "a clean unlock does not clear the poison");
        m.clear_poison();
        assert!(!m.is_poisoned());
        assert_eq!(*m.lock().unwrap(), [1, 2, 3]);

        let m = Arc::try_unwrap(poisoned(5)).unwrap();
        assert_eq!(m.into_inner().unwrap_err().into_inner(), 5);
        let mut m = Arc::try_unwrap(poisoned(6)).unwrap();
        **m.get_mut().as_mut().unwrap_err().get_mut() += 1;
        assert_eq!(*m.get_mut().unwrap_err().into_inner(), 7);

        // A panic caught inside the same goroutine poisons too.
        let m = Mutex::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _g = m.lock().unwrap();
            panic!("inside");
        }));
        assert!(r.is_err());
        assert!(m.is_poisoned());
    }

    /// A lock taken while already unwinding (in a Drop) does not poison, as in std.
    fn mutex_lock_during_unwinding_does_not_poison() {
        struct LocksOnDrop(Arc<Mutex<u32>>);
        impl Drop for LocksOnDrop {
            fn drop(&mut self) {
                assert!(thread::panicking());
                *self.0.lock().unwrap() += 1;
            }
        }
        let m = Arc::new(Mutex::new(0));
        let m2 = Arc::clone(&m);
        let r = thread::spawn(move || {
            let _d = LocksOnDrop(m2);
            panic!("unwind");
        })
        .join();
        assert!(r.is_err());
        assert!(!m.is_poisoned());
        assert_eq!(*m.lock().unwrap(), 1);
    }

    /// Unsized data, Default, From, Debug and Display as std's.
    fn mutex_shapes() {
        let m: &Mutex<[i32]> = &Mutex::new([1, 2, 3]);
        m.lock().unwrap()[0] = 4;
        assert_eq!(&*m.lock().unwrap(), &[4, 2, 3][..]);
        let m: Mutex<Vec<u8>> = Mutex::default();
        assert!(m.lock().unwrap().is_empty());
        let m = Mutex::from(5);
        assert_eq!(format!("{m:?}"), "Mutex { data: 5, poisoned: false, .. }");
        let g = m.lock().unwrap();
        assert_eq!(format!("{m:?}"), "Mutex { data: <locked>, poisoned: false, .. }");
        assert_eq!(format!("{g} {g:?}"), "5 5");
        drop(g);
        let p = poisoned(1);
        assert_eq!(format!("{p:?}"), "Mutex { data: 1, poisoned: true, .. }");
    }

    /// Readers share, a writer excludes everyone.
    fn rwlock_readers_and_writers() {
        let l = Arc::new(RwLock::new(0u64));
        let inside = Arc::new(AtomicUsize::new(0));
        let r1 = l.read().unwrap();
        let r2 = l.read().unwrap();
        assert_eq!(*r1 + *r2, 0);
        assert!(matches!(l.try_write(), Err(TryLockError::WouldBlock)));
        drop((r1, r2));
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let (l, inside) = (Arc::clone(&l), Arc::clone(&inside));
                thread::spawn(move || {
                    for _ in 0..common::stress(200) {
                        if i % 2 == 0 {
                            let mut w = l.write().unwrap();
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                            *w += 1;
                            thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        } else {
                            let _r = l.read().unwrap();
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*l.read().unwrap(), 3 * common::stress(200) as u64);
        let w = l.write().unwrap();
        assert!(matches!(l.try_read(), Err(TryLockError::WouldBlock)));
        drop(w);
        *STATIC_RWLOCK.write().unwrap() += 1;
        assert!(*STATIC_RWLOCK.read().unwrap() >= 1);
    }

    /// Only a writer's panic poisons; readers get the guard in Err afterwards.
    fn rwlock_poisoning() {
        let l = Arc::new(RwLock::new(1));
        let l2 = Arc::clone(&l);
        let _ = thread::spawn(move || {
            let _r = l2.read().unwrap();
            panic!("reader panics");
        })
        .join();
        assert!(!l.is_poisoned());
        let l2 = Arc::clone(&l);
        let _ = thread::spawn(move || {
            let _w = l2.write().unwrap();
            panic!("writer panics");
        })
        .join();
        assert!(l.is_poisoned());
        assert_eq!(*l.read().unwrap_err().into_inner(), 1);
        assert!(matches!(l.try_write(), Err(TryLockError::Poisoned(_))));
        assert!(matches!(l.try_read(), Err(TryLockError::Poisoned(_))));
        assert_eq!(format!("{l:?}"), "RwLock { data: 1, poisoned: true, .. }");
        l.clear_poison();
        *l.write().unwrap() = 2;
        let mut l = Arc::try_unwrap(l).unwrap();
        *l.get_mut().unwrap() += 1;
        assert_eq!(l.into_inner().unwrap(), 3);
    }

    /// downgrade: the writer becomes a reader with no writer in between; readers come in,
    /// a waiting writer waits for the downgraded guard; a panic after it does not poison.
    fn rwlock_downgrade() {
        let l = Arc::new(RwLock::new(0));
        let mut w = l.write().unwrap();
        // A writer queues behind us.
        let l2 = Arc::clone(&l);
        let writer = thread::spawn(move || {
            let mut w = l2.write().unwrap();
            *w = 100;
        });
        thread::sleep(Duration::from_millis(10)); // (usually) queued by now
        *w = 1;
        let r = RwLockWriteGuard::downgrade(w);
        assert_eq!(*r, 1, "no writer came in between");
        // Another read guard can be taken while the downgraded one is held (if no writer is
        // pending yet) or not: either way the data is still ours.
        assert!(matches!(l.try_write(), Err(TryLockError::WouldBlock)));
        assert_eq!(*r, 1);
        drop(r);
        writer.join().unwrap();
        assert_eq!(*l.read().unwrap(), 100);

        let l2 = Arc::clone(&l);
        let _ = thread::spawn(move || {
            let w = l2.write().unwrap();
            let _r = RwLockWriteGuard::downgrade(w);
            panic!("after downgrade");
        })
        .join();
        assert!(!l.is_poisoned(), "a downgraded guard is a read guard: no poison");
    }

    /// wait / notify_one, wait_while, notify_all, and the timed waits' results.
    fn condvar_waits() {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let pair = Arc::clone(&pair);
                thread::spawn(move || {
                    let (m, cv) = &*pair;
                    let g = cv.wait_while(m.lock().unwrap(), |n| *n == 0).unwrap();
                    assert!(*g >= 1);
                })
            })
            .collect();
        let (m, cv) = &*pair;
        thread::sleep(Duration::from_millis(10));
        *m.lock().unwrap() = 1;
        cv.notify_all();
        for h in hs {
            h.join().unwrap();
        }

        // Plain wait, woken by notify_one.
        let p2 = Arc::clone(&pair);
        let h = thread::spawn(move || {
            let (m, cv) = &*p2;
            let mut g = m.lock().unwrap();
            *g = 2;
            cv.notify_one();
            while *g != 3 {
                g = cv.wait(g).unwrap();
            }
        });
        let mut g = m.lock().unwrap();
        while *g != 2 {
            g = cv.wait(g).unwrap();
        }
        *g = 3;
        cv.notify_one();
        drop(g);
        h.join().unwrap();

        // Timeouts.
        let t = Instant::now();
        let (g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(20)).unwrap();
        assert!(r.timed_out(), "nobody notified");
        drop(g);
        let (g, r) = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(20), |n| *n == 3)
            .unwrap();
        assert!(r.timed_out());
        assert!(t.elapsed() >= Duration::from_millis(40));
        assert_eq!(*g, 3);
        let (g, r) = cv
            .wait_timeout_while(g, Duration::from_secs(60), |n| *n != 3)
            .unwrap();
        assert!(!r.timed_out());
        drop(g);
        let r: WaitTimeoutResult = cv.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap().1;
        assert!(r.timed_out());
        let (_g, r) = STATIC_CONDVAR
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(1))
            .unwrap();
        assert!(r.timed_out());
    }

    /// A mutex poisoned while a waiter waited: the waiter gets its guard inside Err.
    fn condvar_wait_reports_poison() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = Arc::clone(&pair);
        let (waiting_tx, waiting_rx) = gort::std::sync::mpsc::channel();
        let h = thread::spawn(move || {
            let (m, cv) = &*p2;
            let mut g = m.lock().unwrap();
            // Still holding the lock: the poisoner cannot lock before we wait.
            waiting_tx.send(()).unwrap();
            loop {
                match cv.wait(g) {
                    Ok(next) => g = next,
                    Err(e) => return *e.into_inner(),
                }
            }
        });
        waiting_rx.recv().unwrap();
        let p3 = Arc::clone(&pair);
        let _ = thread::spawn(move || {
            let (m, cv) = &*p3;
            let mut g = m.lock().unwrap();
            *g = true;
            cv.notify_all();
            panic!("poison while it waits");
        })
        .join();
        assert!(h.join().unwrap(), "the waiter saw the poisoning writer's data");
    }

    /// Barrier: one leader per round, reusable; const fn new; n = 0 acts as 1.
    fn barrier_rounds() {
        const N: usize = 5;
        let b = Arc::new(Barrier::new(N));
        let leaders = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let (b, leaders) = (Arc::clone(&b), Arc::clone(&leaders));
                thread::spawn(move || {
                    for _ in 0..10 {
                        if b.wait().is_leader() {
                            leaders.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(leaders.load(Ordering::SeqCst), 10);
        assert!(STATIC_BARRIER.wait().is_leader());
        assert!(Barrier::new(0).wait().is_leader());
        assert_eq!(format!("{:?}", Barrier::new(2)), "Barrier { .. }");
    }

    /// call_once runs once while the others park until it is done.
    fn once_runs_once() {
        static ONCE: Once = Once::new();
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (once, runs) = (Arc::clone(&once), Arc::clone(&runs));
                thread::spawn(move || {
                    once.call_once(|| {
                        thread::sleep(Duration::from_millis(10));
                        runs.fetch_add(1, Ordering::SeqCst);
                    });
                    assert_eq!(runs.load(Ordering::SeqCst), 1, "returned before the run ended");
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(once.is_completed());
        ONCE.call_once(|| {
            RUNS.fetch_add(1, Ordering::SeqCst);
        });
        ONCE.call_once(|| unreachable!());
        assert!(RUNS.load(Ordering::SeqCst) >= 1);
        #[allow(deprecated)]
        let legacy = gort::std::sync::ONCE_INIT;
        legacy.call_once(|| {});
        assert!(legacy.is_completed());
        assert_eq!(format!("{legacy:?}"), "Once { .. }");
    }

    /// A panic poisons a Once: call_once and wait panic; call_once_force runs, sees it,
    /// and completes it.
    fn once_poisoning() {
        let once = Once::new();
        let r = catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("first"))));
        assert!(r.is_err());
        assert!(!once.is_completed());
        assert_panics("Once instance has previously been poisoned", || {
            once.call_once(|| {})
        });
        assert_panics("Once instance has previously been poisoned", || once.wait());
        // A forced call that panics again keeps it poisoned.
        let r = catch_unwind(AssertUnwindSafe(|| {
            once.call_once_force(|s| {
                assert!(s.is_poisoned());
                panic!("again")
            })
        }));
        assert!(r.is_err());
        let mut saw = false;
        once.call_once_force(|s: &OnceState| saw = s.is_poisoned());
        assert!(saw);
        assert!(once.is_completed());
        once.call_once(|| unreachable!());
        once.wait();
        once.wait_force();
    }

    /// wait() parks until another goroutine completes the Once; waiters of a running
    /// call_once that panics panic too, as std's.
    fn once_wait() {
        let once = Arc::new(Once::new());
        let o2 = Arc::clone(&once);
        let waiter = thread::spawn(move || {
            o2.wait();
            o2.is_completed()
        });
        thread::sleep(Duration::from_millis(10));
        once.call_once(|| {});
        assert!(waiter.join().unwrap());

        let once = Arc::new(Once::new());
        let (started_tx, started_rx) = gort::std::sync::mpsc::channel();
        let o2 = Arc::clone(&once);
        let runner = thread::spawn(move || {
            o2.call_once(|| {
                started_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(20));
                panic!("runner fails");
            })
        });
        started_rx.recv().unwrap();
        let o3 = Arc::clone(&once);
        let forced = thread::spawn(move || o3.wait_force());
        assert_panics("poisoned", || once.call_once(|| {}));
        assert!(runner.join().is_err());
        once.call_once_force(|s| assert!(s.is_poisoned()));
        forced.join().unwrap();
    }

    /// OnceLock is gort::sync's: one initialiser among many callers; set hands the value
    /// back; wait parks until another goroutine sets it; a panicking init leaves it empty.
    fn once_lock() {
        let cell = Arc::new(OnceLock::new());
        let inits = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (cell, inits) = (Arc::clone(&cell), Arc::clone(&inits));
                thread::spawn(move || {
                    *cell.get_or_init(|| {
                        inits.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(5));
                        i
                    })
                })
            })
            .collect();
        let vals: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(vals.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(inits.load(Ordering::SeqCst), 1);
        assert_eq!(cell.set(99), Err(99));

        let cell: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let c2 = Arc::clone(&cell);
        let waiter = thread::spawn(move || c2.wait().clone());
        thread::sleep(Duration::from_millis(10));
        let r = catch_unwind(AssertUnwindSafe(|| cell.get_or_init(|| panic!("fails"))));
        assert!(r.is_err());
        assert!(cell.get().is_none(), "a panicking initialiser leaves it empty");
        cell.set("ready".into()).unwrap();
        assert_eq!(waiter.join().unwrap(), "ready");

        let mut cell = Arc::try_unwrap(cell).unwrap();
        let copy = cell.clone();
        assert_eq!(copy, cell);
        assert_ne!(copy, OnceLock::new());
        cell.get_mut().unwrap().push('!');
        assert_eq!(cell.take().as_deref(), Some("ready!"));
        assert_eq!(cell.into_inner(), None);
        assert_eq!(OnceLock::from(3).into_inner(), Some(3));
    }

    /// LazyLock: initialised once on first use; get/force/force_mut/get_mut; Default.
    fn lazy_lock() {
        static HITS: AtomicUsize = AtomicUsize::new(0);
        static TABLE: LazyLock<Vec<u32>> = LazyLock::new(|| {
            HITS.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(5));
            vec![1, 2, 3]
        });
        let hs: Vec<_> = (0..6).map(|_| thread::spawn(|| TABLE.len())).collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), 3);
        }
        assert_eq!(HITS.load(Ordering::SeqCst), 1);
        assert_eq!(LazyLock::get(&TABLE), Some(&vec![1, 2, 3]));

        let mut l = LazyLock::new(|| String::from("a"));
        assert!(LazyLock::get(&l).is_none());
        assert!(LazyLock::get_mut(&mut l).is_none());
        assert_eq!(format!("{l:?}"), "LazyLock(<uninit>)");
        LazyLock::force_mut(&mut l).push('b');
        l.push('c');
        assert_eq!(LazyLock::get_mut(&mut l).map(|s| s.as_str()), Some("abc"));
        assert_eq!(format!("{l:?}"), "LazyLock(\"abc\")");
        assert_eq!(*LazyLock::force(&l), "abc");
        let d: LazyLock<Vec<u8>> = LazyLock::default();
        assert!(d.is_empty());
    }

    /// A panicking initialiser poisons a LazyLock for good; drops run exactly once.
    fn lazy_lock_poison_and_drop() {
        let l: LazyLock<u32> = LazyLock::new(|| panic!("init fails"));
        assert_panics("init fails", || *l);
        assert_panics("LazyLock instance has previously been poisoned", || *l);
        let mut l = l;
        assert_panics("LazyLock instance has previously been poisoned", || {
            *LazyLock::force_mut(&mut l)
        });

        let mut l2: LazyLock<u32> = LazyLock::new(|| panic!("fails mutably"));
        assert_panics("fails mutably", || *LazyLock::force_mut(&mut l2));
        assert_panics("poisoned", || *l2);

        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let (d1, d2) = (Counted(Arc::clone(&drops)), Counted(Arc::clone(&drops)));
        let unforced = LazyLock::new(move || drop(d1));
        drop(unforced); // drops the closure (and d1 in it)
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let forced = LazyLock::new(move || d2);
        LazyLock::force(&forced);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(forced); // drops the value
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}
