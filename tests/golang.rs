//! Behaviours of Go's own channel tests, written afresh for gort (as crossbeam-channel's
//! tests/golang.rs does). One module per Go test, named in its comment. Go's panics on a
//! closed channel become `Err` values here, as DESIGN.md maps them.
mod common;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const PRIMES: [u64; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

// go/test/chan/sieve1.go: the concurrent prime sieve, a chain of filter goroutines.
mod sieve1 {
    use super::*;
    use gort::chan::{Receiver, Sender};

    fn generate(ch: Sender<u64>) {
        for i in 2.. {
            if ch.send(i).is_err() {
                return;
            }
        }
    }

    fn filter(input: Receiver<u64>, output: Sender<u64>, prime: u64) {
        for i in input.iter() {
            if i % prime != 0 && output.send(i).is_err() {
                return;
            }
        }
    }

    #[gort::test]
    fn sieve1() {
        let (tx, mut rx) = gort::chan::<u64>(0);
        gort::go!(generate(tx));
        let mut got = Vec::new();
        for _ in 0..PRIMES.len() {
            let prime = rx.recv().unwrap();
            got.push(prime);
            let (tx1, rx1) = gort::chan::<u64>(0);
            gort::go!(filter(rx, tx1, prime));
            rx = rx1;
        }
        assert_eq!(got, PRIMES);
        // Dropping the last receiver unwinds the whole chain: every send fails.
    }
}

// go/test/chan/sieve2.go: the sieve with a wheel and a priority queue of composites fed
// by per-prime multiple generators (here: a heap merging one channel per prime).
mod sieve2 {
    use super::*;
    use gort::chan::Receiver;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    fn multiples(p: u64) -> Receiver<u64> {
        let (tx, rx) = gort::chan::<u64>(16);
        gort::go!(move || {
            let mut m = p * p;
            while tx.send(m).is_ok() {
                m += 2 * p;
            }
        });
        rx
    }

    fn primes() -> Receiver<u64> {
        let (out, rx) = gort::chan::<u64>(16);
        gort::go!(move || {
            if out.send(2).is_err() {
                return;
            }
            // Heap of (next composite, index of its multiples channel).
            let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
            let mut chans: Vec<Receiver<u64>> = Vec::new();
            let mut n = 3;
            loop {
                let composite = matches!(heap.peek(), Some(&Reverse((c, _))) if c == n);
                if composite {
                    while let Some(&Reverse((c, i))) = heap.peek() {
                        if c != n {
                            break;
                        }
                        heap.pop();
                        heap.push(Reverse((chans[i].recv().unwrap(), i)));
                    }
                } else {
                    if out.send(n).is_err() {
                        return;
                    }
                    let m = multiples(n);
                    heap.push(Reverse((m.recv().unwrap(), chans.len())));
                    chans.push(m);
                }
                n += 2;
            }
        });
        rx
    }

    #[gort::test]
    fn sieve2() {
        let rx = primes();
        let got: Vec<u64> = rx.iter().take(1000).collect();
        assert!(got.iter().all(|&p| is_prime(p)));
        let expect: Vec<u64> = (2..).filter(|&n| is_prime(n)).take(1000).collect();
        assert_eq!(got, expect);
    }
}

// go/test/chan/fifo.go: AsynchFifo and SynchFifo.
mod fifo {
    use gort::chan::{Receiver, Sender};

    const N: usize = 10;

    #[gort::test]
    fn asynch_fifo() {
        let (tx, rx) = gort::chan::<usize>(N);
        for i in 0..N {
            tx.send(i).unwrap();
        }
        for i in 0..N {
            assert_eq!(rx.recv(), Ok(i));
        }
    }

    fn chain(ch: Receiver<usize>, val: usize, input: Receiver<usize>, out: Sender<usize>) {
        input.recv().unwrap();
        assert_eq!(ch.recv(), Ok(val));
        out.send(1).unwrap();
    }

    #[gort::test]
    fn synch_fifo() {
        let (ch_tx, ch_rx) = gort::chan::<usize>(0);
        let (start, mut input) = gort::chan::<usize>(0);
        for i in 0..N {
            let (out_tx, out_rx) = gort::chan::<usize>(0);
            gort::go!(chain(ch_rx.clone(), i, input, out_tx));
            input = out_rx;
        }
        start.send(0).unwrap();
        for i in 0..N {
            ch_tx.send(i).unwrap();
        }
        input.recv().unwrap();
    }
}

// go/test/chan/goroutines.go: a chain of 10,000 goroutines passing one value along.
mod goroutines {
    use gort::chan::{Receiver, Sender};

    fn f(left: Sender<i32>, right: Receiver<i32>) {
        left.send(right.recv().unwrap()).unwrap();
    }

    #[gort::test]
    fn goroutines() {
        let n = 10_000;
        let (leftmost_tx, leftmost_rx) = gort::chan::<i32>(0);
        let mut left = leftmost_tx;
        for _ in 0..n {
            let (right_tx, right_rx) = gort::chan::<i32>(0);
            gort::go!(f(left, right_rx));
            left = right_tx;
        }
        gort::go!(move || left.send(1).unwrap());
        assert_eq!(leftmost_rx.recv(), Ok(1));
    }
}

// go/test/chan/nonblock.go: non-blocking sends and receives with select/default, for
// unbuffered and buffered channels of several element types.
mod nonblock {
    use super::*;
    use gort::chan::{Receiver, Sender};
    use gort::select;

    const MAX_TRIES: usize = 10_000;

    fn receiver<T: PartialEq + std::fmt::Debug>(c: Receiver<T>, want: T, sync: Sender<()>) {
        assert_eq!(c.recv(), Ok(want));
        sync.send(()).unwrap();
    }

    fn sender<T>(c: Sender<T>, v: T, sync: Sender<()>) {
        c.send(v).unwrap();
        sync.send(()).unwrap();
    }

    fn check<T: Clone + PartialEq + std::fmt::Debug + Send + 'static>(a: T, b: T) {
        for buffer in [0, 1, 2] {
            let (tx, rx) = gort::chan::<T>(buffer);
            let (stx, srx) = gort::chan::<()>(0);
            select! {
                recv(rx) -> _ => panic!("recv on empty channel"),
                default => {}
            }
            gort::go!(receiver(rx.clone(), a.clone(), stx.clone()));
            let mut tries = 0;
            loop {
                let sent = select! {
                    send(tx, a.clone()) -> r => { r.unwrap(); true },
                    default => false,
                };
                if sent {
                    break;
                }
                tries += 1;
                assert!(tries < MAX_TRIES, "send never became ready");
                gort::time::sleep(Duration::from_micros(100));
            }
            srx.recv().unwrap();
            gort::go!(sender(tx.clone(), b.clone(), stx.clone()));
            if buffer > 0 {
                srx.recv().unwrap();
            }
            let mut tries = 0;
            loop {
                let got = select! {
                    recv(rx) -> v => { assert_eq!(v, Ok(b.clone())); true },
                    default => false,
                };
                if got {
                    break;
                }
                tries += 1;
                assert!(tries < MAX_TRIES, "recv never became ready");
                gort::time::sleep(Duration::from_micros(100));
            }
            if buffer == 0 {
                srx.recv().unwrap();
            }
        }
    }

    #[gort::test]
    fn nonblock() {
        check(123i32, 234i32);
        check(123i64, 234i64);
        check(true, false);
        check("hello".to_string(), "hello again".to_string());
    }
}

