//! `Duration::MAX` (and any timeout too long for `Instant`) means "wait for ever", as with
//! std, everywhere a timeout is taken (issue 12, item 3): each call below waits, does not
//! panic, and still returns as soon as its event happens.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{self, Select};
use gort::sync::{Condvar, Mutex, Semaphore};

const MAX: Duration = Duration::MAX;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// Runs `f` in a goroutine and on a plain thread; `wake` ends the wait after a while.
fn on_both<W: Send + Sync + 'static>(
    setup: impl Fn() -> W,
    wait: impl Fn(&W) + Send + Sync + Copy + 'static,
    wake: impl Fn(&W),
) {
    for in_goroutine in [true, false] {
        let w = Arc::new(setup());
        let w2 = w.clone();
        let h: Box<dyn FnOnce() -> std::thread::Result<()>> = if in_goroutine {
            let h = gort::spawn(move || wait(&w2));
            Box::new(move || h.join())
        } else {
            let h = std::thread::spawn(move || wait(&w2));
            Box::new(move || h.join())
        };
        std::thread::sleep(Duration::from_millis(20));
        wake(&w);
        h().expect("waiting with Duration::MAX must not panic");
    }
}

/// Regression: `Instant::now() + dur` panicked.
#[test]
fn issue_12_sleep_max_sleeps() {
    let h = gort::spawn(|| gort::time::sleep(MAX));
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        !h.is_finished(),
        "sleep(Duration::MAX) returned or panicked"
    );
    // The goroutine sleeps for a century: leave it.
}

/// Regression: `Instant::now() + dur` panicked.
#[test]
fn issue_12_park_timeout_max_waits_for_unpark() {
    let (tx, rx) = std::sync::mpsc::channel();
    for in_goroutine in [true, false] {
        let tx = tx.clone();
        let f = move || {
            tx.send(gort::thread::current()).unwrap();
            let t = Instant::now();
            gort::thread::park_timeout(MAX);
            t.elapsed()
        };
        let waited = if in_goroutine {
            let h = gort::spawn(f);
            let me = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            me.unpark();
            h.join()
        } else {
            let h = std::thread::spawn(f);
            let me = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            me.unpark();
            h.join()
        };
        waited.expect("park_timeout(Duration::MAX) must not panic");
    }
}

#[test]
fn recv_and_send_timeout_max() {
    on_both(
        || chan::chan::<u32>(0),
        |(_, rx)| assert_eq!(rx.recv_timeout(MAX), Ok(7)),
        |(tx, _)| tx.send(7).unwrap(),
    );
    on_both(
        || {
            let (tx, rx) = chan::chan::<u32>(1);
            tx.send(1).unwrap();
            (tx, rx)
        },
        |(tx, _)| tx.send_timeout(2, MAX).unwrap(),
        |(_, rx)| assert_eq!(rx.recv(), Ok(1)),
    );
}

#[test]
fn select_timeouts_max() {
    on_both(
        || chan::chan::<u32>(0),
        |(_, rx)| {
            let got = gort::select! {
                recv(rx) -> v => v.unwrap(),
                default(MAX) => 0,
            };
            assert_eq!(got, 7);
        },
        |(tx, _)| tx.send(7).unwrap(),
    );
    on_both(
        || chan::chan::<u32>(0),
        |(_, rx)| {
            let mut sel = Select::new();
            sel.recv(rx);
            let op = sel.select_timeout(MAX).unwrap();
            assert_eq!(op.recv(rx), Ok(7));
        },
        |(tx, _)| tx.send(7).unwrap(),
    );
    on_both(
        || chan::chan::<u32>(0),
        |(_, rx)| {
            let mut sel = Select::new();
            sel.recv(rx);
            assert_eq!(sel.ready_timeout(MAX), Ok(0));
            assert_eq!(rx.try_recv(), Ok(7));
        },
        |(tx, _)| tx.send(7).unwrap(),
    );
}

#[test]
fn condvar_wait_timeout_max() {
    on_both(
        || (Mutex::new(false), Condvar::new()),
        |(m, c)| {
            let mut g = m.lock();
            while !*g {
                let (g2, r) = c.wait_timeout(g, MAX);
                assert!(!r.timed_out());
                g = g2;
            }
        },
        |(m, c)| {
            *m.lock() = true;
            c.notify_all();
        },
    );
    on_both(
        || (Mutex::new(false), Condvar::new()),
        |(m, c)| {
            let (_, r) = c.wait_timeout_while(m.lock(), MAX, |ready| !*ready);
            assert!(!r.timed_out());
        },
        |(m, c)| {
            *m.lock() = true;
            c.notify_all();
        },
    );
}

