//! std threads with crossbeam-channel, crossbeam-utils and parking_lot: the "just use OS
//! threads" baseline. Counts are smaller where a thread per item would take minutes.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select};
use parking_lot::Mutex;

use super::util::{self, *};
use super::Out;

/// Threads spawned and joined (`spawn`): a thread costs ~10 µs, so fewer.
const STD_SPAWN_N: usize = 5_000;
/// Round trips, unbuffered messages and selects between threads: each costs microseconds
/// (a futex wake and a context switch), so a tenth of the goroutine counts.
const STD_PINGPONG_N: usize = PINGPONG_N / 10;
const STD_STREAM_N: usize = STREAM_N / 10;
const STD_SELECT_N: usize = SELECT_N / 10;
/// Parked threads (`rss_parked`).
const STD_RSS_N: usize = 2_000;

pub fn run(workload: &str) -> Out {
    match workload {
        "spawn" => {
            let batch = || {
                let hs: Vec<_> = (0..100).map(|_| thread::spawn(|| ())).collect();
                for h in hs {
                    h.join().unwrap();
                }
            };
            batch();
            let t = Instant::now();
            for _ in 0..STD_SPAWN_N / 100 {
                batch();
            }
            note(ns(t, STD_SPAWN_N), "OS threads, N = 5,000")
        }
        "switch" => {
            pin_to_cpu0();
            let go = || {
                thread::spawn(|| {
                    for _ in 0..SWITCH_N {
                        thread::yield_now();
                    }
                })
            };
            let t = Instant::now();
            let (a, b) = (go(), go());
            a.join().unwrap();
            b.join().unwrap();
            note(ns(t, 2 * SWITCH_N), "sched_yield, both threads on CPU 0")
        }
        "park_pingpong" => {
            let t = Instant::now();
            park_pingpong();
            note(ns(t, STD_PINGPONG_N), "N = 20,000")
        }
        "rss_parked" => rss_parked(),
        "chan_pingpong" => {
            let t = Instant::now();
            chan_pingpong(None);
            note(ns(t, STD_PINGPONG_N), "crossbeam bounded(0), N = 20,000")
        }
        "chan_spsc_128" => note(stream(128, SPSC_N), "crossbeam bounded(128)"),
        "chan_stream_0" => note(stream(0, STD_STREAM_N), "crossbeam bounded(0), N = 100,000"),
        "select_blocking" => select_blocking(),
        "select_2prod" => select_2prod(),
        "mpmc_4x4" => note(mpmc(4, 4), "crossbeam bounded(128), threads"),
        "mpmc_1x4" => note(mpmc(1, 4), "crossbeam bounded(128), threads"),
        "mpmc_4x1" => note(mpmc(4, 1), "crossbeam bounded(128), threads"),
        "select_default" => {
            let (_tx1, rx1) = bounded::<u64>(0);
            let (_tx2, rx2) = bounded::<u64>(0);
            let mut hits = 0u64;
            let t = Instant::now();
            for _ in 0..SELECT_DEFAULT_N {
                select! {
                    recv(rx1) -> _v => hits += 1,
                    recv(rx2) -> _v => hits += 1,
                    default => {},
                }
            }
            let out = ns(t, SELECT_DEFAULT_N);
            assert_eq!(hits, 0);
            note(out, "crossbeam select!")
        }
        "after" => {
            let t = Instant::now();
            let rs: Vec<_> = (0..AFTER_N)
                .map(|_| crossbeam_channel::after(AFTER_D))
                .collect();
            for r in &rs {
                r.recv().unwrap();
            }
            note(ns(t, AFTER_N), "crossbeam after")
        }
        "after_fire" => {
            let t = Instant::now();
            for _ in 0..AFTER_FIRE_N {
                crossbeam_channel::after(Duration::from_nanos(1))
                    .recv()
                    .unwrap();
            }
            note(ns(t, AFTER_FIRE_N), "crossbeam after")
        }
        "mutex_uncontended" => {
            let m = Mutex::new(0u64);
            let t = Instant::now();
            for _ in 0..MUTEX_N {
                *m.lock() += 1;
            }
            note(ns(t, MUTEX_N), "parking_lot")
        }
        "mutex_2" => note(contended(2, MUTEX2_N), "parking_lot"),
        "mutex_100" => note(contended(100, MUTEX100_N), "parking_lot, 100 threads"),
        "waitgroup" => {
            let wg = crossbeam_utils::sync::WaitGroup::new();
            let t = Instant::now();
            for _ in 0..WG_N {
                drop(std::hint::black_box(wg.clone()));
            }
            note(ns(t, WG_N), "crossbeam WaitGroup clone + drop")
        }
        "context_cancel" => Out::Na("no context in std"),
        "syscall_ratio" | "spinner_ratio" => util::ratio(
            Hog::of(workload),
            |body| {
                thread::spawn(body);
            },
            |window| {
                let until = Instant::now() + window;
                chan_pingpong(Some(until))
            },
        ),
        "blocking_ratio" => Out::Na("same as syscall_ratio for threads"),
        "tcp_echo" => note(tcp_echo(), "a thread per connection and per client"),
        "syscall_threads" => util::syscall_threads(
            || (),
            |f| {
                thread::spawn(f);
            },
        ),
        "spawn_burst" | "parked_1m" | "parked_1m_pte" => Out::Na("OS threads: not at this scale"),
        w if w.starts_with("daisy_") => Out::Na("OS threads: not at this scale"),
        _ => Out::Na("unknown workload"),
    }
}


