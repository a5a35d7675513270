//! gort: every workload, written against DESIGN.md's public contract. Areas that land in
//! stages sit behind the peers crate's features `chan`, `sync`, `net`, `blocking`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::util::{self, *};
use super::Out;

/// Runs `f` as a goroutine and waits for it: the driver of a workload runs on the runtime,
/// as `#[gort::main]` would run it.
fn in_gort<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    gort::spawn(f).join().expect("workload goroutine panicked")
}

pub fn run(workload: &str) -> Out {
    match workload {
        "spawn" => in_gort(spawn),
        "switch" => in_gort(switch),
        "park_pingpong" => in_gort(|| {
            let t = Instant::now();
            park_pingpong(Limit::Count(PINGPONG_N as u64));
            ns(t, PINGPONG_N)
        }),
        "rss_parked" => rss_parked(),
        "syscall_ratio" | "spinner_ratio" => ratio(Hog::of(workload)),
        "blocking_ratio" => blocking_ratio(),
        "syscall_threads" => util::syscall_threads(
            || in_gort(|| ()),
            |f| {
                gort::spawn(f);
            },
        ),
        "chan_pingpong" | "chan_spsc_128" | "chan_stream_0" | "select_blocking"
        | "select_2prod" | "mpmc_4x4" | "mpmc_1x4" | "mpmc_4x1" | "select_default" | "after"
        | "after_fire" => chan::run(workload),
        "mutex_uncontended" | "mutex_2" | "mutex_100" | "waitgroup" | "context_cancel" => {
            sync::run(workload)
        }
        "tcp_echo" => net::run(),
        "spawn_burst" => in_gort(spawn_burst),
        w if w.starts_with("daisy_") => chan::daisy(w),
        "parked_1m" | "parked_1m_pte" => chan::parked_1m(workload),
        _ => Out::Na("unknown workload"),
    }
}

fn spawn() -> Out {
    let batch = || {
        let hs: Vec<_> = (0..SPAWN_BATCH).map(|_| gort::spawn(|| ())).collect();
        for h in hs {
            h.join().unwrap();
        }
    };
    batch();
    let t = Instant::now();
    for _ in 0..SPAWN_N / SPAWN_BATCH {
        batch();
    }
    ns(t, SPAWN_N)
}

/// From cold: no warm-up round, the handles kept until all are spawned.
fn spawn_burst() -> Out {
    let t = Instant::now();
    let hs: Vec<_> = (0..BURST_N).map(|_| gort::spawn(|| ())).collect();
    for h in hs {
        h.join().unwrap();
    }
    ns(t, BURST_N)
}

fn switch() -> Out {
    let go = || {
        gort::spawn(|| {
            for _ in 0..SWITCH_N {
                gort::yield_now();
            }
        })
    };
    let t = Instant::now();
    let (a, b) = (go(), go());
    a.join().unwrap();
    b.join().unwrap();
    ns(t, 2 * SWITCH_N)
}

/// How long a ping-pong runs.
#[derive(Clone, Copy)]
pub enum Limit {
    Count(u64),
    Until(Instant),
}

impl Limit {
    fn done(self, i: u64) -> bool {
        match self {
            Limit::Count(n) => i >= n,
            Limit::Until(t) => Instant::now() >= t,
        }
    }
}

/// Park/unpark ping-pong between the calling goroutine and a new one; returns round trips.
/// `turn` odd: B's move; even: A's; u64::MAX: stop. Spurious wake-ups re-check `turn`.
fn park_pingpong(limit: Limit) -> u64 {
    let turn = Arc::new(AtomicU64::new(0));
    let me = gort::thread::current();
    let t2 = turn.clone();
    let b = gort::spawn(move || {
        let mut expect = 1;
        loop {
            let t = loop {
                let t = t2.load(Ordering::Acquire);
                if t == expect || t == u64::MAX {
                    break t;
                }
                gort::thread::park();
            };
            if t == u64::MAX {
                break;
            }
            t2.store(expect + 1, Ordering::Release);
            me.unpark();
            expect += 2;
        }
    });
    let bt = b.thread().clone();
    let mut i = 0;
    while !limit.done(i) {
        turn.store(2 * i + 1, Ordering::Release);
        bt.unpark();
        while turn.load(Ordering::Acquire) != 2 * i + 2 {
            gort::thread::park();
        }
        i += 1;
    }
    turn.store(u64::MAX, Ordering::Release);
    bt.unpark();
    b.join().unwrap();
    i
}

