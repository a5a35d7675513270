//! Async interop: `gort::block_on` and `JoinHandle` as a future, on goroutines and plain
//! threads: wake-ups from other threads, wakes during poll, waker clones that outlive the
//! call, cancellation, `block_on` inside `blocking`.

mod common;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// A one-shot event a future can wait for; fired from anywhere.
#[derive(Default)]
struct Signal {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
    polls: AtomicUsize,
}

impl Signal {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> {
        let s = self.clone();
        poll_fn(move |cx| {
            s.polls.fetch_add(1, Ordering::Relaxed);
            if s.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            *s.waker.lock().unwrap() = Some(cx.waker().clone());
            if s.fired.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

#[gort::test]
fn ready_future_in_a_goroutine() {
    assert_eq!(gort::block_on(async { 7 }), 7);
}

#[test]
fn ready_future_on_a_plain_thread() {
    assert_eq!(gort::block_on(async { 7 }), 7);
}

#[gort::test]
fn wake_from_a_std_thread_parks_only_the_goroutine() {
    // The std thread fires only after another goroutine has run: with one processor that
    // can happen only if block_on parked the goroutine rather than its worker thread.
    let s = Arc::new(Signal::default());
    let other_ran = Arc::new(AtomicBool::new(false));
    let (s2, r2) = (s.clone(), other_ran.clone());
    let t = std::thread::spawn(move || {
        while !r2.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        s2.fire();
    });
    let r3 = other_ran.clone();
    let h = gort::spawn(move || r3.store(true, Ordering::Release));
    gort::block_on(s.wait());
    assert!(other_ran.load(Ordering::Acquire));
    h.join().unwrap();
    t.join().unwrap();
    assert!(s.polls.load(Ordering::Relaxed) >= 1);
}

#[test]
fn wake_from_a_goroutine_unparks_a_plain_thread() {
    let _w = common::watchdog(60, "wake_from_a_goroutine_unparks_a_plain_thread");
    let s = Arc::new(Signal::default());
    let s2 = s.clone();
    let h = gort::spawn(move || {
        gort::time::sleep(Duration::from_millis(5));
        s2.fire();
    });
    gort::block_on(s.wait());
    h.join().unwrap();
}

/// A future that becomes ready after `n` wake-ups, each from a different std thread, all
/// racing with the polls.
fn many_wakers(n: usize) {
    struct Count {
        done: AtomicUsize,
        target: usize,
        waker: Mutex<Option<Waker>>,
    }
    let c = Arc::new(Count {
        done: AtomicUsize::new(0),
        target: n,
        waker: Mutex::new(None),
    });
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                c.done.fetch_add(1, Ordering::AcqRel);
                let w = c.waker.lock().unwrap().clone();
                if let Some(w) = w {
                    w.wake_by_ref();
                }
            })
        })
        .collect();
    let c2 = c.clone();
    gort::block_on(poll_fn(move |cx| {
        *c2.waker.lock().unwrap() = Some(cx.waker().clone());
        if c2.done.load(Ordering::Acquire) == c2.target {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    for t in threads {
        t.join().unwrap();
    }
}

#[gort::test]
fn racing_wakes_from_many_threads_in_a_goroutine() {
    for _ in 0..common::stress(20) {
        many_wakers(8);
    }
}

#[test]
fn racing_wakes_from_many_threads_on_a_plain_thread() {
    let _w = common::watchdog(60, "racing_wakes_from_many_threads_on_a_plain_thread");
    for _ in 0..common::stress(20) {
        many_wakers(8);
    }
}

/// Wakes itself (by ref and by value) inside poll, before returning Pending.
fn self_waking(n: usize) -> impl Future<Output = usize> {
    let mut polls = 0;
    poll_fn(move |cx| {
        polls += 1;
        if polls == n {
            return Poll::Ready(polls);
        }
        if polls % 2 == 0 {
            cx.waker().wake_by_ref();
        } else {
            // By value, through a clone (clippy would have us wake by reference).
            #[allow(clippy::waker_clone_wake)]
            cx.waker().clone().wake();
        }
        Poll::Pending
    })
}

#[gort::test]
fn wake_before_poll_returns_in_a_goroutine() {
    assert_eq!(gort::block_on(self_waking(100)), 100);
}

#[test]
fn wake_before_poll_returns_on_a_plain_thread() {
    assert_eq!(gort::block_on(self_waking(100)), 100);
}

#[gort::test]
fn waker_clones_outlive_block_on_and_the_goroutine() {
    let kept: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let k = kept.clone();
    let h = gort::spawn(move || {
        let mut first = true;
        gort::block_on(poll_fn(|cx| {
            k.lock().unwrap().push(cx.waker().clone());
            if first {
                first = false;
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }));
        // Stale wake-ups after block_on returned are harmless: later waits still work.
        for w in k.lock().unwrap().iter() {
            w.wake_by_ref();
        }
        let s = Arc::new(Signal::default());
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            s2.fire();
        });
        gort::block_on(s.wait());
        t.join().unwrap();
        gort::time::sleep(Duration::from_millis(1));
    });
    h.join().unwrap();
    // The goroutine has ended; its wakers are still valid to wake, clone and drop.
    let wakers = std::mem::take(&mut *kept.lock().unwrap());
    assert_eq!(wakers.len(), 2);
    for w in wakers {
        let w2 = w.clone();
        w.wake();
        w2.wake_by_ref();
    }
}

#[gort::test]
fn nested_block_on_does_not_lose_the_outer_wakeup() {
    let outer = Arc::new(Signal::default());
    let inner = Arc::new(Signal::default());
    let (o2, i2) = (outer.clone(), inner.clone());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2));
        // The outer future's wake-up arrives while the inner block_on waits.
        o2.fire();
        std::thread::sleep(Duration::from_millis(2));
        i2.fire();
    });
    let mut outer_wait = Box::pin(outer.wait());
    gort::block_on(poll_fn(|cx| {
        let r = outer_wait.as_mut().poll(cx);
        if r.is_pending() && !inner.fired.load(Ordering::Acquire) {
            gort::block_on(inner.wait());
        }
        r
    }));
    t.join().unwrap();
}

