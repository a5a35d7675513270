//! The network poller: one edge-triggered epoll instance that turns socket readiness into
//! `Unparker::unpark` calls.
//!
//! It is part of the runtime, as Go's `runtime/netpoll.go` is: the workers poll through it
//! (`worker.rs`), the deadlock detector and metrics read its waiter count ([`io_waiters`]),
//! and waiters park through the runtime's park primitive (`park.rs`). It knows descriptors,
//! not sockets: the net module's socket core (`net/socket.rs`) sits above it and calls down
//! through [`Registration`] (`new`, `seq`, `wait`) and [`Dir`], and nothing here imports
//! from `net`.
//!
//! # Design
//!
//! ```text
//!   goroutine / thread                         poller (epoll, edge-triggered)
//!   ------------------                         ------------------------------
//!   seq = half.seq                             epoll_wait -> events
//!   read(fd) -> EAGAIN                         for each event on fd (PollDesc pd):
//!   lock; half.waiters.push(me); unlock          half.seq += 1            (publish)
//!   if half.seq != seq: retry read               lock; take half.waiters; unlock
//!   park(IoWait)                                 unpark each taken waiter
//!   remove me; retry read
//! ```
//!
//! Every socket gort owns is non-blocking and registered once, for both directions
//! (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`), when it is created or adopted; the
//! registration is removed when it is dropped, before the descriptor is closed.
//! Each registration has a [`PollDesc`] (Go's `pollDesc`) with one [`Half`] per direction:
//!
//! - `seq` counts readiness edges. Go keeps a `pdReady` flag that the one waiter consumes;
//!   a counter instead lets any number of goroutines wait on one direction (two acceptors on
//!   a shared listener, a reader on each `try_clone`) without one of them swallowing an edge
//!   another needed: a waiter snapshots `seq` *before* its attempt, and after registering
//!   re-checks it; if the poller saw an edge since, it retries instead of parking.
//! - `waiters` holds the `Unparker`s of those parked on this direction. The poller takes them
//!   all on each edge (a stream has one reader in practice; for a shared listener, waking
//!   every acceptor is the simple fair answer and the losers re-park).
//!
//! **No lost readiness.** The poller bumps `seq` before it locks `waiters`; a waiter pushes
//! itself under that lock and reads `seq` after it. Either the poller's lock comes after the
//! waiter's (it sees and wakes the waiter) or before (the waiter's `seq` read sees the bump).
//! An edge for data that arrived before the attempt is harmless: the attempt got the data,
//! and the bump costs at most one extra attempt. Spurious wake-ups are allowed (`park.rs`).
//!
//! **Lifetime.** `PollDesc`s are never freed: they are leaked once and recycled through a
//! free list, as Go's `pollCache` does. An event the poller harvested just before a socket
//! was deregistered may therefore touch a recycled `PollDesc` — the result is only a spurious
//! wake-up of its new owner, never a use after free. That is why epoll's `data` can be a
//! plain pointer.
//!
//! # Who polls: a netpoll thread while workers idle, the workers while they are busy
//!
//! Go's scheduler polls the network itself: `findrunnable` calls `netpoll(0)` when a P has
//! nothing else to run, and the last idle M blocks in `epoll_wait`. gort splits that job
//! between one dedicated thread, `gort-netpoll`, and the workers (`worker.rs`):
//!
//! ```text
//!  netpoll thread state | when                          | who harvests events
//!  ---------------------+-------------------------------+--------------------------------
//!  BLOCKED              | some worker idle, or no        | the thread (epoll_wait(-1)),
//!                       | runtime (plain threads only)   | waking goroutines via the
//!                       |                                | global queue + an idle worker
//!  SLEEPING             | every worker (M holding a P)   | each worker that runs out of
//!                       | busy                           | local and global work, or
//!                       |                                | spins looking for some
//!                       |                                | ([`poll_from_worker`],
//!                       |                                | epoll_wait(0)); the thread
//!                       |                                | polls once per BACKSTOP (1 ms)
//!  ACTIVE               | between the two                | anyone
//! ```
//!
//! A worker about to park idle calls [`worker_idle`], which wakes a SLEEPING thread so that
//! it blocks in `epoll_wait` again (Dekker: the worker publishes itself idle then reads the
//! state; the thread publishes SLEEPING then re-reads the idle count).
//!
//! Why not a poller thread alone (the simplest robust design, and what this started as):
//! while a thread sits in `epoll_wait`, the kernel wakes it for each new event, so under load
//! it competes with the workers for the CPUs, and every wake-up crosses threads through the
//! global queue. Measured here (benches/net.rs: 100 connections of 64-byte echo, client and
//! server in one process, 2 CPUs shared with other jobs): poller thread alone ~96k
//! requests/s at 20 µs of CPU per request; with busy workers harvesting, 125–135k at
//! 14.8 µs (Go 1.19, same workload and machine: 120–122k at 16 µs). Requests/s swing with
//! the machine's load; CPU per request is the steadier figure.
//!
//! Why not Go's "idle worker blocks in `epoll_wait`": every spawn, unpark and timer arm
//! would then have to wake that worker through an eventfd instead of its futex — a cost on
//! the non-network hot paths and a change to the scheduler's idle protocol; and plain
//! threads (no runtime at all) would need a poller anyway. The thread keeps both simple.
//! The price is latency when the load is light: with a worker idle, a readiness goes
//! netpoll thread -> global queue -> idle worker, two thread wake-ups where Go has one
//! (one connection ping-ponging: roughly 10–20% fewer round trips per second than Go on
//! this machine). Under load the workers harvest directly and that cost disappears.
//!
//! An eventfd is registered with `data == 0` so that `epoll_wait` can be interrupted; nothing
//! needs to today (the thread polls with a timeout while every worker is busy).
//!
//! [`io_waiters`] counts goroutines and threads parked here, for deadlock detection: a
//! program with an I/O waiter is never reported as deadlocked (the peer may still write).
//!
//! # Safety
//!
//! 1. **epoll `data` is 0 or a `&'static PollDesc`.** The eventfd is registered with
//!    `data == 0` and [`poll`] checks for 0 first; every other registration
//!    ([`Registration::new`]) stores the address of a `PollDesc` that was `Box::leak`ed. No
//!    `PollDesc` is ever freed: a deregistered one goes to `Poller::free` and is reused. So
//!    turning a non-zero `data` back into `&PollDesc` is valid for the rest of the process,
//!    even for an event harvested after its registration was dropped (then the `PollDesc` may
//!    belong to a new socket: a spurious wake-up, never a use after free). `PollDesc` is
//!    `Sync` (atomics and a `std::sync::Mutex<Vec<Unparker>>`; the compiler checks it, since
//!    the static `POLLER` holds `&'static PollDesc`s), so any thread may use that reference.
//! 2. **The poller's descriptors live for ever.** The epoll fd and the eventfd are `OwnedFd`s
//!    of the `Poller`, which lives in a static and is never dropped, so they are open for every
//!    system call made on them.
//! 3. **A registration's descriptor outlives it.** `Registration::fd` is owned by the `Socket`
//!    (`net/socket.rs`) that owns the registration and drops it first (field order, and explicitly in
//!    `Socket::into_inner`), so `EPOLL_CTL_DEL` runs while `fd` still names that socket, not
//!    a number reused by another file. (A wrong descriptor would only make epoll_ctl fail or
//!    act on another file's registration — lost wake-ups, not memory unsafety, by 1.)
//! 4. **Buffers.** Every pointer passed to `epoll_ctl`, `epoll_wait`, `read` and `write` points
//!    at a live local or slice at least as long as the length passed, and the kernel uses it
//!    only during the call.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::park::{self, ThreadParker, Unparker, WaitReason};

