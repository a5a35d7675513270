//! Helpers shared by the implementations: sizes, /proc readings, a pipe, the ratio and
//! thread-count skeletons.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Out;

/// Goroutines spawned and joined (`spawn`).
pub const SPAWN_N: usize = 100_000;
/// Batch size for `spawn`: spawn this many, then join them.
pub const SPAWN_BATCH: usize = 1_000;
/// Yields per goroutine (`switch`).
pub const SWITCH_N: usize = 1_000_000;
/// Round trips (`park_pingpong`, `chan_pingpong`).
pub const PINGPONG_N: usize = 200_000;
/// Messages (`chan_spsc_128`).
pub const SPSC_N: usize = 5_000_000;
/// Messages (`chan_stream_0`).
pub const STREAM_N: usize = 1_000_000;
/// Selects (`select_blocking`).
pub const SELECT_N: usize = 500_000;
/// Selects (`select_2prod`), half from each producer.
pub const SELECT2_N: usize = 1_000_000;
/// Messages (`mpmc_*`).
pub const MPMC_N: usize = 4_000_000;
/// Channel capacity (`mpmc_*`).
pub const MPMC_CAP: usize = 128;
/// Selects (`select_default`).
pub const SELECT_DEFAULT_N: usize = 10_000_000;
/// Timers (`after`).
pub const AFTER_N: usize = 100_000;
/// Timers fired one after the other (`after_fire`).
pub const AFTER_FIRE_N: usize = 100_000;
/// The `after` duration.
pub const AFTER_D: Duration = Duration::from_millis(1);
/// Locks (`mutex_uncontended`).
pub const MUTEX_N: usize = 20_000_000;
/// Locks per goroutine (`mutex_2`).
pub const MUTEX2_N: usize = 2_000_000;
/// Locks per goroutine (`mutex_100`).
pub const MUTEX100_N: usize = 20_000;
/// add+done pairs (`waitgroup`).
pub const WG_N: usize = 20_000_000;
/// with_cancel+cancel pairs (`context_cancel`).
#[cfg_attr(not(feature = "context"), allow(dead_code))]
pub const CTX_N: usize = 1_000_000;
/// Goroutines blocked in read(2) (`syscall_threads`).
pub const BLOCKED_N: usize = 1_000;
/// Goroutines spawned at once, from cold (`spawn_burst`).
pub const BURST_N: usize = 100_000;
/// Parked goroutines for `parked_1m` (PEERS_PARKED_N overrides).
pub const PARKED_N: usize = 1_000_000;
/// TCP connections (`tcp_echo`).
pub const TCP_CONNS: usize = 100;
/// TCP request/response size.
pub const TCP_MSG: usize = 64;
/// TCP measurement time.
pub const TCP_TIME: Duration = Duration::from_secs(2);
/// Ping-pong window for the ratio workloads.
pub const WINDOW: Duration = Duration::from_millis(200);
/// How long the troublemaker blocks or spins in the ratio workloads (longer than the window).
pub const HOG_TIME: Duration = Duration::from_millis(600);

/// Parked goroutines for `rss_parked`: 100,000, or 30,000 when vm.max_map_count would not
/// allow 100,000 guarded stacks (two mappings each).
pub fn rss_n() -> usize {
    if let Some(n) = std::env::var("PEERS_RSS_N")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if max_map_count() >= 250_000 {
        100_000
    } else {
        30_000
    }
}

/// The kernel's `vm.max_map_count` (65,530 if unreadable, Linux's default).
pub fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65_530)
}

