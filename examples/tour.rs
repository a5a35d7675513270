//! A short tour of gort, printing what it measures as it goes.
//!
//! `cargo run --release --example tour`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::{go, thread, time};

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4)
}

fn square(x: u64) -> u64 {
    x * x
}

#[gort::main]
fn main() {
    println!(
        "gort tour: {} processors (GORT_MAXPROCS to change), main is goroutine {}\n",
        gort::max_procs(),
        gort::goroutine_id().unwrap()
    );

    // 1. Goroutines are cheap: spawn 100,000, join them all. The first round maps fresh
    //    stacks and faults in their pages; the second reuses the pooled stacks.
    for round in [
        "first round (maps fresh stacks)",
        "second round (pooled stacks)",
    ] {
        let t = Instant::now();
        let handles: Vec<_> = (0..100_000u64).map(|i| go!(square(i))).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let e = t.elapsed();
        println!(
            "100,000 goroutines spawned and joined, {round}: {:.1} ms ({:.0} ns each); sum of squares = {sum}",
            e.as_secs_f64() * 1e3,
            e.as_nanos() as f64 / 1e5
        );
    }

    // 2. Parked goroutines cost about a page of memory each.
    let n = 10_000;
    let before = rss_kib();
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicUsize::new(0));
    let sleepers: Vec<_> = (0..n)
        .map(|_| {
            let (p, r) = (parked.clone(), release.clone());
            gort::spawn(move || {
                p.fetch_add(1, Ordering::Relaxed);
                while r.load(Ordering::Acquire) == 0 {
                    thread::park();
                }
            })
        })
        .collect();
    while parked.load(Ordering::Relaxed) < n {
        time::sleep(Duration::from_millis(1));
    }
    let per = (rss_kib() - before) as f64 / n as f64;
    println!(
        "{n} goroutines parked at once: {} live, about {per:.1} KiB of memory each",
        gort::num_goroutines() - 1
    );
    release.store(1, Ordering::Release);
    for h in sleepers {
        h.thread().unpark();
        h.join().unwrap();
    }

    // 3. Sleeping goroutines do not hold threads: 10,000 sleep 100 ms at once.
    let t = Instant::now();
    let hs: Vec<_> = (0..10_000)
        .map(|_| go!(time::sleep(Duration::from_millis(100))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!(
        "10,000 goroutines slept 100 ms each, all at once: {:.0} ms in total",
        t.elapsed().as_secs_f64() * 1e3
    );

    // 4. Scoped goroutines borrow from the caller's stack, like std::thread::scope.
    let words = ["goroutines", "channels", "select", "no", "async"];
    let total = AtomicUsize::new(0);
    thread::scope(|s| {
        for w in &words {
            s.spawn(|| total.fetch_add(w.len(), Ordering::Relaxed));
        }
    });
    println!(
        "scoped goroutines counted {} letters in {:?}",
        total.load(Ordering::Relaxed),
        words
    );

    // 5. Channels, Go's way: a three-stage pipeline (a channel closes when its last Sender
    //    is dropped, which ends the `for` over it downstream)...
    let (nums_tx, nums_rx) = gort::chan::<u64>(16);
    let (squares_tx, squares_rx) = gort::chan::<u64>(16);
    go!(move || {
        for i in 1..=1000 {
            nums_tx.send(i).unwrap();
        }
    });
    go!(move || {
        for n in &nums_rx {
            squares_tx.send(n * n).unwrap();
        }
    });
    let total: u64 = squares_rx.iter().sum();
    println!("a three-goroutine channel pipeline summed the first 1,000 squares: {total}");

    // ... an unbuffered ping-pong (each round trip is two rendezvous and two switches) ...
    let (ping_tx, ping_rx) = gort::chan::<u32>(0);
    let (pong_tx, pong_rx) = gort::chan::<u32>(0);
    let echo = go!(move || {
        for v in &ping_rx {
            if pong_tx.send(v).is_err() {
                break;
            }
        }
    });
    let rounds = 200_000;
    let t = Instant::now();
    for i in 0..rounds {
        ping_tx.send(i).unwrap();
        pong_rx.recv().unwrap();
    }
    println!(
        "unbuffered channel ping-pong: {:.0} ns per round trip",
        t.elapsed().as_nanos() as f64 / rounds as f64
    );
    drop(ping_tx); // closes the channel: the echo goroutine's `for` ends
    echo.join().unwrap();

    // ... and select! with a timeout.
    let (late_tx, late_rx) = gort::chan::<&str>(0);
    let late = go!(move || {
        time::sleep(Duration::from_millis(50));
        late_tx.send("too late").is_err() // the receiver is gone by then
    });
    gort::select! {
        recv(late_rx) -> v => println!("select: got {v:?}"),
        recv(time::after(Duration::from_millis(10))) -> _ => {
            println!("select: no reply within 10 ms, took the timeout case")
        }
    }
    drop(late_rx);
    assert!(
        late.join().unwrap(),
        "a send with no receiver left returns Err"
    );

    // 6. A panic in a goroutine comes back through join; the program lives on.
    let r = thread::Builder::new()
        .name("faulty".into())
        .spawn(|| -> u32 { panic!("a goroutine failed") })
        .unwrap()
        .join();
    println!(
        "a panicking goroutine was joined: {:?}",
        r.err()
            .and_then(|e| e.downcast_ref::<&str>().map(|s| s.to_string()))
    );
    println!("\ngoroutines alive at the end: {}", gort::num_goroutines());
}
