//! select!: fairness, default, nil (None) cases, self-select, duplicate channels, stress,
//! expression / control-flow use, the dynamic Select.
mod common;

use std::time::Duration;

use gort::chan;
use gort::chan::{Receiver, RecvError, Select, SendError, Sender};
use gort::select;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

#[gort::test]
fn fairness_two_of_four_ready() {
    let (tx0, rx0) = chan::<u8>(1);
    let (_tx1, rx1) = chan::<u8>(1);
    let (tx2, rx2) = chan::<u8>(1);
    let (_tx3, rx3) = chan::<u8>(1);
    let n = 10_000;
    let mut counts = [0usize; 4];
    for _ in 0..n {
        tx0.try_send(0).ok();
        tx2.try_send(2).ok();
        let i = select! {
            recv(rx0) -> _ => 0,
            recv(rx1) -> _ => 1,
            recv(rx2) -> _ => 2,
            recv(rx3) -> _ => 3,
        };
        counts[i] += 1;
    }
    assert_eq!(counts[1] + counts[3], 0);
    for i in [0, 2] {
        let share = counts[i] as f64 / n as f64;
        assert!(
            (0.475..=0.525).contains(&share),
            "case {i} chosen {share:.3} of the time: {counts:?}"
        );
    }
}

#[gort::test]
fn default_never_taken_when_a_case_is_ready() {
    let (tx, rx) = chan::<u32>(1);
    let (_tx2, rx2) = chan::<u32>(0);
    tx.send(1).unwrap();
    for i in 0..100_000u32 {
        let got = select! {
            recv(rx2) -> _ => unreachable!(),
            recv(rx) -> v => v.unwrap(),
            default => panic!("default taken at iteration {i} although a case was ready"),
        };
        tx.send(got + 1).unwrap();
    }
}

#[gort::test]
fn default_taken_when_nothing_ready() {
    let (_tx, rx) = chan::<u32>(0);
    let (tx2, _rx2) = chan::<u32>(0);
    let mut defaults = 0;
    for _ in 0..100 {
        select! {
            recv(rx) -> _ => unreachable!(),
            send(tx2, 1) -> _ => unreachable!(),
            default => defaults += 1,
        }
    }
    assert_eq!(defaults, 100);
}

#[gort::test]
fn self_select_never_pairs_with_itself() {
    // One goroutine selecting on both ends of an unbuffered channel must not talk to itself.
    let (tx, rx) = chan::<i32>(0);
    let r = select! {
        send(tx, 1) -> _ => "sent",
        recv(rx) -> _ => "received",
        default(Duration::from_millis(20)) => "timeout",
    };
    assert_eq!(r, "timeout");
    // Two goroutines doing the same self-select do pair with each other.
    let n = 1000;
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (tx, rx) = (tx.clone(), rx.clone());
            gort::go!(move || {
                let (mut sent, mut got) = (0, 0);
                for _ in 0..n {
                    select! {
                        send(tx, 1) -> r => { r.unwrap(); sent += 1 },
                        recv(rx) -> v => { v.unwrap(); got += 1 },
                    }
                }
                (sent, got)
            })
        })
        .collect();
    let r: Vec<(i32, i32)> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(r[0].0 + r[1].0, n);
    assert_eq!(r[0].1 + r[1].1, n);
    assert_eq!(r[0].0, r[1].1);
}

