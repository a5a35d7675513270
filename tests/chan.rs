//! Channels: every cell of Go's channel table (Learning Go, Table 12-1, mapped to Rust as
//! DESIGN.md says), FIFO order, len/cap, the disconnect rules, goroutines and threads mixed.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gort::chan;
use gort::chan::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

// --- Table 12-1, row by row: unbuffered open, unbuffered closed, buffered open (empty /
// has values / full), buffered closed, nil (an Option that is None, in select.rs).

#[gort::test]
fn unbuffered_open_read_waits_for_write() {
    let (tx, rx) = chan::<i32>(0);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let h = gort::go!(move || rx.recv());
    gort::time::sleep(Duration::from_millis(5));
    assert!(!h.is_finished());
    tx.send(7).unwrap();
    assert_eq!(h.join().unwrap(), Ok(7));
}

#[gort::test]
fn unbuffered_open_write_waits_for_read() {
    let (tx, rx) = chan::<i32>(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let h = gort::go!(move || {
        tx.send(9).unwrap();
        d.store(1, Ordering::SeqCst);
    });
    gort::time::sleep(Duration::from_millis(5));
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "send returned before a receive"
    );
    assert_eq!(rx.recv(), Ok(9));
    h.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1);
}

#[gort::test]
fn unbuffered_closed_read_returns_err_write_returns_value_close_panics() {
    let (tx, rx) = chan::<String>(0);
    tx.close();
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.recv(), Err(RecvError), "forever");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Closed)
    );
    assert_eq!(tx.send("v".into()), Err(SendError("v".to_string())));
    assert_eq!(
        tx.try_send("w".into()),
        Err(TrySendError::Closed("w".to_string()))
    );
    assert_eq!(
        tx.send_timeout("x".into(), Duration::from_millis(1)),
        Err(SendTimeoutError::Closed("x".to_string()))
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.close()));
    let msg = r.expect_err("second close panics");
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"close of closed channel"));
    assert!(tx.is_closed() && rx.is_closed());
}

#[gort::test]
fn buffered_open_empty_read_waits_not_full_write_does_not() {
    let (tx, rx) = chan::<i32>(2);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(2)),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(
        tx.send_timeout(3, Duration::from_millis(2)),
        Err(SendTimeoutError::Timeout(3))
    );
    assert_eq!((tx.len(), tx.cap(), rx.len(), rx.cap()), (2, 2, 2, 2));
    // A full channel: the write waits until a read makes room.
    let h = gort::go!(move || tx.send(3));
    gort::time::sleep(Duration::from_millis(5));
    assert!(!h.is_finished());
    assert_eq!(rx.recv(), Ok(1));
    h.join().unwrap().unwrap();
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Ok(3));
}

#[gort::test]
fn buffered_closed_read_drains_then_err_len_still_counts() {
    let (tx, rx) = chan::<i32>(4);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    tx.close();
    assert_eq!(rx.len(), 3, "len counts buffered items after close");
    assert!(rx.is_closed());
    assert_eq!(tx.send(9), Err(SendError(9)));
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(2));
    assert_eq!(rx.len(), 0);
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[gort::test]
fn close_wakes_every_blocked_receiver() {
    let (tx, rx) = chan::<i32>(0);
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let rx = rx.clone();
            gort::go!(move || rx.recv())
        })
        .collect();
    gort::time::sleep(Duration::from_millis(5));
    tx.close();
    for h in hs {
        assert_eq!(h.join().unwrap(), Err(RecvError));
    }
}

#[gort::test]
fn close_wakes_every_blocked_sender_with_its_value() {
    let (tx, rx) = chan::<i32>(1);
    tx.send(0).unwrap();
    let hs: Vec<_> = (1..=10)
        .map(|i| {
            let tx = tx.clone();
            gort::go!(move || tx.send(i))
        })
        .collect();
    gort::time::sleep(Duration::from_millis(5));
    tx.close();
    let mut back: Vec<i32> = hs
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_err().0)
        .collect();
    back.sort();
    assert_eq!(back, (1..=10).collect::<Vec<_>>());
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[gort::test]
fn last_sender_drop_closes() {
    let (tx, rx) = chan::<i32>(1);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed());
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[gort::test]
fn close_then_drop_does_not_panic() {
    let (tx, rx) = chan::<i32>(0);
    let tx2 = tx.clone();
    tx.close();
    drop(tx);
    drop(tx2);
    assert_eq!(rx.recv(), Err(RecvError));
}

