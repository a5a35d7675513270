//! The workload table: names, areas, units, targets. The code of each implementation is in
//! `child/` (Rust) and `go/main.go` (Go), under the same names.

/// How a workload's number reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    /// Nanoseconds per operation: lower is better.
    Ns,
    /// Messages (or requests) per second: higher is better.
    PerSec,
    /// KiB per goroutine: lower is better.
    KiB,
    /// A ratio in [0, 1]: higher is better.
    Ratio,
    /// A count (threads): closer to the target is better.
    Count,
    /// Milliseconds for the whole workload: lower is better.
    Ms,
    /// MiB (peak RSS): lower is better.
    MiB,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Ns => "ns/op",
            Unit::PerSec => "ops/s",
            Unit::KiB => "KiB",
            Unit::Ratio => "ratio",
            Unit::Count => "threads",
            Unit::Ms => "ms",
            Unit::MiB => "MiB",
        }
    }
}

/// One workload, as the tables show it.
pub struct Workload {
    /// Name on the command line, in the child protocol and in the Go program.
    pub name: &'static str,
    /// Area (one table each): runtime, chan, sync, sys.
    pub area: &'static str,
    /// What is measured, for `--list` and the README.
    pub what: &'static str,
    pub unit: Unit,
    /// gort's target, as the issue states it.
    pub target: &'static str,
    /// Processors (GORT_MAXPROCS / GOMAXPROCS / tokio and may workers); None = default (CPUs).
    pub procs: Option<usize>,
}

/// The areas, in table order, with their headings.
pub const AREAS: &[(&str, &str)] = &[
    (
        "runtime",
        "Runtime: goroutines, switching, parking (issue 2)",
    ),
    ("chan", "Channels, select, timers (issue 3)"),
    ("sync", "sync and context (issue 4)"),
    ("sys", "Blocking syscalls, CPU hogs, net (issue 5)"),
    (
        "scale",
        "Go-scale goroutines: fresh stacks, daisy chains, a million parked (issue 8)",
    ),
];

/// The implementations, in column order.
pub const IMPLS: &[(&str, &str)] = &[
    ("gort", "gort"),
    ("go", "Go"),
    ("tokio", "tokio"),
    ("may", "may"),
    ("std", "std/crossbeam"),
];

macro_rules! w {
    ($name:literal, $area:literal, $unit:ident, $target:literal, $procs:expr, $what:literal) => {
        Workload {
            name: $name,
            area: $area,
            what: $what,
            unit: Unit::$unit,
            target: $target,
            procs: $procs,
        }
    };
}