// go/test/chan/select3.go: the full matrix of which operations block and which do not.
mod select3 {
    use super::*;
    use gort::chan::{Receiver, Sender};
    use gort::select;

    /// Runs `f` in a goroutine; `blocks` says whether it must still be blocked after a
    /// while (checked by a timeout) or must finish.
    fn test_block(blocks: bool, f: impl FnOnce() + Send + 'static) {
        let (tx, rx) = gort::chan::<()>(0);
        gort::go!(move || {
            f();
            let _ = tx.send(());
        });
        let finished = rx
            .recv_timeout(ms(if blocks { 20 } else { 10_000 }))
            .is_ok();
        assert_eq!(
            finished,
            !blocks,
            "expected the operation to {}",
            if blocks { "block" } else { "not block" }
        );
    }

    fn nil_rx() -> Option<Receiver<i32>> {
        None
    }
    fn nil_tx() -> Option<Sender<i32>> {
        None
    }

    #[gort::test]
    fn select3() {
        // Nil (None) channels block in select.
        test_block(true, || {
            let c = nil_rx();
            select! { recv(c) -> _ => {} }
        });
        test_block(true, || {
            let c = nil_tx();
            select! { send(c, 1) -> _ => {} }
        });
        // Receiving from or sending to a closed channel never blocks.
        test_block(false, || {
            let (tx, rx) = gort::chan::<i32>(0);
            tx.close();
            assert!(rx.recv().is_err());
        });
        test_block(false, || {
            let (tx, rx) = gort::chan::<i32>(0);
            tx.close();
            select! { recv(rx) -> v => assert!(v.is_err()) }
        });
        test_block(false, || {
            let (tx, _rx) = gort::chan::<i32>(0);
            tx.close();
            assert!(tx.send(1).is_err()); // Go: panic, no block
        });
        test_block(false, || {
            let (tx, _rx) = gort::chan::<i32>(0);
            tx.close();
            select! { send(tx, 1) -> r => assert!(r.is_err()) }
        });
        test_block(false, || {
            let (tx, rx) = gort::chan::<i32>(1);
            tx.send(1).unwrap();
            tx.close();
            assert_eq!(rx.recv(), Ok(1));
            assert!(rx.recv().is_err());
        });
        // Empty (unbuffered or buffered) channels block receivers; full ones block senders.
        for cap in [0, 1] {
            test_block(true, move || {
                let (_tx, rx) = gort::chan::<i32>(cap);
                let _ = rx.recv();
            });
            test_block(true, move || {
                let (_tx, rx) = gort::chan::<i32>(cap);
                select! { recv(rx) -> _ => {} }
            });
            test_block(true, move || {
                let (tx, _rx) = gort::chan::<i32>(cap);
                for i in 0..=cap {
                    let _ = tx.send(i as i32);
                }
            });
            test_block(true, move || {
                let (tx, _rx) = gort::chan::<i32>(cap);
                for _ in 0..cap {
                    tx.send(0).unwrap();
                }
                select! { send(tx, 1) -> _ => {} }
            });
        }
        // A buffered channel with room or a value does not block.
        test_block(false, || {
            let (tx, _rx) = gort::chan::<i32>(1);
            tx.send(1).unwrap();
        });
        test_block(false, || {
            let (tx, rx) = gort::chan::<i32>(1);
            tx.send(1).unwrap();
            select! { recv(rx) -> v => assert_eq!(v, Ok(1)) }
        });
        test_block(false, || {
            let (tx, _rx) = gort::chan::<i32>(1);
            select! { send(tx, 1) -> r => r.unwrap() }
        });
        // Select with default never blocks, whatever the cases.
        test_block(false, || {
            let (c, d) = (nil_rx(), nil_tx());
            select! { recv(c) -> _ => {}, send(d, 1) -> _ => {}, default => {} }
        });
        test_block(false, || {
            let (tx, rx) = gort::chan::<i32>(0);
            select! { recv(rx) -> _ => {}, send(tx, 1) -> _ => {}, default => {} }
        });
        // Empty select blocks.
        test_block(true, || select! {});
        // A select with one ready case among blocked ones does not block.
        test_block(false, || {
            let (_t0, r0) = gort::chan::<i32>(0);
            let (t1, r1) = gort::chan::<i32>(1);
            t1.send(5).unwrap();
            let c = nil_rx();
            select! {
                recv(r0) -> _ => unreachable!(),
                recv(c) -> _ => unreachable!(),
                recv(r1) -> v => assert_eq!(v, Ok(5)),
            }
        });
    }
}

