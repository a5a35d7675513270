//! sync and context benchmarks: Mutex uncontended and contended (2 and 100 goroutines),
//! RwLock read, WaitGroup add+done, Once, Semaphore, context with_cancel+cancel.
//!
//! `cargo bench --bench sync` prints one table, gort beside std (`std::sync`, where std has
//! the type) and Go's figures measured on this machine (FACTS.md). Each figure is the median
//! of several runs. The cross-language program with tokio and parking_lot is `peers/`.

use std::sync::Arc;
use std::time::Instant;

use gort::sync::{Mutex, Once, RwLock, Semaphore, WaitGroup};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn measure(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    f(); // warm-up
    median((0..runs).map(|_| f()).collect())
}

/// Runs `f` in a goroutine and returns its result.
fn on_goroutine<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    gort::spawn(f).join().unwrap()
}

/// ns per lock+unlock, one goroutine.
fn mutex_uncontended(n: u64) -> f64 {
    on_goroutine(move || {
        let m = Mutex::new(0u64);
        let t = Instant::now();
        for _ in 0..n {
            *std::hint::black_box(&m).lock() += 1;
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

fn std_mutex_uncontended(n: u64) -> f64 {
    let m = std::sync::Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *std::hint::black_box(&m).lock().unwrap() += 1;
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// ns per lock: `g` goroutines each lock+increment+unlock `per` times (Go's
/// BenchmarkMutex shape: total time / total locks).
fn mutex_contended(g: usize, per: u64) -> f64 {
    on_goroutine(move || {
        let m = Arc::new(Mutex::new(0u64));
        let wg = WaitGroup::new();
        let t = Instant::now();
        for _ in 0..g {
            let m = m.clone();
            wg.go(move || {
                for _ in 0..per {
                    *m.lock() += 1;
                }
            });
        }
        wg.wait();
        let ns = t.elapsed().as_nanos() as f64 / (g as u64 * per) as f64;
        assert_eq!(*m.lock(), g as u64 * per);
        ns
    })
}

/// The same on std threads with std's Mutex (threads, not goroutines).
fn std_mutex_contended(g: usize, per: u64) -> f64 {
    let m = Arc::new(std::sync::Mutex::new(0u64));
    let t = Instant::now();
    let ts: Vec<_> = (0..g)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    t.elapsed().as_nanos() as f64 / (g as u64 * per) as f64
}

/// ns per read lock+unlock, one goroutine.
fn rwlock_read(n: u64) -> f64 {
    on_goroutine(move || {
        let l = RwLock::new(1u64);
        let t = Instant::now();
        let mut s = 0;
        for _ in 0..n {
            s += *std::hint::black_box(&l).read();
        }
        std::hint::black_box(s);
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

fn std_rwlock_read(n: u64) -> f64 {
    let l = std::sync::RwLock::new(1u64);
    let t = Instant::now();
    let mut s = 0;
    for _ in 0..n {
        s += *std::hint::black_box(&l).read().unwrap();
    }
    std::hint::black_box(s);
    t.elapsed().as_nanos() as f64 / n as f64
}

fn std_once_done(n: u64) -> f64 {
    let o = std::sync::Once::new();
    o.call_once(|| ());
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(&o).call_once(|| ());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// ns per round trip: two goroutines taking turns through a Mutex + Condvar.
fn condvar_pingpong(n: u64) -> f64 {
    on_goroutine(move || {
        let pair = Arc::new((Mutex::new(0u64), gort::sync::Condvar::new()));
        let p2 = pair.clone();
        let t = Instant::now();
        let other = gort::spawn(move || {
            let (m, c) = &*p2;
            for i in 0..n {
                let mut g = c.wait_while(m.lock(), |v| *v != 2 * i + 1);
                *g += 1;
                c.notify_one();
            }
        });
        let (m, c) = &*pair;
        for i in 0..n {
            let mut g = m.lock();
            *g += 1;
            c.notify_one();
            drop(c.wait_while(g, |v| *v != 2 * i + 2));
        }
        other.join().unwrap();
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// ns per add(1)+done(), one goroutine.
fn waitgroup_add_done(n: u64) -> f64 {
    on_goroutine(move || {
        let wg = WaitGroup::new();
        let t = Instant::now();
        for _ in 0..n {
            let wg = std::hint::black_box(&wg);
            wg.add(1);
            wg.done();
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// ns per call_once on a done Once.
fn once_done(n: u64) -> f64 {
    let o = Once::new();
    o.call_once(|| ());
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(&o).call_once(|| ());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// ns per acquire+release, uncontended.
fn semaphore_uncontended(n: u64) -> f64 {
    let s = Semaphore::new(4);
    let t = Instant::now();
    for _ in 0..n {
        drop(std::hint::black_box(&s).acquire());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// ns per with_cancel + cancel, on a background parent.
fn context_cancel(n: u64) -> f64 {
    on_goroutine(move || {
        let bg = gort::context::Context::background();
        let t = Instant::now();
        for _ in 0..n {
            let (ctx, cancel) = bg.with_cancel();
            cancel.cancel();
            std::hint::black_box(ctx);
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// ns per with_cancel + cancel, child of a cancellable parent (registers in its children).
fn context_cancel_child(n: u64) -> f64 {
    on_goroutine(move || {
        let (parent, _keep) = gort::context::Context::background().with_cancel();
        let t = Instant::now();
        for _ in 0..n {
            let (ctx, cancel) = parent.with_cancel();
            cancel.cancel();
            std::hint::black_box(ctx);
        }
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let k: u64 = if quick { 10 } else { 1 };
    let runs = if quick { 3 } else { 7 };
    println!(
        "gort sync benchmarks (GOMAXPROCS-equivalent max_procs = {})",
        gort::max_procs()
    );
    println!(
        "{:<40} {:>12} {:>12} {:>14}",
        "benchmark", "gort ns/op", "std ns/op", "Go/target ns"
    );
    let row = |name: &str, g: f64, s: Option<f64>, go: &str| {
        let s = s.map_or("-".to_string(), |s| format!("{s:.1}"));
        println!("{name:<40} {g:>12.1} {s:>12} {go:>14}");
    };
    row(
        "mutex_uncontended (lock+unlock)",
        measure(runs, || mutex_uncontended(2_000_000 / k)),
        Some(measure(runs, || std_mutex_uncontended(2_000_000 / k))),
        "<= 15",
    );
    row(
        "mutex_contended_2 (per lock)",
        measure(runs, || mutex_contended(2, 500_000 / k)),
        Some(measure(runs, || std_mutex_contended(2, 500_000 / k))),
        "31",
    );
    row(
        "mutex_contended_100 (per lock)",
        measure(runs, || mutex_contended(100, 10_000 / k)),
        Some(measure(runs, || std_mutex_contended(100, 10_000 / k))),
        "39-83",
    );
    row(
        "rwlock_read (read+unlock)",
        measure(runs, || rwlock_read(2_000_000 / k)),
        Some(measure(runs, || std_rwlock_read(2_000_000 / k))),
        "-",
    );
    row(
        "waitgroup_add_done",
        measure(runs, || waitgroup_add_done(2_000_000 / k)),
        None,
        "46",
    );
    row(
        "once_done",
        measure(runs, || once_done(5_000_000 / k)),
        Some(measure(runs, || std_once_done(5_000_000 / k))),
        "-",
    );
    row(
        "condvar_pingpong (round trip)",
        measure(runs, || condvar_pingpong(100_000 / k)),
        None,
        "-",
    );
    row(
        "semaphore_acquire_release",
        measure(runs, || semaphore_uncontended(1_000_000 / k)),
        None,
        "-",
    );
    row(
        "context_with_cancel+cancel",
        measure(runs, || context_cancel(200_000 / k)),
        None,
        "-",
    );
    row(
        "context_with_cancel+cancel (child)",
        measure(runs, || context_cancel_child(200_000 / k)),
        None,
        "-",
    );
}