#[gort::test]
fn duplicate_channel_in_two_cases() {
    let (tx, rx) = chan::<i32>(0);
    let n = 4000;
    let h = gort::go!(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let (mut a, mut b) = (0, 0);
    for i in 0..n {
        select! {
            recv(rx) -> v => { assert_eq!(v, Ok(i)); a += 1 },
            recv(rx) -> v => { assert_eq!(v, Ok(i)); b += 1 },
        }
    }
    h.join().unwrap();
    assert_eq!(a + b, n);
    assert!(a > n / 10 && b > n / 10, "both cases are used: {a} {b}");
}

#[gort::test]
fn none_turns_a_case_off() {
    let (tx, rx) = chan::<i32>(1);
    tx.send(1).unwrap();
    let off: Option<&Receiver<i32>> = None;
    let on = Some(&rx);
    for _ in 0..50 {
        let r = select! {
            recv(off) -> _ => "off",
            default => "default",
        };
        assert_eq!(r, "default");
    }
    let r = select! {
        recv(off) -> _ => "off",
        recv(on) -> v => { assert_eq!(v, Ok(1)); "on" },
    };
    assert_eq!(r, "on");
    let none_tx: Option<Sender<i32>> = None;
    let r = select! {
        send(none_tx, 5) -> _ => "sent",
        default(Duration::from_millis(5)) => "timeout",
    };
    assert_eq!(r, "timeout");
}

#[gort::test]
fn send_on_closed_channel_is_ready_with_err() {
    let (tx, rx) = chan::<String>(0);
    tx.close();
    let r = select! {
        send(tx, "v".to_string()) -> r => r,
    };
    assert_eq!(r, Err(SendError("v".to_string())));
    let r = select! {
        recv(rx) -> r => r,
    };
    assert_eq!(r, Err(RecvError));
}

#[gort::test]
fn send_when_receivers_gone_is_ready_with_err() {
    let (tx, rx) = chan::<i32>(0);
    let h = gort::go!(move || select! { send(tx, 7) -> r => r });
    gort::time::sleep(Duration::from_millis(5));
    drop(rx);
    assert_eq!(h.join().unwrap(), Err(SendError(7)));
}

#[gort::test]
fn operands_and_values_evaluated_once_in_order() {
    let (tx, rx) = chan::<i32>(1);
    let mut log = Vec::new();
    let mut note = |s: &'static str| log.push(s);
    tx.send(1).unwrap();
    let r = select! {
        recv({ note("op0"); &rx }) -> v => v.unwrap(),
        send({ note("op1"); &tx }, { note("val1"); 2 }) -> _ => 2,
    };
    assert!(r == 1 || r == 2);
    assert_eq!(log, ["op0", "op1", "val1"]);
}

#[gort::test]
fn is_an_expression_and_control_flow_works() {
    let (tx, rx) = chan::<i32>(10);
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut sum = 0;
    loop {
        select! {
            recv(rx) -> v => match v {
                Ok(v) if v % 2 == 0 => continue,
                Ok(v) => sum += v,
                Err(_) => break,
            },
        }
    }
    assert_eq!(sum, 1 + 3 + 5 + 7 + 9);
    fn early(rx: &Receiver<i32>) -> Option<i32> {
        select! {
            recv(rx) -> v => return v.ok().map(|v| v * 10),
        };
        #[allow(unreachable_code)]
        None
    }
    let (tx, rx) = chan::<i32>(1);
    tx.send(4).unwrap();
    assert_eq!(early(&rx), Some(40));
    fn with_q(rx: &Receiver<i32>) -> Result<i32, RecvError> {
        let v = select! { recv(rx) -> v => v? };
        Ok(v + 1)
    }
    tx.send(1).unwrap();
    assert_eq!(with_q(&rx), Ok(2));
    drop(tx);
    assert_eq!(with_q(&rx), Err(RecvError));
}

#[gort::test]
fn timeout_with_after() {
    let (_tx, rx) = chan::<i32>(0);
    let t = std::time::Instant::now();
    let r = select! {
        recv(rx) -> _ => "value",
        recv(gort::time::after(Duration::from_millis(20))) -> _ => "timeout",
    };
    assert_eq!(r, "timeout");
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[gort::test]
fn blocking_select_woken_by_each_case() {
    for which in 0..3 {
        let (tx0, rx0) = chan::<i32>(0);
        let (tx1, rx1) = chan::<i32>(0);
        let (tx2, rx2) = chan::<i32>(1);
        tx2.send(0).unwrap(); // full: a send case waits
        let h = gort::go!(move || {
            select! {
                recv(rx0) -> v => (0, v.unwrap()),
                recv(rx1) -> v => (1, v.unwrap()),
                send(tx2, 5) -> r => { r.unwrap(); (2, 5) },
            }
        });
        gort::time::sleep(Duration::from_millis(3));
        match which {
            0 => tx0.send(10).unwrap(),
            1 => tx1.send(11).unwrap(),
            _ => assert_eq!(rx2.recv(), Ok(0)),
        }
        let got = h.join().unwrap();
        assert_eq!(got.0, which);
        if which == 2 {
            assert_eq!(rx2.recv(), Ok(5));
        } else {
            assert_eq!(got.1, 10 + which);
        }
        // The other cases were not consumed.
        if which != 0 {
            assert!(tx0.try_send(1).is_err());
        }
    }
}

#[test]
fn select_from_plain_threads() {
    let (tx, rx) = chan::<i32>(0);
    let (qtx, qrx) = chan::<()>(0);
    let t = std::thread::spawn(move || {
        let mut n = 0;
        loop {
            select! {
                recv(rx) -> v => n += v.unwrap(),
                recv(qrx) -> _ => return n,
            }
        }
    });
    let g = gort::go!(move || {
        for i in 0..100 {
            tx.send(i).unwrap();
        }
        qtx.send(()).unwrap();
    });
    g.join().unwrap();
    assert_eq!(t.join().unwrap(), 4950);
}

#[gort::test]
fn stress_with_cases_turned_off_as_channels_finish() {
    let per = common::stress(3000);
    let k = 4;
    let mut rxs: Vec<Option<Receiver<usize>>> = Vec::new();
    for c in 0..k {
        let (tx, rx) = chan::<usize>(c % 2); // mix unbuffered and buffered
        rxs.push(Some(rx));
        gort::go!(move || {
            for i in 0..per {
                tx.send(c * per + i).unwrap();
            }
        });
    }
    let (otx, orx) = chan::<usize>(0);
    let (stx, srx) = chan::<usize>(0);
    let consumer = gort::go!(move || orx.iter().sum::<usize>());
    let mut pending: Option<usize> = None;
    let mut sent = 0;
    let mut open = k;
    while open > 0 || pending.is_some() {
        let out = pending.map(|_| &otx);
        let v = pending.unwrap_or(0);
        select! {
            recv(rxs[0]) -> r => match r { Ok(x) => pending = Some(pending.unwrap_or(0) + x), Err(_) => { rxs[0] = None; open -= 1 } },
            recv(rxs[1]) -> r => match r { Ok(x) => pending = Some(pending.unwrap_or(0) + x), Err(_) => { rxs[1] = None; open -= 1 } },
            recv(rxs[2]) -> r => match r { Ok(x) => pending = Some(pending.unwrap_or(0) + x), Err(_) => { rxs[2] = None; open -= 1 } },
            recv(rxs[3]) -> r => match r { Ok(x) => pending = Some(pending.unwrap_or(0) + x), Err(_) => { rxs[3] = None; open -= 1 } },
            send(out, v) -> r => { r.unwrap(); sent += v; pending = None },
        }
    }
    drop(otx);
    drop(stx);
    assert!(srx.recv().is_err());
    let total = k * per;
    assert_eq!(sent, total * (total - 1) / 2);
    assert_eq!(consumer.join().unwrap(), sent);
}

#[gort::test]
fn many_selectors_many_senders() {
    let n = common::stress(5000);
    let (tx_a, rx_a) = chan::<usize>(0);
    let (tx_b, rx_b) = chan::<usize>(3);
    let (done_tx, done_rx) = chan::<usize>(0);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (ra, rb, d) = (rx_a.clone(), rx_b.clone(), done_rx.clone());
            gort::go!(move || {
                let mut s = 0;
                loop {
                    select! {
                        recv(ra) -> v => s += v.unwrap(),
                        recv(rb) -> v => s += v.unwrap(),
                        recv(d) -> _ => return s,
                    }
                }
            })
        })
        .collect();
    let senders: Vec<_> = (0..2)
        .map(|j| {
            let (a, b) = (tx_a.clone(), tx_b.clone());
            gort::go!(move || {
                for i in 0..n {
                    if (i + j) % 2 == 0 {
                        a.send(i).unwrap()
                    } else {
                        b.send(i).unwrap()
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    // Drain what's buffered before telling workers to stop: wait for b to empty.
    while !rx_b.is_empty() {
        gort::time::sleep(Duration::from_millis(1));
    }
    drop(done_tx);
    let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(total, 2 * n * (n - 1) / 2);
}

#[gort::test]
fn empty_select_with_only_default() {
    let r = select! { default => 5 };
    assert_eq!(r, 5);
}

#[test]
fn empty_select_blocks_forever() {
    if common::is_child("empty_select_blocks_forever") {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            println!("still blocked");
            std::process::exit(0);
        });
        select! {}
    }
    let out = common::run_child("empty_select_blocks_forever", &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("still blocked"));
}

#[gort::test]
fn dynamic_select_fan_in() {
    let k = 8;
    let n = 200;
    let mut rxs = Vec::new();
    for c in 0..k {
        let (tx, rx) = chan::<usize>(c % 3);
        rxs.push(rx);
        gort::go!(move || {
            for i in 0..n {
                tx.send(c * n + i).unwrap();
            }
        });
    }
    let mut sel = Select::new();
    for rx in &rxs {
        sel.recv(rx);
    }
    let mut open = k;
    let mut sum = 0;
    let mut count = 0;
    while open > 0 {
        let op = sel.select();
        let i = op.index();
        match op.recv(&rxs[i]) {
            Ok(v) => {
                sum += v;
                count += 1
            }
            Err(_) => {
                sel.remove(i);
                open -= 1;
            }
        }
    }
    assert_eq!(count, k * n);
    assert_eq!(sum, (k * n) * (k * n - 1) / 2);
}

#[gort::test]
fn dynamic_select_send_and_timeouts() {
    let (tx, rx) = chan::<i32>(0);
    let (_tx2, rx2) = chan::<i32>(0);
    let mut sel = Select::new();
    let si = sel.send(&tx);
    let ri = sel.recv(&rx2);
    assert!(sel.try_select().is_err());
    assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    assert!(sel.try_ready().is_err());
    let h = gort::go!(move || rx.recv());
    let op = sel.select();
    assert_eq!(op.index(), si);
    op.send(&tx, 42).unwrap();
    assert_eq!(h.join().unwrap(), Ok(42));
    sel.remove(si);
    assert!(sel.ready_timeout(Duration::from_millis(5)).is_err());
    let _ = ri;
}

#[test]
#[should_panic(expected = "no operation with index")]
fn dynamic_select_remove_twice_panics() {
    let (_tx, rx) = chan::<i32>(0);
    let mut sel = Select::new();
    let i = sel.recv(&rx);
    sel.remove(i);
    sel.remove(i);
}

#[gort::test]
fn select_timeouts_racing_with_peers_lose_nothing() {
    let n = common::stress(2000);
    let (tx1, rx1) = chan::<usize>(0);
    let (tx2, rx2) = chan::<usize>(0);
    let producer = gort::go!(move || {
        let mut delivered = Vec::new();
        for v in 0..n {
            let ok = select! {
                send(tx1, v) -> r => r.is_ok(),
                send(tx2, v) -> r => r.is_ok(),
                default(Duration::from_micros(40)) => false,
            };
            if ok {
                delivered.push(v);
            }
        }
        delivered
    });
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (rx1, rx2) = (rx1.clone(), rx2.clone());
            gort::go!(move || {
                let mut got = Vec::new();
                let mut closed = 0;
                while closed < 2 {
                    select! {
                        recv(rx1) -> v => match v { Ok(v) => got.push(v), Err(_) => closed += 1 },
                        recv(rx2) -> v => match v { Ok(v) => got.push(v), Err(_) => closed += 1 },
                        default(Duration::from_micros(30)) => {}
                    }
                    if closed > 0 {
                        // Both close together (the producer drops both senders).
                        if rx1.is_closed() && rx2.is_closed() && rx1.is_empty() && rx2.is_empty() {
                            while let Ok(v) = rx1.try_recv() {
                                got.push(v)
                            }
                            while let Ok(v) = rx2.try_recv() {
                                got.push(v)
                            }
                            break;
                        }
                    }
                }
                got
            })
        })
        .collect();
    let mut delivered = producer.join().unwrap();
    let mut got: Vec<usize> = consumers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    delivered.sort();
    got.sort();
    assert_eq!(delivered, got);
}

#[gort::test]
fn dynamic_select_many_consumers() {
    let n = common::stress(3000);
    let (tx_a, rx_a) = chan::<usize>(0);
    let (tx_b, rx_b) = chan::<usize>(2);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (ra, rb) = (rx_a.clone(), rx_b.clone());
            gort::go!(move || {
                let mut sum = 0;
                let mut sel = Select::new();
                let ia = sel.recv(&ra);
                let ib = sel.recv(&rb);
                let mut open = 2;
                while open > 0 {
                    let op = sel.select();
                    let r = if op.index() == ia {
                        op.recv(&ra)
                    } else {
                        op.recv(&rb)
                    };
                    match r {
                        Ok(v) => sum += v,
                        Err(_) => {
                            open -= 1;
                            let i = if rb.is_closed() && rb.is_empty() {
                                ib
                            } else {
                                ia
                            };
                            sel = Select::new();
                            if i == ia {
                                sel.recv(&rb);
                            } else {
                                sel.recv(&ra);
                            }
                            if open == 1 {
                                // Only one left: finish it plainly.
                                let rest = if i == ia { &rb } else { &ra };
                                sum += rest.iter().sum::<usize>();
                                open = 0;
                            }
                        }
                    }
                }
                sum
            })
        })
        .collect();
    for i in 0..n {
        if i % 2 == 0 {
            tx_a.send(i).unwrap()
        } else {
            tx_b.send(i).unwrap()
        }
    }
    drop(tx_a);
    drop(tx_b);
    let total: usize = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, n * (n - 1) / 2);
}