// go/test/chan/select6.go: issue 2075 — a select that failed must not corrupt the wait
// queues of channels that have several waiters.
mod select6 {
    use gort::select;

    #[gort::test]
    fn select6() {
        let (c1t, c1r) = gort::chan::<bool>(0);
        let (c2t, c2r) = gort::chan::<bool>(0);
        let (c3t, c3r) = gort::chan::<bool>(0);
        let r = c1r.clone();
        gort::go!(move || {
            r.recv().unwrap();
        });
        let r = c1r.clone();
        gort::go!(move || {
            select! {
                recv(r) -> _ => panic!("dummy"),
                recv(c2r) -> _ => c3t.send(true).unwrap(),
            }
            r.recv().unwrap();
        });
        gort::go!(move || c2t.send(true).unwrap());
        c3r.recv().unwrap();
        c1t.send(true).unwrap();
        c1t.send(true).unwrap();
    }
}

// go/test/chan/select7.go: every combination of plain/select senders and receivers, with
// the receiver discarding the value.
mod select7 {
    use gort::chan::Receiver;
    use gort::select;

    fn recv1(c: Receiver<i32>) {
        let _ = c.recv();
    }
    fn recv2(c: Receiver<i32>) {
        select! { recv(c) -> _ => {} }
    }
    fn recv3(c: Receiver<i32>) {
        let (_t2, c2) = gort::chan::<i32>(0);
        select! { recv(c) -> _ => {}, recv(c2) -> _ => {} }
    }