#[gort::test]
fn receivers_gone_send_returns_value() {
    let (tx, rx) = chan::<Vec<u8>>(1);
    let rx2 = rx.clone();
    drop(rx);
    tx.send(vec![1]).unwrap();
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(tx.send(vec![2]), Err(SendError(vec![2])));
    assert_eq!(tx.try_send(vec![3]), Err(TrySendError::Closed(vec![3])));
    assert_eq!(
        tx.send_timeout(vec![4], Duration::from_secs(1)),
        Err(SendTimeoutError::Closed(vec![4]))
    );
}

/// A value that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[gort::test]
fn receivers_gone_drops_buffered_values_at_once() {
    for cap in [1, 4, usize::MAX] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = if cap == usize::MAX {
            chan::unbounded::<Counted>()
        } else {
            chan::<Counted>(cap)
        };
        for _ in 0..cap.min(4) {
            tx.send(Counted(drops.clone())).unwrap();
        }
        assert_eq!(tx.len(), cap.min(4));
        drop(rx);
        // The Sender is still alive, but nobody can ever receive the values: they are gone.
        assert_eq!(drops.load(Ordering::SeqCst), cap.min(4), "cap {cap}");
        assert_eq!(tx.len(), 0);
        let back = tx.send(Counted(drops.clone())).unwrap_err();
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), cap.min(4) + 1);
    }
}

#[gort::test]
fn receivers_gone_wakes_blocked_senders_with_values() {
    let (tx, rx) = chan::<i32>(0);
    let hs: Vec<_> = (0..5)
        .map(|i| {
            let tx = tx.clone();
            gort::go!(move || tx.send(i))
        })
        .collect();
    gort::time::sleep(Duration::from_millis(5));
    drop(rx);
    let mut back: Vec<i32> = hs
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_err().0)
        .collect();
    back.sort();
    assert_eq!(back, vec![0, 1, 2, 3, 4]);
}

#[gort::test]
fn fifo_buffered_and_unbuffered() {
    for cap in [0, 1, 7, 100] {
        let (tx, rx) = chan::<usize>(cap);
        let n = 2000;
        let h = gort::go!(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<usize> = rx.iter().collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "cap {cap}");
        h.join().unwrap();
    }
}

/// Runs an arrival-order scenario with growing pauses between arrivals (the pause lets each
/// waiter queue up before the next starts; a loaded machine may need a longer one).
fn in_order_with_some_pause(scenario: impl Fn(Duration) -> Vec<usize>) {
    let mut seen = Vec::new();
    for ms in [3, 20, 100] {
        let got = scenario(Duration::from_millis(ms));
        if got.windows(2).all(|w| w[0] < w[1]) {
            return;
        }
        seen.push(got);
    }
    panic!("waiters not served in arrival order: {seen:?}");
}

#[gort::test]
fn waiting_receivers_served_in_arrival_order() {
    in_order_with_some_pause(|pause| {
        let (tx, rx) = chan::<usize>(0);
        let (otx, orx) = chan::<(usize, usize)>(10);
        for i in 0..5 {
            let rx = rx.clone();
            let otx = otx.clone();
            gort::go!(move || {
                let v = rx.recv().unwrap();
                otx.send((v, i)).unwrap();
            });
            gort::time::sleep(pause); // let it queue up
        }
        for v in 0..5 {
            tx.send(v).unwrap();
        }
        let mut got: Vec<(usize, usize)> = (0..5).map(|_| orx.recv().unwrap()).collect();
        got.sort();
        // Receiver index per value, in value order: 0, 1, 2, 3, 4 if FIFO.
        got.into_iter().map(|(_, i)| i).collect()
    });
}

#[gort::test]
fn waiting_senders_served_in_arrival_order() {
    in_order_with_some_pause(|pause| {
        let (tx, rx) = chan::<usize>(1);
        tx.send(0).unwrap();
        for i in 1..6 {
            let tx = tx.clone();
            gort::go!(move || tx.send(i).unwrap());
            gort::time::sleep(pause);
        }
        (0..6).map(|_| rx.recv().unwrap()).collect()
    });
}

