//! Runtime benchmarks: spawn+join, yield switch, park/unpark ping-pong, `block_on`,
//! parked-goroutine RSS.
//!
//! `cargo bench --bench runtime` prints one table. Each figure is the median of several runs.
//! The cross-language comparison (Go, tokio, may, std) is the separate program in `peers/`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn measure(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    f(); // warm-up
    median((0..runs).map(|_| f()).collect())
}

/// ns per goroutine: spawn N from a goroutine, then join them all.
fn spawn_join(n: usize) -> f64 {
    gort::spawn(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n).map(|i| gort::spawn(move || i)).collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
    .join()
    .unwrap()
}

/// ns per switch: two goroutines on one processor yielding to each other.
fn yield_switch(n: usize) -> f64 {
    gort::spawn(move || {
        let t = Instant::now();
        let other = gort::spawn(move || {
            for _ in 0..n {
                gort::yield_now();
            }
        });
        for _ in 0..n {
            gort::yield_now();
        }
        other.join().unwrap();
        t.elapsed().as_nanos() as f64 / (2 * n) as f64
    })
    .join()
    .unwrap()
}

/// ns per round trip: two goroutines handing a turn back and forth with park/unpark.
fn park_pingpong(n: usize) -> f64 {
    gort::spawn(move || {
        let turn = Arc::new(AtomicUsize::new(0));
        let me = gort::thread::current();
        let t2 = turn.clone();
        let t = Instant::now();
        let other = gort::spawn(move || {
            for i in 0..n {
                while t2.load(Ordering::Acquire) != 2 * i + 1 {
                    gort::thread::park();
                }
                t2.store(2 * i + 2, Ordering::Release);
                me.unpark();
            }
        });
        let ot = other.thread().clone();
        for i in 0..n {
            turn.store(2 * i + 1, Ordering::Release);
            ot.unpark();
            while turn.load(Ordering::Acquire) != 2 * i + 2 {
                gort::thread::park();
            }
        }
        other.join().unwrap();
        t.elapsed().as_nanos() as f64 / n as f64
    })
    .join()
    .unwrap()
}

/// Wall time for `n` goroutines that all sleep `ms` at once (timer heap + wake-up path).
fn sleepers(n: usize, ms: u64) -> f64 {
    gort::spawn(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| gort::spawn(move || gort::time::sleep(Duration::from_millis(ms))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed().as_secs_f64() * 1e3
    })
    .join()
    .unwrap()
}

/// ns per `block_on` of a future that is ready at once, in a goroutine.
fn block_on_ready(n: usize) -> f64 {
    gort::spawn(move || {
        let t = Instant::now();
        let mut sum = 0usize;
        for i in 0..n {
            sum += gort::block_on(std::future::ready(i));
        }
        assert_eq!(sum, n * (n - 1) / 2);
        t.elapsed().as_nanos() as f64 / n as f64
    })
    .join()
    .unwrap()
}

/// ns per round trip: a goroutine in `block_on` on a future that another goroutine's waker
/// completes (park, wake through the Waker, re-poll), ping-ponging.
fn block_on_wake(n: usize) -> f64 {
    use std::sync::Mutex;
    use std::task::{Poll, Waker};
    #[derive(Default)]
    struct Slot {
        turn: AtomicUsize,
        waker: Mutex<Option<Waker>>,
    }
    fn wait_for(s: &Slot, v: usize) {
        gort::block_on(std::future::poll_fn(|cx| {
            if s.turn.load(Ordering::Acquire) >= v {
                return Poll::Ready(());
            }
            *s.waker.lock().unwrap() = Some(cx.waker().clone());
            if s.turn.load(Ordering::Acquire) >= v {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
    }
    fn set(s: &Slot, v: usize) {
        s.turn.store(v, Ordering::Release);
        if let Some(w) = s.waker.lock().unwrap().take() {
            w.wake();
        }
    }
    gort::spawn(move || {
        let (a, b) = (Arc::new(Slot::default()), Arc::new(Slot::default()));
        let (a2, b2) = (a.clone(), b.clone());
        let t = Instant::now();
        let other = gort::spawn(move || {
            for i in 1..=n {
                wait_for(&a2, i);
                set(&b2, i);
            }
        });
        for i in 1..=n {
            set(&a, i);
            wait_for(&b, i);
        }
        other.join().unwrap();
        t.elapsed().as_nanos() as f64 / n as f64
    })
    .join()
    .unwrap()
}

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Bytes of RSS per parked goroutine (N goroutines parked at once).
fn parked_rss(n: usize) -> f64 {
    let before = rss_bytes();
    let release = Arc::new(AtomicUsize::new(0));
    let parked = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (r, p) = (release.clone(), parked.clone());
            gort::spawn(move || {
                p.fetch_add(1, Ordering::Relaxed);
                while r.load(Ordering::Acquire) == 0 {
                    gort::thread::park();
                }
            })
        })
        .collect();
    while parked.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let per = (rss_bytes() - before) as f64 / n as f64;
    release.store(1, Ordering::Release);
    for h in hs {
        h.thread().unpark();
        h.join().unwrap();
    }
    per
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("gort runtime benchmarks ({} processors)", gort::max_procs());
    println!("{:<28} {:>14} {:>12}", "benchmark", "result", "target");
    if want("spawn") {
        let v = measure(7, || spawn_join(100_000));
        println!(
            "{:<28} {:>11.0} ns {:>12}",
            "spawn+join (per goroutine)", v, "<= 300 ns"
        );
    }
    if want("yield") {
        let v = measure(7, || yield_switch(200_000));
        println!("{:<28} {:>11.1} ns {:>12}", "yield switch", v, "<= 50 ns");
    }
    if want("park") {
        let v = measure(7, || park_pingpong(200_000));
        println!("{:<28} {:>11.0} ns {:>12}", "park/unpark ping-pong", v, "");
    }
    if want("block_on") {
        let v = measure(7, || block_on_ready(1_000_000));
        println!(
            "{:<28} {:>11.1} ns {:>12}",
            "block_on (ready future)", v, ""
        );
        let v = measure(7, || block_on_wake(200_000));
        println!(
            "{:<28} {:>11.0} ns {:>12}",
            "block_on wake ping-pong", v, ""
        );
    }
    if want("sleep") {
        let v = measure(5, || sleepers(10_000, 100));
        println!(
            "{:<28} {:>11.0} ms {:>12}",
            "10k sleepers of 100 ms", v, "~100 ms"
        );
    }
    if want("rss")
        && std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .is_some_and(|n| n > 70_000)
    {
        let v = parked_rss(100_000);
        println!(
            "{:<28} {:>9.2} KiB {:>12}",
            "RSS per parked goroutine",
            v / 1024.0,
            "<= 5 KiB"
        );
    } else if want("rss") {
        let v = parked_rss(20_000);
        println!(
            "{:<28} {:>9.2} KiB {:>12}",
            "RSS per parked (20k)",
            v / 1024.0,
            "<= 5 KiB"
        );
    }
}