#[gort::test]
fn dynamic_select_over_many_channels() {
    // More cases than the on-stack order holds (16) and than one RNG draw shuffles (20).
    let k = 40;
    let chans: Vec<_> = (0..k).map(|_| chan::<usize>(1)).collect();
    let mut seen = vec![0usize; k];
    for round in 0..400 {
        let i = (round * 7) % k;
        chans[i].0.send(i).unwrap();
        let mut sel = Select::new();
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        let op = sel.select();
        let j = op.index();
        assert_eq!(op.recv(&chans[j].1), Ok(i));
        seen[j] += 1;
    }
    assert!(seen.iter().all(|&n| n == 10));
    // Blocking with many cases: woken by the last one.
    let (tx, rx) = (
        chans[k - 1].0.clone(),
        chans.iter().map(|c| c.1.clone()).collect::<Vec<_>>(),
    );
    let h = gort::go!(move || {
        let mut sel = Select::new();
        for r in &rx {
            sel.recv(r);
        }
        let op = sel.select();
        let i = op.index();
        (i, op.recv(&rx[i]))
    });
    gort::time::sleep(Duration::from_millis(5));
    tx.send(99).unwrap();
    assert_eq!(h.join().unwrap(), (k - 1, Ok(99)));
}

// ---------------------------------------------------------------------------------------
// Issue 12, item 9: selects on opposite ends of one unbuffered channel pair up, whatever
// their kinds (select! or dynamic Select), on goroutines and plain threads.

/// How participant `k` of `pair_off` selects.
#[derive(Clone, Copy)]
enum Kind {
    Dynamic,
    Macro,
}

/// `n` participants each select over a receive and a send on the same unbuffered channel,
/// once; participant k uses `kind(k)` and runs on a plain thread if `thread(k)`. They must
/// pair off: every one finishes, half sent and half received, every value received once.
fn pair_off(n: usize, kind: impl Fn(usize) -> Kind, thread: impl Fn(usize) -> bool) {
    let (tx, rx) = chan::<usize>(0);
    let (done_tx, done_rx) = chan::<(bool, Option<usize>)>(n);
    for k in 0..n {
        let (tx, rx, done) = (tx.clone(), rx.clone(), done_tx.clone());
        let kind = kind(k);
        let body = move || {
            let r = match kind {
                Kind::Dynamic => {
                    let mut sel = Select::new();
                    let ri = sel.recv(&rx);
                    let si = sel.send(&tx);
                    let op = sel.select();
                    if op.index() == ri {
                        (false, Some(op.recv(&rx).unwrap()))
                    } else {
                        assert_eq!(op.index(), si);
                        op.send(&tx, k).unwrap();
                        (true, None)
                    }
                }
                Kind::Macro => select! {
                    recv(rx) -> v => (false, Some(v.unwrap())),
                    send(tx, k) -> r => { r.unwrap(); (true, None) },
                },
            };
            done.send(r).unwrap();
        };
        if thread(k) {
            std::thread::spawn(body);
        } else {
            gort::spawn(body);
        }
    }
    let mut sent = 0;
    let mut got = std::collections::HashSet::new();
    for i in 0..n {
        let (s, v) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("selects did not pair off: {i} of {n} finished"));
        sent += s as usize;
        if let Some(v) = v {
            assert!(got.insert(v), "value {v} received twice");
        }
    }
    assert_eq!(sent, n / 2);
    assert_eq!(got.len(), n / 2);
}