/// The ping-pong of the ratio workloads: channels when the `chan` feature is on (what Go's
/// side does), park/unpark before that.
fn pingpong(limit: Limit) -> u64 {
    #[cfg(feature = "chan")]
    {
        chan::pingpong(limit)
    }
    #[cfg(not(feature = "chan"))]
    {
        park_pingpong(limit)
    }
}

fn rss_parked() -> Out {
    let n = rss_n();
    in_gort(|| ());
    std::thread::sleep(Duration::from_millis(50));
    let before = rss_bytes();
    let parked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for i in 0..n {
        let (p, s) = (parked.clone(), stop.clone());
        let r = gort::thread::Builder::new().spawn(move || {
            p.fetch_add(1, Ordering::SeqCst);
            while !s.load(Ordering::Acquire) {
                gort::thread::park();
            }
        });
        if let Err(e) = r {
            return Out::Value(f64::NAN, format!("spawn {i} failed: {e}"));
        }
    }
    let got = wait_count(&parked, n);
    kib_per(before, rss_bytes(), n, got)
}

fn ratio(hog: Hog) -> Out {
    util::ratio(
        hog,
        |body| {
            gort::spawn(body);
        },
        |window| {
            let until = Instant::now() + window;
            gort::spawn(move || pingpong(Limit::Until(until)))
                .join()
                .unwrap()
        },
    )
}

#[cfg(feature = "blocking")]
fn blocking_ratio() -> Out {
    util::ratio(
        Hog::Blocking,
        |body| {
            gort::spawn(move || gort::blocking(body));
        },
        |window| {
            let until = Instant::now() + window;
            gort::spawn(move || pingpong(Limit::Until(until)))
                .join()
                .unwrap()
        },
    )
}

#[cfg(not(feature = "blocking"))]
fn blocking_ratio() -> Out {
    Out::Na("gort feature `blocking` off")
}

#[cfg(feature = "chan")]
mod chan {
    use super::*;

    pub fn run(workload: &str) -> Out {
        match workload {
            "chan_pingpong" => in_gort(|| {
                let t = Instant::now();
                pingpong(Limit::Count(PINGPONG_N as u64));
                ns(t, PINGPONG_N)
            }),
            "chan_spsc_128" => in_gort(|| stream(128, SPSC_N)),
            "chan_stream_0" => in_gort(|| stream(0, STREAM_N)),
            "select_blocking" => in_gort(select_blocking),
            "select_default" => in_gort(select_default),
            "select_2prod" => in_gort(select_2prod),
            "mpmc_4x4" => in_gort(|| mpmc(4, 4)),
            "mpmc_1x4" => in_gort(|| mpmc(1, 4)),
            "mpmc_4x1" => in_gort(|| mpmc(4, 1)),
            "after" => in_gort(after),
            "after_fire" => in_gort(after_fire),
            _ => Out::Na("unknown workload"),
        }
    }

    /// Unbuffered ping-pong between the calling goroutine and a new one; round trips.
    pub fn pingpong(limit: Limit) -> u64 {
        let (tx1, rx1) = gort::chan::<u64>(0);
        let (tx2, rx2) = gort::chan::<u64>(0);
        let b = gort::spawn(move || {
            for v in rx1.iter() {
                if tx2.send(v).is_err() {
                    break;
                }
            }
        });
        let mut i = 0;
        while !limit.done(i) {
            tx1.send(i).unwrap();
            rx2.recv().unwrap();
            i += 1;
        }
        drop(tx1);
        b.join().unwrap();
        i
    }

    fn stream(cap: usize, n: usize) -> Out {
        let (tx, rx) = gort::chan::<u64>(cap);
        let t = Instant::now();
        let p = gort::spawn(move || {
            for i in 0..n as u64 {
                tx.send(i).unwrap();
            }
        });
        let mut sum = 0u64;
        for v in rx.iter() {
            sum = sum.wrapping_add(v);
        }
        p.join().unwrap();
        std::hint::black_box(sum);
        rate(t, n)
    }

    fn select_blocking() -> Out {
        let (tx1, rx1) = gort::chan::<u64>(0);
        let (tx2, rx2) = gort::chan::<u64>(0);
        let t = Instant::now();
        let p = gort::spawn(move || {
            for i in 0..SELECT_N as u64 {
                if i % 2 == 0 {
                    tx1.send(i).unwrap();
                } else {
                    tx2.send(i).unwrap();
                }
            }
            // Keep the senders until the selects are done: a closed channel is a ready case.
            (tx1, tx2)
        });
        let mut sum = 0u64;
        for _ in 0..SELECT_N {
            gort::select! {
                recv(&rx1) -> v => sum = sum.wrapping_add(v.unwrap()),
                recv(&rx2) -> v => sum = sum.wrapping_add(v.unwrap()),
            }
        }
        p.join().unwrap();
        std::hint::black_box(sum);
        ns(t, SELECT_N)
    }