#[gort::test]
fn a_poll_that_parks_in_a_gort_lock_does_not_eat_the_wakeup() {
    // poll takes a gort Mutex held by another goroutine (so it parks inside poll) while the
    // future's wake-up arrives from a std thread.
    for _ in 0..common::stress(20) {
        let lock = Arc::new(gort::sync::Mutex::new(()));
        let s = Arc::new(Signal::default());
        let guard_taken = Arc::new(AtomicBool::new(false));
        let (l2, g2) = (lock.clone(), guard_taken.clone());
        let holder = gort::spawn(move || {
            let _g = l2.lock();
            g2.store(true, Ordering::Release);
            gort::time::sleep(Duration::from_millis(1));
        });
        while !guard_taken.load(Ordering::Acquire) {
            gort::yield_now();
        }
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.fire());
        let mut wait = Box::pin(s.wait());
        gort::block_on(poll_fn(|cx| {
            let r = wait.as_mut().poll(cx);
            drop(lock.lock());
            r
        }));
        t.join().unwrap();
        holder.join().unwrap();
    }
}

#[gort::test]
fn block_on_inside_blocking() {
    let s = Arc::new(Signal::default());
    let other_ran = Arc::new(AtomicBool::new(false));
    let (s2, r2) = (s.clone(), other_ran.clone());
    // Another goroutine fires the signal: it must get to run while we wait inside blocking.
    let h = gort::spawn(move || {
        r2.store(true, Ordering::Release);
        s2.fire();
    });
    let v = gort::blocking(|| {
        gort::block_on(s.wait());
        5
    });
    assert_eq!(v, 5);
    assert!(other_ran.load(Ordering::Acquire));
    h.join().unwrap();
    // And a future that is ready at once inside blocking.
    assert_eq!(gort::blocking(|| gort::block_on(async { 9 })), 9);
}

#[gort::test]
fn await_a_goroutine_from_a_goroutine() {
    let h = gort::spawn(|| {
        gort::time::sleep(Duration::from_millis(2));
        "done"
    });
    assert_eq!(gort::block_on(h).unwrap(), "done");
    let h = gort::spawn(|| 1 + 1);
    assert_eq!(gort::block_on(async move { h.await.unwrap() * 10 }), 20);
}

#[test]
fn await_a_goroutine_from_a_plain_thread() {
    let _w = common::watchdog(60, "await_a_goroutine_from_a_plain_thread");
    let hs: Vec<_> = (0..100u64)
        .map(|i| {
            gort::spawn(move || {
                gort::yield_now();
                i * 2
            })
        })
        .collect();
    let sum = gort::block_on(async move {
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 99 * 100);
}

#[gort::test]
fn awaiting_a_panicked_goroutine_gives_its_payload() {
    let h = gort::spawn(|| -> u32 { panic!("boom in goroutine") });
    let err = gort::block_on(h).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in goroutine"));
}

/// A waker that counts its wake-ups; its Arc's count shows whether clones were released.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A value whose drops are counted.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[gort::test]
fn dropping_a_pending_join_future_withdraws_its_waker() {
    let release = Arc::new(Signal::default());
    let dropped = Arc::new(AtomicUsize::new(0));
    let (r2, d2) = (release.clone(), dropped.clone());
    let h = gort::spawn(move || {
        gort::block_on(r2.wait());
        Tracked(d2)
    });
    let cw = Arc::new(CountingWaker::default());
    let waker = Waker::from(cw.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::future::IntoFuture::into_future(h);
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    assert_eq!(Arc::strong_count(&cw), 3, "the packet holds a clone");
    drop(fut);
    assert_eq!(Arc::strong_count(&cw), 2, "the clone was released on drop");
    release.fire();
    // The goroutine finishes unobserved; its result is dropped, the waker never called.
    let t0 = std::time::Instant::now();
    while dropped.load(Ordering::SeqCst) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "result never dropped"
        );
        gort::time::sleep(Duration::from_millis(1));
    }
    assert_eq!(cw.0.load(Ordering::SeqCst), 0);
}

