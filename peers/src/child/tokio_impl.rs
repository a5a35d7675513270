//! tokio: the same workloads as tasks on the multi-thread runtime (PEERS_PROCS workers).
//! Where tokio has no such primitive the nearest one is used and the table says so.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex, Notify};

use super::util::{self, *};
use super::Out;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs())
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` as a task (not on the block_on thread) and waits for it.
fn in_task<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    let rt = rt();
    let out = rt.block_on(async move { tokio::spawn(f).await.unwrap() });
    std::mem::forget(rt);
    out
}

pub fn run(workload: &str) -> Out {
    match workload {
        "spawn" => in_task(spawn()),
        "switch" => in_task(async {
            let go = || {
                tokio::spawn(async {
                    for _ in 0..SWITCH_N {
                        tokio::task::yield_now().await;
                    }
                })
            };
            let t = Instant::now();
            let (a, b) = (go(), go());
            a.await.unwrap();
            b.await.unwrap();
            ns(t, 2 * SWITCH_N)
        }),
        "park_pingpong" => in_task(async {
            let t = Instant::now();
            notify_pingpong(None).await;
            ns(t, PINGPONG_N)
        }),
        "rss_parked" => rss_parked(),
        "chan_pingpong" => in_task(async {
            let t = Instant::now();
            chan_pingpong(None).await;
            ns(t, PINGPONG_N)
        }),
        "chan_spsc_128" => in_task(stream(128, SPSC_N)),
        "chan_stream_0" => in_task(stream(1, STREAM_N)),
        "select_blocking" => in_task(select_blocking()),
        "select_2prod" => in_task(select_2prod()),
        "mpmc_4x4" => in_task(mpmc(4, 4)),
        "mpmc_1x4" => in_task(mpmc(1, 4)),
        "mpmc_4x1" => in_task(mpmc(4, 1)),
        "select_default" => Out::Na("tokio::select! has no default case"),
        "after" => in_task(async {
            let t = Instant::now();
            let ss: Vec<_> = (0..AFTER_N)
                .map(|_| Box::pin(tokio::time::sleep(AFTER_D)))
                .collect();
            for s in ss {
                s.await;
            }
            ns(t, AFTER_N)
        }),
        "after_fire" => in_task(async {
            // Each sleep rounds up to the wheel's 1 ms tick: 1,000 of them, not 100,000.
            let n = 1_000;
            let t = Instant::now();
            for _ in 0..n {
                tokio::time::sleep(Duration::from_nanos(1)).await;
            }
            Out::Value(
                t.elapsed().as_nanos() as f64 / n as f64,
                "1 ms timer wheel: sleep(1 ns) waits for the next tick; N = 1,000".into(),
            )
        }),
        "mutex_uncontended" => in_task(async {
            let m = Mutex::new(0u64);
            let t = Instant::now();
            for _ in 0..MUTEX_N {
                *m.lock().await += 1;
            }
            ns(t, MUTEX_N)
        }),
        "mutex_2" => in_task(contended(2, MUTEX2_N)),
        "mutex_100" => in_task(contended(100, MUTEX100_N)),
        "waitgroup" | "context_cancel" => Out::Na("no such primitive in tokio"),
        "syscall_ratio" | "spinner_ratio" | "blocking_ratio" => ratio(Hog::of(workload)),
        "tcp_echo" => in_task(tcp_echo()),
        "syscall_threads" => {
            let rt = rt();
            let h = rt.handle().clone();
            let out = util::syscall_threads(
                || rt.block_on(async { tokio::spawn(async {}).await.unwrap() }),
                |f| {
                    h.spawn(async move { f() });
                },
            );
            std::mem::forget(rt);
            out
        }
        "spawn_burst" => in_task(async {
            let t = Instant::now();
            let hs: Vec<_> = (0..BURST_N).map(|_| tokio::spawn(async {})).collect();
            for h in hs {
                h.await.unwrap();
            }
            ns(t, BURST_N)
        }),
        w if w.starts_with("daisy_") => {
            let n = daisy_n(w);
            let w = w.to_string();
            in_task(async move {
                let t = Instant::now();
                let (leftmost_tx, mut leftmost_rx) = mpsc::channel::<u64>(1);
                let mut left = leftmost_tx;
                for _ in 0..n {
                    let (right_tx, mut right_rx) = mpsc::channel::<u64>(1);
                    tokio::spawn(async move {
                        let v = right_rx.recv().await.unwrap();
                        left.send(1 + v).await.unwrap();
                    });
                    left = right_tx;
                }
                tokio::spawn(async move { left.send(1).await.unwrap() });
                let got = leftmost_rx.recv().await.unwrap();
                match daisy_out(&w, n, t.elapsed(), got) {
                    Out::Value(v, _) => {
                        Out::Value(v, "mpsc(1): tokio has no rendezvous channel".into())
                    }
                    o => o,
                }
            })
        }
        "parked_1m" | "parked_1m_pte" => {
            let rt = rt();
            let h = rt.handle().clone();
            let stop = Arc::new(Notify::new());
            let out = util::parked_1m(
                workload,
                || rt.block_on(async { tokio::spawn(async {}).await.unwrap() }),
                |n, parked| {
                    for _ in 0..n {
                        let (p, s) = (parked.clone(), stop.clone());
                        h.spawn(async move {
                            let f = s.notified();
                            p.fetch_add(1, Ordering::SeqCst);
                            f.await;
                        });
                    }
                },
            );
            std::mem::forget(rt);
            match out {
                Out::Value(v, n) => Out::Value(v, format!("Notify; {n}")),
                o => o,
            }
        }
        _ => Out::Na("unknown workload"),
    }
}

async fn spawn() -> Out {
    async fn batch() {
        let hs: Vec<_> = (0..SPAWN_BATCH).map(|_| tokio::spawn(async {})).collect();
        for h in hs {
            h.await.unwrap();
        }
    }
    batch().await;
    let t = Instant::now();
    for _ in 0..SPAWN_N / SPAWN_BATCH {
        batch().await;
    }
    ns(t, SPAWN_N)
}

/// Ping-pong through two Notify (a stored permit plays the unpark token); round trips.
async fn notify_pingpong(until: Option<Instant>) -> u64 {
    let (na, nb) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (na2, nb2, stop2) = (na.clone(), nb.clone(), stop.clone());
    let b = tokio::spawn(async move {
        loop {
            nb2.notified().await;
            if stop2.load(Ordering::Acquire) {
                break;
            }
            na2.notify_one();
        }
    });
    let mut i = 0u64;
    while match until {
        None => i < PINGPONG_N as u64,
        Some(t) => Instant::now() < t,
    } {
        nb.notify_one();
        na.notified().await;
        i += 1;
    }
    stop.store(true, Ordering::Release);
    nb.notify_one();
    b.await.unwrap();
    i
}

/// Ping-pong over two mpsc(1) channels (tokio has no rendezvous channel); round trips.
async fn chan_pingpong(until: Option<Instant>) -> u64 {
    let (tx1, mut rx1) = mpsc::channel::<u64>(1);
    let (tx2, mut rx2) = mpsc::channel::<u64>(1);
    let b = tokio::spawn(async move {
        while let Some(v) = rx1.recv().await {
            if tx2.send(v).await.is_err() {
                break;
            }
        }
    });
    let mut i = 0u64;
    while match until {
        None => i < PINGPONG_N as u64,
        Some(t) => Instant::now() < t,
    } {
        tx1.send(i).await.unwrap();
        rx2.recv().await.unwrap();
        i += 1;
    }
    drop(tx1);
    b.await.unwrap();
    i
}

async fn stream(cap: usize, n: usize) -> Out {
    let (tx, mut rx) = mpsc::channel::<u64>(cap);
    let t = Instant::now();
    let p = tokio::spawn(async move {
        for i in 0..n as u64 {
            tx.send(i).await.unwrap();
        }
    });
    let mut sum = 0u64;
    while let Some(v) = rx.recv().await {
        sum = sum.wrapping_add(v);
    }
    p.await.unwrap();
    std::hint::black_box(sum);
    let out = rate(t, n);
    if cap == 1 {
        if let Out::Value(v, _) = out {
            return Out::Value(v, "mpsc(1): tokio has no unbuffered channel".into());
        }
    }
    out
}

async fn select_blocking() -> Out {
    let (tx1, mut rx1) = mpsc::channel::<u64>(1);
    let (tx2, mut rx2) = mpsc::channel::<u64>(1);
    let t = Instant::now();
    let p = tokio::spawn(async move {
        for i in 0..SELECT_N as u64 {
            if i % 2 == 0 {
                tx1.send(i).await.unwrap();
            } else {
                tx2.send(i).await.unwrap();
            }
        }
        // Keep the senders until the selects are done: a closed channel is a ready case.
        (tx1, tx2)
    });
    let mut sum = 0u64;
    for _ in 0..SELECT_N {
        tokio::select! {
            v = rx1.recv() => sum = sum.wrapping_add(v.unwrap()),
            v = rx2.recv() => sum = sum.wrapping_add(v.unwrap()),
        }
    }
    p.await.unwrap();
    std::hint::black_box(sum);
    ns(t, SELECT_N)
}

async fn select_2prod() -> Out {
    let (tx1, mut rx1) = mpsc::channel::<u64>(1);
    let (tx2, mut rx2) = mpsc::channel::<u64>(1);
    let t = Instant::now();
    let ps: Vec<_> = [tx1, tx2]
        .into_iter()
        .map(|tx| {
            tokio::spawn(async move {
                for i in 0..(SELECT2_N / 2) as u64 {
                    tx.send(i).await.unwrap();
                }
                // Keep the sender until the selects are done: a closed channel is ready.
                tx
            })
        })
        .collect();
    let mut sum = 0u64;
    for _ in 0..SELECT2_N {
        tokio::select! {
            v = rx1.recv() => sum = sum.wrapping_add(v.unwrap()),
            v = rx2.recv() => sum = sum.wrapping_add(v.unwrap()),
        }
    }
    for p in ps {
        p.await.unwrap();
    }
    std::hint::black_box(sum);
    note(ns(t, SELECT2_N), "mpsc(1)")
}

/// tokio's mpsc has one receiver: several consumers share it behind a tokio Mutex.
async fn mpmc(p: usize, c: usize) -> Out {
    let (tx, rx) = mpsc::channel::<u64>(MPMC_CAP);
    let rx = Arc::new(Mutex::new(rx));
    let t = Instant::now();
    let ps: Vec<_> = (0..p)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..(MPMC_N / p) as u64 {
                    tx.send(i).await.unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let cs: Vec<_> = (0..c)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                while rx.lock().await.recv().await.is_some() {
                    n += 1;
                }
                n
            })
        })
        .collect();
    for h in ps {
        h.await.unwrap();
    }
    let mut total = 0;
    for h in cs {
        total += h.await.unwrap();
    }
    assert_eq!(total, MPMC_N, "mpmc: lost messages");
    let out = rate(t, MPMC_N);
    if c > 1 {
        return note(out, "mpsc behind a tokio Mutex (one receiver)");
    }
    out
}

async fn contended(g: usize, n: usize) -> Out {
    let m = Arc::new(Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..g)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    *m.lock().await += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    ns(t, g * n)
}

fn rss_parked() -> Out {
    let n = rss_n();
    let rt = rt();
    rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    std::thread::sleep(Duration::from_millis(50));
    let before = rss_bytes();
    let parked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(Notify::new());
    for _ in 0..n {
        let (p, s) = (parked.clone(), stop.clone());
        rt.spawn(async move {
            let f = s.notified();
            p.fetch_add(1, Ordering::SeqCst);
            f.await;
        });
    }
    let got = wait_count(&parked, n);
    let out = kib_per(before, rss_bytes(), n, got);
    std::mem::forget(rt);
    out
}

fn ratio(hog: Hog) -> Out {
    let rt = rt();
    let h = rt.handle().clone();
    let out = util::ratio(
        hog,
        |body| {
            if hog == Hog::Blocking {
                h.spawn_blocking(body);
            } else {
                h.spawn(async move { body() });
            }
        },
        |window| {
            let until = Instant::now() + window;
            h.block_on(async move { tokio::spawn(chan_pingpong(Some(until))).await.unwrap() })
        },
    );
    std::mem::forget(rt);
    out
}

async fn tcp_echo() -> Out {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut buf = [0u8; TCP_MSG];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let total = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let until = t + TCP_TIME;
    let hs: Vec<_> = (0..TCP_CONNS)
        .map(|_| {
            let total = total.clone();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let _ = s.set_nodelay(true);
                let mut buf = [7u8; TCP_MSG];
                let mut n = 0;
                while Instant::now() < until {
                    s.write_all(&buf).await.unwrap();
                    s.read_exact(&mut buf).await.unwrap();
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    rate(t, total.load(Ordering::Relaxed))
}