#[test]
fn semaphore_acquire_timeout_max() {
    on_both(
        || {
            let s = Arc::new(Semaphore::new(1));
            let held = s.acquire_owned();
            (s, Mutex::new(Some(held)))
        },
        |(s, _)| assert!(s.acquire_timeout(MAX).is_some()),
        |(_, held)| drop(held.lock().take()),
    );
}

#[test]
fn context_with_timeout_max() {
    let bg = gort::context::Context::background();
    let (ctx, cancel) = bg.with_timeout(MAX);
    assert!(ctx.err().is_none());
    let (tx, rx) = chan::chan::<()>(0);
    let done = ctx.done();
    let h = gort::spawn(move || {
        gort::select! {
            recv(done) -> _ => {},
            recv(rx) -> _ => panic!("nothing is sent"),
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(!h.is_finished());
    cancel.cancel();
    h.join().unwrap();
    drop(tx);
    assert!(ctx.err().is_some());
}

#[test]
fn timers_with_max_never_fire() {
    let t = gort::time::Timer::new(MAX);
    let a = gort::time::after(MAX);
    let k = gort::time::Ticker::new(MAX);
    let f = gort::time::after_func(MAX, || panic!("never"));
    std::thread::sleep(Duration::from_millis(20));
    assert!(t.receiver().try_recv().is_err());
    assert!(a.try_recv().is_err());
    assert!(k.receiver().try_recv().is_err());
    assert!(t.reset(MAX));
    assert!(k.reset(MAX));
    assert!(t.stop() && k.stop() && f.stop());
}

#[test]
fn join_deadline_far_away() {
    let h = gort::spawn(|| 5);
    let far = Instant::now() + Duration::from_secs(1 << 40);
    assert_eq!(h.join_deadline(far).ok().unwrap().unwrap(), 5);
}

/// Regression: `connect_timeout` computed `Instant::now() + timeout` and panicked.
#[test]
fn issue_12_net_timeouts_max() {
    let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = gort::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        s.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        s.read_exact(&mut buf).unwrap();
    });
    let client = gort::spawn(move || {
        let mut c = gort::net::TcpStream::connect_timeout(&addr, MAX).unwrap();
        c.set_read_timeout(Some(MAX)).unwrap();
        c.set_write_timeout(Some(MAX)).unwrap();
        assert!(c.read_timeout().unwrap().is_some());
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        c.write_all(b"world").unwrap();
    });
    client.join().unwrap();
    server.join().unwrap();
    let u = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(MAX)).unwrap();
    u.set_write_timeout(Some(MAX)).unwrap();
}

/// Regression: `#[gort::test]`'s watchdog computed `now + GORT_TEST_TIMEOUT` and panicked
/// for a timeout too long for `Instant`.
#[test]
fn issue_12_huge_test_timeout_means_no_watchdog() {
    if common::is_child("issue_12_huge_test_timeout_means_no_watchdog") {
        gort::__private::run_test("child", || ());
        println!("ran under a huge watchdog");
        return;
    }
    let out = common::run_child(
        "issue_12_huge_test_timeout_means_no_watchdog",
        &[("GORT_TEST_TIMEOUT", &u64::MAX.to_string())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ran under a huge watchdog"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The std drop-in facade takes the same timeouts.
#[test]
fn std_facade_timeouts_max() {
    use gort::std::sync::{mpsc, Condvar as StdCondvar, Mutex as StdMutex};
    on_both(
        || {
            let (tx, rx) = mpsc::channel::<u32>();
            (StdMutex::new(tx), StdMutex::new(rx))
        },
        |(_, rx)| assert_eq!(rx.lock().unwrap().recv_timeout(MAX), Ok(7)),
        |(tx, _)| tx.lock().unwrap().send(7).unwrap(),
    );
    on_both(
        || (StdMutex::new(false), StdCondvar::new()),
        |(m, c)| {
            let (g, r) = c
                .wait_timeout_while(m.lock().unwrap(), MAX, |ready| !*ready)
                .unwrap();
            assert!(*g && !r.timed_out());
        },
        |(m, c)| {
            *m.lock().unwrap() = true;
            c.notify_all();
        },
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let h = gort::spawn(move || {
        tx.send(gort::std::thread::current()).unwrap();
        gort::std::thread::park_timeout(MAX);
    });
    let me = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    me.unpark();
    h.join().unwrap();
    let sleeper = gort::spawn(|| gort::std::thread::sleep(MAX));
    std::thread::sleep(Duration::from_millis(20));
    assert!(!sleeper.is_finished());
}