    /// A 2-case select in a loop, each unbuffered channel fed by its own producer.
    fn select_2prod() -> Out {
        let (tx1, rx1) = gort::chan::<u64>(0);
        let (tx2, rx2) = gort::chan::<u64>(0);
        let t = Instant::now();
        let ps: Vec<_> = [tx1, tx2]
            .into_iter()
            .map(|tx| {
                gort::spawn(move || {
                    for i in 0..(SELECT2_N / 2) as u64 {
                        tx.send(i).unwrap();
                    }
                    // Keep the sender until the selects are done: a closed channel is ready.
                    tx
                })
            })
            .collect();
        let mut sum = 0u64;
        for _ in 0..SELECT2_N {
            gort::select! {
                recv(&rx1) -> v => sum = sum.wrapping_add(v.unwrap()),
                recv(&rx2) -> v => sum = sum.wrapping_add(v.unwrap()),
            }
        }
        for p in ps {
            p.join().unwrap();
        }
        std::hint::black_box(sum);
        ns(t, SELECT2_N)
    }

    /// `p` producers and `c` consumers on one channel of capacity `MPMC_CAP`.
    fn mpmc(p: usize, c: usize) -> Out {
        let (tx, rx) = gort::chan::<u64>(MPMC_CAP);
        let t = Instant::now();
        let ps: Vec<_> = (0..p)
            .map(|_| {
                let tx = tx.clone();
                gort::spawn(move || {
                    for i in 0..(MPMC_N / p) as u64 {
                        tx.send(i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let cs: Vec<_> = (0..c)
            .map(|_| {
                let rx = rx.clone();
                gort::spawn(move || rx.iter().count())
            })
            .collect();
        drop(rx);
        for h in ps {
            h.join().unwrap();
        }
        let total: usize = cs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, MPMC_N, "mpmc: lost messages");
        rate(t, MPMC_N)
    }

    fn select_default() -> Out {
        let (_tx1, rx1) = gort::chan::<u64>(0);
        let (_tx2, rx2) = gort::chan::<u64>(0);
        let mut hits = 0u64;
        let t = Instant::now();
        for _ in 0..SELECT_DEFAULT_N {
            gort::select! {
                recv(&rx1) -> _v => hits += 1,
                recv(&rx2) -> _v => hits += 1,
                default => {},
            }
        }
        let out = ns(t, SELECT_DEFAULT_N);
        assert_eq!(hits, 0);
        out
    }

    /// Pike's daisy chain: each goroutine adds one to what its right neighbour sends it.
    pub fn daisy(workload: &str) -> Out {
        fn link(left: gort::chan::Sender<u64>, right: gort::chan::Receiver<u64>) {
            left.send(1 + right.recv().unwrap()).unwrap();
        }
        let n = daisy_n(workload);
        let workload = workload.to_string();
        in_gort(move || {
            let t = Instant::now();
            let (leftmost_tx, leftmost_rx) = gort::chan::<u64>(0);
            let mut left = leftmost_tx;
            for _ in 0..n {
                let (right_tx, right_rx) = gort::chan::<u64>(0);
                gort::go!(link(left, right_rx));
                left = right_tx;
            }
            gort::go!(move || left.send(1).unwrap());
            let got = leftmost_rx.recv().unwrap();
            daisy_out(&workload, n, t.elapsed(), got)
        })
    }

    /// A million goroutines blocked receiving from one channel.
    pub fn parked_1m(workload: &str) -> Out {
        let (tx, rx) = gort::chan::<()>(0);
        let out = util::parked_1m(
            workload,
            || in_gort(|| ()),
            |n, parked| {
                for _ in 0..n {
                    let (p, rx) = (parked.clone(), rx.clone());
                    gort::spawn(move || {
                        p.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.recv();
                    });
                }
            },
        );
        std::mem::forget(tx); // the child exits with the goroutines still parked
        out
    }

    #[cfg(not(feature = "timers"))]
    fn after() -> Out {
        Out::Na("gort feature `timers` off")
    }

    #[cfg(not(feature = "timers"))]
    fn after_fire() -> Out {
        Out::Na("gort feature `timers` off")
    }

    #[cfg(feature = "timers")]
    fn after_fire() -> Out {
        let t = Instant::now();
        for _ in 0..AFTER_FIRE_N {
            gort::time::after(Duration::from_nanos(1)).recv().unwrap();
        }
        ns(t, AFTER_FIRE_N)
    }

    #[cfg(feature = "timers")]
    fn after() -> Out {
        let t = Instant::now();
        let rs: Vec<_> = (0..AFTER_N).map(|_| gort::time::after(AFTER_D)).collect();
        for r in &rs {
            r.recv().unwrap();
        }
        ns(t, AFTER_N)
    }
}

#[cfg(not(feature = "chan"))]
mod chan {
    use super::*;
    pub fn run(_: &str) -> Out {
        Out::Na("gort feature `chan` off")
    }
    pub fn daisy(_: &str) -> Out {
        Out::Na("gort feature `chan` off")
    }
    pub fn parked_1m(_: &str) -> Out {
        Out::Na("gort feature `chan` off")
    }
}

#[cfg(feature = "sync")]
mod sync {
    use super::*;
    use gort::sync::{Mutex, WaitGroup};

    pub fn run(workload: &str) -> Out {
        match workload {
            "mutex_uncontended" => in_gort(|| {
                let m = Mutex::new(0u64);
                let t = Instant::now();
                for _ in 0..MUTEX_N {
                    *m.lock() += 1;
                }
                ns(t, MUTEX_N)
            }),
            "mutex_2" => in_gort(|| contended(2, MUTEX2_N)),
            "mutex_100" => in_gort(|| contended(100, MUTEX100_N)),
            "waitgroup" => in_gort(|| {
                let wg = WaitGroup::new();
                let t = Instant::now();
                for _ in 0..WG_N {
                    wg.add(1);
                    wg.done();
                }
                ns(t, WG_N)
            }),
            "context_cancel" => context_cancel(),
            _ => Out::Na("unknown workload"),
        }
    }

    #[cfg(feature = "context")]
    fn context_cancel() -> Out {
        in_gort(|| {
            let bg = gort::context::Context::background();
            let t = Instant::now();
            for _ in 0..CTX_N {
                let (ctx, cancel) = bg.with_cancel();
                cancel.cancel();
                std::hint::black_box(&ctx);
            }
            ns(t, CTX_N)
        })
    }

    #[cfg(not(feature = "context"))]
    fn context_cancel() -> Out {
        Out::Na("gort feature `context` off")
    }

    fn contended(g: usize, n: usize) -> Out {
        let m = Arc::new(Mutex::new(0u64));
        let t = Instant::now();
        let hs: Vec<_> = (0..g)
            .map(|_| {
                let m = m.clone();
                gort::spawn(move || {
                    for _ in 0..n {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let out = ns(t, g * n);
        assert_eq!(*m.lock(), (g * n) as u64);
        out
    }
}

#[cfg(not(feature = "sync"))]
mod sync {
    use super::*;
    pub fn run(_: &str) -> Out {
        Out::Na("gort feature `sync` off")
    }
}

#[cfg(feature = "net")]
mod net {
    use super::*;
    use gort::net::{TcpListener, TcpStream};
    use std::io::{Read, Write};

    pub fn run() -> Out {
        in_gort(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            gort::spawn(move || loop {
                let (mut s, _) = l.accept().unwrap();
                gort::spawn(move || {
                    let _ = s.set_nodelay(true);
                    let mut buf = [0u8; TCP_MSG];
                    while s.read_exact(&mut buf).is_ok() {
                        if s.write_all(&buf).is_err() {
                            break;
                        }
                    }
                });
            });
            let total = Arc::new(AtomicUsize::new(0));
            let t = Instant::now();
            let until = t + TCP_TIME;
            let hs: Vec<_> = (0..TCP_CONNS)
                .map(|_| {
                    let total = total.clone();
                    gort::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        let _ = s.set_nodelay(true);
                        let mut buf = [7u8; TCP_MSG];
                        let mut n = 0;
                        while Instant::now() < until {
                            s.write_all(&buf).unwrap();
                            s.read_exact(&mut buf).unwrap();
                            n += 1;
                        }
                        total.fetch_add(n, Ordering::Relaxed);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            rate(t, total.load(Ordering::Relaxed))
        })
    }
}

#[cfg(not(feature = "net"))]
mod net {
    use super::*;
    pub fn run() -> Out {
        Out::Na("gort feature `net` off")
    }
}