    fn send1(recv: fn(Receiver<i32>)) {
        let (t, r) = gort::chan::<i32>(0);
        gort::go!(recv(r));
        gort::yield_now();
        t.send(1).unwrap();
    }
    fn send2(recv: fn(Receiver<i32>)) {
        let (t, r) = gort::chan::<i32>(0);
        gort::go!(recv(r));
        gort::yield_now();
        select! { send(t, 1) -> r => r.unwrap() }
    }
    fn send3(recv: fn(Receiver<i32>)) {
        let (t, r) = gort::chan::<i32>(0);
        gort::go!(recv(r));
        gort::yield_now();
        let (t2, _r2) = gort::chan::<i32>(0);
        select! { send(t, 1) -> r => r.unwrap(), send(t2, 1) -> _ => unreachable!() }
    }

    #[gort::test]
    fn select7() {
        for recv in [recv1 as fn(Receiver<i32>), recv2, recv3] {
            send1(recv);
            send2(recv);
            send3(recv);
        }
    }
}

// go/test/chan/doubleselect.go: two cases of one select must never both run (no value is
// delivered twice) under heavy contention.
mod doubleselect {
    use gort::chan::{Receiver, Sender};
    use gort::select;
    use std::collections::HashSet;

    fn sender(
        n: usize,
        c1: Sender<usize>,
        c2: Sender<usize>,
        c3: Sender<usize>,
        c4: Sender<usize>,
    ) {
        for i in 0..n {
            select! {
                send(c1, i) -> r => r.unwrap(),
                send(c2, i) -> r => r.unwrap(),
                send(c3, i) -> r => r.unwrap(),
                send(c4, i) -> r => r.unwrap(),
            }
        }
        // Dropping the Senders closes c1..c4.
    }

    fn mux(out: Sender<usize>, input: Receiver<usize>) {
        for v in input.iter() {
            out.send(v).unwrap();
        }
    }