#[gort::test]
fn issue_12_dynamic_selects_pair_off_on_goroutines() {
    pair_off(44, |_| Kind::Dynamic, |_| false);
}

#[test]
fn issue_12_dynamic_selects_pair_off_on_threads() {
    pair_off(44, |_| Kind::Dynamic, |_| true);
}

#[test]
fn issue_12_mixed_selects_pair_off_on_goroutines_and_threads() {
    // Every combination: dynamic with dynamic, dynamic with select!, select! with select!,
    // each between goroutines, between threads, and across.
    for round in 0..4 {
        pair_off(
            44,
            |k| {
                if (k + round) % 2 == 0 {
                    Kind::Dynamic
                } else {
                    Kind::Macro
                }
            },
            |k| (k / 2 + round) % 2 == 0,
        );
    }
}

/// Each pair of participants as a whole: a Select sender against a Select receiver,
/// Select against select! both ways, on goroutines and threads.
#[test]
fn issue_12_each_pair_of_kinds() {
    for a in [Kind::Dynamic, Kind::Macro] {
        for b in [Kind::Dynamic, Kind::Macro] {
            for (ta, tb) in [(false, false), (true, true), (false, true)] {
                let (tx, rx) = chan::<u32>(0);
                let (tx2, rx2) = (tx.clone(), rx.clone());
                let send = move || match a {
                    Kind::Dynamic => {
                        let mut sel = Select::new();
                        sel.send(&tx);
                        sel.select().send(&tx, 7).unwrap();
                    }
                    Kind::Macro => select! { send(tx, 7) -> r => r.unwrap() },
                };
                let recv = move || -> u32 {
                    match b {
                        Kind::Dynamic => {
                            let mut sel = Select::new();
                            sel.recv(&rx2);
                            sel.select().recv(&rx2).unwrap()
                        }
                        Kind::Macro => select! { recv(rx2) -> v => v.unwrap() },
                    }
                };
                let (done_tx, done_rx) = chan::<u32>(2);
                let d2 = done_tx.clone();
                let s = move || {
                    send();
                    done_tx.send(0).unwrap();
                };
                let r = move || d2.send(recv()).unwrap();
                if ta {
                    std::thread::spawn(s);
                } else {
                    gort::spawn(s);
                }
                if tb {
                    std::thread::spawn(r);
                } else {
                    gort::spawn(r);
                }
                let mut sum = 0;
                for _ in 0..2 {
                    sum += done_rx
                        .recv_timeout(Duration::from_secs(60))
                        .expect("the two selects did not pair");
                }
                assert_eq!(sum, 7);
                drop((tx2, rx));
            }
        }
    }
}

/// A channel passed through a channel, both hops under dynamic selects (issue 12, item 9).
#[test]
fn issue_12_channel_through_channel_under_dynamic_selects() {
    let (chtx, chrx) = chan::<Sender<u64>>(0);
    let rounds = 200;
    let a = gort::go!(move || {
        let mut sum = 0;
        for i in 0..rounds {
            let (tx, rx) = chan::<u64>(0);
            let mut sel = Select::new();
            sel.send(&chtx);
            sel.select().send(&chtx, tx).unwrap();
            let mut sel = Select::new();
            sel.recv(&rx);
            let v = sel.select().recv(&rx).unwrap();
            assert_eq!(v, i);
            sum += v;
        }
        sum
    });
    let b = std::thread::spawn(move || {
        for i in 0..rounds {
            let mut sel = Select::new();
            sel.recv(&chrx);
            let tx = sel.select().recv(&chrx).unwrap();
            let mut sel = Select::new();
            sel.send(&tx);
            sel.select().send(&tx, i).unwrap();
        }
    });
    let (done_tx, done_rx) = chan::<u64>(1);
    gort::go!(move || done_tx.send(a.join().unwrap()).unwrap());
    let sum = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dynamic selects on a channel passed through a channel hung");
    b.join().unwrap();
    assert_eq!(sum, (0..rounds).sum::<u64>());
}

// ---------------------------------------------------------------------------------------
// Issue 12, item 10: a select with `default` (or a passed deadline) is linearizable: it
// takes `default` only if at one instant no case was ready.

/// A mover keeps one token in channel A or B, moving it by "send on the other, then receive
/// from this one", so at every instant at least one of A and B holds a value; `check` is
/// run `rounds` times (or until the mover is done) and must never find both empty. `check`
/// gets A and B and returns false if it took `default`; it puts back anything it takes.
fn linearizable_default(
    cap: usize,
    rounds: usize,
    on_thread: bool,
    check: impl Fn(&Sender<u32>, &Receiver<u32>, &Sender<u32>, &Receiver<u32>) -> bool + Send + 'static,
) {
    let (atx, arx) = chan::<u32>(cap);
    let (btx, brx) = chan::<u32>(cap);
    atx.send(0).unwrap();
    let (a2, ar2, b2, br2) = (atx.clone(), arx.clone(), btx.clone(), brx.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let mover = move || {
        for _ in 0..rounds / 2 {
            b2.send(1).unwrap();
            ar2.recv().unwrap();
            a2.send(0).unwrap();
            br2.recv().unwrap();
        }
        stop2.store(true, std::sync::atomic::Ordering::Release);
    };
    let (done_tx, done_rx) = chan::<()>(1);
    if on_thread {
        std::thread::spawn(move || {
            mover();
            done_tx.send(()).unwrap();
        });
    } else {
        gort::go!(move || {
            mover();
            done_tx.send(()).unwrap();
        });
    }
    let mut checks = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        assert!(
            check(&atx, &arx, &btx, &brx),
            "default taken though A or B held a value at every instant (check {checks})"
        );
        checks += 1;
        if checks % 64 == 0 {
            gort::yield_now();
        }
    }
    done_rx.recv().unwrap();
}

