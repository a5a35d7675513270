//! may 0.3: the same workloads as coroutines (PEERS_PROCS workers). may has only unbounded
//! channels and a select! that spawns a coroutine per branch (FACTS.md), so those rows say
//! what was used or are left out.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::coroutine;
use may::sync::{mpsc, Mutex, WaitGroup};

use super::util::{self, *};
use super::Out;

/// Runs `f` as a coroutine and waits for it.
fn in_co<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    may::go!(f).join().expect("workload coroutine panicked")
}

pub fn run(workload: &str) -> Out {
    may::config().set_workers(procs());
    match workload {
        "spawn" => in_co(spawn),
        "switch" => in_co(|| {
            let go = || {
                may::go!(|| {
                    for _ in 0..SWITCH_N {
                        coroutine::yield_now();
                    }
                })
            };
            let t = Instant::now();
            let (a, b) = (go(), go());
            a.join().unwrap();
            b.join().unwrap();
            ns(t, 2 * SWITCH_N)
        }),
        "park_pingpong" => in_co(|| {
            let t = Instant::now();
            park_pingpong();
            ns(t, PINGPONG_N)
        }),
        "rss_parked" => rss_parked(),
        "chan_pingpong" => in_co(|| {
            let t = Instant::now();
            chan_pingpong(None);
            Out::Value(
                t.elapsed().as_nanos() as f64 / PINGPONG_N as f64,
                "unbounded mpsc: may has no rendezvous channel".into(),
            )
        }),
        "chan_spsc_128" => in_co(|| {
            let (tx, rx) = mpsc::channel::<u64>();
            let t = Instant::now();
            let p = may::go!(move || {
                for i in 0..SPSC_N as u64 {
                    tx.send(i).unwrap();
                }
            });
            let mut sum = 0u64;
            while let Ok(v) = rx.recv() {
                sum = sum.wrapping_add(v);
            }
            p.join().unwrap();
            std::hint::black_box(sum);
            match rate(t, SPSC_N) {
                Out::Value(v, _) => Out::Value(v, "unbounded: may has no bounded channel".into()),
                o => o,
            }
        }),
        "chan_stream_0" => Out::Na("may has no unbuffered channel"),
        "select_blocking" | "select_default" => {
            Out::Na("may's select! spawns a coroutine per branch and can lose messages")
        }
        "after" | "after_fire" => Out::Na("may has no timer channel"),
        "mutex_uncontended" => in_co(|| {
            let m = Mutex::new(0u64);
            let t = Instant::now();
            for _ in 0..MUTEX_N {
                *m.lock().unwrap() += 1;
            }
            ns(t, MUTEX_N)
        }),
        "mutex_2" => in_co(|| contended(2, MUTEX2_N)),
        "mutex_100" => in_co(|| contended(100, MUTEX100_N)),
        "waitgroup" => in_co(|| {
            let wg = WaitGroup::new();
            let t = Instant::now();
            for _ in 0..WG_N {
                drop(std::hint::black_box(wg.clone()));
            }
            match ns(t, WG_N) {
                Out::Value(v, _) => Out::Value(v, "clone + drop".into()),
                o => o,
            }
        }),
        "context_cancel" => Out::Na("no context in may"),
        "syscall_ratio" | "spinner_ratio" => util::ratio(
            Hog::of(workload),
            |body| {
                may::go!(body);
            },
            |window| {
                let until = Instant::now() + window;
                in_co(move || chan_pingpong(Some(until)))
            },
        ),
        "blocking_ratio" => Out::Na("may has no blocking() hand-off"),
        "tcp_echo" => in_co(tcp_echo),
        "syscall_threads" => util::syscall_threads(
            || in_co(|| ()),
            |f| {
                may::go!(f);
            },
        ),
        "spawn_burst" | "daisy_100k" | "daisy_100k_rss" | "parked_1m" | "parked_1m_pte"
            if util::max_map_count() < 250_000 =>
        {
            Out::Na("may maps every coroutine's stack at spawn: ENOMEM (or a hang) near 32,000 at this vm.max_map_count")
        }
        "spawn_burst" => in_co(|| {
            let t = Instant::now();
            let hs: Vec<_> = (0..BURST_N).map(|_| may::go!(|| ())).collect();
            for h in hs {
                h.join().unwrap();
            }
            ns(t, BURST_N)
        }),
        w if w.starts_with("daisy_") => {
            let n = daisy_n(w);
            let w = w.to_string();
            in_co(move || {
                let t = Instant::now();
                let (leftmost_tx, leftmost_rx) = mpsc::channel::<u64>();
                let mut left = leftmost_tx;
                for _ in 0..n {
                    let (right_tx, right_rx) = mpsc::channel::<u64>();
                    may::go!(move || {
                        let v = right_rx.recv().unwrap();
                        left.send(1 + v).unwrap();
                    });
                    left = right_tx;
                }
                may::go!(move || left.send(1).unwrap());
                let got = leftmost_rx.recv().unwrap();
                match daisy_out(&w, n, t.elapsed(), got) {
                    Out::Value(v, _) => Out::Value(v, "unbounded mpsc".into()),
                    o => o,
                }
            })
        }
        "parked_1m" | "parked_1m_pte" => {
            let (tx, rx) = mpsc::channel::<()>();
            let rx = Arc::new(Mutex::new(rx));
            let out = util::parked_1m(
                workload,
                || in_co(|| ()),
                |n, parked| {
                    for _ in 0..n {
                        let (p, rx) = (parked.clone(), rx.clone());
                        may::go!(move || {
                            p.fetch_add(1, Ordering::SeqCst);
                            let _ = rx.lock().unwrap().recv();
                        });
                    }
                },
            );
            std::mem::forget(tx);
            out
        }
        _ => Out::Na("unknown workload"),
    }
}

