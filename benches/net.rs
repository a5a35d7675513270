//! Network benchmarks: TCP echo over loopback.
//!
//! `cargo bench --bench net` prints one table: 100 connections (`GORT_BENCH_CONNS`), each a client goroutine
//! sending a 64-byte request and waiting for its 64-byte echo, against a goroutine-per-
//! connection echo server in the same process, for a few seconds (`GORT_BENCH_SECS`,
//! default 3). Client and server share the machine, as in the peer program (`peers/`),
//! which runs the same workload on Go and tokio. A std-threads row (one OS thread per
//! connection on each side) gives the baseline gort's goroutines replace.
//!
//! Arguments filter the rows by name (`cargo bench --bench net -- gort`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections (`GORT_BENCH_CONNS` overrides, e.g. 1 for a latency-bound run).
fn conns() -> usize {
    std::env::var("GORT_BENCH_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}
const SIZE: usize = 64;

fn secs() -> f64 {
    std::env::var("GORT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

/// gort: echo server (goroutine per connection) and client goroutines; requests/s.
fn gort_echo(conns: usize, dur: Duration) -> (f64, f64) {
    use gort::net::{TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    gort::go!(move || {
        for c in l.incoming() {
            let c = c.unwrap();
            c.set_nodelay(true).unwrap();
            gort::go!(move || {
                let mut buf = [0u8; SIZE];
                while (&c).read_exact(&mut buf).is_ok() {
                    if (&c).write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
    // The clients are goroutines; the plain threads that wait for them block only
    // themselves (this function runs on the main thread, not on a worker).
    run_clients(conns, dur, move |stop, count| {
        gort::go!(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            client_loop(&mut c, &stop, &count);
        })
        .join()
        .unwrap();
    })
}

/// std threads: a thread per connection on both sides; requests/s.
fn std_echo(conns: usize, dur: Duration) -> (f64, f64) {
    use std::net::{TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let mut c = c.unwrap();
            c.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; SIZE];
                while c.read_exact(&mut buf).is_ok() {
                    if c.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
    run_clients(conns, dur, move |stop, count| {
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            client_loop(&mut c, &stop, &count);
        })
        .join()
        .unwrap();
    })
}

/// User + system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn client_loop(c: &mut (impl Read + Write), stop: &AtomicBool, count: &AtomicU64) {
    let req = [7u8; SIZE];
    let mut resp = [0u8; SIZE];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        c.write_all(&req).unwrap();
        c.read_exact(&mut resp).unwrap();
        n += 1;
    }
    count.fetch_add(n, Ordering::Relaxed);
}

/// Starts `conns` clients through `spawn_client` (each runs until `stop`, adding its count),
/// returns requests/s over the whole run (connects included) and the run's seconds.
fn run_clients(
    conns: usize,
    dur: Duration,
    spawn_client: impl Fn(Arc<AtomicBool>, Arc<AtomicU64>) + Send + Sync + Clone + 'static,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    // Each client is joined by a plain thread so that this works for goroutine and thread
    // clients alike.
    let joiners: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, count, spawn_client) = (stop.clone(), count.clone(), spawn_client.clone());
            std::thread::spawn(move || spawn_client(stop, count))
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    for j in joiners {
        j.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    (count.load(Ordering::Relaxed) as f64 / secs, secs)
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let dur = Duration::from_secs_f64(secs());
    println!(
        "gort net benchmarks ({} processors, {} connections, {} B echo, {:.1} s)",
        gort::max_procs(),
        conns(),
        SIZE,
        dur.as_secs_f64()
    );
    println!(
        "{:<30} {:>12} {:>16}",
        "benchmark", "requests/s", "CPU µs/request"
    );
    let row = |name: &str, f: &dyn Fn() -> (f64, f64)| {
        let cpu0 = cpu_time();
        let (rate, secs) = f();
        let cpu = cpu_time() - cpu0;
        println!(
            "{:<30} {:>12.0} {:>16.1}",
            name,
            rate,
            cpu.as_secs_f64() * 1e6 / (rate * secs)
        );
    };
    if want("gort") {
        row("tcp echo, gort goroutines", &|| gort_echo(conns(), dur));
    }
    if want("std") {
        row("tcp echo, std threads", &|| std_echo(conns(), dur));
    }
    println!("(CPU per request, user + system, is the steadier figure on a shared machine)");
}