/// Processors for this workload (PEERS_PROCS, set by the parent), else the CPU count.
pub fn procs() -> usize {
    std::env::var("PEERS_PROCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Nanoseconds per operation since `t`.
pub fn ns(t: Instant, ops: usize) -> Out {
    Out::v(t.elapsed().as_nanos() as f64 / ops as f64)
}

/// Operations per second since `t`.
pub fn rate(t: Instant, ops: usize) -> Out {
    Out::v(ops as f64 / t.elapsed().as_secs_f64())
}

/// Resident set size in bytes (/proc/self/statm).
pub fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// OS threads in this process (/proc/self/status).
pub fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Pins the calling thread (and the threads it creates afterwards) to CPU 0.
pub fn pin_to_cpu0() {
    // SAFETY: the cpu_set_t is zeroed and filled by the libc macros; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A blocking pipe (raw fds, no O_NONBLOCK): reading it is a raw blocking syscall.
#[derive(Clone, Copy)]
pub struct Pipe {
    pub r: i32,
    pub w: i32,
}

impl Pipe {
    pub fn new() -> Pipe {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for the two descriptors pipe writes.
        let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
        Pipe {
            r: fds[0],
            w: fds[1],
        }
    }

    /// One raw blocking read(2) of one byte.
    pub fn read1(&self) {
        let mut b = [0u8; 1];
        // SAFETY: b is a valid one-byte buffer.
        unsafe { libc::read(self.r, b.as_mut_ptr().cast(), 1) };
    }

    /// Writes `n` bytes.
    pub fn write(&self, n: usize) {
        let buf = vec![1u8; n];
        let mut off = 0;
        while off < n {
            // SAFETY: the range is inside buf.
            let rc = unsafe { libc::write(self.w, buf[off..].as_ptr().cast(), n - off) };
            if rc <= 0 {
                break;
            }
            off += rc as usize;
        }
    }
}

/// The troublemaker of the ratio workloads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hog {
    /// Blocked in a raw read(2) on a pipe that a helper thread writes after HOG_TIME.
    Syscall,
    /// The same read, inside the implementation's "this blocks" wrapper.
    Blocking,
    /// Spinning on the CPU for HOG_TIME.
    Spin,
}

impl Hog {
    pub fn of(workload: &str) -> Hog {
        match workload {
            "syscall_ratio" => Hog::Syscall,
            "blocking_ratio" => Hog::Blocking,
            _ => Hog::Spin,
        }
    }
}

/// The body of a troublemaker: marks `entered`, then blocks or spins.
pub fn hog_body(hog: Hog, pipe: Pipe, entered: Arc<AtomicBool>) -> impl FnOnce() + Send + 'static {
    move || {
        entered.store(true, Ordering::SeqCst);
        match hog {
            Hog::Syscall | Hog::Blocking => pipe.read1(),
            Hog::Spin => {
                let end = Instant::now() + HOG_TIME;
                let mut x = 0u64;
                while Instant::now() < end {
                    for _ in 0..100 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                }
            }
        }
    }
}

/// The skeleton of the ratio workloads, run on a plain thread:
/// `pingpong(window)` runs two goroutines ping-ponging until the window ends and returns the
/// round trips done in it; `spawn_hog(body)` starts the troublemaker.
///
/// 1. a warm-up, then the unhindered rate over WINDOW;
/// 2. the troublemaker starts; once it has entered its read or loop (or 1 s passed), the
///    hindered rate over WINDOW while it still blocks (a helper thread writes the pipe only
///    after HOG_TIME);
/// 3. the unhindered rate again once the troublemaker is done;
/// 4. value = hindered / mean of the two unhindered rates.
pub fn ratio(
    hog: Hog,
    spawn_hog: impl FnOnce(Box<dyn FnOnce() + Send>),
    pingpong: impl Fn(Duration) -> u64,
) -> Out {
    pingpong(Duration::from_millis(30));
    let free = pingpong(WINDOW).max(1);
    let pipe = Pipe::new();
    let entered = Arc::new(AtomicBool::new(false));
    spawn_hog(Box::new(hog_body(hog, pipe, entered.clone())));
    let helper = std::thread::spawn(move || {
        std::thread::sleep(HOG_TIME);
        pipe.write(1);
    });
    let t = Instant::now();
    while !entered.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(5));
    let hindered = pingpong(WINDOW);
    let _ = helper.join();
    std::thread::sleep(Duration::from_millis(20));
    // The unhindered rate again, after the troublemaker: the machine is shared, so the
    // reference is the mean of a window before and a window after.
    let free2 = pingpong(WINDOW).max(1);
    let reference = (free + free2) as f64 / 2.0;
    Out::Value(
        hindered as f64 / reference,
        format!(
            "{free} and {free2} free vs {hindered} hindered round trips in {} ms",
            WINDOW.as_millis()
        ),
    )
}

/// The skeleton of `syscall_threads`, run on a plain thread: `warm()` starts the runtime;
/// `spawn(body)` starts one goroutine; BLOCKED_N goroutines each do one raw read(2).
/// Value: the process's OS threads once all are in the read (or no progress for 1 s, or 10 s).
pub fn syscall_threads(warm: impl FnOnce(), spawn: impl Fn(Box<dyn FnOnce() + Send>)) -> Out {
    warm();
    let base = threads();
    let pipe = Pipe::new();
    let entered = Arc::new(AtomicUsize::new(0));
    for _ in 0..BLOCKED_N {
        let e = entered.clone();
        spawn(Box::new(move || {
            e.fetch_add(1, Ordering::SeqCst);
            pipe.read1();
        }));
    }
    // Until all are in, or no progress for 1 s, or 10 s.
    let t = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let e = entered.load(Ordering::SeqCst);
        if e != last {
            (last, last_change) = (e, Instant::now());
        }
        if e >= BLOCKED_N
            || last_change.elapsed() > Duration::from_secs(1)
            || t.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = last_change.duration_since(t);
    std::thread::sleep(Duration::from_millis(100));
    let n = threads();
    let e = entered.load(Ordering::SeqCst);
    Out::Value(
        n as f64,
        format!(
            "{e}/{BLOCKED_N} in read(2) after {} ms, {base} threads before",
            took.as_millis()
        ),
    )
}