fn spawn() -> Out {
    let batch = || {
        let hs: Vec<_> = (0..SPAWN_BATCH).map(|_| may::go!(|| ())).collect();
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

/// Park/unpark ping-pong with a turn counter (see gort_impl::park_pingpong).
fn park_pingpong() {
    let turn = Arc::new(AtomicU64::new(0));
    let me = coroutine::current();
    let t2 = turn.clone();
    let b = may::go!(move || {
        let mut expect = 1;
        loop {
            let t = loop {
                let t = t2.load(Ordering::Acquire);
                if t == expect || t == u64::MAX {
                    break t;
                }
                coroutine::park();
            };
            if t == u64::MAX {
                break;
            }
            t2.store(expect + 1, Ordering::Release);
            me.unpark();
            expect += 2;
        }
    });
    let bt = b.coroutine().clone();
    for i in 0..PINGPONG_N as u64 {
        turn.store(2 * i + 1, Ordering::Release);
        bt.unpark();
        while turn.load(Ordering::Acquire) != 2 * i + 2 {
            coroutine::park();
        }
    }
    turn.store(u64::MAX, Ordering::Release);
    bt.unpark();
    b.join().unwrap();
}

fn chan_pingpong(until: Option<Instant>) -> u64 {
    let (tx1, rx1) = mpsc::channel::<u64>();
    let (tx2, rx2) = mpsc::channel::<u64>();
    let b = may::go!(move || {
        while let Ok(v) = rx1.recv() {
            if tx2.send(v).is_err() {
                break;
            }
        }
    });
    let mut i = 0u64;
    while match until {
        None => i < PINGPONG_N as u64,
        Some(t) => Instant::now() < t,
    } {
        tx1.send(i).unwrap();
        rx2.recv().unwrap();
        i += 1;
    }
    drop(tx1);
    b.join().unwrap();
    i
}

fn contended(g: usize, n: usize) -> Out {
    let m = Arc::new(Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..g)
        .map(|_| {
            let m = m.clone();
            may::go!(move || {
                for _ in 0..n {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    ns(t, g * n)
}

fn rss_parked() -> Out {
    let n = rss_n();
    in_co(|| ());
    std::thread::sleep(Duration::from_millis(50));
    let before = rss_bytes();
    let parked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..n {
        let (p, s) = (parked.clone(), stop.clone());
        may::go!(move || {
            p.fetch_add(1, Ordering::SeqCst);
            while !s.load(Ordering::Acquire) {
                coroutine::park();
            }
        });
    }
    let got = wait_count(&parked, n);
    kib_per(before, rss_bytes(), n, got)
}

fn tcp_echo() -> Out {
    use may::net::{TcpListener, TcpStream};
    use std::io::{Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    may::go!(move || loop {
        let (mut s, _) = l.accept().unwrap();
        may::go!(move || {
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
            may::go!(move || {
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
}
