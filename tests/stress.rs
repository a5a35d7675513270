//! Randomized stress (issue 12): seeded workloads that mix every blocking primitive, with
//! invariants checked after each round.
//!
//! A round builds a random topology from its seed: 2 to 5 channels (capacity 0, 1, 3, 16 or
//! unbounded), producers feeding them, relays moving values from one channel to a later one,
//! consumers draining up to four channels each, and sometimes a closer that closes a
//! channel mid-run. Every actor runs as a goroutine, a goroutine locked to its thread, or a
//! plain thread, and picks each operation at random: `send`, `try_send`, `send_timeout`,
//! `select!` (with a timer case or a `default(timeout)`), a dynamic `Select`, `send_async`
//! (cancelled after one poll, or driven by `block_on`); `recv`, `try_recv`, `recv_timeout`,
//! `select!` over several channels, a dynamic `Select`, `recv_async` (dropped after one poll,
//! or driven by `block_on`). Between
//! operations they yield, sleep, run `blocking` sections, make raw system calls and hog the
//! CPU (forcing processor hand-offs), take gort's Mutex, RwLock and Semaphore. Beside them:
//! a Barrier group, a Condvar mailbox, goroutines that panic while holding a contended
//! Mutex and block while unwinding (in a `Drop` and in the panic hook), and a noise goroutine
//! that churns timers and, in half of the rounds, unparks actors spuriously (not in all: a
//! spurious wake-up also rescues an actor whose real one was lost).
//!
//! Checked after each round: every value sent was received exactly once or handed back to
//! its sender exactly once (closed channel); payloads created == dropped; no goroutine ever
//! saw `std::thread::panicking()` for a panic that was not its own; the Mutex count, RwLock
//! pairs, Semaphore bound, Barrier phases and Condvar sequence hold; no goroutine and no
//! timer is left behind. A watchdog aborts a round that hangs, with the seed and a dump.
//!
//! `GORT_STRESS=k` runs k times more rounds; `GORT_STRESS_SEED=s` makes `s` the first round's
//! seed (each failure names its round's seed). The workload's shape follows the seed; the
//! interleaving does not, so a seed reproduces a failure only statistically.

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use gort::chan::{
    self, Receiver, RecvTimeoutError, Select, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use gort::sync::{Barrier, Condvar, Mutex, RwLock, Semaphore};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Rounds in a plain `cargo test` (times `GORT_STRESS`).
const ROUNDS: usize = 25;
/// A round that takes longer than this is hung (rounds take well under a second).
const WATCHDOG: Duration = Duration::from_secs(60);
/// Whether two dynamic `Select`s on opposite ends of an unbuffered channel pair up. They do
/// (issue 12, item 9): a blocked `Select::select` is a real waiting sender or receiver.
/// (With `false`, dynamic selects on unbuffered channels would wait with a timeout and
/// retry.)
const UNBUFFERED_DYNAMIC_SELECTS_PAIR: bool = true;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

#[test]
fn stress() {
    let base = std::env::var("GORT_STRESS_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("GORT_STRESS_SEED is a u64"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    install_panic_hook();
    let rounds = common::stress(ROUNDS);
    let start = Instant::now();
    for i in 0..rounds {
        let seed = if i == 0 { base } else { mix(base, i as u64) };
        eprintln!("stress round {i}/{rounds}: GORT_STRESS_SEED={seed}");
        let done = Arc::new(AtomicBool::new(false));
        watchdog(seed, done.clone());
        let r = catch_unwind(|| round(seed));
        done.store(true, Ordering::SeqCst);
        if let Err(p) = r {
            panic!(
                "stress round {i} failed: {} (reproduce: GORT_STRESS_SEED={seed} \
                 GORT_MAXPROCS={})",
                message(&*p),
                gort::max_procs()
            );
        }
    }
    eprintln!(
        "stress: {rounds} rounds in {:.1?} (GORT_MAXPROCS={})",
        start.elapsed(),
        gort::max_procs()
    );
}

fn message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// splitmix64 of `a + b`: the seed of round `b`, of actor `b`.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_add(b.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn watchdog(seed: u64, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let start = Instant::now();
        while !done.load(Ordering::SeqCst) {
            if start.elapsed() > WATCHDOG {
                eprintln!(
                    "stress: round hung for {WATCHDOG:?}: GORT_STRESS_SEED={seed} \
                     GORT_MAXPROCS={}",
                    gort::max_procs()
                );
                gort::dump();
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Payloads of the "stress panic" goroutines: the hook blocks for them (a panic hook that
/// waits, issue 12 item 1) and prints nothing; any other panic is reported as usual.
const STRESS_PANIC: &str = "stress: deliberate panic";

fn install_panic_hook() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        gort::spawn(|| ()).join().unwrap(); // the runtime wraps the hook it finds at start
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() == Some(&STRESS_PANIC) {
                gort::time::sleep(Duration::from_micros(50));
                let (tx, rx) = chan::chan::<u8>(1);
                tx.send(1).unwrap();
                assert_eq!(rx.recv(), Ok(1));
            } else {
                prev(info);
            }
        }));
    });
}