#[gort::test]
fn len_and_cap() {
    let (tx, rx) = chan::<u8>(3);
    assert_eq!((tx.len(), tx.cap()), (0, 3));
    tx.send(1).unwrap();
    assert_eq!(rx.len(), 1);
    assert!(!rx.is_empty());
    let (utx, urx) = chan::unbounded::<u8>();
    assert_eq!(urx.cap(), usize::MAX);
    for i in 0..100 {
        utx.send(i).unwrap();
    }
    assert_eq!(utx.len(), 100);
    let (ztx, _zrx) = chan::<u8>(0);
    assert_eq!((ztx.len(), ztx.cap()), (0, 0));
}

#[gort::test]
fn iterators() {
    let (tx, rx) = chan::<i32>(10);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    for i in 5..8 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut v = Vec::new();
    for x in &rx {
        v.push(x);
    }
    assert_eq!(v, vec![5, 6, 7]);
    let (tx, rx) = chan::<i32>(0);
    gort::go!(move || {
        for i in 0..3 {
            tx.send(i).unwrap();
        }
    });
    assert_eq!(rx.into_iter().sum::<i32>(), 3);
}

#[test]
fn zero_sized_types_work() {
    let (tx, rx) = chan::<()>(1 << 40); // no allocation per element (or at all)
    for _ in 0..1000 {
        tx.send(()).unwrap();
    }
    assert_eq!(rx.len(), 1000);
    assert_eq!(rx.recv(), Ok(()));
}

#[test]
#[should_panic(expected = "too large to allocate")]
fn capacity_too_large_panics() {
    let _ = chan::<u64>(usize::MAX / 2);
}

#[test]
#[should_panic(expected = "too large to allocate")]
fn capacity_too_large_for_memory_panics() {
    let _ = chan::<[u8; 4096]>(1 << 40);
}

#[test]
fn plain_threads_and_goroutines_mix() {
    // A thread blocked in recv is woken by a goroutine's send, and the reverse.
    let (tx, rx) = chan::<i32>(0);
    let (tx2, rx2) = chan::<i32>(0);
    let g = gort::go!(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
            assert_eq!(rx2.recv(), Ok(i * 2));
        }
    });
    for _ in 0..1000 {
        let v = rx.recv().unwrap();
        tx2.send(v * 2).unwrap();
    }
    g.join().unwrap();
}

#[test]
fn plain_threads_only() {
    let (tx, rx) = chan::<usize>(0);
    let ts: Vec<_> = (0..4)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    tx.send(t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let n = rx.iter().count();
    assert_eq!(n, 2000);
    for t in ts {
        t.join().unwrap();
    }
}

#[gort::test]
fn timeouts_return_values_and_leave_nothing_blocked() {
    let (tx, rx) = chan::<i32>(0);
    assert_eq!(
        tx.send_timeout(5, Duration::from_millis(2)),
        Err(SendTimeoutError::Timeout(5))
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(2)),
        Err(RecvTimeoutError::Timeout)
    );
    // The timed-out waiters are gone: a try_send finds nobody.
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    let h = gort::go!(move || rx.recv_timeout(Duration::from_secs(10)));
    gort::time::sleep(Duration::from_millis(2));
    tx.send(3).unwrap();
    assert_eq!(h.join().unwrap(), Ok(3));
}

