//! Runtime metrics: `gort::runtime::metrics()` and the counters behind it.
//!
//! # Design
//! Nothing here may slow the hot paths (spawn, wake-up, switch). So:
//!
//! - **Counters are kept per processor**, in a `ProcStats` block aligned to its own cache
//!   lines (`Processor::stats`): a spawn on P0 and a spawn on P1 never touch the same line.
//!   Goroutines created and finished are two counters there, which replace the single
//!   live-goroutine counter the processor had before (the same one atomic add per spawn and
//!   per finish: `num_goroutines` is `created - finished`). Counters written only by the M
//!   holding the processor in its scheduler phase (steals, the latency histogram) are plain
//!   load + store pairs, not locked instructions. Work done off the processors (a plain
//!   thread spawning, a goroutine running on an M without a P) lands in one shared
//!   `ProcStats` with atomic adds: those paths are slow anyway.
//! - **States are not tracked at all.** How many goroutines are runnable, running, in a
//!   system call or waiting is computed when `metrics()` is called, from what the scheduler
//!   keeps anyway: run-queue lengths, whether each M runs a goroutine (its `current` is
//!   non-null), its processor's phase and its `runs_locked` flag. Another M's goroutine is
//!   never dereferenced: that M may finish it and drop the last reference at any moment.
//!   The figures are gathered while everything moves, as Go's are, then made to agree with
//!   the total (`by_state`): approximate, but internally consistent (see [`Metrics`]).
//! - **Scheduling latency is sampled.** One in `LATENCY_SAMPLE` transitions to runnable
//!   (spawn, wake-up) per processor stamps the goroutine with the time (`runnable_since`);
//!   the M that next runs it records the wait in its processor's histogram. Go samples 1 in
//!   8 for the same metric; 1 in 64 here keeps the clock reads (two per sample) well under
//!   a nanosecond per transition on average.
//!
//! The struct's field names follow Go's `runtime/metrics` keys where Go has the metric
//! (`/sched/goroutines:goroutines` -> `goroutines`), and `GODEBUG=schedtrace`'s words where
//! only the trace has it (`idleprocs`, `spinningthreads`, `runqueue`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::goroutine::Goroutine;
use super::machine::{Machine, BLOCKING};
use super::processor::Processor;
use super::scheduler::{self, Sched};

/// One in this many transitions to runnable is timed for the latency histogram.
pub(crate) const LATENCY_SAMPLE: u32 = 64;

/// Histogram buckets: [0, 256 ns), then one per power of two up to 2^30 ns (~1.07 s), then
/// [2^30 ns, ∞).
const BUCKETS: usize = 24;
/// log2 of the first bucket boundary above zero.
const FIRST_SHIFT: u32 = 8;

/// Per-processor counters (and one shared block for work off the processors).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct ProcStats {
    /// Goroutines spawned by code running on this processor.
    pub(crate) created: AtomicU64,
    /// Goroutines that finished on this processor.
    pub(crate) finished: AtomicU64,
    /// Successful steals by this processor's M (each takes half of a victim's queue).
    pub(crate) steals: AtomicU64,
    /// Batches taken from the global queue by this processor's M (sysmon watches them, with
    /// `steals`, to see whether queued work is moving).
    pub(crate) global_takes: AtomicU64,
    /// Transitions to runnable made on this processor (drives the latency sampling; unused
    /// in `OFF_PROC`, whose wakers count per thread).
    ready_tick: AtomicU32,
    /// Sampled runnable-to-running waits, by bucket.
    latency: [AtomicU64; BUCKETS],
}

/// Counters for work done off the processors.
pub(crate) static OFF_PROC: ProcStats = ProcStats {
    created: AtomicU64::new(0),
    finished: AtomicU64::new(0),
    steals: AtomicU64::new(0),
    global_takes: AtomicU64::new(0),
    ready_tick: AtomicU32::new(0),
    latency: [const { AtomicU64::new(0) }; BUCKETS],
};