    #[gort::test]
    fn doubleselect() {
        let n = super::common::stress(10_000);
        let (t1, r1) = gort::chan::<usize>(0);
        let (t2, r2) = gort::chan::<usize>(0);
        let (t3, r3) = gort::chan::<usize>(0);
        let (t4, r4) = gort::chan::<usize>(0);
        let (cmux_t, cmux_r) = gort::chan::<usize>(0);
        gort::go!(sender(n, t1, t2, t3, t4));
        for r in [r1, r2, r3, r4] {
            gort::go!(mux(cmux_t.clone(), r));
        }
        drop(cmux_t); // cmux closes when the four muxes finish
        let mut seen = HashSet::new();
        for v in cmux_r.iter() {
            assert!(seen.insert(v), "got duplicate value {v}");
        }
        assert_eq!(seen.len(), n);
    }
}

// go/test/zerosize.go (channel part) and runtime's zero-size element tests: channels of
// zero-sized values work, buffered and unbuffered, and need no per-element storage.
mod zerosize {
    #[gort::test]
    fn zerosize() {
        let (t, r) = gort::chan::<[u8; 0]>(0);
        gort::go!(move || t.send([]).unwrap());
        assert_eq!(r.recv(), Ok([]));
        let (t, r) = gort::chan::<()>(usize::MAX / 2);
        for _ in 0..10_000 {
            t.send(()).unwrap();
        }
        assert_eq!(r.len(), 10_000);
        drop(t);
        assert_eq!(r.iter().count(), 10_000);
        #[derive(Debug, PartialEq)]
        struct Empty;
        let (t, r) = gort::chan::<Empty>(1);
        t.send(Empty).unwrap();
        assert_eq!(r.recv(), Ok(Empty));
    }
}

// go/test/closedchan.go: every way of receiving from and sending to a closed channel,
// synchronous and asynchronous, plain and in select, plus range.
mod closedchan {
    use gort::chan::{RecvError, TryRecvError, TrySendError};
    use gort::select;

    fn check(cap: usize) {
        // Receive: buffered values first, then "closed" for ever.
        let (t, r) = gort::chan::<i32>(cap);
        if cap > 0 {
            t.send(1).unwrap();
        }
        t.close();
        if cap > 0 {
            assert_eq!(r.len(), 1);
            assert_eq!(r.recv(), Ok(1));
        }
        for _ in 0..3 {
            assert_eq!(r.recv(), Err(RecvError));
            assert_eq!(r.try_recv(), Err(TryRecvError::Closed));
            select! { recv(r) -> v => assert_eq!(v, Err(RecvError)) }
            select! { recv(r) -> v => assert_eq!(v, Err(RecvError)), default => panic!("blocked") }
        }
        assert_eq!(
            r.iter().count(),
            0,
            "range over a closed channel ends at once"
        );
        // Send: Go panics; gort hands the value back, never blocks.
        assert_eq!(t.send(2).unwrap_err().0, 2);
        assert_eq!(t.try_send(3), Err(TrySendError::Closed(3)));
        select! { send(t, 4) -> r => assert_eq!(r.unwrap_err().0, 4), default => panic!("blocked") }
        assert_eq!(r.len(), 0);
        assert_eq!(r.cap(), cap);
        // Closing twice panics with Go's words.
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.close())).unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"close of closed channel"));
    }

    #[gort::test]
    fn closedchan() {
        check(0);
        check(1);
        check(10);
    }

    #[gort::test]
    fn close_unblocks_a_select() {
        let (t, r) = gort::chan::<i32>(0);
        let (_t2, r2) = gort::chan::<i32>(0);
        let h = gort::go!(move || select! { recv(r) -> v => v, recv(r2) -> v => v });
        gort::time::sleep(super::ms(5));
        t.close();
        assert_eq!(h.join().unwrap(), Err(RecvError));
    }
}

// go/test/chancap.go: len and cap of channels; a capacity too large is refused with a clear
// panic (Go: "makechan: size out of range") before anything is allocated.
mod chancap {
    #[gort::test]
    fn chancap() {
        let (t, r) = gort::chan::<i32>(10);
        assert_eq!((r.len(), r.cap()), (0, 10));
        for i in 0..3 {
            t.send(i).unwrap();
        }
        assert_eq!((t.len(), t.cap()), (3, 10));
        let (t, _r) = gort::chan::<i32>(0);
        assert_eq!((t.len(), t.cap()), (0, 0));
    }

