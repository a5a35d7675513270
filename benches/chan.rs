//! Channel, select and timer benchmarks, printed as a table with the targets.
//!
//! Run: `cargo bench --bench chan` (release). `cargo bench --bench chan -- ping` runs the
//! benchmarks whose name contains "ping". Each number is the best of several runs; the
//! machine may be shared, so read them as upper bounds.
//!
//! Names follow Go's and crossbeam's suites where they have one.

use std::time::{Duration, Instant};

use gort::chan;

/// Result of one benchmark: nanoseconds per operation.
fn best_of(runs: usize, iters: u64, mut f: impl FnMut(u64) -> Duration) -> f64 {
    let _ = f(iters / 10 + 1); // warm up
    (0..runs)
        .map(|_| f(iters).as_nanos() as f64 / iters as f64)
        .fold(f64::INFINITY, f64::min)
}

/// Runs `f` in a goroutine and returns what it returns.
fn in_goroutine<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    gort::spawn(f).join().unwrap()
}

/// Unbuffered ping-pong between two goroutines: ns per round trip.
fn ping_pong(iters: u64) -> Duration {
    in_goroutine(move || {
        let (ping_tx, ping_rx) = chan::<u64>(0);
        let (pong_tx, pong_rx) = chan::<u64>(0);
        let h = gort::go!(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v).unwrap();
            }
        });
        let t = Instant::now();
        for i in 0..iters {
            ping_tx.send(i).unwrap();
            pong_rx.recv().unwrap();
        }
        let el = t.elapsed();
        drop(ping_tx);
        h.join().unwrap();
        el
    })
}

/// One producer, one consumer on a channel of capacity `cap`: ns per message.
fn spsc(cap: usize, iters: u64) -> Duration {
    in_goroutine(move || {
        let (tx, rx) = chan::<u64>(cap);
        let t = Instant::now();
        let h = gort::go!(move || {
            for i in 0..iters {
                tx.send(i).unwrap();
            }
        });
        let mut n = 0;
        for _ in rx.iter() {
            n += 1;
        }
        let el = t.elapsed();
        assert_eq!(n, iters);
        h.join().unwrap();
        el
    })
}