#[gort::test]
fn mpmc_stress_counts_and_sums() {
    let n = common::stress(20_000);
    for cap in [0usize, 1, 64] {
        let (tx, rx) = chan::<usize>(cap);
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let tx = tx.clone();
                gort::go!(move || {
                    for i in 0..n {
                        tx.send(p * n + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                gort::go!(move || rx.iter().fold((0usize, 0usize), |(c, s), v| (c + 1, s + v)))
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let (c, s) = consumers
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let total = 4 * n;
        assert_eq!(c, total, "cap {cap}");
        assert_eq!(s, total * (total - 1) / 2, "cap {cap}");
    }
}

#[test]
fn errors_display_and_debug() {
    assert_eq!(SendError(1).to_string(), "send on closed channel");
    assert_eq!(format!("{:?}", SendError(1)), "SendError { .. }");
    assert_eq!(TrySendError::Full(1).to_string(), "send on full channel");
    assert_eq!(RecvError.to_string(), "receive on closed channel");
    assert_eq!(TryRecvError::Empty.to_string(), "receive on empty channel");
    assert_eq!(
        RecvTimeoutError::Timeout.to_string(),
        "timed out waiting on channel"
    );
    let e: Box<dyn std::error::Error> = Box::new(SendError(String::new()));
    assert!(!e.to_string().is_empty());
    assert_eq!(TrySendError::Closed(2).into_inner(), 2);
}

#[test]
fn handles_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<chan::Sender<String>>();
    check::<chan::Receiver<String>>();
}

#[gort::test]
fn timeouts_racing_with_peers_lose_and_duplicate_nothing() {
    // Senders and receivers with tiny timeouts on an unbuffered channel: every value a send
    // reports delivered is received exactly once, and every timed-out send keeps its value.
    let n = common::stress(2000);
    let (tx, rx) = chan::<usize>(0);
    let (rtx, rrx) = chan::<Vec<usize>>(4);
    let senders: Vec<_> = (0..2)
        .map(|s| {
            let tx = tx.clone();
            gort::go!(move || {
                let mut delivered = Vec::new();
                for i in 0..n {
                    let v = s * n + i;
                    match tx.send_timeout(v, Duration::from_micros(50)) {
                        Ok(()) => delivered.push(v),
                        Err(SendTimeoutError::Timeout(back)) => assert_eq!(back, v),
                        Err(e) => panic!("{e}"),
                    }
                }
                delivered
            })
        })
        .collect();
    drop(tx);
    for _ in 0..2 {
        let (rx, rtx) = (rx.clone(), rtx.clone());
        gort::go!(move || {
            let mut got = Vec::new();
            loop {
                match rx.recv_timeout(Duration::from_micros(30)) {
                    Ok(v) => got.push(v),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Closed) => break,
                }
            }
            rtx.send(got).unwrap();
        });
    }
    let mut delivered: Vec<usize> = senders
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let mut got: Vec<usize> = (0..2).flat_map(|_| rrx.recv().unwrap()).collect();
    delivered.sort();
    got.sort();
    assert_eq!(delivered, got);
}

#[test]
fn oversubscribed_plain_threads_contending() {
    // More threads than cores fighting over one small channel (the lock's yield path).
    let n = common::stress(2000);
    let (tx, rx) = chan::<usize>(1);
    let senders: Vec<_> = (0..6)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..6)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().map(|v| v as u64).sum::<u64>())
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let sum: u64 = receivers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(sum, 6 * (n as u64) * (n as u64 - 1) / 2);
}

#[gort::test]
fn unbounded_burst_then_drain() {
    let (tx, rx) = chan::unbounded::<u64>();
    let n = 200_000u64;
    for i in 0..n {
        tx.send(i).unwrap();
    }
    assert_eq!(tx.len(), n as usize);
    for i in 0..n {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.recv(), Err(RecvError));
}

// ---------------------------------------------------------------------------------------
// Issue 9: exactly-once delivery under contention, every way of sending and receiving at
// once, goroutines and plain threads at once, with and without a close mid-run.