thread_local! {
    /// Transitions to runnable made by this thread while it holds no processor.
    static OFF_PROC_TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Ps taken from a stuck M by sysmon and handed to another.
pub(crate) static SYSMON_HANDOFFS: AtomicU64 = AtomicU64::new(0);
/// Ps handed off at once by `blocking` because work was waiting.
pub(crate) static BLOCKING_HANDOFFS: AtomicU64 = AtomicU64::new(0);

/// Adds one with a plain load and store: for counters with a single writer (the M holding
/// the processor), where a locked instruction would be wasted.
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// The clock the latency samples use: CLOCK_MONOTONIC in nanoseconds (the clock `Instant`
/// reads, without its conversions), never 0 (0 means "not sampled").
#[inline]
fn stamp() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
        .max(1)
}

/// Called when `g` becomes runnable on processor `p` (None: off the processors): stamps one
/// in `LATENCY_SAMPLE` of them.
#[inline]
pub(crate) fn on_ready(g: &Goroutine, p: Option<&Processor>) {
    let tick = match p {
        Some(p) => {
            let t = p.stats.ready_tick.load(Ordering::Relaxed).wrapping_add(1);
            p.stats.ready_tick.store(t, Ordering::Relaxed);
            t
        }
        // Off the processors (a plain thread, a tokio worker waking a goroutine): a counter
        // per thread, so that such wakers do not all hit one cache line.
        None => OFF_PROC_TICK.with(|t| {
            let v = t.get().wrapping_add(1);
            t.set(v);
            v
        }),
    };
    if tick % LATENCY_SAMPLE == 0 {
        g.runnable_since.store(stamp(), Ordering::Relaxed);
    }
}

/// Called by M `m` about to run `g` (holding its P in the scheduler phase, or no P): records
/// the wait if this transition was sampled.
#[inline]
pub(crate) fn on_run(g: &Goroutine, m: &Machine) {
    let since = g.runnable_since.load(Ordering::Relaxed);
    if since != 0 {
        record(g, m, since);
    }
}

#[cold]
#[inline(never)]
fn record(g: &Goroutine, m: &Machine, since: u64) {
    let p = m.processor();
    g.runnable_since.store(0, Ordering::Relaxed);
    let waited = stamp().saturating_sub(since);
    let i = bucket(waited);
    match p {
        // Only this M writes its P's histogram (it holds the P in SCHED).
        Some(p) => bump(&p.stats.latency[i]),
        None => {
            OFF_PROC.latency[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The bucket of a wait of `ns` nanoseconds.
fn bucket(ns: u64) -> usize {
    if ns < 1 << FIRST_SHIFT {
        return 0;
    }
    let log2 = 63 - ns.leading_zeros();
    ((log2 - FIRST_SHIFT + 1) as usize).min(BUCKETS - 1)
}

/// The lower boundary of bucket `i`.
fn bucket_start(i: usize) -> Duration {
    if i == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(1 << (FIRST_SHIFT as usize + i - 1))
    }
}

/// A histogram of durations, shaped like Go's `metrics.Float64Histogram`.
///
/// `counts[i]` samples fell in `[buckets[i], buckets[i + 1])`; `buckets` has one more entry
/// than `counts`, and its last is `Duration::MAX` (unbounded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Samples per bucket.
    pub counts: Vec<u64>,
    /// Bucket boundaries, ascending: `counts.len() + 1` of them.
    pub buckets: Vec<Duration>,
}

impl Histogram {
    /// Total number of samples.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// An upper bound for the `q` quantile (0.0 ..= 1.0): the upper boundary of the bucket
    /// holding it (`Duration::MAX` for the last, unbounded bucket). None without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(self.buckets[i + 1]);
            }
        }
        self.buckets.last().copied()
    }
}