fn macro_check(a: &Sender<u32>, ar: &Receiver<u32>, b: &Sender<u32>, br: &Receiver<u32>) -> bool {
    select! {
        recv(ar) -> v => { a.send(v.unwrap()).unwrap(); true },
        recv(br) -> v => { b.send(v.unwrap()).unwrap(); true },
        default => false,
    }
}

thread_local! {
    /// Always-empty channels for the wide checks (their Senders kept: never closed).
    static EMPTY: Vec<(Sender<u32>, Receiver<u32>)> = (0..64).map(|_| chan::<u32>(1)).collect();
}

/// The dance seen by a select with always-empty cases between A and B (the order in which
/// a case-at-a-time look reads them): the wider the gap, the likelier such a look misses
/// the token. Eight cases in all (the lock-free confirmation path) or sixteen (the
/// all-locks path).
macro_rules! wide_check {
    ($name:ident, $($k:literal)*) => {
        fn $name(a: &Sender<u32>, ar: &Receiver<u32>, b: &Sender<u32>, br: &Receiver<u32>) -> bool {
            EMPTY.with(|e| {
                select! {
                    recv(ar) -> v => { a.send(v.unwrap()).unwrap(); true },
                    $(recv(e[$k].1) -> _ => unreachable!(),)*
                    recv(br) -> v => { b.send(v.unwrap()).unwrap(); true },
                    default => false,
                }
            })
        }
    };
}

wide_check!(wide_check, 0 1 2 3 4 5);
wide_check!(wider_check, 0 1 2 3 4 5 6 7 8 9 10 11 12 13);

/// A dynamic select's `try_ready` over A, 62 empty channels and B.
fn dynamic_wide_check(
    _: &Sender<u32>,
    ar: &Receiver<u32>,
    _: &Sender<u32>,
    br: &Receiver<u32>,
) -> bool {
    EMPTY.with(|e| {
        let mut sel = Select::new();
        sel.recv(ar);
        for (_, r) in &e[..62] {
            sel.recv(r);
        }
        sel.recv(br);
        sel.try_ready().is_ok()
    })
}

fn macro_deadline_check(
    a: &Sender<u32>,
    ar: &Receiver<u32>,
    b: &Sender<u32>,
    br: &Receiver<u32>,
) -> bool {
    select! {
        recv(ar) -> v => { a.send(v.unwrap()).unwrap(); true },
        recv(br) -> v => { b.send(v.unwrap()).unwrap(); true },
        default(Duration::ZERO) => false,
    }
}

fn dynamic_check(_: &Sender<u32>, ar: &Receiver<u32>, _: &Sender<u32>, br: &Receiver<u32>) -> bool {
    let mut sel = Select::new();
    sel.recv(ar);
    sel.recv(br);
    sel.try_ready().is_ok()
}

fn dynamic_timeout_check(
    _: &Sender<u32>,
    ar: &Receiver<u32>,
    _: &Sender<u32>,
    br: &Receiver<u32>,
) -> bool {
    let mut sel = Select::new();
    sel.recv(ar);
    sel.recv(br);
    sel.ready_timeout(Duration::ZERO).is_ok()
}

const LINEARIZABLE_ROUNDS: usize = 100_000;

#[gort::test]
fn issue_12_select_default_linearizable_buffered_goroutines() {
    linearizable_default(1, LINEARIZABLE_ROUNDS, false, macro_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS, false, wide_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS, false, wider_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS / 10, false, macro_deadline_check);
}

#[gort::test]
fn issue_12_select_default_linearizable_unbounded_threads() {
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, true, macro_check);
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, true, wide_check);
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, true, wider_check);
}

#[gort::test]
fn issue_12_select_default_linearizable_unbounded_goroutines() {
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, false, macro_check);
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, false, wide_check);
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, false, wider_check);
}

#[test]
fn issue_12_select_default_linearizable_buffered_threads() {
    // The checker on a plain thread, the mover on a goroutine.
    linearizable_default(1, LINEARIZABLE_ROUNDS, false, macro_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS, true, wide_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS, true, wider_check);
}

#[gort::test]
fn issue_12_dynamic_try_ready_linearizable() {
    linearizable_default(1, LINEARIZABLE_ROUNDS, false, dynamic_check);
    linearizable_default(usize::MAX, LINEARIZABLE_ROUNDS, true, dynamic_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS / 10, true, dynamic_timeout_check);
    linearizable_default(1, LINEARIZABLE_ROUNDS / 10, true, dynamic_wide_check);
    linearizable_default(
        usize::MAX,
        LINEARIZABLE_ROUNDS / 10,
        false,
        dynamic_wide_check,
    );
}

/// A dynamic select that reserved a waiting peer and then dropped its operation lets the
/// peer go: the peer's operation starts again and completes with someone else.
#[gort::test]
fn dropped_selected_operation_releases_reserved_peers() {
    // A blocked plain receiver, reserved by a send case, released.
    let (tx, rx) = chan::<u32>(0);
    let rx2 = rx.clone();
    let r = gort::go!(move || rx2.recv().unwrap());
    gort::time::sleep(Duration::from_millis(5));
    {
        let mut sel = Select::new();
        sel.send(&tx);
        let op = sel.select(); // reserves the waiting receiver
        drop(op);
    }
    tx.send(9).unwrap();
    assert_eq!(r.join().unwrap(), 9);

    // A blocked select! sender, reserved by a receive case, released: it sends again.
    let (tx, rx) = chan::<u32>(0);
    let tx2 = tx.clone();
    let s = gort::go!(move || select! { send(tx2, 5) -> r => r.unwrap() });
    gort::time::sleep(Duration::from_millis(5));
    {
        let mut sel = Select::new();
        sel.recv(&rx);
        let op = sel.select(); // reserves the select! sender
        drop(op);
    }
    assert_eq!(rx.recv().unwrap(), 5);
    s.join().unwrap();
    drop(tx);
}

/// try_recvs that meet a dynamic select blocked on the send side of an unbuffered channel
/// never invent a value nor lose one: each gives up (the select waits again, or gives the
/// value to the channel if it had already returned), and a blocking recv then pairs; if
/// the select drops its operation, nothing is received.
#[gort::test]
fn try_recv_meets_a_blocked_dynamic_send() {
    let (tx, rx) = chan::<u32>(0);
    let (go_tx, go_rx) = chan::<bool>(0);
    let tx2 = tx.clone();
    let s = gort::go!(move || {
        for complete in [true, false] {
            let mut sel = Select::new();
            sel.send(&tx2);
            let op = sel.select();
            if complete {
                op.send(&tx2, 11).unwrap();
            } else {
                drop(op); // the try_recv waiting on it looks again
            }
            go_rx.recv().unwrap();
        }
    });
    let mut got = None;
    for _ in 0..100 {
        if let Ok(v) = rx.try_recv() {
            got = Some(v);
            break;
        }
        gort::yield_now();
    }
    assert_eq!(got.map_or_else(|| rx.recv(), Ok), Ok(11));
    go_tx.send(true).unwrap();
    // Second round: the select will drop its operation; try_recv must not hang or invent
    // a value.
    for _ in 0..1000 {
        assert!(rx.try_recv().is_err());
        gort::yield_now();
    }
    // The select still waits (every try_recv gave up first) or has dropped its operation:
    // the close ends its wait either way.
    tx.close();
    go_tx.send(true).unwrap();
    s.join().unwrap();
    drop(tx);
}