fn park_pingpong() {
    let turn = Arc::new(AtomicU64::new(0));
    let me = thread::current();
    let t2 = turn.clone();
    let b = thread::spawn(move || {
        let mut expect = 1;
        loop {
            let t = loop {
                let t = t2.load(Ordering::Acquire);
                if t == expect || t == u64::MAX {
                    break t;
                }
                thread::park();
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
    for i in 0..STD_PINGPONG_N as u64 {
        turn.store(2 * i + 1, Ordering::Release);
        bt.unpark();
        while turn.load(Ordering::Acquire) != 2 * i + 2 {
            thread::park();
        }
    }
    turn.store(u64::MAX, Ordering::Release);
    bt.unpark();
    b.join().unwrap();
}

fn chan_pingpong(until: Option<Instant>) -> u64 {
    let (tx1, rx1) = bounded::<u64>(0);
    let (tx2, rx2) = bounded::<u64>(0);
    let b = thread::spawn(move || {
        for v in rx1.iter() {
            if tx2.send(v).is_err() {
                break;
            }
        }
    });
    let mut i = 0u64;
    while match until {
        None => i < STD_PINGPONG_N as u64,
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

fn stream(cap: usize, n: usize) -> Out {
    let (tx, rx) = bounded::<u64>(cap);
    let t = Instant::now();
    let p = thread::spawn(move || {
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
    let (tx1, rx1) = bounded::<u64>(0);
    let (tx2, rx2) = bounded::<u64>(0);
    let t = Instant::now();
    let p = thread::spawn(move || {
        for i in 0..STD_SELECT_N as u64 {
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
    for _ in 0..STD_SELECT_N {
        select! {
            recv(rx1) -> v => sum = sum.wrapping_add(v.unwrap()),
            recv(rx2) -> v => sum = sum.wrapping_add(v.unwrap()),
        }
    }
    p.join().unwrap();
    std::hint::black_box(sum);
    note(ns(t, STD_SELECT_N), "crossbeam select!, N = 50,000")
}

fn select_2prod() -> Out {
    let n = STD_SELECT_N;
    let (tx1, rx1) = bounded::<u64>(0);
    let (tx2, rx2) = bounded::<u64>(0);
    let t = Instant::now();
    let ps: Vec<_> = [tx1, tx2]
        .into_iter()
        .map(|tx| {
            thread::spawn(move || {
                for i in 0..(n / 2) as u64 {
                    tx.send(i).unwrap();
                }
                // Keep the sender until the selects are done: a closed channel is ready.
                tx
            })
        })
        .collect();
    let mut sum = 0u64;
    for _ in 0..n {
        select! {
            recv(rx1) -> v => sum = sum.wrapping_add(v.unwrap()),
            recv(rx2) -> v => sum = sum.wrapping_add(v.unwrap()),
        }
    }
    for p in ps {
        p.join().unwrap();
    }
    std::hint::black_box(sum);
    note(ns(t, n), "crossbeam select!, threads, N = 50,000")
}

fn mpmc(p: usize, c: usize) -> Out {
    let (tx, rx) = bounded::<u64>(MPMC_CAP);
    let t = Instant::now();
    let ps: Vec<_> = (0..p)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
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
            thread::spawn(move || rx.iter().count())
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

fn contended(g: usize, n: usize) -> Out {
    let m = Arc::new(Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..g)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..n {
                    *m.lock() += 1;
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
    let n = STD_RSS_N;
    let before = rss_bytes();
    let parked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..n {
        let (p, s) = (parked.clone(), stop.clone());
        thread::spawn(move || {
            p.fetch_add(1, Ordering::SeqCst);
            while !s.load(Ordering::Acquire) {
                thread::park();
            }
        });
    }
    let got = wait_count(&parked, n);
    match kib_per(before, rss_bytes(), n, got) {
        Out::Value(v, _) => Out::Value(v, format!("{got} threads (user-space RSS only)")),
        o => o,
    }
}

fn tcp_echo() -> Out {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || loop {
        let (mut s, _) = l.accept().unwrap();
        thread::spawn(move || {
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
            thread::spawn(move || {
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