/// A snapshot of the scheduler, from [`metrics`].
///
/// What a snapshot guarantees: it is approximate — gathered while every processor keeps
/// running, so each figure is close to its value at some moment during the call, not all at
/// one moment (Go says the same of its own) — but internally consistent:
///
/// - `goroutines` never counts a goroutine as finished without counting it as created;
/// - the four counts by state add up to it exactly:
///   `goroutines_runnable + goroutines_running + goroutines_not_in_go + goroutines_waiting
///   == goroutines` (a goroutine seen in two states while it moves is counted once, and none
///   exceeds the total);
/// - cumulative counters (`goroutines_created`, `steals`, hand-offs, `latencies`) only grow
///   from one snapshot to the next, and `goroutines_created >= goroutines`.
///
/// Where Go's `runtime/metrics` has the metric, the field is named after its key, which each
/// field's doc gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Live goroutines (spawned and not finished), the same as `num_goroutines()`.
    /// Go: `/sched/goroutines:goroutines`.
    pub goroutines: usize,
    /// Goroutines ready to run but not running: in a run queue, a runnext slot, the global
    /// queue, or handed back to the M they are locked to (spawned goroutines that have not
    /// started yet included). Go: `/sched/goroutines/runnable:goroutines`.
    pub goroutines_runnable: usize,
    /// Goroutines executing on an M with a processor. Go: `/sched/goroutines/running:goroutines`.
    pub goroutines_running: usize,
    /// Goroutines inside [`blocking`](crate::blocking), or whose M lost its processor while
    /// they ran (a system call that sysmon handed off). Go:
    /// `/sched/goroutines/not-in-go:goroutines`.
    pub goroutines_not_in_go: usize,
    /// Goroutines parked: on a channel, lock, timer, socket, join, `block_on`...
    /// (`goroutines` minus the three states above). Go: `/sched/goroutines/waiting:goroutines`.
    pub goroutines_waiting: usize,
    /// Goroutines spawned since the program started.
    /// Go: `/sched/goroutines-created:goroutines`.
    pub goroutines_created: u64,
    /// OS threads the runtime owns: its Ms (with or without a processor) and its service
    /// threads (sysmon, the network poller). Go: `/sched/threads/total:threads`.
    pub threads_total: usize,
    /// Ms asleep: idle ones holding a processor plus spares waiting for one
    /// (`GODEBUG=schedtrace`'s `idlethreads` counts the spares only; gort's idle Ms keep
    /// their processor, so both are here).
    pub threads_idle: usize,
    /// Ms spinning (looking for work). schedtrace: `spinningthreads`.
    pub threads_spinning: usize,
    /// Processors. Go: `/sched/gomaxprocs:threads`.
    pub gomaxprocs: usize,
    /// Processors whose M is parked with nothing to do. schedtrace: `idleprocs`.
    pub procs_idle: usize,
    /// Successful steals (each moves half of a victim processor's queue).
    pub steals: u64,
    /// Goroutines in the global run queue. schedtrace: `runqueue`.
    pub global_queue: usize,
    /// Goroutines in each processor's local queue and runnext slot (schedtrace's `[..]`).
    pub local_queues: Vec<usize>,
    /// Processors sysmon took from an M stuck in a system call or a long computation and
    /// handed to another M.
    pub sysmon_handoffs: u64,
    /// Processors `blocking` handed to another M at once because work was waiting.
    pub blocking_handoffs: u64,
    /// Armed timers (sleeps, `after`, `Timer`, `Ticker`, deadlines of timed waits).
    pub timers_pending: usize,
    /// Goroutines and plain threads parked waiting for a socket to become ready.
    pub sockets_waiting: usize,
    /// Time from runnable to running (spawned or woken until first run), sampled 1 in 64.
    /// Go: `/sched/latencies:seconds` (which samples 1 in 8).
    pub latencies: Histogram,
}