    #[test]
    #[should_panic(expected = "too large to allocate")]
    fn chancap_out_of_range() {
        let _ = gort::chan::<u64>(usize::MAX / 4);
    }
}

// runtime/chan_test.go TestChan: every capacity 0..200: blocking, non-blocking, close, FIFO,
// 4x1000 multi-producer/consumer integrity, len/cap.
mod test_chan {
    use super::*;
    use gort::select;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[gort::test]
    fn test_chan() {
        let n = 200;
        for cap in 0..n {
            {
                // Receive from an empty channel blocks.
                let (t, r) = gort::chan::<i32>(cap);
                let recv1 = Arc::new(AtomicBool::new(false));
                let r1 = recv1.clone();
                let rr = r.clone();
                gort::go!(move || {
                    let _ = rr.recv();
                    r1.store(true, Ordering::SeqCst);
                });
                let recv2 = Arc::new(AtomicBool::new(false));
                let r2 = recv2.clone();
                let rr = r.clone();
                gort::go!(move || {
                    let _ = rr.recv();
                    r2.store(true, Ordering::SeqCst);
                });
                gort::time::sleep(ms(1));
                assert!(!recv1.load(Ordering::SeqCst) && !recv2.load(Ordering::SeqCst));
                // A non-blocking receive does not block.
                select! { recv(r) -> _ => panic!("cap {cap}: received from empty"), default => {} }
                t.send(0).unwrap();
                t.send(0).unwrap();
            }
            {
                // Send to a full channel blocks.
                let (t, r) = gort::chan::<i32>(cap);
                for i in 0..cap {
                    t.send(i as i32).unwrap();
                }
                let sent = Arc::new(AtomicBool::new(false));
                let s = sent.clone();
                let tt = t.clone();
                gort::go!(move || {
                    tt.send(0).unwrap();
                    s.store(true, Ordering::SeqCst);
                });
                gort::time::sleep(ms(1));
                assert!(
                    !sent.load(Ordering::SeqCst),
                    "cap {cap}: send to full did not block"
                );
                select! { send(t, 0) -> _ => panic!("cap {cap}: sent to full"), default => {} }
                r.recv().unwrap();
            }
            {
                // Receive the buffer, then Err, from a closed channel.
                let (t, r) = gort::chan::<i32>(cap);
                for i in 0..cap {
                    t.send(i as i32).unwrap();
                }
                t.close();
                for i in 0..cap {
                    assert_eq!(r.recv(), Ok(i as i32));
                }
                assert!(r.recv().is_err());
                assert!(r.recv().is_err());
            }
            {
                // Close unblocks a receive.
                let (t, r) = gort::chan::<i32>(cap);
                let (dt, dr) = gort::chan::<bool>(0);
                gort::go!(move || dt.send(r.recv().is_err()).unwrap());
                gort::time::sleep(ms(1));
                t.close();
                assert!(dr.recv().unwrap());
            }
            {
                // 100 values arrive in FIFO order.
                let (t, r) = gort::chan::<i32>(cap);
                gort::go!(move || {
                    for i in 0..100 {
                        t.send(i).unwrap();
                    }
                });
                for i in 0..100 {
                    assert_eq!(r.recv(), Ok(i));
                }
            }
            {
                // 4 producers x 1000 values, 4 consumers: everything arrives exactly once.
                const P: usize = 4;
                const L: usize = 1000;
                let (t, r) = gort::chan::<usize>(cap);
                for _ in 0..P {
                    let t = t.clone();
                    gort::go!(move || {
                        for i in 0..L {
                            t.send(i).unwrap();
                        }
                    });
                }
                let (dt, dr) = gort::chan::<HashMap<usize, usize>>(0);
                for _ in 0..P {
                    let (r, dt) = (r.clone(), dt.clone());
                    gort::go!(move || {
                        let mut m = HashMap::new();
                        for _ in 0..L {
                            *m.entry(r.recv().unwrap()).or_insert(0) += 1;
                        }
                        dt.send(m).unwrap();
                    });
                }
                let mut all: HashMap<usize, usize> = HashMap::new();
                for _ in 0..P {
                    for (k, v) in dr.recv().unwrap() {
                        *all.entry(k).or_insert(0) += v;
                    }
                }
                assert_eq!(all.len(), L);
                assert!(all.values().all(|&v| v == P));
            }
            {
                // len and cap.
                let (t, r) = gort::chan::<i32>(cap);
                assert_eq!((r.len(), r.cap()), (0, cap));
                for i in 0..cap {
                    t.send(i as i32).unwrap();
                }
                assert_eq!((r.len(), r.cap()), (cap, cap));
            }
        }
    }
}