/// A dynamic select blocked on a send case of an unbuffered channel (a deferred hand-off)
/// is woken by close and its send reports the closed channel with the value.
#[gort::test]
fn blocked_dynamic_send_sees_close() {
    let (tx, rx) = chan::<u32>(0);
    let tx2 = tx.clone();
    let h = gort::go!(move || {
        let mut sel = Select::new();
        sel.send(&tx2);
        sel.select().send(&tx2, 3)
    });
    gort::time::sleep(Duration::from_millis(5));
    tx.close();
    assert_eq!(h.join().unwrap(), Err(SendError(3)));
    assert_eq!(rx.recv(), Err(RecvError));
}

/// Dropping a SelectedOperation whose receive already holds a value gives the value back
/// to the channel (nothing is lost), whether a sender had written it into the parked
/// select's slot or the select reserved a blocked sender (which then sends again).
#[gort::test]
fn dropping_a_selected_receive_gives_the_value_back() {
    let (tx, rx) = chan::<u32>(0);
    let s = gort::go!(move || {
        gort::time::sleep(Duration::from_millis(20));
        tx.send(1).unwrap();
        tx
    });
    let mut sel = Select::new();
    sel.recv(&rx);
    let op = sel.select();
    drop(op);
    assert_eq!(rx.recv(), Ok(1));
    drop(s.join().unwrap());
    // A buffered value taken at commit goes back ahead of later values.
    let (tx, rx) = chan::<u32>(2);
    tx.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let op = sel.select();
    tx.send(2).unwrap();
    drop(op);
    assert_eq!((rx.recv(), rx.recv()), (Ok(1), Ok(2)));
}

// ---------------------------------------------------------------------------------------
// Review findings (notes/reviews/chan.md): a selected operation holds what it chose.

/// Item 1: a dynamic select that chose a buffered receive holds the value: a competitor
/// cannot take it between `select()` and `op.recv()` (which would then wait for ever).
#[gort::test]
fn issue_review_1_selected_receive_holds_the_buffered_value() {
    for cap in [1, 4, 1 << 21] {
        let (tx, rx) = chan::<u32>(cap);
        tx.send(7).unwrap();
        let mut sel = Select::new();
        sel.recv(&rx);
        let op = sel.select();
        assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Empty), "cap {cap}");
        assert_eq!(op.recv(&rx), Ok(7));
    }
    // The close is held too (it is final anyway).
    let (tx, rx) = chan::<u32>(1);
    drop(tx);
    let mut sel = Select::new();
    sel.recv(&rx);
    assert_eq!(sel.select().recv(&rx), Err(RecvError));
}

/// Item 1: a dynamic select that chose a send on a buffered channel reserves the room:
/// lock-free sends, `try_send` and blocking sends all see it as taken, `len` does not count
/// it, the operation's send completes at once, and a dropped operation gives the room to a
/// blocked sender.
#[gort::test]
fn issue_review_1_selected_send_reserves_room() {
    for cap in [1usize, 4, 1 << 21] {
        let (tx, rx) = chan::<usize>(cap);
        let pre = if cap == 4 { 3 } else { 0 };
        for i in 0..pre {
            tx.send(i).unwrap();
        }
        let mut sel = Select::new();
        sel.send(&tx);
        let op = sel.select();
        if cap == 1 << 21 {
            // Too large to fill here (a deque, not a ring); the reservation is counted.
            assert_eq!(tx.len(), 0);
            op.send(&tx, 99).unwrap();
            assert_eq!(rx.recv(), Ok(99));
            continue;
        }
        assert!(tx.try_send(100).unwrap_err().is_full(), "cap {cap}");
        assert_eq!(tx.len(), pre);
        // A blocked sender waits behind the reservation...
        let tx2 = tx.clone();
        let blocked = gort::go!(move || tx2.send(200).unwrap());
        gort::time::sleep(Duration::from_millis(10));
        // ...and the operation completes without waiting.
        op.send(&tx, 99).unwrap();
        let mut got: Vec<usize> = (0..pre + 2).map(|_| rx.recv().unwrap()).collect();
        blocked.join().unwrap();
        got.sort();
        let mut want: Vec<usize> = (0..pre).chain([99, 200]).collect();
        want.sort();
        assert_eq!(got, want, "cap {cap}");
        // Dropping a reservation gives the room to a blocked sender.
        for i in 0..cap {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.recv(), Ok(0)); // one free slot
        let mut sel = Select::new();
        sel.send(&tx);
        let op = sel.select();
        let tx2 = tx.clone();
        let blocked = gort::go!(move || tx2.send(300).unwrap());
        gort::time::sleep(Duration::from_millis(10));
        drop(op);
        blocked.join().unwrap();
        let got: Vec<usize> = (0..cap).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got.last(), Some(&300), "cap {cap}: {got:?}");
        assert!(tx.try_send(1).is_ok(), "the reservation is gone");
    }
}

/// Item 1, as the review found it (probe_later.rs): two workers select over a job channel
/// (buffered) and a quit channel; every job is collected, then quit closes. With an
/// operation that did not hold its value, a worker could lose the value to the other one
/// and wait for ever in a plain `recv` on the jobs channel.
#[gort::test]
fn issue_review_1_workers_selecting_over_jobs_and_quit_all_exit() {
    for round in 0..common::stress(1000) {
        let (jtx, jrx) = chan::<u32>(4);
        let (qtx, qrx) = chan::<()>(0);
        let (dtx, drx) = chan::<u32>(64);
        for _ in 0..2 {
            let (jrx, qrx, dtx) = (jrx.clone(), qrx.clone(), dtx.clone());
            gort::go!(move || loop {
                let mut sel = Select::new();
                let ij = sel.recv(&jrx);
                sel.recv(&qrx);
                let op = sel.select();
                if op.index() == ij {
                    let v = op.recv(&jrx).unwrap();
                    dtx.send(v).unwrap();
                } else {
                    let _ = op.recv(&qrx);
                    return;
                }
            });
        }
        drop(dtx);
        for v in 0..3 {
            jtx.send(v).unwrap();
        }
        for _ in 0..3 {
            drx.recv().unwrap();
        }
        qtx.close();
        assert_eq!(
            drx.recv_timeout(Duration::from_secs(20)),
            Err(chan::RecvTimeoutError::Closed),
            "round {round}: a worker is stuck"
        );
    }
}