/// A small seeded generator (xorshift64*), so that runs are reproducible per worker.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// `producers` send ids `p * per + i`, each by a randomly chosen operation (send, try_send
/// retried, send_timeout retried, select! send, dynamic Select send); `consumers` receive
/// by recv, try_recv, recv_timeout, select! recv, dynamic Select recv. Odd-numbered workers
/// are plain threads. With `close_early`, a closer closes the channel while producers still
/// run: a send that fails must hand its value back. Every id must end up received once or
/// handed back once, never both, never neither.
fn exactly_once(cap: usize, producers: usize, consumers: usize, per: usize, close_early: bool) {
    use std::sync::atomic::AtomicU8;
    let (tx, rx) = chan::<usize>(cap);
    let seen: Arc<Vec<AtomicU8>> =
        Arc::new((0..producers * per).map(|_| AtomicU8::new(0)).collect());
    let returned: Arc<Vec<AtomicU8>> =
        Arc::new((0..producers * per).map(|_| AtomicU8::new(0)).collect());
    let sent_ok = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = chan::<()>(producers + consumers);
    let spawn = |k: usize, f: Box<dyn FnOnce() + Send>| {
        if k % 2 == 1 {
            std::thread::spawn(f);
        } else {
            gort::spawn(f);
        }
    };
    let t = Duration::from_millis(1);
    for p in 0..producers {
        let (tx, returned, sent_ok, done) = (
            tx.clone(),
            returned.clone(),
            sent_ok.clone(),
            done_tx.clone(),
        );
        spawn(
            p,
            Box::new(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (p as u64 + 1));
                for i in 0..per {
                    let id = p * per + i;
                    let r: Result<(), usize> = match rng.below(5) {
                        0 => tx.send(id).map_err(|e| e.0),
                        1 => loop {
                            match tx.try_send(id) {
                                Ok(()) => break Ok(()),
                                Err(TrySendError::Closed(v)) => break Err(v),
                                Err(TrySendError::Full(_)) => gort::yield_now(),
                            }
                        },
                        2 => loop {
                            match tx.send_timeout(id, t) {
                                Ok(()) => break Ok(()),
                                Err(SendTimeoutError::Closed(v)) => break Err(v),
                                Err(SendTimeoutError::Timeout(_)) => {}
                            }
                        },
                        3 => gort::select! { send(tx, id) -> r => r.map_err(|e| e.0) },
                        _ => {
                            let mut sel = gort::chan::Select::new();
                            sel.send(&tx);
                            sel.select().send(&tx, id).map_err(|e| e.0)
                        }
                    };
                    match r {
                        Ok(()) => {
                            sent_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(v) => {
                            assert_eq!(v, id, "a failed send handed back another value");
                            assert_eq!(returned[v].fetch_add(1, Ordering::Relaxed), 0);
                        }
                    }
                }
                done.send(()).unwrap();
            }),
        );
    }
    for c in 0..consumers {
        let (rx, seen, done) = (rx.clone(), seen.clone(), done_tx.clone());
        spawn(
            c + 1,
            Box::new(move || {
                let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (c as u64 + 1));
                loop {
                    let r: Option<usize> = match rng.below(5) {
                        0 => rx.recv().ok(),
                        1 => match rx.try_recv() {
                            Ok(v) => Some(v),
                            Err(TryRecvError::Closed) => None,
                            Err(TryRecvError::Empty) => {
                                gort::yield_now();
                                continue;
                            }
                        },
                        2 => match rx.recv_timeout(t) {
                            Ok(v) => Some(v),
                            Err(RecvTimeoutError::Closed) => None,
                            Err(RecvTimeoutError::Timeout) => continue,
                        },
                        3 => gort::select! { recv(rx) -> v => v.ok() },
                        _ => {
                            let mut sel = gort::chan::Select::new();
                            sel.recv(&rx);
                            sel.select().recv(&rx).ok()
                        }
                    };
                    match r {
                        Some(v) => assert_eq!(
                            seen[v].fetch_add(1, Ordering::Relaxed),
                            0,
                            "value {v} received twice"
                        ),
                        None => break,
                    }
                }
                done.send(()).unwrap();
            }),
        );
    }
    drop(rx);
    if close_early {
        gort::time::sleep(Duration::from_millis(2));
        tx.close();
        drop(tx);
    } else {
        drop(tx); // the last producer's Sender closes it
    }
    for _ in 0..producers + consumers {
        done_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                gort::dump();
                panic!(
                    "a producer or consumer hung: cap {cap}, {producers} -> {consumers}, \
                     {per} each, close_early {close_early}"
                )
            });
    }
    let mut received = 0;
    for id in 0..producers * per {
        let (s, r) = (
            seen[id].load(Ordering::Relaxed),
            returned[id].load(Ordering::Relaxed),
        );
        assert_eq!(
            s + r,
            1,
            "id {id}: received {s} times, handed back {r} times"
        );
        received += s as usize;
    }
    assert_eq!(received, sent_ok.load(Ordering::Relaxed));
    if !close_early {
        assert_eq!(received, producers * per);
    }
}

/// Capacities: unbuffered, rings of one and several slots (128: head and tail on their own
/// lines), a bounded channel too large for a ring (a deque under the lock), unbounded.
const CAPS: [usize; 7] = [0, 1, 2, 3, 16, 128, (1 << 20) + 1];

#[gort::test]
fn issue_9_exactly_once_mixed_operations() {
    let per = common::stress(400);
    for cap in CAPS.into_iter().chain([usize::MAX]) {
        exactly_once(cap, 4, 4, per, false);
        exactly_once(cap, 1, 4, per, false);
        exactly_once(cap, 4, 1, per, false);
    }
}

#[gort::test]
fn issue_9_exactly_once_with_close_mid_run() {
    let per = common::stress(2_000);
    for cap in CAPS.into_iter().chain([usize::MAX]) {
        exactly_once(cap, 4, 4, per, true);
    }
}

