//! An echo server with one goroutine per connection — the shape Go made ordinary — and a
//! load generator to drive it.
//!
//! ```text
//! cargo run --release --example echo_server                    # serve on 127.0.0.1:7007
//! cargo run --release --example echo_server -- 127.0.0.1:9000  # serve elsewhere
//! cargo run --release --example echo_server -- load            # 100 clients for 3 s
//! cargo run --release --example echo_server -- load 127.0.0.1:7007 1000 5
//!                                              # address, connections, seconds
//! cargo run --release --example echo_server -- demo [secs]     # server + load, one process
//! cargo run --release --example echo_server -- metrics [addr]   # ask a server for its metrics
//! ```
//!
//! Metrics on request: a connection whose first line is `metrics` gets the server's
//! `gort::runtime::metrics()` (goroutines by state, threads, steals, hand-offs, scheduling
//! latency...) instead of an echo, as text, and is closed. (`printf 'metrics\n' | nc
//! 127.0.0.1 7007` does the same as the `metrics` command.) `demo` prints them at the end.
//!
//! Each connection's goroutine is plain blocking code: `read`, `write_all`, repeat. A read
//! with nothing to read parks the goroutine (its worker thread runs other goroutines) until
//! the network poller sees data. The load generator is the same: a goroutine per client
//! connection sending 64-byte requests and waiting for each echo.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:7007";

/// Serves until the process is killed.
fn serve(l: TcpListener) -> io::Result<()> {
    for conn in l.incoming() {
        let conn = conn?;
        gort::go!(handle(conn));
    }
    Ok(())
}

/// The request line that asks for metrics instead of an echo.
const METRICS_REQUEST: &[u8] = b"metrics\n";

/// Echoes everything the peer sends until it closes the connection; answers a first line
/// `metrics` with the runtime's metrics.
fn handle(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; 4096];
    let mut first = true;
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) if first && buf[..n] == *METRICS_REQUEST => {
                let _ = conn.write_all(gort::runtime::metrics().to_string().as_bytes());
                return;
            }
            Ok(n) => {
                first = false;
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs `conns` client goroutines against `addr` for `secs`; prints requests/s.
fn load(addr: SocketAddr, conns: usize, secs: f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, total) = (stop.clone(), total.clone());
            gort::go!(move || -> io::Result<()> {
                let mut c = TcpStream::connect(addr)?;
                c.set_nodelay(true)?;
                let req = [b'x'; 64];
                let mut resp = [0u8; 64];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    c.write_all(&req)?;
                    c.read_exact(&mut resp)?;
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    gort::time::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for c in clients {
        if let Ok(Err(e)) | Err(e) = c.join().map_err(|_| io::Error::other("client panicked")) {
            if failed == 0 {
                eprintln!("client error: {e}");
            }
            failed += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = total.load(Ordering::Relaxed);
    println!(
        "{conns} connections, {n} requests in {elapsed:.2} s: {:.0} requests/s{}",
        n as f64 / elapsed,
        if failed > 0 {
            format!(" ({failed} clients failed)")
        } else {
            String::new()
        }
    );
}

/// Asks the server at `addr` for its metrics and prints them.
fn fetch_metrics(addr: SocketAddr) -> io::Result<()> {
    let mut c = TcpStream::connect(addr)?;
    c.write_all(METRICS_REQUEST)?;
    let mut text = String::new();
    c.read_to_string(&mut text)?;
    print!("{text}");
    Ok(())
}

#[gort::main]
fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("load") => {
            let addr = args.get(1).map_or(DEFAULT_ADDR, String::as_str);
            let addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
            let conns = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3.0);
            load(addr, conns, secs);
            Ok(())
        }
        Some("demo") => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            let addr = l.local_addr()?;
            let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
            println!("echo server on {addr}; load for {secs} s");
            gort::go!(serve(l));
            load(addr, 100, secs);
            println!("server metrics:");
            fetch_metrics(addr)
        }
        Some("metrics") => {
            let addr = args.get(1).map_or(DEFAULT_ADDR, String::as_str);
            fetch_metrics(addr.parse().map_err(io::Error::other)?)
        }
        addr => {
            let addr = addr.unwrap_or(DEFAULT_ADDR);
            let l = TcpListener::bind(addr)?;
            println!("echo server listening on {}", l.local_addr()?);
            serve(l)
        }
    }
}