/// Item 1, sends: two workers each select a send on a full-then-drained buffered channel
/// or a quit; the consumer takes exactly what was chosen; no worker waits in its send.
#[gort::test]
fn issue_review_1_selected_sends_complete_under_contention() {
    for _ in 0..common::stress(200) {
        let (tx, rx) = chan::<u32>(2);
        let (qtx, qrx) = chan::<()>(0);
        let (dtx, drx) = chan::<()>(0);
        let mut hs = Vec::new();
        for w in 0..3u32 {
            let (tx, qrx, dtx) = (tx.clone(), qrx.clone(), dtx.clone());
            hs.push(gort::go!(move || {
                let mut sent = 0;
                loop {
                    let mut sel = Select::new();
                    let is = sel.send(&tx);
                    sel.recv(&qrx);
                    let op = sel.select();
                    if op.index() == is {
                        op.send(&tx, w).unwrap();
                        sent += 1;
                        // A competitor's plain send may take room at any time.
                        let _ = tx.try_send(w);
                    } else {
                        let _ = op.recv(&qrx);
                        drop(dtx);
                        return sent;
                    }
                }
            }));
        }
        drop(dtx);
        for _ in 0..20 {
            rx.recv().unwrap();
        }
        qtx.close();
        // Every worker leaves its loop (none waits in a send on the full channel).
        let drained = gort::go!(move || rx.iter().count());
        assert_eq!(
            drx.recv_timeout(Duration::from_secs(20)),
            Err(chan::RecvTimeoutError::Closed)
        );
        for h in hs {
            h.join().unwrap();
        }
        drop(tx);
        drained.join().unwrap();
    }
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Item 4: misusing a SelectedOperation (wrong direction, wrong channel) panics before it
/// touches what the select holds, so a reserved peer is let go (not leaked for ever) and
/// reserved room is given back.
#[gort::test]
fn issue_review_4_misused_selected_operation_lets_the_reserved_peer_go() {
    // A receiver blocked on an unbuffered channel; the select reserves it.
    let (tx, rx) = chan::<u32>(0);
    let (otx, orx) = chan::<u32>(0);
    let rx2 = rx.clone();
    let g = gort::go!(move || rx2.recv());
    let mut sel = Select::new();
    sel.send(&tx);
    while sel.try_ready().is_err() {
        gort::yield_now(); // until the receiver waits
    }
    let op = sel.select();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.recv(&rx)))
        .expect_err("a send recv'd must panic");
    assert!(panic_message(e).contains("the selected operation is a send"));
    // The receiver was let go: an ordinary send reaches it.
    tx.send_timeout(5, Duration::from_secs(20)).unwrap();
    assert_eq!(g.join().unwrap(), Ok(5));
    // The same with the wrong channel.
    let rx2 = rx.clone();
    let g = gort::go!(move || rx2.recv());
    let mut sel = Select::new();
    sel.send(&tx);
    while sel.try_ready().is_err() {
        gort::yield_now();
    }
    let op = sel.select();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.send(&otx, 1)))
        .expect_err("the wrong sender must panic");
    assert!(panic_message(e).contains("not the selected operation's"));
    tx.send_timeout(6, Duration::from_secs(20)).unwrap();
    assert_eq!(g.join().unwrap(), Ok(6));
    // A blocked sender reserved by a receive case, then sent to.
    let tx2 = tx.clone();
    let g = gort::go!(move || tx2.send(8));
    let mut sel = Select::new();
    sel.recv(&rx);
    while sel.try_ready().is_err() {
        gort::yield_now();
    }
    let op = sel.select();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.send(&tx, 1)))
        .expect_err("a receive sent to must panic");
    assert!(panic_message(e).contains("the selected operation is a receive"));
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(8));
    g.join().unwrap().unwrap();
    drop(orx);
    // Reserved room is given back.
    let (btx, brx) = chan::<u32>(1);
    let mut sel = Select::new();
    sel.send(&btx);
    let op = sel.select();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.recv(&brx)))
        .expect_err("a send recv'd must panic");
    assert!(panic_message(e).contains("the selected operation is a send"));
    btx.try_send(1).unwrap();
    // A send chosen on a closed channel, recv'd: panics too (it used to receive silently).
    drop(brx);
    let (ctx, crx) = chan::<u32>(0);
    ctx.close();
    let mut sel = Select::new();
    sel.send(&ctx);
    let op = sel.select();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.recv(&crx)))
        .expect_err("a send recv'd must panic");
    assert!(panic_message(e).contains("the selected operation is a send"));
}

/// Item 6: a `try_recv`, a `select!` with `default` and a `recv_timeout` that meet a dynamic
/// select blocked on the send side do not wait for its caller's `op.send` (which may come
/// much later): they give the hand-off up (the select then waits again, or gives the
/// value to the channel if it had returned already: handoff.rs).
#[gort::test]
fn issue_review_6_try_and_timed_receivers_do_not_wait_for_a_deferred_send() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for how in 0..3 {
        let (tx, rx) = chan::<u32>(0);
        let sent = Arc::new(AtomicBool::new(false));
        let (tx2, sent2) = (tx.clone(), sent.clone());
        let s = gort::go!(move || {
            let mut sel = Select::new();
            sel.send(&tx2);
            let op = sel.select();
            gort::time::sleep(Duration::from_millis(1500)); // a slow caller
            sent2.store(true, Ordering::SeqCst);
            op.send(&tx2, 9).unwrap();
        });
        gort::time::sleep(Duration::from_millis(30)); // let the select block
        match how {
            0 => assert!(rx.try_recv().is_err()),
            1 => select! {
                recv(rx) -> v => panic!("got {v:?} before it was sent"),
                default => {}
            },
            _ => assert_eq!(
                rx.recv_timeout(Duration::from_millis(100)),
                Err(chan::RecvTimeoutError::Timeout)
            ),
        }
        assert!(
            !sent.load(Ordering::SeqCst),
            "case {how} waited for the select's caller"
        );
        assert_eq!(rx.recv(), Ok(9)); // paired with the waiting select, or given back
        s.join().unwrap();
    }
}

/// Item 3: `select! { send(tx, v), default }` with one case never takes `default` while a
/// receiver waits or the channel is closed, even when the close lands during its look.
#[gort::test]
fn issue_review_3_one_case_send_default_with_a_waiting_receiver_and_a_close() {
    for _ in 0..common::stress(300) {
        let (tx, rx) = chan::<u32>(0);
        let r = gort::go!(move || rx.recv());
        let mut sel = Select::new();
        sel.send(&tx);
        sel.ready(); // a receiver waits now, until a send or the close
        let tx2 = tx.clone();
        let closer = gort::go!(move || tx2.close());
        let took_default = select! {
            send(tx, 1) -> _ => false,
            default => true,
        };
        assert!(
            !took_default,
            "default with a receiver waiting or the channel closed"
        );
        closer.join().unwrap();
        let _ = r.join().unwrap();
    }
}