/// The handshake between a bounded channel's lock-free ring and its waiters (hchan.rs): a
/// receiver that finds the ring empty registers and sleeps while senders push without the
/// lock, and a sender that finds it full sleeps while receivers pop. No wake-up may be
/// lost: with every receiver blocking in `recv` and every sender using the lock-free
/// `try_send` (and the mirror image), each round must finish, on goroutines and threads.
#[gort::test]
fn issue_9_ring_waiters_are_never_left_asleep() {
    let rounds = common::stress(20_000);
    for cap in [1, 2, 4] {
        for (lock_free_senders, on_threads) in [(true, false), (false, false), (true, true)] {
            let (tx, rx) = chan::<u32>(cap);
            let (done_tx, done_rx) = chan::<u64>(8);
            let n = 4;
            let spawn = |k: usize, f: Box<dyn FnOnce() + Send>| {
                if on_threads && k % 2 == 0 {
                    std::thread::spawn(f);
                } else {
                    gort::spawn(f);
                }
            };
            for k in 0..n {
                let (tx, done) = (tx.clone(), done_tx.clone());
                spawn(
                    k,
                    Box::new(move || {
                        for i in 0..rounds as u32 {
                            if lock_free_senders {
                                let mut v = i;
                                while let Err(e) = tx.try_send(v) {
                                    v = match e {
                                        TrySendError::Full(v) => v,
                                        TrySendError::Closed(_) => unreachable!(),
                                    };
                                    gort::yield_now();
                                }
                            } else {
                                tx.send(i).unwrap();
                            }
                        }
                        done.send(0).unwrap();
                    }),
                );
            }
            drop(tx);
            for k in 0..n {
                let (rx, done) = (rx.clone(), done_tx.clone());
                spawn(
                    k + 1,
                    Box::new(move || {
                        let mut sum = 0u64;
                        if lock_free_senders {
                            // Blocking receivers against lock-free senders.
                            while let Ok(v) = rx.recv() {
                                sum += u64::from(v);
                            }
                        } else {
                            // Lock-free receivers against blocking senders.
                            loop {
                                match rx.try_recv() {
                                    Ok(v) => sum += u64::from(v),
                                    Err(TryRecvError::Empty) => gort::yield_now(),
                                    Err(TryRecvError::Closed) => break,
                                }
                            }
                        }
                        done.send(sum).unwrap();
                    }),
                );
            }
            drop(rx);
            let mut sum = 0;
            for _ in 0..2 * n {
                sum += done_rx
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap_or_else(|_| {
                        gort::dump();
                        panic!("a waiter slept through the ring: cap {cap}")
                    });
            }
            let r = rounds as u64;
            assert_eq!(sum, n as u64 * r * (r - 1) / 2, "cap {cap}");
        }
    }
}

/// When every Receiver of a bounded channel goes while senders still push without the lock,
/// each value is dropped exactly once: buffered ones at the disconnect, later sends handed
/// back to their senders.
#[gort::test]
fn issue_9_ring_values_dropped_once_when_receivers_go() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    for round in 0..common::stress(50) {
        let made = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::<Counted>(1 + round % 8);
        let senders: Vec<_> = (0..4)
            .map(|k| {
                let (tx, made, dropped) = (tx.clone(), made.clone(), dropped.clone());
                let f = move || loop {
                    made.fetch_add(1, Ordering::SeqCst);
                    match tx.try_send(Counted(dropped.clone())) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => gort::yield_now(),
                        Err(TrySendError::Closed(_)) => break,
                    }
                };
                if k % 2 == 0 {
                    let h = std::thread::spawn(f);
                    Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
                } else {
                    let h = gort::spawn(f);
                    Box::new(move || h.join().unwrap())
                }
            })
            .collect();
        drop(tx);
        for _ in 0..round % 5 {
            drop(rx.recv());
        }
        drop(rx);
        for s in senders {
            s();
        }
        assert_eq!(dropped.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
    }
}