/// Which way a waiter waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Readable (or accept-able, or closed by the peer, or in error).
    Read,
    /// Writable (or connected, or in error).
    Write,
}

/// One direction of a registration.
pub(crate) struct Half {
    /// Readiness edges seen so far; bumped by the poller before it takes `waiters`.
    seq: AtomicU64,
    /// Who is parked waiting for the next edge. Guarded by its own lock, which the poller
    /// and waiters hold only to push, take or remove entries (never across a park).
    waiters: Mutex<Vec<Unparker>>,
}

impl Half {
    const fn new() -> Half {
        Half {
            seq: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Unparker>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, me: &Unparker) {
        let mut w = self.lock();
        if let Some(i) = w.iter().position(|u| u.same_target(me)) {
            w.swap_remove(i);
        }
    }

    /// An edge: publish it, then wake everyone waiting (into `scratch`, outside the lock).
    fn fire(&self, scratch: &mut Vec<Unparker>) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        {
            let mut w = self.lock();
            if w.is_empty() {
                return;
            }
            scratch.append(&mut w);
        }
        for u in scratch.drain(..) {
            u.unpark();
        }
    }
}

/// The readiness state of one registered descriptor (Go's `pollDesc`).
pub(crate) struct PollDesc {
    rd: Half,
    wr: Half,
}