/// One line per metric: `name value`, with Go's `runtime/metrics` key where Go has one; the
/// latency histogram as its sample count and quantile bounds.
///
/// ```text
/// goroutines              1204  /sched/goroutines:goroutines
/// goroutines_runnable        3  /sched/goroutines/runnable:goroutines
/// ...
/// latencies        812 samples  p50 <= 2.048µs  p90 <= 16.384µs  p99 <= 131.072µs
/// ```
impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: [(&str, u64, &str); 17] = [
            (
                "goroutines",
                self.goroutines as u64,
                "/sched/goroutines:goroutines",
            ),
            (
                "goroutines_runnable",
                self.goroutines_runnable as u64,
                "/sched/goroutines/runnable:goroutines",
            ),
            (
                "goroutines_running",
                self.goroutines_running as u64,
                "/sched/goroutines/running:goroutines",
            ),
            (
                "goroutines_not_in_go",
                self.goroutines_not_in_go as u64,
                "/sched/goroutines/not-in-go:goroutines",
            ),
            (
                "goroutines_waiting",
                self.goroutines_waiting as u64,
                "/sched/goroutines/waiting:goroutines",
            ),
            (
                "goroutines_created",
                self.goroutines_created,
                "/sched/goroutines-created:goroutines",
            ),
            (
                "threads_total",
                self.threads_total as u64,
                "/sched/threads/total:threads",
            ),
            ("threads_idle", self.threads_idle as u64, ""),
            ("threads_spinning", self.threads_spinning as u64, ""),
            (
                "gomaxprocs",
                self.gomaxprocs as u64,
                "/sched/gomaxprocs:threads",
            ),
            ("procs_idle", self.procs_idle as u64, ""),
            ("steals", self.steals, ""),
            ("global_queue", self.global_queue as u64, ""),
            ("sysmon_handoffs", self.sysmon_handoffs, ""),
            ("blocking_handoffs", self.blocking_handoffs, ""),
            ("timers_pending", self.timers_pending as u64, ""),
            ("sockets_waiting", self.sockets_waiting as u64, ""),
        ];
        for (name, v, key) in rows {
            if key.is_empty() {
                writeln!(f, "{name:<21}{v:>10}")?;
            } else {
                writeln!(f, "{name:<21}{v:>10}  {key}")?;
            }
        }
        writeln!(
            f,
            "{:<21}{:>10}",
            "local_queues",
            format!("{:?}", self.local_queues)
        )?;
        let h = &self.latencies;
        write!(f, "{:<21}{:>10} samples", "latencies", h.count())?;
        for q in [0.5, 0.9, 0.99] {
            if let Some(d) = h.quantile(q) {
                if d == Duration::MAX {
                    write!(f, "  p{} > 1.07s", (q * 100.0) as u32)?;
                } else {
                    write!(f, "  p{} <= {d:?}", (q * 100.0) as u32)?;
                }
            }
        }
        writeln!(f, "  /sched/latencies:seconds")
    }
}

/// A snapshot of the scheduler's state and counters.
///
/// Cheap enough to call often (it reads counters and takes two short locks); it costs the
/// hot paths nothing, as they keep no extra state for it (see the module comment). Before
/// the runtime has started, everything is zero except `gomaxprocs`, which is the value it
/// will start with.
///
/// ```
/// let m = gort::runtime::metrics();
/// assert!(m.gomaxprocs >= 1);
/// assert!(m.goroutines_created >= m.goroutines as u64);
/// ```
pub fn metrics() -> Metrics {
    let Some(sched) = scheduler::try_get() else {
        return Metrics {
            gomaxprocs: super::max_procs(),
            latencies: histogram(std::iter::empty()),
            ..Metrics::default()
        };
    };
    snapshot(sched)
}

fn histogram<'a>(blocks: impl Iterator<Item = &'a ProcStats>) -> Histogram {
    let mut counts = vec![0u64; BUCKETS];
    for s in blocks {
        for (c, b) in counts.iter_mut().zip(s.latency.iter()) {
            *c += b.load(Ordering::Relaxed);
        }
    }
    let mut buckets: Vec<Duration> = (0..BUCKETS).map(bucket_start).collect();
    buckets.push(Duration::MAX);
    Histogram { counts, buckets }
}

/// Sum of a counter over every processor and the off-processor block.
/// Steals and takes from the global queue by every processor so far (sysmon watches them
/// for activity).
pub(crate) fn total_takes(sched: &Sched) -> u64 {
    sum(sched, |s| &s.steals).wrapping_add(sum(sched, |s| &s.global_takes))
}

fn sum(sched: &Sched, f: impl Fn(&ProcStats) -> &AtomicU64) -> u64 {
    sched
        .procs
        .iter()
        .map(|p| f(&p.stats).load(Ordering::Relaxed))
        .chain(std::iter::once(f(&OFF_PROC).load(Ordering::Relaxed)))
        .fold(0u64, u64::wrapping_add)
}