#[gort::test]
fn a_join_future_polled_with_a_new_waker_wakes_the_new_one() {
    let release = Arc::new(Signal::default());
    let r2 = release.clone();
    let h = gort::spawn(move || {
        gort::block_on(r2.wait());
        11
    });
    let (a, b) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
    let mut fut = std::future::IntoFuture::into_future(h);
    assert!(Pin::new(&mut fut)
        .poll(&mut Context::from_waker(&wa))
        .is_pending());
    // Same waker again: kept as it is (no second clone).
    assert!(Pin::new(&mut fut)
        .poll(&mut Context::from_waker(&wa))
        .is_pending());
    assert_eq!(Arc::strong_count(&a), 3);
    assert!(Pin::new(&mut fut)
        .poll(&mut Context::from_waker(&wb))
        .is_pending());
    assert_eq!(Arc::strong_count(&a), 2, "the old waker was released");
    release.fire();
    let t0 = std::time::Instant::now();
    while b.0.load(Ordering::SeqCst) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "new waker never woken"
        );
        gort::time::sleep(Duration::from_millis(1));
    }
    assert_eq!(a.0.load(Ordering::SeqCst), 0);
    match Pin::new(&mut fut).poll(&mut Context::from_waker(&wb)) {
        Poll::Ready(r) => assert_eq!(r.unwrap(), 11),
        Poll::Pending => panic!("woken but not ready"),
    }
}

#[gort::test]
fn join_future_races_with_the_goroutine_end() {
    // Poll while the goroutine is finishing: either Ready at once, or a wake-up follows.
    for i in 0..common::stress(500) {
        let h = gort::spawn(move || i);
        if i % 2 == 0 {
            gort::yield_now();
        }
        assert_eq!(gort::block_on(h).unwrap(), i);
    }
}

#[gort::test]
fn thousands_of_goroutines_block_on_at_once() {
    let n = common::stress(2_000);
    let signals: Vec<Arc<Signal>> = (0..n).map(|_| Arc::new(Signal::default())).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = signals
        .iter()
        .map(|s| {
            let (s, d) = (s.clone(), done.clone());
            gort::spawn(move || {
                gort::block_on(s.wait());
                d.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let sigs = signals.clone();
    let firer = std::thread::spawn(move || {
        for s in sigs.iter().rev() {
            s.fire();
        }
    });
    for h in hs {
        h.join().unwrap();
    }
    firer.join().unwrap();
    assert_eq!(done.load(Ordering::Relaxed), n);
}

#[test]
fn tokio_bridge_example_runs() {
    let example = common::example("tokio_bridge");
    let _w = common::watchdog(120, "tokio_bridge_example_runs");
    let out = std::process::Command::new(example)
        .args(["1000", "50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1000 goroutines waited for tokio timers"),
        "{stdout}"
    );
    assert!(
        stdout.contains("received 5050 from goroutines over a gort channel"),
        "{stdout}"
    );
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}

// ---- block_on inside thread-local destructors (regression, issue 10 review) ----

/// Runs `block_on` on a future that is pending until another thread wakes it, from its
/// destructor: at that point the thread's gort thread-locals (its parker, its waker) have
/// already been destroyed.
struct BlockOnInDrop;

impl Drop for BlockOnInDrop {
    fn drop(&mut self) {
        assert_eq!(gort::block_on(async { 5 }), 5);
        let s = Arc::new(Signal::default());
        let s2 = s.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            s2.fire();
        });
        gort::block_on(s.wait());
        t.join().unwrap();
        // And a goroutine awaited from here.
        let v = gort::block_on(gort::spawn(|| 6 * 7)).unwrap();
        println!("block_on in a thread-local destructor: {v}");
    }
}

thread_local! {
    static BLOCK_ON_IN_DROP: BlockOnInDrop = const { BlockOnInDrop };
}

#[test]
fn block_on_in_tls_drop_child() {
    if !common::is_child("block_on_in_tls_drop_child") {
        return;
    }
    std::thread::spawn(|| {
        // Registered first, so destroyed last: after the thread-locals that the gort calls
        // below create (std destroys them in the reverse order of their creation).
        BLOCK_ON_IN_DROP.with(|_| ());
        let s = Arc::new(Signal::default());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.fire());
        gort::block_on(s.wait());
        t.join().unwrap();
        let (tx, rx) = gort::chan::<u8>(0);
        let h = gort::spawn(move || tx.send(1).unwrap());
        rx.recv().unwrap();
        h.join().unwrap();
    })
    .join()
    .unwrap();
    println!("joined");
}

/// `block_on` in a thread-local's destructor used to abort the process (its fallback used
/// the thread's parker, a thread-local already destroyed).
#[test]
fn block_on_in_a_thread_local_destructor() {
    let out = common::run_child("block_on_in_tls_drop_child", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("block_on in a thread-local destructor: 42\n"),
        "{stdout}"
    );
    assert!(stdout.contains("joined"), "{stdout}");
}