/// Everything a round's actors share.
struct Shared {
    /// Per value id: times received by a consumer.
    received: Vec<AtomicU8>,
    /// Per value id: times handed back to a sender (channel closed).
    returned: Vec<AtomicU8>,
    /// Payloads created and dropped.
    created: AtomicUsize,
    dropped: AtomicUsize,
    /// `panicking()` seen by an actor that was not panicking.
    foreign_panics: AtomicUsize,
    /// Other broken invariants, by name.
    broken: std::sync::Mutex<Vec<String>>,
    /// Every actor, for spurious unparks.
    actors: std::sync::Mutex<Vec<gort::thread::Thread>>,
    /// Ends the noise goroutine.
    stop: AtomicBool,
    mutex: Mutex<u64>,
    mutex_adds: AtomicU64,
    rw: RwLock<(u64, u64)>,
    sem: Semaphore,
    sem_permits: usize,
    sem_inside: AtomicUsize,
}

impl Shared {
    fn broke(&self, what: String) {
        self.broken.lock().unwrap().push(what);
    }

    fn check_not_panicking(&self) {
        if std::thread::panicking() {
            self.foreign_panics.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn got(&self, p: Payload) {
        if self.received[p.id as usize].fetch_add(1, Ordering::SeqCst) != 0 {
            self.broke(format!("value {} received twice", p.id));
        }
    }

    fn handed_back(&self, p: Payload) {
        if self.returned[p.id as usize].fetch_add(1, Ordering::SeqCst) != 0 {
            self.broke(format!("value {} handed back twice", p.id));
        }
    }
}

/// A value in flight; counts its creation and its drop.
struct Payload {
    id: u32,
    sh: Arc<Shared>,
}

impl Payload {
    fn new(id: u32, sh: &Arc<Shared>) -> Payload {
        sh.created.fetch_add(1, Ordering::SeqCst);
        Payload { id, sh: sh.clone() }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.sh.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

type Joiner = Box<dyn FnOnce() -> std::thread::Result<()> + Send>;

/// Where an actor runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    Goroutine,
    Locked,
    Thread,
}

fn place(rng: &mut SmallRng) -> Place {
    match rng.random_range(0..10) {
        0 | 1 => Place::Thread,
        2 => Place::Locked,
        _ => Place::Goroutine,
    }
}

fn spawn_on(place: Place, sh: &Arc<Shared>, f: impl FnOnce() + Send + 'static) -> Joiner {
    let sh = sh.clone();
    let body = move || {
        sh.actors.lock().unwrap().push(gort::thread::current());
        f();
    };
    match place {
        Place::Goroutine => {
            let h = gort::spawn(body);
            Box::new(move || h.join())
        }
        Place::Locked => {
            let h = gort::spawn(move || {
                gort::lock_os_thread();
                body();
                gort::unlock_os_thread();
            });
            Box::new(move || h.join())
        }
        Place::Thread => {
            let h = std::thread::spawn(body);
            Box::new(move || h.join())
        }
    }
}

/// A short random timeout.
fn short(rng: &mut SmallRng) -> Duration {
    Duration::from_micros(rng.random_range(0..400))
}

/// Between operations: mostly nothing; sometimes something that switches, hands the
/// processor off, or takes a lock.
fn chaos(rng: &mut SmallRng, sh: &Shared) {
    sh.check_not_panicking();
    match rng.random_range(0..64) {
        0..=3 => gort::yield_now(),
        4 => gort::time::sleep(short(rng)),
        5 => {
            let d = short(rng);
            gort::blocking(|| std::thread::sleep(d / 2));
        }
        6 if rng.random_range(0..4) == 0 => {
            // A raw system call without `blocking`: sysmon hands the processor off.
            std::thread::sleep(Duration::from_micros(rng.random_range(100..2000)));
        }
        7 if rng.random_range(0..4) == 0 => {
            // A CPU hog: it keeps its thread, the others move on.
            let until = Instant::now() + Duration::from_micros(rng.random_range(500..3000));
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        8..=10 => {
            let mut g = sh.mutex.lock();
            *g += 1;
            sh.mutex_adds.fetch_add(1, Ordering::SeqCst);
            if rng.random_bool(0.2) {
                gort::yield_now(); // a guard held across a switch
            }
        }
        11 | 12 => {
            if rng.random_bool(0.3) {
                let mut w = sh.rw.write();
                w.0 += 1;
                if rng.random_bool(0.2) {
                    gort::yield_now();
                }
                w.1 += 1;
            } else {
                let r = sh.rw.read();
                if r.0 != r.1 {
                    sh.broke(format!("RwLock: read a half-written pair {:?}", *r));
                }
            }
        }
        13 => {
            let permit = if rng.random_bool(0.5) {
                Some(sh.sem.acquire())
            } else {
                sh.sem.acquire_timeout(short(rng))
            };
            if let Some(p) = permit {
                let inside = sh.sem_inside.fetch_add(1, Ordering::SeqCst) + 1;
                if inside > sh.sem_permits {
                    sh.broke(format!("Semaphore: {inside} holders of {}", sh.sem_permits));
                }
                if rng.random_bool(0.5) {
                    gort::yield_now();
                }
                sh.sem_inside.fetch_sub(1, Ordering::SeqCst);
                drop(p);
            }
        }
        14 => gort::thread::park_timeout(short(rng)),
        _ => {}
    }
    sh.check_not_panicking();
}

/// Polls a channel future once, with a waker that does nothing (the caller polls again, or
/// hands the future to `block_on`, which brings its own waker).
fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    struct NoWake;
    impl std::task::Wake for NoWake {
        fn wake(self: Arc<Self>) {}
    }
    let waker = std::task::Waker::from(Arc::new(NoWake));
    f.poll(&mut std::task::Context::from_waker(&waker))
}

fn unbuffered(cap: Option<usize>) -> bool {
    cap == Some(0)
}

/// Sends value `id` once (or hands it back if the channel closes), with a random operation.
fn send_one(
    tx: &Sender<Payload>,
    cap: Option<usize>,
    id: u32,
    rng: &mut SmallRng,
    sh: &Arc<Shared>,
) {
    loop {
        chaos(rng, sh);
        match rng.random_range(0..7) {
            6 => {
                // A future, polled once: then cancelled (an unsent payload comes back and is
                // dropped; a new one with the same id is sent again) or driven by `block_on`.
                let mut f = std::pin::pin!(tx.send_async(Payload::new(id, sh)));
                let r = match poll_once(f.as_mut()) {
                    Poll::Ready(r) => r,
                    Poll::Pending if rng.random_bool(0.5) => {
                        chaos(rng, sh);
                        match f.as_mut().cancel() {
                            Some(unsent) => {
                                drop(unsent);
                                continue;
                            }
                            None => return, // taken meanwhile
                        }
                    }
                    Poll::Pending => gort::block_on(f),
                };
                if let Err(SendError(b)) = r {
                    sh.handed_back(b);
                }
                return;
            }
            0 => {
                if let Err(SendError(v)) = tx.send(Payload::new(id, sh)) {
                    sh.handed_back(v);
                }
                return;
            }
            1 => {
                let mut v = Payload::new(id, sh);
                loop {
                    match tx.try_send(v) {
                        Ok(()) => return,
                        Err(TrySendError::Full(b)) => {
                            v = b;
                            if rng.random_bool(0.5) {
                                gort::yield_now();
                            } else {
                                gort::time::sleep(short(rng));
                            }
                        }
                        Err(TrySendError::Closed(b)) => return sh.handed_back(b),
                    }
                }
            }
            2 => {
                let mut v = Payload::new(id, sh);
                loop {
                    match tx.send_timeout(v, short(rng)) {
                        Ok(()) => return,
                        Err(SendTimeoutError::Timeout(b)) => v = b,
                        Err(SendTimeoutError::Closed(b)) => return sh.handed_back(b),
                    }
                }
            }
            3 => {
                // The value is moved into the select: if the timer wins, it is dropped, and a
                // new payload with the same id is sent again.
                let timer = gort::time::after(short(rng));
                let r = gort::select! {
                    send(tx, Payload::new(id, sh)) -> r => Some(r),
                    recv(timer) -> _ => None,
                };
                match r {
                    Some(Ok(())) => return,
                    Some(Err(SendError(b))) => return sh.handed_back(b),
                    None => {}
                }
            }
            4 => {
                let r = gort::select! {
                    send(tx, Payload::new(id, sh)) -> r => Some(r),
                    default(short(rng)) => None,
                };
                match r {
                    Some(Ok(())) => return,
                    Some(Err(SendError(b))) => return sh.handed_back(b),
                    None => {}
                }
            }
            _ => {
                let mut sel = Select::new();
                let i = sel.send(tx);
                let op = if unbuffered(cap) && !UNBUFFERED_DYNAMIC_SELECTS_PAIR
                    || rng.random_bool(0.3)
                {
                    match sel.select_timeout(short(rng)) {
                        Ok(op) => op,
                        Err(_) => continue,
                    }
                } else {
                    sel.select()
                };
                assert_eq!(op.index(), i);
                if let Err(SendError(b)) = op.send(tx, Payload::new(id, sh)) {
                    sh.handed_back(b);
                }
                return;
            }
        }
    }
}

fn producer(
    tx: Sender<Payload>,
    cap: Option<usize>,
    ids: std::ops::Range<u32>,
    seed: u64,
    sh: Arc<Shared>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for id in ids {
        send_one(&tx, cap, id, &mut rng, &sh);
    }
}

/// Drains its channels until every one is closed and empty.
fn consumer(rxs: Vec<(Receiver<Payload>, Option<usize>)>, seed: u64, sh: Arc<Shared>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut open: Vec<bool> = vec![true; rxs.len()];
    while open.iter().any(|&o| o) {
        chaos(&mut rng, &sh);
        let live: Vec<usize> = (0..rxs.len()).filter(|&i| open[i]).collect();
        let i = live[rng.random_range(0..live.len())];
        let rx = &rxs[i].0;
        match rng.random_range(0..8) {
            0 => match rx.recv() {
                Ok(v) => sh.got(v),
                Err(_) => open[i] = false,
            },
            7 => {
                // A future, polled once: then dropped (a value handed to it meanwhile goes
                // back into the channel) or driven by `block_on`.
                let mut f = std::pin::pin!(rx.recv_async());
                let r = match poll_once(f.as_mut()) {
                    Poll::Ready(r) => Some(r),
                    Poll::Pending if rng.random_bool(0.5) => {
                        chaos(&mut rng, &sh);
                        None
                    }
                    Poll::Pending => Some(gort::block_on(f)),
                };
                match r {
                    Some(Ok(v)) => sh.got(v),
                    Some(Err(_)) => open[i] = false,
                    None => {}
                }
            }
            1 => match rx.try_recv() {
                Ok(v) => sh.got(v),
                Err(TryRecvError::Empty) => gort::time::sleep(short(&mut rng)),
                Err(TryRecvError::Closed) => open[i] = false,
            },
            2 => match rx.recv_timeout(short(&mut rng)) {
                Ok(v) => sh.got(v),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Closed) => open[i] = false,
            },
            3 | 4 => {
                // select! over (up to) four channels, off for the closed ones.
                let slot = |k: usize| rxs.get(k).filter(|_| open[k]).map(|r| &r.0);
                let timer = gort::time::after(short(&mut rng));
                let timer = rng.random_bool(0.5).then_some(&timer);
                let got = gort::select! {
                    recv(slot(0)) -> v => Some((0, v)),
                    recv(slot(1)) -> v => Some((1, v)),
                    recv(slot(2)) -> v => Some((2, v)),
                    recv(slot(3)) -> v => Some((3, v)),
                    recv(timer) -> _ => None,
                };
                match got {
                    Some((_, Ok(v))) => sh.got(v),
                    Some((k, Err(_))) => open[k] = false,
                    None => {}
                }
            }
            _ => {
                let mut sel = Select::new();
                let mut index = Vec::new();
                for &k in &live {
                    index.push((sel.recv(&rxs[k].0), k));
                }
                let must_time_out =
                    !UNBUFFERED_DYNAMIC_SELECTS_PAIR && live.iter().any(|&k| unbuffered(rxs[k].1));
                let op = if must_time_out || rng.random_bool(0.3) {
                    match sel.select_timeout(short(&mut rng)) {
                        Ok(op) => op,
                        Err(_) => continue,
                    }
                } else {
                    sel.select()
                };
                let k = index.iter().find(|(s, _)| *s == op.index()).unwrap().1;
                match op.recv(&rxs[k].0) {
                    Ok(v) => sh.got(v),
                    Err(_) => open[k] = false,
                }
            }
        }
    }
}

/// Moves values from `rx` to `tx` (a later channel) until `rx` is closed and drained.
fn relay(
    rx: Receiver<Payload>,
    rx_cap: Option<usize>,
    tx: Sender<Payload>,
    tx_cap: Option<usize>,
    seed: u64,
    sh: Arc<Shared>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut buf: VecDeque<Payload> = VecDeque::new();
    let mut open = true;
    while open {
        chaos(&mut rng, &sh);
        if rng.random_bool(0.4) {
            match rx.recv() {
                Ok(v) => {
                    if let Err(SendError(b)) = tx.send(v) {
                        sh.handed_back(b);
                    }
                }
                Err(_) => open = false,
            }
            continue;
        }
        let mut sel = Select::new();
        let r = (buf.len() < 4).then(|| sel.recv(&rx));
        let s = (!buf.is_empty()).then(|| sel.send(&tx));
        let must_time_out =
            !UNBUFFERED_DYNAMIC_SELECTS_PAIR && (unbuffered(rx_cap) || unbuffered(tx_cap));
        let op = if must_time_out || rng.random_bool(0.3) {
            match sel.select_timeout(short(&mut rng)) {
                Ok(op) => op,
                Err(_) => continue,
            }
        } else {
            sel.select()
        };
        if Some(op.index()) == r {
            match op.recv(&rx) {
                Ok(v) => buf.push_back(v),
                Err(_) => open = false,
            }
        } else {
            assert_eq!(Some(op.index()), s);
            if let Err(SendError(b)) = op.send(&tx, buf.pop_front().unwrap()) {
                sh.handed_back(b);
            }
        }
    }
    for v in buf {
        if let Err(SendError(b)) = tx.send(v) {
            sh.handed_back(b);
        }
    }
}

/// A guard that blocks in its `Drop`, which runs while its goroutine unwinds.
struct BlockInDrop {
    how: u32,
    side: (Sender<u8>, Receiver<u8>),
    lock: Arc<Mutex<()>>,
}

impl Drop for BlockInDrop {
    fn drop(&mut self) {
        let before = std::thread::panicking();
        match self.how {
            0 => {
                let _ = self.side.0.send_timeout(1, Duration::from_micros(200));
            }
            1 => {
                let _ = self.side.1.recv_timeout(Duration::from_micros(200));
            }
            2 => gort::time::sleep(Duration::from_micros(100)),
            3 => drop(self.lock.lock()),
            _ => gort::yield_now(),
        }
        assert_eq!(before, std::thread::panicking(), "lost the panic state");
    }
}

/// Panics while holding the shared Mutex, blocking while it unwinds.
fn panicker(seed: u64, sh: Arc<Shared>, side_lock: Arc<Mutex<()>>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let side = chan::chan::<u8>(rng.random_range(0..2));
    let mut g = sh.mutex.lock();
    *g += 1;
    sh.mutex_adds.fetch_add(1, Ordering::SeqCst);
    let _b = BlockInDrop {
        how: rng.random_range(0..5),
        side,
        lock: side_lock,
    };
    gort::time::sleep(short(&mut rng)); // others queue on the Mutex
    if rng.random_bool(0.5) {
        resume_unwind(Box::new(STRESS_PANIC)); // no hook
    }
    std::panic::panic_any(STRESS_PANIC); // the hook blocks too
}

/// `n` actors pass a barrier `rounds` times; between two waits every phase slot is equal.
fn barrier_group(n: usize, rounds: u64, rng: &mut SmallRng, sh: &Arc<Shared>) -> Vec<Joiner> {
    let barrier = Arc::new(Barrier::new(n));
    let phases: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    (0..n)
        .map(|i| {
            let (barrier, phases, sh2) = (barrier.clone(), phases.clone(), sh.clone());
            let seed = rng.random();
            spawn_on(place(rng), sh, move || {
                let mut rng = SmallRng::seed_from_u64(seed);
                for r in 1..=rounds {
                    chaos(&mut rng, &sh2);
                    phases[i].store(r, Ordering::SeqCst);
                    barrier.wait();
                    if let Some(p) = phases.iter().find(|p| p.load(Ordering::SeqCst) != r) {
                        sh2.broke(format!(
                            "Barrier: phase {} beside {r}",
                            p.load(Ordering::SeqCst)
                        ));
                    }
                    barrier.wait();
                }
            })
        })
        .collect()
}

/// A Condvar mailbox: one side puts 0..n in order, the other takes them.
fn condvar_pair(n: u64, rng: &mut SmallRng, sh: &Arc<Shared>) -> Vec<Joiner> {
    let mailbox = Arc::new((
        Mutex::new(VecDeque::<u64>::new()),
        Condvar::new(),
        Condvar::new(),
    ));
    let (m2, sh2, seed) = (mailbox.clone(), sh.clone(), rng.random());
    let put = spawn_on(place(rng), sh, move || {
        let mut rng = SmallRng::seed_from_u64(seed);
        let (m, not_empty, not_full) = &*m2;
        for v in 0..n {
            chaos(&mut rng, &sh2);
            let mut q = m.lock();
            while q.len() >= 2 {
                q = if rng.random_bool(0.5) {
                    not_full.wait(q)
                } else {
                    not_full.wait_timeout(q, short(&mut rng)).0
                };
            }
            q.push_back(v);
            not_empty.notify_one();
        }
    });
    let (sh2, seed) = (sh.clone(), rng.random());
    let take = spawn_on(place(rng), sh, move || {
        let mut rng = SmallRng::seed_from_u64(seed);
        let (m, not_empty, not_full) = &*mailbox;
        for want in 0..n {
            chaos(&mut rng, &sh2);
            let mut q = if rng.random_bool(0.5) {
                not_empty.wait_while(m.lock(), |q| q.is_empty())
            } else {
                let mut q = m.lock();
                while q.is_empty() {
                    q = not_empty.wait_timeout(q, short(&mut rng)).0;
                }
                q
            };
            let got = q.pop_front().unwrap();
            if got != want {
                sh2.broke(format!("Condvar mailbox: got {got}, wanted {want}"));
            }
            not_full.notify_all();
        }
    });
    vec![put, take]
}

/// Churns timers until the round ends and, in `spurious` rounds, unparks actors spuriously.
/// (Only in some rounds: spurious wake-ups would also rescue an actor whose real wake-up
/// was lost, and hide that bug.)
fn noise(seed: u64, spurious: bool, sh: Arc<Shared>) -> gort::JoinHandle<()> {
    gort::spawn(move || {
        let mut rng = SmallRng::seed_from_u64(seed);
        let timer = gort::time::Timer::new(Duration::from_millis(1));
        let ticker = gort::time::Ticker::new(Duration::from_micros(300));
        while !sh.stop.load(Ordering::SeqCst) {
            if spurious {
                let actors = sh.actors.lock().unwrap();
                if !actors.is_empty() {
                    actors[rng.random_range(0..actors.len())].unpark();
                }
            }
            match rng.random_range(0..4) {
                0 => {
                    timer.reset(short(&mut rng));
                }
                1 => {
                    timer.stop();
                }
                2 => {
                    ticker.reset(short(&mut rng) + Duration::from_micros(50));
                }
                _ => {
                    let _ = ticker.receiver().try_recv();
                }
            }
            gort::time::sleep(Duration::from_micros(rng.random_range(50..300)));
        }
    })
}

fn capacity(rng: &mut SmallRng) -> Option<usize> {
    [Some(0), Some(1), Some(3), Some(16), None][rng.random_range(0..5)]
}

fn round(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let goroutines_before = gort::num_goroutines();
    let nch = rng.random_range(2..=5);
    let caps: Vec<Option<usize>> = (0..nch).map(|_| capacity(&mut rng)).collect();
    let chans: Vec<(Sender<Payload>, Receiver<Payload>)> = caps
        .iter()
        .map(|c| match c {
            Some(c) => chan::chan(*c),
            None => chan::unbounded(),
        })
        .collect();
    let per_producer = rng.random_range(20..300u32);
    let mut producers_of = vec![0usize; nch];
    for p in producers_of.iter_mut() {
        *p = rng.random_range(1..=3);
    }
    let total: u32 = per_producer * producers_of.iter().sum::<usize>() as u32;
    let sem_permits = rng.random_range(1..=3);
    let sh = Arc::new(Shared {
        received: (0..total).map(|_| AtomicU8::new(0)).collect(),
        returned: (0..total).map(|_| AtomicU8::new(0)).collect(),
        created: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        foreign_panics: AtomicUsize::new(0),
        broken: std::sync::Mutex::new(Vec::new()),
        actors: std::sync::Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        mutex: Mutex::new(0),
        mutex_adds: AtomicU64::new(0),
        rw: RwLock::new((0, 0)),
        sem: Semaphore::new(sem_permits),
        sem_permits,
        sem_inside: AtomicUsize::new(0),
    });
    let noise = noise(rng.random(), rng.random_bool(0.5), sh.clone());
    let mut joiners: Vec<Joiner> = Vec::new();

    // Producers.
    let mut next_id = 0u32;
    for (c, &n) in producers_of.iter().enumerate() {
        for _ in 0..n {
            let ids = next_id..next_id + per_producer;
            next_id += per_producer;
            let (tx, cap, seed, sh2) = (chans[c].0.clone(), caps[c], rng.random(), sh.clone());
            joiners.push(spawn_on(place(&mut rng), &sh, move || {
                producer(tx, cap, ids, seed, sh2)
            }));
        }
    }
    // Relays from a channel to a later one.
    for to in 1..nch {
        if rng.random_bool(0.4) {
            let from = rng.random_range(0..to);
            let (rx, tx) = (chans[from].1.clone(), chans[to].0.clone());
            let (rc, tc, seed, sh2) = (caps[from], caps[to], rng.random(), sh.clone());
            joiners.push(spawn_on(place(&mut rng), &sh, move || {
                relay(rx, rc, tx, tc, seed, sh2)
            }));
        }
    }
    // Consumers: every channel has at least one; each drains up to four.
    let mut consumers: Vec<Vec<usize>> = (0..rng.random_range(1..=3)).map(|_| Vec::new()).collect();
    for c in 0..nch {
        let k = rng.random_range(0..consumers.len());
        consumers[k].push(c);
    }
    for set in consumers.iter_mut() {
        if rng.random_bool(0.5) {
            let extra = rng.random_range(0..nch);
            if !set.contains(&extra) {
                set.push(extra);
            }
        }
        set.truncate(4);
    }
    // Truncation may have left a channel without a consumer: give it its own.
    for c in 0..nch {
        if !consumers.iter().any(|s| s.contains(&c)) {
            consumers.push(vec![c]);
        }
    }
    for set in consumers.into_iter().filter(|s| !s.is_empty()) {
        let rxs: Vec<_> = set.iter().map(|&c| (chans[c].1.clone(), caps[c])).collect();
        let (seed, sh2) = (rng.random(), sh.clone());
        joiners.push(spawn_on(place(&mut rng), &sh, move || {
            consumer(rxs, seed, sh2)
        }));
    }
    // Closers: some channels are closed mid-run.
    for (tx, _) in &chans {
        if rng.random_bool(0.25) {
            let (tx, delay) = (tx.clone(), Duration::from_micros(rng.random_range(0..5000)));
            joiners.push(spawn_on(place(&mut rng), &sh, move || {
                gort::time::sleep(delay);
                tx.close();
            }));
        }
    }
    drop(chans); // from now on the actors' Senders decide when channels close
                 // Side workloads.
    let n = rng.random_range(2..=4);
    let rounds = rng.random_range(3..20);
    joiners.extend(barrier_group(n, rounds, &mut rng, &sh));
    let n = rng.random_range(10..100);
    joiners.extend(condvar_pair(n, &mut rng, &sh));
    let mut panickers = Vec::new();
    let side_lock = Arc::new(Mutex::new(()));
    for _ in 0..rng.random_range(0..4) {
        let (seed, sh2, side) = (rng.random(), sh.clone(), side_lock.clone());
        panickers.push(gort::spawn(move || panicker(seed, sh2, side)));
    }

    for j in joiners {
        if let Err(p) = j() {
            resume_unwind(p);
        }
    }
    for p in panickers {
        let e = p.join().expect_err("the panicker panics");
        assert_eq!(e.downcast_ref::<&str>(), Some(&STRESS_PANIC));
    }
    sh.stop.store(true, Ordering::SeqCst);
    noise.join().unwrap();
    sh.actors.lock().unwrap().clear();

    // Invariants.
    let broken = sh.broken.lock().unwrap().clone();
    assert!(broken.is_empty(), "broken invariants: {broken:?}");
    for id in 0..total as usize {
        let r = sh.received[id].load(Ordering::SeqCst);
        let b = sh.returned[id].load(Ordering::SeqCst);
        assert!(
            r + b == 1,
            "value {id}: received {r} times, handed back {b} times (capacities {caps:?})"
        );
    }
    assert_eq!(
        sh.foreign_panics.load(Ordering::SeqCst),
        0,
        "actors saw panicking() for a panic not theirs"
    );
    assert_eq!(
        *sh.mutex.lock(),
        sh.mutex_adds.load(Ordering::SeqCst),
        "Mutex count"
    );
    let rw = *sh.rw.read();
    assert_eq!(rw.0, rw.1, "RwLock pair");
    assert_eq!(sh.sem.available_permits(), sem_permits, "Semaphore permits");
    eventually("goroutines to end", || {
        gort::num_goroutines() <= goroutines_before
    });
    eventually("timers to disarm", || gort::time::armed_count() == 0);
    let back = sh
        .returned
        .iter()
        .filter(|r| r.load(Ordering::SeqCst) != 0)
        .count();
    eprintln!(
        "  {total} values over {nch} channels {caps:?} ({back} handed back), {} payloads, \
         {} lock rounds",
        sh.created.load(Ordering::SeqCst),
        sh.mutex_adds.load(Ordering::SeqCst)
    );
    let sh = Arc::try_unwrap(sh).unwrap_or_else(|_| panic!("a payload is still alive"));
    assert_eq!(
        sh.created.load(Ordering::SeqCst),
        sh.dropped.load(Ordering::SeqCst),
        "payloads created vs dropped"
    );
}

/// Waits up to 5 s for `cond` (things that settle just after the joins return).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "waited 5 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