/// Live goroutines: created minus finished, over all processors.
///
/// Finished counts are read first, with Acquire (a finish is counted with Release:
/// `Sched::count_live`), so a goroutine counted finished is also counted created: its
/// creation happened before its finish, which happened before this read.
pub(crate) fn live_goroutines(sched: &Sched) -> usize {
    let finished = sched
        .procs
        .iter()
        .map(|p| p.stats.finished.load(Ordering::Acquire))
        .chain(std::iter::once(OFF_PROC.finished.load(Ordering::Acquire)))
        .fold(0u64, u64::wrapping_add);
    let created = sum(sched, |s| &s.created);
    created.saturating_sub(finished) as usize
}

/// Makes the by-state counts, gathered one after the other while goroutines move, agree with
/// the total: each is cut to what the total leaves (running first, then not-in-Go, then
/// runnable), and waiting is the rest. Returns (runnable, running, not_in_go, waiting),
/// which add up to `total` exactly.
///
/// Without this, a goroutine that has just finished (counted as such, and already joined)
/// can still be its M's `current` for a moment: `goroutines` 0 with `goroutines_running` 1.
fn by_state(
    total: usize,
    runnable: usize,
    running: usize,
    not_in_go: usize,
) -> (usize, usize, usize, usize) {
    let running = running.min(total);
    let not_in_go = not_in_go.min(total - running);
    let runnable = runnable.min(total - running - not_in_go);
    let waiting = total - running - not_in_go - runnable;
    (runnable, running, not_in_go, waiting)
}

/// What an M's current goroutine is doing, for the by-state counts and dumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Doing {
    /// Executing goroutine code: on an M with a processor, or on the M it is locked to.
    Running,
    /// Inside `blocking`, or on an M whose processor was taken (a system call).
    NotInGo,
}

/// What M `m` (another thread) is doing with its current goroutine; None when it runs none.
///
/// Only the M's own fields are read, never the goroutine: the M may finish the goroutine
/// and drop the last reference to it at any moment (holding `machines.all` does not stop
/// it), so `current` is compared or tested for null, never dereferenced.
pub(crate) fn classify(m: &Machine) -> Option<Doing> {
    if m.current.load(Ordering::Acquire).is_null() {
        return None;
    }
    Some(doing(m))
}

/// What M `m` is doing with the goroutine it runs (see [`classify`]).
pub(crate) fn doing(m: &Machine) -> Doing {
    match m
        .processor()
        .map(|p| p.state.load(Ordering::Acquire) & 0xff)
    {
        Some(BLOCKING) => Doing::NotInGo,
        Some(_) => Doing::Running,
        // No processor: an M serving the goroutine locked to it runs it (it gave its
        // processor away for that); otherwise the processor was taken in a system call.
        None if m.runs_locked.load(Ordering::Acquire) => Doing::Running,
        None => Doing::NotInGo,
    }
}