/// Go's `selectgo` locks; gort's select! and dynamic `Select` over rings freeze them
/// (`locked_pass`) and confirm lock-free looks with the rings' indices: a value moved
/// between two rings of several slots, among others that stay empty, is always seen.
#[gort::test]
fn issue_9_select_default_over_rings_sees_a_moving_value() {
    use gort::chan::Select;
    let rounds = common::stress(20_000);
    for cap in [2, 5] {
        let (atx, arx) = chan::<u32>(cap);
        let (btx, brx) = chan::<u32>(cap);
        let empty: Vec<_> = (0..12).map(|_| chan::<u32>(cap)).collect();
        atx.send(0).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mover = {
            let (atx, arx, btx, brx, stop) = (
                atx.clone(),
                arx.clone(),
                btx.clone(),
                brx.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    btx.send(1).unwrap();
                    arx.recv().unwrap();
                    atx.send(0).unwrap();
                    brx.recv().unwrap();
                }
                stop.store(true, Ordering::SeqCst);
            })
        };
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let seen = match n % 3 {
                0 => gort::select! {
                    recv(arx) -> v => { atx.send(v.unwrap()).unwrap(); true },
                    recv(empty[0].1) -> _ => unreachable!(),
                    recv(empty[1].1) -> _ => unreachable!(),
                    recv(brx) -> v => { btx.send(v.unwrap()).unwrap(); true },
                    default => false,
                },
                1 => gort::select! {
                    recv(arx) -> v => { atx.send(v.unwrap()).unwrap(); true },
                    recv(empty[0].1) -> _ => unreachable!(),
                    recv(empty[1].1) -> _ => unreachable!(),
                    recv(empty[2].1) -> _ => unreachable!(),
                    recv(empty[3].1) -> _ => unreachable!(),
                    recv(empty[4].1) -> _ => unreachable!(),
                    recv(empty[5].1) -> _ => unreachable!(),
                    recv(empty[6].1) -> _ => unreachable!(),
                    recv(empty[7].1) -> _ => unreachable!(),
                    recv(brx) -> v => { btx.send(v.unwrap()).unwrap(); true },
                    default => false,
                },
                _ => {
                    let mut sel = Select::new();
                    sel.recv(&arx);
                    for (_, r) in &empty {
                        sel.recv(r);
                    }
                    sel.recv(&brx);
                    sel.try_ready().is_ok()
                }
            };
            assert!(
                seen,
                "default taken though a ring held the value (cap {cap}, check {n})"
            );
            n += 1;
            if n % 64 == 0 {
                gort::yield_now();
            }
        }
        mover.join().unwrap();
    }
}

/// Futures (`recv_async`, `send_async`) register as waiters on a bounded channel's ring too:
/// a receive future waiting on an empty ring while lock-free `try_send`s push, and a send
/// future waiting on a full ring while lock-free `try_recv`s pop, must never sleep through
/// a value or a room (the same handshake as blocking waiters, hchan.rs).
#[gort::test]
fn issue_9_futures_on_rings_are_never_left_asleep() {
    let rounds = common::stress(5_000) as u32;
    for cap in [1, 3] {
        // Receive futures against lock-free senders.
        let (tx, rx) = chan::<u32>(cap);
        let receivers: Vec<_> = (0..2)
            .map(|k| {
                let rx = rx.clone();
                let f = move || {
                    gort::block_on(async {
                        let mut sum = 0u64;
                        while let Ok(v) = rx.recv_async().await {
                            sum += u64::from(v);
                        }
                        sum
                    })
                };
                if k == 0 {
                    let h = std::thread::spawn(f);
                    Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() -> u64 + Send>
                } else {
                    let h = gort::spawn(f);
                    Box::new(move || h.join().unwrap())
                }
            })
            .collect();
        drop(rx);
        let sender = std::thread::spawn(move || {
            for i in 0..rounds {
                let mut v = i;
                while let Err(TrySendError::Full(w)) = tx.try_send(v) {
                    v = w;
                    std::thread::yield_now();
                }
            }
        });
        sender.join().unwrap();
        let sum: u64 = receivers.into_iter().map(|r| r()).sum();
        let r = u64::from(rounds);
        assert_eq!(sum, r * (r - 1) / 2, "receive futures, cap {cap}");

        // Send futures against lock-free receivers.
        let (tx, rx) = chan::<u32>(cap);
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let tx = tx.clone();
                gort::spawn(move || {
                    gort::block_on(async {
                        for i in 0..rounds {
                            tx.send_async(i).await.unwrap();
                        }
                    })
                })
            })
            .collect();
        drop(tx);
        let mut sum = 0u64;
        loop {
            match rx.try_recv() {
                Ok(v) => sum += u64::from(v),
                Err(TryRecvError::Empty) => gort::yield_now(),
                Err(TryRecvError::Closed) => break,
            }
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(sum, 2 * r * (r - 1) / 2, "send futures, cap {cap}");
    }
}