pub const ALL: &[Workload] = &[
    // runtime
    w!("spawn", "runtime", Ns, "<= 300", None,
       "spawn a goroutine that does nothing and join it (batches of 1,000; Go: WaitGroup); per goroutine"),
    w!("switch", "runtime", Ns, "<= 50", Some(1),
       "yield switch: 2 goroutines on 1 processor yielding to each other; per yield (std: 2 threads pinned to 1 CPU)"),
    w!("park_pingpong", "runtime", Ns, "", None,
       "park/unpark ping-pong between two goroutines; per round trip (tokio: Notify pair; Go has no park)"),
    w!("rss_parked", "runtime", KiB, "<= 5", None,
       "RSS per parked goroutine: /proc/self/statm delta with N parked (N = 100,000, or 30,000 when vm.max_map_count is the default 65,530; std: 2,000 threads)"),
    // chan
    w!("chan_pingpong", "chan", Ns, "<= 200", None,
       "unbuffered channel ping-pong between two goroutines; per round trip (tokio: mpsc(1); may: unbounded mpsc)"),
    w!("chan_spsc_128", "chan", PerSec, ">= 26M", None,
       "cap-128 channel, one producer one consumer; messages/s (may: unbounded)"),
    w!("chan_stream_0", "chan", PerSec, ">= 7M", None,
       "unbuffered channel, one producer one consumer; messages/s (tokio: mpsc(1))"),
    w!("select_blocking", "chan", Ns, "<= 250", None,
       "blocking 2-case select: a sender alternates between two unbuffered channels; per select"),
    w!("select_2prod", "chan", Ns, "<= 0.8x Go", None,
       "blocking 2-case select in a loop, each unbuffered channel fed by its own producer goroutine (1,000,000 selects); per select"),
    w!("mpmc_4x4", "chan", PerSec, ">= 1.25x Go", None,
       "4 producers -> 4 consumers on one cap-128 channel, 4,000,000 messages; messages/s (tokio: mpsc behind a Mutex)"),
    w!("mpmc_1x4", "chan", PerSec, "", None,
       "1 producer -> 4 consumers on one cap-128 channel, 4,000,000 messages; messages/s (tokio: mpsc behind a Mutex)"),
    w!("mpmc_4x1", "chan", PerSec, "", None,
       "4 producers -> 1 consumer on one cap-128 channel, 4,000,000 messages; messages/s"),
    w!("select_default", "chan", Ns, "<= 35", None,
       "select over two empty channels with a default case; per select"),
    w!("after_fire", "chan", Ns, "<= Go", None,
       "<-after(1 ns) in a loop: create a timer, it fires, receive; per timer (tokio: sleep(1 ns).await)"),
    w!("after", "chan", Ns, "<= Go", None,
       "after(1 ms) timers: create 100,000, then receive each; per timer (tokio: sleep futures)"),
    // sync
    w!("mutex_uncontended", "sync", Ns, "<= 15", None,
       "Mutex lock + increment + unlock, one goroutine; per lock (std column: parking_lot)"),
    w!("mutex_2", "sync", Ns, "<= Go", None,
       "Mutex, 2 goroutines contending; per lock (std column: parking_lot)"),
    w!("mutex_100", "sync", Ns, "<= Go", None,
       "Mutex, 100 goroutines contending; per lock (std column: parking_lot)"),
    w!("waitgroup", "sync", Ns, "<= Go", None,
       "WaitGroup add(1) + done(); per pair (std column: crossbeam-utils WaitGroup clone + drop)"),
    w!("context_cancel", "sync", Ns, "", None,
       "context with_cancel on background + cancel; per pair"),
    // sys
    w!("syscall_ratio", "sys", Ratio, ">= 0.9", Some(1),
       "1 processor: ping-pong rate while a third goroutine is blocked in a raw read(2) / unhindered rate (mean of a window before and after)"),
    w!("blocking_ratio", "sys", Ratio, ">= 0.9", Some(1),
       "1 processor: as syscall_ratio, the read inside gort::blocking (tokio: spawn_blocking; Go: plain syscall)"),
    w!("spinner_ratio", "sys", Ratio, ">= 0.8", Some(1),
       "1 processor: ping-pong rate while a third goroutine spins on the CPU / unhindered rate"),
    w!("tcp_echo", "sys", PerSec, ">= Go, >= tokio", None,
       "TCP echo over loopback, 100 connections, 64-byte request/response for 2 s, clients in-process; requests/s"),
    w!("syscall_threads", "sys", Count, "~1000 (Go 1003)", None,
       "OS threads in the process while 1,000 goroutines are blocked in a raw read(2) on a pipe (note: how many got into the read)"),
    // scale
    w!("spawn_burst", "scale", Ns, "<= 0.5x Go", None,
       "cold start: spawn 100,000 goroutines from one goroutine keeping their JoinHandles, then join all (Go: WaitGroup); per goroutine"),
    w!("daisy_10k", "scale", Ms, "", None,
       "Pike's daisy chain of 10,000 goroutines (unbuffered channels): build + run, cold"),
    w!("daisy_30k", "scale", Ms, "<= Go, <= tokio", None,
       "daisy chain of 30,000 goroutines: build + run, cold"),
    w!("daisy_100k", "scale", Ms, "<= Go, <= tokio", None,
       "daisy chain of 100,000 goroutines: build + run, cold"),
    w!("daisy_10k_rss", "scale", MiB, "", None,
       "peak RSS (VmHWM) of the process that ran the daisy chain of 10,000"),
    w!("daisy_30k_rss", "scale", MiB, "", None,
       "peak RSS (VmHWM) of the daisy chain of 30,000"),
    w!("daisy_100k_rss", "scale", MiB, "", None,
       "peak RSS (VmHWM) of the daisy chain of 100,000"),
    w!("parked_1m", "scale", KiB, "<= 4.5", None,
       "RSS per goroutine with 1,000,000 goroutines parked on one channel (tokio: Notify), default vm.max_map_count"),
    w!("parked_1m_pte", "scale", KiB, "", None,
       "page-table memory (VmPTE) per goroutine in the same run as parked_1m"),
];