impl PollDesc {
    fn half(&self, dir: Dir) -> &Half {
        match dir {
            Dir::Read => &self.rd,
            Dir::Write => &self.wr,
        }
    }
}

/// Goroutines and threads parked waiting for I/O right now.
static IO_WAITERS: AtomicUsize = AtomicUsize::new(0);

/// How many goroutines and plain threads are parked waiting for a socket. The deadlock
/// detector treats any of them as a possible source of progress (the peer may still act).
pub(crate) fn io_waiters() -> usize {
    IO_WAITERS.load(Ordering::SeqCst)
}

/// The epoll instance and its wake-up eventfd.
struct Poller {
    epfd: OwnedFd,
    eventfd: OwnedFd,
    /// Recycled `PollDesc`s (see the module comment on lifetime).
    free: Mutex<Vec<&'static PollDesc>>,
}

static POLLER: OnceLock<Poller> = OnceLock::new();

fn poller() -> &'static Poller {
    POLLER.get_or_init(|| {
        let p = Poller::new().unwrap_or_else(|e| panic!("gort: cannot create the netpoller: {e}"));
        super::deadlock::runtime_thread_spawned();
        std::thread::Builder::new()
            .name("gort-netpoll".into())
            .spawn(|| {
                // The deadlock detector accounts for every thread: this one is the runtime's.
                super::deadlock::runtime_thread_started();
                poll_loop()
            })
            .expect("gort: cannot start the netpoll thread");
        p
    })
}

impl Poller {
    fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes only a flag, no pointers; the result is checked
        // before being owned.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `epfd` was just returned by epoll_create1 (checked above), so it is open
        // and owned by nobody else; the OwnedFd closes it exactly once.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        // SAFETY: eventfd takes only integers, no pointers; the result is checked below
        // before being owned.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` was just returned by eventfd (checked above), so it is open and owned
        // by nobody else; the OwnedFd closes it exactly once.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: 1. both descriptors are open: they are the OwnedFds created above. 2. (4)
        // `ev` is a live local that epoll_ctl only reads. Its `data` is 0, the eventfd's mark
        // (module Safety 1).
        if unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, efd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Poller {
            epfd,
            eventfd,
            free: Mutex::new(Vec::new()),
        })
    }
}

/// What the netpoll thread is doing (see "Who polls" in the module comment).
static POLLER_STATE: AtomicU8 = AtomicU8::new(ACTIVE);
/// Harvesting events or deciding what to do next.
const ACTIVE: u8 = 0;
/// Blocked in `epoll_wait` with no timeout: new events wake it, so workers leave them to it.
const BLOCKED: u8 = 1;
/// Every worker was busy: parked for at most [`BACKSTOP`], then one non-blocking poll.
/// Workers harvest events themselves meanwhile, and the first to go idle wakes the thread.
const SLEEPING: u8 = 2;
/// How long events may wait when every worker is busy and none runs out of work (Go's
/// sysmon polls the network every 10 ms at worst; this is the same backstop, tighter).
const BACKSTOP: Duration = Duration::from_millis(1);