/// Waits until `count` reaches `n` (or 10 s pass), then lets things settle for 200 ms.
pub fn wait_count(count: &AtomicUsize, n: usize) -> usize {
    let t = Instant::now();
    while count.load(Ordering::SeqCst) < n && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    count.load(Ordering::SeqCst)
}

/// KiB per item from an RSS delta.
pub fn kib_per(before: usize, after: usize, n: usize, got: usize) -> Out {
    let kib = after.saturating_sub(before) as f64 / 1024.0 / got.max(1) as f64;
    let mut note = format!("N = {n}");
    if got < n {
        note = format!("only {got} of {n} parked");
    }
    Out::Value(kib, note)
}

/// Replaces the note of a measured value.
pub fn note(out: Out, n: &str) -> Out {
    match out {
        Out::Value(v, _) => Out::Value(v, n.to_owned()),
        o => o,
    }
}

/// Chain length of a `daisy_*` workload (`daisy_30k` and `daisy_30k_rss`: 30,000).
pub fn daisy_n(workload: &str) -> usize {
    let k = workload
        .trim_start_matches("daisy_")
        .trim_end_matches("_rss")
        .trim_end_matches('k');
    k.parse::<usize>().expect("daisy_<N>k") * 1000
}

/// What a `daisy_*` workload reports: the time of build + run in ms, or (`_rss`) the peak
/// RSS of the process in MiB.
pub fn daisy_out(workload: &str, n: usize, took: Duration, got: u64) -> Out {
    if got != n as u64 + 1 {
        return Out::Value(f64::NAN, format!("wrong result {got}"));
    }
    if workload.ends_with("_rss") {
        Out::v(status_kib("VmHWM") as f64 / 1024.0)
    } else {
        Out::v(took.as_secs_f64() * 1e3)
    }
}

/// Parked goroutines for `parked_1m`.
pub fn parked_n() -> usize {
    std::env::var("PEERS_PARKED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PARKED_N)
}

/// A field of /proc/self/status in KiB (VmHWM, VmPTE, ...).
pub fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `parked_1m` skeleton, on a plain thread: `warm()` starts the runtime; `park_all(n,
/// parked)` starts `n` goroutines that each count themselves in `parked` and then wait on
/// one shared channel (or the runtime's nearest thing). Value: RSS per goroutine in KiB, or
/// (`_pte`) page-table memory per goroutine (VmPTE).
pub fn parked_1m(
    workload: &str,
    warm: impl FnOnce(),
    park_all: impl FnOnce(usize, Arc<AtomicUsize>),
) -> Out {
    let n = parked_n();
    warm();
    std::thread::sleep(Duration::from_millis(50));
    let (rss0, pte0) = (rss_bytes(), status_kib("VmPTE"));
    let parked = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    park_all(n, parked.clone());
    let got = wait_count_for(&parked, n, Duration::from_secs(60));
    let took = t.elapsed();
    let (rss1, pte1) = (rss_bytes(), status_kib("VmPTE"));
    let per = |bytes: usize| bytes as f64 / 1024.0 / got.max(1) as f64;
    let rss = per(rss1.saturating_sub(rss0));
    let pte = per((pte1.saturating_sub(pte0)) * 1024);
    let mut note = format!(
        "N = {n} in {:.1} s; RSS {rss:.2} KiB + VmPTE {pte:.2} KiB each",
        took.as_secs_f64()
    );
    if got < n {
        note = format!("only {got} of {n} parked; {note}");
    }
    Out::Value(if workload.ends_with("_pte") { pte } else { rss }, note)
}

/// Waits until `count` reaches `n` (or `limit` passes), then lets things settle for 200 ms.
pub fn wait_count_for(count: &AtomicUsize, n: usize, limit: Duration) -> usize {
    let t = Instant::now();
    let (mut last, mut since) = (0, Instant::now());
    while count.load(Ordering::SeqCst) < n && t.elapsed() < limit {
        let c = count.load(Ordering::SeqCst);
        if c != last {
            (last, since) = (c, Instant::now());
        } else if since.elapsed() > Duration::from_secs(5) {
            break; // stuck: the runtime cannot take more
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    count.load(Ordering::SeqCst)
}