// runtime/chan_test.go TestMultiConsumer: 23 workers, 271,828 items; count and sum.
mod test_multi_consumer {
    #[gort::test]
    fn test_multi_consumer() {
        const NWORK: usize = 23;
        let niter = 271_828;
        let pn = [2usize, 3, 7, 11, 13, 17, 19, 23, 27, 31];
        let (qt, qr) = gort::chan::<usize>(NWORK * 3);
        let (rt, rr) = gort::chan::<usize>(NWORK * 3);
        for w in 0..NWORK {
            let (qr, rt) = (qr.clone(), rt.clone());
            gort::go!(move || {
                for v in qr.iter() {
                    // Mess with the FIFO-ish nature of range.
                    if pn[w % pn.len()] == v {
                        gort::yield_now();
                    }
                    rt.send(v).unwrap();
                }
                // The last worker's Sender drop closes r: no more results.
            });
        }
        drop(rt);
        let expect: usize = (0..niter).map(|i| pn[i % pn.len()]).sum();
        gort::go!(move || {
            for i in 0..niter {
                qt.send(pn[i % pn.len()]).unwrap();
            }
            // Dropping qt closes q: no more work.
        });
        let (mut n, mut s) = (0, 0);
        for v in rr.iter() {
            n += 1;
            s += v;
        }
        assert_eq!((n, s), (niter, expect));
    }
}

// go/test/chanlinear.go: waking one of n goroutines blocked in a select is O(1), so n
// wake-ups cost O(n), not O(n^2) (each select leaves an entry on a shared channel).
mod chanlinear {
    use std::time::{Duration, Instant};

    fn run(n: usize) -> Duration {
        const MESSAGES: usize = 10;
        let (_ct, cr) = gort::chan::<bool>(0); // the global channel, never ready
        let mut senders = Vec::new();
        let mut hs = Vec::new();
        for _ in 0..n {
            let (dt, dr) = gort::chan::<bool>(0);
            senders.push(dt);
            let cr = cr.clone();
            hs.push(gort::go!(move || {
                for _ in 0..MESSAGES {
                    gort::select! {
                        recv(cr) -> _ => {},
                        recv(dr) -> _ => {},
                    }
                }
            }));
        }
        let t = Instant::now();
        for _ in 0..MESSAGES {
            for d in &senders {
                d.send(true).unwrap();
            }
        }
        let el = t.elapsed();
        for h in hs {
            h.join().unwrap();
        }
        el
    }

    #[gort::test]
    fn chanlinear() {
        // Like Go's checkLinear: t(2n) should be about 2 t(n); allow 3x, retry on noise.
        let mut n = 500;
        for attempt in 0..10 {
            let t1 = run(n);
            let t2 = run(2 * n);
            if t2 < 3 * t1 {
                return;
            }
            if n < 2000 {
                n *= 2;
            }
            eprintln!("chanlinear attempt {attempt}: n={n} t1={t1:?} t2={t2:?}");
        }
        panic!("waking one of n selects is not O(1)");
    }
}