/// Where the netpoll thread sleeps in SLEEPING.
static POLLER_PARKER: ThreadParker = ThreadParker::new();

/// The netpoll thread.
fn poll_loop() {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut scratch = Vec::new();
    loop {
        if !all_workers_busy() {
            POLLER_STATE.store(BLOCKED, Ordering::SeqCst);
            poll(&mut events, -1, &mut scratch);
            POLLER_STATE.store(ACTIVE, Ordering::SeqCst);
            continue;
        }
        // Dekker with `worker_idle`: publish SLEEPING, then re-check; a worker publishes
        // itself idle, then reads the state. One of the two sees the other.
        POLLER_STATE.store(SLEEPING, Ordering::SeqCst);
        if !all_workers_busy() {
            POLLER_STATE.store(ACTIVE, Ordering::SeqCst);
            continue;
        }
        POLLER_PARKER.park(Some(Instant::now() + BACKSTOP));
        POLLER_STATE.store(ACTIVE, Ordering::SeqCst);
        poll(&mut events, 0, &mut scratch);
    }
}

/// True when the runtime runs and no M holding a P is idle.
fn all_workers_busy() -> bool {
    super::scheduler::try_get().is_some_and(|s| s.nidle.load(Ordering::SeqCst) == 0)
}

/// Called by a worker that found no goroutine in its queues or the global queue: harvests
/// ready sockets without blocking (their goroutines go to this worker's processor). Returns
/// true if it made any goroutine runnable. Skipped while the netpoll thread is blocked in
/// `epoll_wait` (it gets the events anyway) or nobody waits for I/O.
#[inline]
pub(crate) fn poll_from_worker() -> bool {
    if IO_WAITERS.load(Ordering::Relaxed) == 0
        || POLLER_STATE.load(Ordering::Relaxed) == BLOCKED
        || POLLER.get().is_none()
    {
        return false;
    }
    poll_from_worker_slow()
}

#[cold]
fn poll_from_worker_slow() -> bool {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 128];
    let mut scratch = Vec::new();
    poll(&mut events, 0, &mut scratch) > 0
}

/// Called by a worker about to park idle (after publishing itself idle): if the netpoll
/// thread sleeps because every worker was busy, wake it so it blocks in `epoll_wait`.
#[inline]
pub(crate) fn worker_idle() {
    if POLLER_STATE.load(Ordering::SeqCst) == SLEEPING {
        POLLER_PARKER.unpark();
    }
}

/// One `epoll_wait` (`timeout_ms`: -1 blocks) and the wake-ups it yields. Returns the number
/// of socket events handled.
fn poll(events: &mut [libc::epoll_event], timeout_ms: i32, scratch: &mut Vec<Unparker>) -> usize {
    let p = poller();
    // SAFETY: 1. (2) the epoll fd belongs to the static poller and is open for ever.
    // 2. (4) `events` is a live, exclusively borrowed buffer of `events.len()` entries and the
    // kernel writes at most `maxevents` = `events.len()` of them (so `n <= events.len()`).
    let n = unsafe {
        libc::epoll_wait(
            p.epfd.as_raw_fd(),
            events.as_mut_ptr(),
            events.len() as i32,
            timeout_ms,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return 0;
        }
        panic!("gort: epoll_wait failed: {e}");
    }
    let mut handled = 0;
    for ev in &events[..n as usize] {
        let (bits, data) = (ev.events, ev.u64);
        if data == 0 {
            let mut buf = 0u64;
            // SAFETY: 1. (2) the eventfd belongs to the static poller and is open for ever.
            // 2. (4) `buf` is a live u64 and at most 8 bytes are written into it. The eventfd
            // is non-blocking, so this never blocks; an error (EAGAIN) is harmless.
            unsafe {
                libc::read(
                    p.eventfd.as_raw_fd(),
                    &mut buf as *mut u64 as *mut libc::c_void,
                    8,
                )
            };
            continue;
        }
        // SAFETY: (1) `data != 0`, so it is the address of a leaked, never-freed PollDesc,
        // valid for 'static and `Sync`; only shared references to it are ever made. If its
        // registration is gone the PollDesc may have a new owner: a spurious wake-up only.
        let pd = unsafe { &*(data as *const PollDesc) };
        let bits = bits as libc::c_int;
        let err = libc::EPOLLERR | libc::EPOLLHUP;
        if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | err) != 0 {
            pd.rd.fire(scratch);
        }
        if bits & (libc::EPOLLOUT | err) != 0 {
            pd.wr.fire(scratch);
        }
        handled += 1;
    }
    handled
}

