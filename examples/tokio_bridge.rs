//! Goroutines and tokio in one program: how a gort program uses an async library, and how
//! async code waits for goroutines.
//!
//! ```text
//! cargo run --release --example tokio_bridge            # 5,000 goroutines, 200 TCP clients
//! cargo run --release --example tokio_bridge -- 20000 500
//! ```
//!
//! 1. A tokio runtime runs on its own threads, beside gort's. Async work (here tokio's
//!    timers and `TcpStream`s on loopback) is *spawned on that runtime*, and a goroutine waits
//!    for the result with `gort::block_on(handle.spawn(..))`: the goroutine parks (its worker
//!    runs other goroutines) and tokio's completion wakes it. Thousands of goroutines do so
//!    at once.
//! 2. Tokio tasks and goroutines share gort channels: a tokio task receives with
//!    `rx.recv_async().await` what goroutines send and passes results on with
//!    `tx.send_async(v).await` to a goroutine, waiting in the channels' queues like a parked
//!    goroutine (no tokio thread is held); it also awaits goroutines (`JoinHandle` is
//!    `IntoFuture`).
//!
//! Why spawn on tokio instead of `gort::block_on(tcp_stream.read(..))` directly? A future
//! runs where it is polled, and tokio's I/O and timer futures need tokio's reactor, which
//! lives on tokio's threads: polled from a goroutine they panic ("there is no reactor
//! running"). `handle.spawn` moves the future there; its `JoinHandle` is a plain future that
//! any executor, gort's `block_on` included, can wait for.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Handle;

/// An async echo server on the tokio runtime; returns its address.
fn start_echo_server(rt: &Handle) -> io::Result<SocketAddr> {
    let listener = gort::block_on(rt.spawn(tokio::net::TcpListener::bind("127.0.0.1:0")))
        .expect("bind task panicked")?;
    let addr = listener.local_addr()?;
    rt.spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The "async library call": connect, send a request, read the echo. Runs on tokio.
async fn echo_roundtrip(addr: SocketAddr, id: u64) -> io::Result<u64> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = id.to_le_bytes();
    let mut resp = [0u8; 8];
    for _ in 0..10 {
        s.write_all(&req).await?;
        s.read_exact(&mut resp).await?;
    }
    Ok(u64::from_le_bytes(resp))
}

/// Part 1: `n` goroutines each wait for a tokio timer, and `clients` goroutines each do TCP
/// round trips through tokio, all through `gort::block_on(handle.spawn(..))`.
fn goroutines_call_tokio(rt: &Handle, n: u64, clients: u64) -> io::Result<()> {
    let addr = start_echo_server(rt)?;
    let t0 = Instant::now();
    let timers: Vec<_> = (0..n)
        .map(|i| {
            let rt = rt.clone();
            gort::go!(move || {
                let v = gort::block_on(rt.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    i * 2
                }));
                v.expect("timer task panicked")
            })
        })
        .collect();
    let tcp: Vec<_> = (0..clients)
        .map(|i| {
            let rt = rt.clone();
            gort::go!(move || gort::block_on(rt.spawn(echo_roundtrip(addr, i))))
        })
        .collect();
    gort::time::sleep(Duration::from_millis(5)); // inside the timers' 20 ms
    let m = gort::runtime::metrics();
    let sum: u64 = timers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, n * (n - 1));
    for (i, h) in (0..clients).zip(tcp) {
        let echoed = h.join().unwrap().expect("tcp task panicked")?;
        assert_eq!(echoed, i);
    }
    println!(
        "{n} goroutines waited for tokio timers and {clients} did TCP round trips through tokio \
         in {:.1} ms (goroutines parked at one point: {})",
        t0.elapsed().as_secs_f64() * 1e3,
        m.goroutines_waiting
    );
    Ok(())
}

/// Part 2: tokio tasks and goroutines on both ends of gort channels: a tokio task receives
/// with `recv_async` what goroutines send, and sends with `send_async` what a goroutine
/// receives; it also awaits a goroutine (`JoinHandle` is `IntoFuture`).
fn tokio_and_goroutines_share_channels(rt: &Handle) {
    let (tx, rx) = gort::chan::<u64>(16);
    let (results_tx, results_rx) = gort::chan::<u64>(0); // unbuffered: a hand-off each time
    let producers: Vec<_> = (0..4u64)
        .map(|k| {
            let tx = tx.clone();
            gort::go!(move || {
                let mut sent = 0;
                for v in (1..=100u64).filter(|v| v % 4 == k) {
                    tx.send(v).unwrap();
                    sent += v;
                }
                sent
            })
        })
        .collect();
    drop(tx); // the channel closes when the producers' Senders drop
    let consumer = gort::go!(move || results_rx.iter().sum::<u64>());
    let task = rt.spawn(async move {
        // A gort channel from async code: the task waits in the channel's queue like a
        // parked goroutine, without holding a tokio worker thread.
        let mut received = 0;
        while let Ok(v) = rx.recv_async().await {
            received += v;
            results_tx.send_async(v * 10).await.unwrap(); // to the consumer goroutine
        }
        drop(results_tx); // closes `results`: the consumer's loop ends
                          // Goroutines from async code.
        let mut sent = 0;
        for p in producers {
            sent += p.await.unwrap();
        }
        (received, sent, consumer.await.unwrap())
    });
    let (received, sent, consumed) = gort::block_on(task).unwrap();
    assert_eq!(received, sent);
    assert_eq!(consumed, 10 * sent);
    println!(
        "a tokio task received {received} from goroutines over a gort channel, passed it on to \
         a goroutine ({consumed} after x10) and awaited the goroutines"
    );
}

#[gort::main]
fn main() -> io::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(5_000);
    let clients = args.get(1).copied().unwrap_or(200);
    // tokio on its own two threads; gort's workers are untouched by it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio-worker")
        .enable_all()
        .build()?;
    goroutines_call_tokio(rt.handle(), n, clients)?;
    tokio_and_goroutines_share_channels(rt.handle());
    // Shutting tokio down waits for its threads: a blocking call, so inside `blocking`.
    gort::blocking(move || rt.shutdown_timeout(Duration::from_secs(5)));
    println!("ok");
    Ok(())
}