/// A receive that cannot wait (try_recv, select! with default, a timed receive, a dropped
/// try_select) meets a dynamic Select blocked on {send(out), recv(quit)}: either the
/// receive takes the value, or the Select goes on waiting and picks quit once it closes.
/// Never both; a select that returned the send after the receive gave up gives the value to
/// the channel (it used to block in `op.send` for ever).
#[gort::test]
fn dynamic_select_send_met_by_a_receive_that_cannot_wait() {
    let modes = [
        "try_recv",
        "default",
        "default_timeout",
        "timeout",
        "try_select_drop",
    ];
    for mode in modes {
        for round in 0..12 {
            let (otx, orx) = chan::<u32>(0);
            let (qtx, qrx) = chan::<()>(0);
            let (dtx, drx) = chan::<&'static str>(1);
            gort::go!(move || {
                let mut sel = Select::new();
                let is = sel.send(&otx);
                sel.recv(&qrx);
                let op = sel.select();
                if op.index() == is {
                    op.send(&otx, 7).unwrap();
                    dtx.send("sent").unwrap();
                } else {
                    op.recv(&qrx).unwrap_err();
                    dtx.send("quit").unwrap();
                }
            });
            gort::time::sleep(Duration::from_millis(1 + round % 3)); // let it park
            let got = match mode {
                "try_recv" => orx.try_recv().ok(),
                "default" => select! { recv(orx) -> v => v.ok(), default => None },
                "default_timeout" => {
                    select! { recv(orx) -> v => v.ok(), default(Duration::from_micros(50)) => None }
                }
                "timeout" => orx.recv_timeout(Duration::from_micros(50)).ok(),
                _ => {
                    let mut s = Select::new();
                    s.recv(&orx);
                    drop(s.try_select());
                    None
                }
            };
            qtx.close();
            let worker = drx.recv_timeout(Duration::from_secs(5));
            assert!(
                worker.is_ok(),
                "{mode} round {round}: the worker is stuck (got {got:?})"
            );
            let worker = worker.unwrap();
            match (got, worker, mode) {
                (Some(7), "sent", _) | (None, "quit", _) => {}
                // Given up after the select returned the send: the value was given back.
                (None, "sent", _) => assert_eq!(orx.try_recv(), Ok(7)),
                other => panic!("{mode} round {round}: {other:?}"),
            }
            assert!(orx.try_recv().is_err(), "{mode}: a value duplicated");
        }
    }
}

/// Values given back by dropped selected receives come out in the order given back (here
/// the order received), ahead of buffered values; `len()` counts them (cap + held).
#[gort::test]
fn dropped_selected_receives_give_values_back_in_order() {
    for cap in [1, 4, usize::MAX] {
        let (tx, rx) = if cap == usize::MAX {
            chan::unbounded::<u32>()
        } else {
            chan::<u32>(cap)
        };
        let mut ops = Vec::new();
        for i in 0..3 {
            tx.send(i).unwrap();
            let mut sel = Select::new();
            sel.recv(&rx);
            let op = sel.select();
            ops.push((op, sel));
        }
        tx.send(100).unwrap();
        drop(ops); // in the order received
        assert_eq!(rx.len(), 4, "cap {cap}");
        let got: Vec<u32> = rx.try_iter().collect();
        assert_eq!(got, [0, 1, 2, 100], "cap {cap}");
        assert_eq!(rx.len(), 0);
    }
}

/// A channel of capacity `cap` (`usize::MAX`: unbounded).
fn chan_of(cap: usize) -> (Sender<u32>, Receiver<u32>) {
    if cap == usize::MAX {
        chan::unbounded()
    } else {
        chan::chan(cap)
    }
}

/// A dynamic select's receive that holds a value (taken at commit from the buffer, or
/// handed by a sender while parked: unbuffered) and is dropped after the close: no receive
/// reports Closed before the value is given back, a range loop waits for it, and then the
/// channel is closed for good (r2 item 2).
#[test]
fn held_value_given_back_after_close_is_received() {
    for round in 0..common::stress(20) {
        for cap in [0, 1, 4, usize::MAX] {
            let (tx, rx) = chan_of(cap);
            let feeder = if cap == 0 {
                // A future's send: the select takes its value whichever comes first (a
                // plain sender found waiting would be reserved instead, and its send would
                // end only with `op`: the join below would never return).
                let tx = tx.clone();
                Some(gort::go!(move || {
                    if round % 2 == 1 {
                        gort::time::sleep(Duration::from_millis(1)); // the select waits first
                    }
                    gort::block_on(tx.send_async(7)).unwrap()
                }))
            } else {
                tx.send(7).unwrap();
                None
            };
            let mut sel = Select::new();
            sel.recv(&rx);
            let op = sel.select(); // holds 7
            if let Some(h) = feeder {
                h.join().unwrap();
            }
            tx.close();
            assert_eq!(
                rx.try_recv(),
                Err(chan::TryRecvError::Empty),
                "cap {cap} round {round}"
            );
            assert!(rx
                .recv_timeout(Duration::from_millis(1))
                .unwrap_err()
                .is_timeout());
            let idle = select! {
                recv(rx) -> v => panic!("cap {cap}: ready while a value is held: {v:?}"),
                default => true,
            };
            assert!(idle);
            let rx2 = rx.clone();
            let range = gort::go!(move || rx2.iter().collect::<Vec<_>>());
            if round % 2 == 0 {
                gort::time::sleep(Duration::from_millis(1)); // the loop waits first
            }
            drop(op); // 7 goes back
            assert_eq!(range.join().unwrap(), vec![7], "cap {cap} round {round}");
            assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Closed));
            assert_eq!(rx.recv(), Err(RecvError));
        }
    }
}

/// A held value that its operation consumes after the close: the receivers waiting on the
/// closed channel are then told Closed.
#[test]
fn held_value_consumed_after_close_releases_waiters() {
    for cap in [0, 1, usize::MAX] {
        let (tx, rx) = chan_of(cap);
        if cap == 0 {
            let tx = tx.clone();
            gort::go!(move || tx.send(3).unwrap());
        } else {
            tx.send(3).unwrap();
        }
        let mut sel = Select::new();
        sel.recv(&rx);
        let op = sel.select();
        tx.close();
        let rx2 = rx.clone();
        let waiter = gort::go!(move || rx2.recv());
        let rx3 = rx.clone();
        let selecting = gort::go!(move || select! { recv(rx3) -> v => v });
        gort::time::sleep(Duration::from_millis(2));
        assert_eq!(op.recv(&rx), Ok(3), "cap {cap}");
        assert_eq!(waiter.join().unwrap(), Err(RecvError), "cap {cap}");
        assert_eq!(selecting.join().unwrap(), Err(RecvError), "cap {cap}");
        assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Closed));
    }
}