/// A descriptor registered with the poller; deregisters on drop (before the owner closes it).
pub(crate) struct Registration {
    pd: &'static PollDesc,
    fd: RawFd,
}

impl Registration {
    /// Registers `fd` (which must be non-blocking and stay open while this lives) for both
    /// directions, edge-triggered.
    ///
    /// The "stays open" contract is what makes the `EPOLL_CTL_DEL` in `drop` act on this
    /// socket (module Safety 3); breaking it cannot cause memory unsafety (module Safety 1).
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        let p = poller();
        let pd = p
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| {
                Box::leak(Box::new(PollDesc {
                    rd: Half::new(),
                    wr: Half::new(),
                }))
            });
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: pd as *const PollDesc as u64,
        };
        // SAFETY: 1. (2) the epoll fd is open for ever. 2. (3) `fd` is open: the caller's
        // contract (a bad one only yields an error). 3. (4) `ev` is a live local that
        // epoll_ctl only reads; its `data` is `pd`, a leaked, never-freed PollDesc (1).
        if unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            let e = io::Error::last_os_error();
            p.free.lock().unwrap_or_else(|e| e.into_inner()).push(pd);
            return Err(e);
        }
        Ok(Registration { pd, fd })
    }

    /// The readiness count to snapshot before an attempt (see the module comment).
    #[inline]
    pub(crate) fn seq(&self, dir: Dir) -> u64 {
        self.pd.half(dir).seq.load(Ordering::SeqCst)
    }

    /// Parks the caller until `dir` has seen an edge after `seq`, or `deadline` passes.
    /// Returns false only if the deadline passed with no new edge. May return true
    /// spuriously: the caller retries its operation either way.
    pub(crate) fn wait(&self, dir: Dir, seq: u64, deadline: Option<Instant>) -> bool {
        let half = self.pd.half(dir);
        let me = park::current();
        half.lock().push(me.clone());
        if half.seq.load(Ordering::SeqCst) != seq {
            half.remove(&me);
            return true;
        }
        IO_WAITERS.fetch_add(1, Ordering::SeqCst);
        match deadline {
            Some(d) => park::park_until(WaitReason::IoWait, d),
            None => park::park(WaitReason::IoWait),
        }
        IO_WAITERS.fetch_sub(1, Ordering::SeqCst);
        half.remove(&me);
        if half.seq.load(Ordering::SeqCst) != seq {
            return true;
        }
        !matches!(deadline, Some(d) if Instant::now() >= d)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let p = poller();
        // SAFETY: 1. (2) the epoll fd is open for ever. 2. (3) the owning `Socket` keeps `fd`
        // open until this returns, so it still names our socket. 3. EPOLL_CTL_DEL ignores the
        // event pointer (null is allowed since Linux 2.6.9). The result is ignored: an error
        // means `fd` was closed behind our back (I/O-unsafe code elsewhere); if the socket's
        // file then outlives it through a `dup`, its registration stays and its events still
        // carry this PollDesc's address, which stays valid (1): spurious wake-ups only.
        unsafe {
            libc::epoll_ctl(
                p.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.fd,
                std::ptr::null_mut(),
            )
        };
        // Nobody can be waiting: the owner is being dropped, so no operation is in flight.
        debug_assert!(self.pd.rd.lock().is_empty() && self.pd.wr.lock().is_empty());
        p.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.pd);
    }
}