/// `p` producers, `c` consumers on one channel (crossbeam's `mpmc`): ns per message.
fn mpmc(p: u64, c: u64, cap: usize, iters: u64) -> Duration {
    in_goroutine(move || {
        let (tx, rx) = chan::<u64>(cap);
        let t = Instant::now();
        let per = iters / p;
        let ps: Vec<_> = (0..p)
            .map(|_| {
                let tx = tx.clone();
                gort::go!(move || {
                    for i in 0..per {
                        tx.send(i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let cs: Vec<_> = (0..c)
            .map(|_| {
                let rx = rx.clone();
                gort::go!(move || rx.iter().count())
            })
            .collect();
        drop(rx);
        for p in ps {
            p.join().unwrap();
        }
        let n: usize = cs.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(n as u64, per * p);
        t.elapsed()
    })
}

/// A goroutine blocked in a two-case select on unbuffered channels, fed alternately by
/// a sender: ns per select.
fn select_blocking(iters: u64) -> Duration {
    in_goroutine(move || {
        let (a_tx, a_rx) = chan::<u64>(0);
        let (b_tx, b_rx) = chan::<u64>(0);
        let h = gort::go!(move || {
            for i in 0..iters {
                if i % 2 == 0 {
                    a_tx.send(i).unwrap()
                } else {
                    b_tx.send(i).unwrap()
                }
            }
        });
        let t = Instant::now();
        for _ in 0..iters {
            gort::select! {
                recv(a_rx) -> v => { v.unwrap(); },
                recv(b_rx) -> v => { v.unwrap(); },
            }
        }
        let el = t.elapsed();
        h.join().unwrap();
        el
    })
}

/// A goroutine blocked in a two-case select on unbuffered channels, each fed by its own
/// producer goroutine (the shape of a fan-in): ns per select.
fn select_2prod(iters: u64) -> Duration {
    in_goroutine(move || {
        let (a_tx, a_rx) = chan::<u64>(0);
        let (b_tx, b_rx) = chan::<u64>(0);
        let t = Instant::now();
        let hs: Vec<_> = [a_tx, b_tx]
            .into_iter()
            .map(|tx| {
                gort::go!(move || {
                    for i in 0..iters / 2 {
                        tx.send(i).unwrap();
                    }
                    tx // a closed channel would be a ready case
                })
            })
            .collect();
        for _ in 0..iters / 2 * 2 {
            gort::select! {
                recv(a_rx) -> v => { v.unwrap(); },
                recv(b_rx) -> v => { v.unwrap(); },
            }
        }
        let el = t.elapsed();
        for h in hs {
            h.join().unwrap();
        }
        el
    })
}

/// A select with two empty channels and a default (Go's non-blocking select): ns per op.
fn select_default(iters: u64) -> Duration {
    in_goroutine(move || {
        let (_a_tx, a_rx) = chan::<u64>(0);
        let (_b_tx, b_rx) = chan::<u64>(1);
        let mut n = 0u64;
        let t = Instant::now();
        for _ in 0..iters {
            gort::select! {
                recv(a_rx) -> _ => {},
                recv(b_rx) -> _ => {},
                default => n += 1,
            }
        }
        let el = t.elapsed();
        assert_eq!(n, iters);
        el
    })
}

/// Uncontended select that is always ready (crossbeam's `select_uncontended`, buffered).
fn select_uncontended(iters: u64) -> Duration {
    in_goroutine(move || {
        let (tx, rx) = chan::<u64>(1);
        let t = Instant::now();
        for i in 0..iters {
            gort::select! {
                send(tx, i) -> r => r.unwrap(),
            }
            gort::select! {
                recv(rx) -> v => { v.unwrap(); },
            }
        }
        t.elapsed()
    })
}

/// Go's BenchmarkAfter: `<-time.After(1)` in a loop: ns per timer created, fired, received.
fn after_fire(iters: u64) -> Duration {
    in_goroutine(move || {
        let t = Instant::now();
        for _ in 0..iters {
            gort::time::after(Duration::from_nanos(1)).recv().unwrap();
        }
        t.elapsed()
    })
}

/// `<-after(20us)` in a loop: the heap path (arm, the worker's timer check fires it, the
/// receiver wakes); includes the 20 µs wait.
fn after_heap(iters: u64) -> Duration {
    in_goroutine(move || {
        let t = Instant::now();
        for _ in 0..iters {
            gort::time::after(Duration::from_micros(20)).recv().unwrap();
        }
        t.elapsed()
    })
}

/// `Timer::new(1h)` then `stop`: arming and removing a heap timer.
fn timer_arm_stop(iters: u64) -> Duration {
    in_goroutine(move || {
        let t = Instant::now();
        for _ in 0..iters {
            let tm = gort::time::Timer::new(Duration::from_secs(3600));
            assert!(tm.stop());
        }
        t.elapsed()
    })
}

struct Row {
    name: &'static str,
    what: &'static str,
    ns: f64,
    /// Target: (per-op ns upper bound) or (msgs/s lower bound), Go's figure.
    target: Target,
}

enum Target {
    NsAtMost(f64, &'static str),
    RateAtLeast(f64, &'static str),
    None,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let quick = std::env::var_os("GORT_BENCH_QUICK").is_some();
    let scale = if quick { 10 } else { 1 };
    let runs = if quick { 1 } else { 5 };
    let mut rows = Vec::new();
    let mut bench = |name: &'static str,
                     what: &'static str,
                     iters: u64,
                     target: Target,
                     f: &dyn Fn(u64) -> Duration| {
        if want(name) {
            let ns = best_of(runs, iters / scale, f);
            eprintln!("{name}: {ns:.1} ns/op");
            rows.push(Row {
                name,
                what,
                ns,
                target,
            });
        }
    };
    bench(
        "chan_ping_pong_0",
        "unbuffered ping-pong, per round trip",
        200_000,
        Target::NsAtMost(200.0, "Go ≈ 500"),
        &ping_pong,
    );
    bench(
        "chan_prod_cons_128",
        "cap 128, 1 producer 1 consumer",
        2_000_000,
        Target::RateAtLeast(26e6, "Go ≈ 13 M"),
        &|n| spsc(128, n),
    );
    bench(
        "chan_prod_cons_0",
        "unbuffered, 1 producer 1 consumer",
        1_000_000,
        Target::RateAtLeast(7e6, "Go ≈ 3.6 M"),
        &|n| spsc(0, n),
    );
    bench(
        "chan_prod_cons_10",
        "cap 10, 1 producer 1 consumer",
        1_000_000,
        Target::None,
        &|n| spsc(10, n),
    );
    bench(
        "mpmc_0",
        "unbuffered, 4 producers 4 consumers",
        400_000,
        Target::None,
        &|n| mpmc(4, 4, 0, n),
    );
    bench(
        "mpmc_128",
        "cap 128, 4 producers 4 consumers",
        1_000_000,
        Target::RateAtLeast(14e6, "1.25x Go's ≈ 11 M"),
        &|n| mpmc(4, 4, 128, n),
    );
    bench(
        "mpmc_128_1x4",
        "cap 128, 1 producer 4 consumers",
        1_000_000,
        Target::None,
        &|n| mpmc(1, 4, 128, n),
    );
    bench(
        "mpmc_128_4x1",
        "cap 128, 4 producers 1 consumer",
        1_000_000,
        Target::None,
        &|n| mpmc(4, 1, 128, n),
    );
    bench(
        "select_blocking_2",
        "blocking 2-case select, per select",
        200_000,
        Target::NsAtMost(250.0, "Go ≈ 520"),
        &select_blocking,
    );
    bench(
        "select_2prod",
        "blocking 2-case select, each channel its own producer",
        400_000,
        Target::NsAtMost(180.0, "0.8x Go's ≈ 225"),
        &select_2prod,
    );
    bench(
        "select_default_empty",
        "select + default, 2 empty channels",
        5_000_000,
        Target::NsAtMost(35.0, "Go ≈ 70"),
        &select_default,
    );
    bench(
        "select_uncontended",
        "1-case send select + 1-case recv select",
        2_000_000,
        Target::None,
        &select_uncontended,
    );
    bench(
        "after_fire",
        "<-after(1ns): create, fire, receive",
        200_000,
        Target::NsAtMost(620.0, "Go ≈ 620"),
        &after_fire,
    );
    bench(
        "after_heap_20us",
        "<-after(20µs) (includes the 20 µs wait)",
        20_000,
        Target::None,
        &after_heap,
    );
    bench(
        "timer_arm_stop",
        "Timer::new(1h) + stop",
        500_000,
        Target::None,
        &timer_arm_stop,
    );

    println!();
    println!(
        "gort channels on {} processors (best of {runs}; machine may be shared)",
        gort::max_procs()
    );
    println!();
    println!("| benchmark | what | gort | target | met |");
    println!("|---|---|---:|---:|:---:|");
    for r in rows {
        let (value, target, met) = match r.target {
            Target::NsAtMost(t, go) => (
                format!("{:.0} ns", r.ns),
                format!("≤ {t:.0} ns ({go})"),
                if r.ns <= t { "yes" } else { "no" },
            ),
            Target::RateAtLeast(t, go) => {
                let rate = 1e9 / r.ns;
                (
                    format!("{:.1} M msgs/s", rate / 1e6),
                    format!("≥ {:.0} M msgs/s ({go})", t / 1e6),
                    if rate >= t { "yes" } else { "no" },
                )
            }
            Target::None => (
                format!("{:.0} ns ({:.1} M/s)", r.ns, 1e3 / r.ns),
                "-".to_string(),
                "",
            ),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name, r.what, value, target, met
        );
    }
}