fn snapshot(sched: &'static Sched) -> Metrics {
    let goroutines = live_goroutines(sched);
    let local_queues: Vec<usize> = sched
        .procs
        .iter()
        .map(|p| p.queue.len() + usize::from(p.has_next()))
        .collect();
    let global_queue = sched.global_len();
    let (mut running, mut not_in_go, mut locked_ready) = (0, 0, 0);
    {
        let all = sched.machines.all.lock().unwrap_or_else(|e| e.into_inner());
        for m in all.iter().filter(|m| m.is_live()) {
            if !m.locked_ready.load(Ordering::Acquire).is_null() {
                locked_ready += 1;
            }
            match classify(m) {
                Some(Doing::Running) => running += 1,
                Some(Doing::NotInGo) => not_in_go += 1,
                None => {}
            }
        }
    }
    let runnable = local_queues.iter().sum::<usize>() + global_queue + locked_ready;
    let (runnable, running, not_in_go, waiting) =
        by_state(goroutines, runnable, running, not_in_go);
    let idle_ms = sched.nidle.load(Ordering::Relaxed);
    let spares = sched.machines.spare_count();
    Metrics {
        goroutines,
        goroutines_runnable: runnable,
        goroutines_running: running,
        goroutines_not_in_go: not_in_go,
        goroutines_waiting: waiting,
        goroutines_created: sum(sched, |s| &s.created),
        threads_total: sched.machines.count.load(Ordering::Relaxed)
            + super::deadlock::runtime_threads(),
        threads_idle: idle_ms + spares,
        threads_spinning: sched.spinning(),
        gomaxprocs: sched.nprocs,
        procs_idle: idle_ms.min(sched.nprocs),
        steals: sum(sched, |s| &s.steals),
        global_queue,
        local_queues,
        sysmon_handoffs: SYSMON_HANDOFFS.load(Ordering::Relaxed),
        blocking_handoffs: BLOCKING_HANDOFFS.load(Ordering::Relaxed),
        timers_pending: super::timers::armed_count(),
        sockets_waiting: crate::runtime::io_waiters(),
        latencies: histogram(
            sched
                .procs
                .iter()
                .map(|p| &p.stats)
                .chain(std::iter::once(&OFF_PROC)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(255), 0);
        assert_eq!(bucket(256), 1);
        assert_eq!(bucket(511), 1);
        assert_eq!(bucket(512), 2);
        assert_eq!(bucket(1 << 29), BUCKETS - 2);
        assert_eq!(bucket(1 << 30), BUCKETS - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for ns in [
            1u64,
            300,
            5_000,
            70_000,
            2_000_000,
            900_000_000,
            5_000_000_000,
        ] {
            let i = bucket(ns);
            assert!(bucket_start(i) <= Duration::from_nanos(ns), "{ns}");
            if i + 1 < BUCKETS {
                assert!(Duration::from_nanos(ns) < bucket_start(i + 1), "{ns}");
            }
        }
    }

    /// An address that faults when read: the first byte of an inaccessible page (leaked).
    fn unreadable() -> *mut Goroutine {
        // SAFETY: an anonymous PROT_NONE mapping; nothing else uses it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                1 << 16,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p.cast()
    }

    /// Regression (issue 10 review): `metrics()` read another M's current goroutine, which
    /// that M may free at any moment (it clears `current`, then drops its reference). It
    /// must classify an M from the M's own state only: here `current` points at memory that
    /// faults when read, for an M with no processor (the case that used to dereference).
    #[test]
    fn classify_never_reads_the_goroutine() {
        let m = Machine::new();
        m.current.store(unreadable(), Ordering::Release);
        assert_eq!(classify(&m), Some(Doing::NotInGo));
        m.runs_locked.store(true, Ordering::Release);
        assert_eq!(classify(&m), Some(Doing::Running));
        m.current.store(std::ptr::null_mut(), Ordering::Release);
        assert_eq!(classify(&m), None);
    }

    #[test]
    fn states_add_up_to_the_total() {
        // The reported race: a goroutine finished and joined, still its M's current.
        assert_eq!(by_state(0, 0, 1, 0), (0, 0, 0, 0));
        assert_eq!(by_state(5, 1, 1, 1), (1, 1, 1, 2));
        assert_eq!(by_state(2, 3, 1, 1), (0, 1, 1, 0));
        for total in 0..6 {
            for (q, r, n) in [(0, 0, 0), (9, 0, 0), (1, 9, 1), (2, 2, 9), (3, 3, 3)] {
                let (a, b, c, d) = by_state(total, q, r, n);
                assert_eq!(a + b + c + d, total);
                assert!(a <= q && b <= r && c <= n);
            }
        }
    }

    #[test]
    fn quantile_reads_bucket_bounds() {
        let mut h = histogram(std::iter::empty());
        assert_eq!(h.quantile(0.5), None);
        h.counts[1] = 9; // [256, 512)
        h.counts[5] = 1; // [4096, 8192)
        assert_eq!(h.count(), 10);
        assert_eq!(h.quantile(0.5), Some(Duration::from_nanos(512)));
        assert_eq!(h.quantile(0.9), Some(Duration::from_nanos(512)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_nanos(8192)));
        assert_eq!(h.buckets.len(), h.counts.len() + 1);
        assert_eq!(*h.buckets.last().unwrap(), Duration::MAX);
    }
}
