//! Blocking while a panic unwinds (issue 12, item 1).
//!
//! std keeps its panic count per OS thread. A goroutine that parks, sleeps, locks or yields
//! while it unwinds (in a `Drop`, or in a panic hook) must keep its OS thread until it
//! resumes, so that no other goroutine ever runs on a thread whose count says "panicking":
//! they would see `std::thread::panicking() == true`, poison std locks, and a second panic on
//! that thread would abort the process.
//!
//! Most panics here are raised with `resume_unwind`, which unwinds like a panic (and makes
//! `panicking()` true) without calling the panic hook, so the output stays quiet.

mod common;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gort::chan::{self, Receiver, Sender};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

fn tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// What a guard does in its `Drop` while its goroutine unwinds.
#[derive(Clone, Copy, Debug)]
enum Block {
    /// Receives on a channel (parks until the test closes it).
    Recv,
    /// Sleeps on a gort timer.
    Sleep,
    /// Locks a gort Mutex held by somebody else.
    Lock,
    /// Yields.
    Yield,
    /// Runs a `blocking` section that outlasts sysmon's hand-off delay.
    Blocking,
}

/// Runs `block` in `Drop`; records whether the goroutine stayed on its thread and still saw
/// its own panic.
struct BlockOnDrop {
    block: Block,
    entered: Sender<()>,
    release: Receiver<()>,
    lock: Arc<gort::sync::Mutex<()>>,
    moved: Arc<AtomicUsize>,
}

impl Drop for BlockOnDrop {
    fn drop(&mut self) {
        let before = tid();
        let _ = self.entered.send(());
        for _ in 0..3 {
            self.block_once();
        }
        if tid() != before || !std::thread::panicking() {
            self.moved.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl BlockOnDrop {
    fn block_once(&self) {
        match self.block {
            Block::Recv => {
                let _ = self.release.recv();
            }
            Block::Sleep => gort::time::sleep(Duration::from_millis(5)),
            Block::Lock => drop(self.lock.lock()),
            Block::Yield => {
                for _ in 0..20 {
                    gort::yield_now();
                }
            }
            Block::Blocking => {
                gort::blocking(|| std::thread::sleep(Duration::from_millis(2)));
            }
        }
    }
}

/// Goroutines that keep checking `panicking()` (through switches, `blocking`, std and gort
/// locks) until `stop`; returns how many times they saw a panic that was not theirs.
fn checkers(n: usize, stop: Arc<AtomicBool>) -> Vec<gort::JoinHandle<usize>> {
    (0..n)
        .map(|i| {
            let stop = stop.clone();
            gort::spawn(move || {
                let std_lock = std::sync::Mutex::new(0);
                let mut seen = 0;
                let mut round = 0usize;
                while !stop.load(Ordering::SeqCst) || round < 50 {
                    round += 1;
                    seen += std::thread::panicking() as usize;
                    match (i + round) % 4 {
                        0 => gort::yield_now(),
                        1 => gort::time::sleep(Duration::from_micros(50)),
                        2 => {
                            gort::blocking(|| std::hint::black_box(round));
                        }
                        _ => *std_lock.lock().expect("never poisoned") += 1,
                    };
                    seen += std::thread::panicking() as usize;
                }
                seen
            })
        })
        .collect()
}

fn blocked_unwinding(block: Block) {
    let n = 4;
    let (entered_tx, entered_rx) = chan::chan::<()>(n);
    let (release_tx, release_rx) = chan::chan::<()>(0);
    let lock = Arc::new(gort::sync::Mutex::new(()));
    let moved = Arc::new(AtomicUsize::new(0));
    let held = lock.lock();
    let stop = Arc::new(AtomicBool::new(false));
    let checks = checkers(8, stop.clone());
    let panickers: Vec<_> = (0..n)
        .map(|_| {
            let guard = BlockOnDrop {
                block,
                entered: entered_tx.clone(),
                release: release_rx.clone(),
                lock: lock.clone(),
                moved: moved.clone(),
            };
            gort::spawn(move || {
                let _guard = guard;
                resume_unwind(Box::new("unwinding"));
            })
        })
        .collect();
    for _ in 0..n {
        entered_rx.recv().unwrap();
    }
    gort::time::sleep(Duration::from_millis(10));
    drop(held);
    drop(release_tx);
    for h in panickers {
        let p = h.join().expect_err("the goroutine panicked");
        assert_eq!(p.downcast_ref::<&str>(), Some(&"unwinding"));
    }
    stop.store(true, Ordering::SeqCst);
    let seen: usize = checks.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        seen, 0,
        "{block:?}: other goroutines saw a panic in progress"
    );
    assert_eq!(
        moved.load(Ordering::SeqCst),
        0,
        "{block:?}: an unwinding goroutine changed threads or lost its panic state"
    );
}

#[gort::test]
fn issue_12_a_drop_that_receives_keeps_its_thread() {
    blocked_unwinding(Block::Recv);
}

#[gort::test]
fn issue_12_a_drop_that_sleeps_keeps_its_thread() {
    blocked_unwinding(Block::Sleep);
}

#[gort::test]
fn issue_12_a_drop_that_locks_keeps_its_thread() {
    blocked_unwinding(Block::Lock);
}

#[gort::test]
fn issue_12_a_drop_that_yields_keeps_its_thread() {
    blocked_unwinding(Block::Yield);
}

#[gort::test]
fn issue_12_a_drop_in_blocking_keeps_its_thread() {
    blocked_unwinding(Block::Blocking);
}

/// A panic while holding a contended `gort::sync::Mutex` in starvation mode: the guard's
/// unlock hands the lock to the waiter and yields, during unwinding. The waiter must not run
/// on the unwinding goroutine's thread while it is still unwinding.
#[gort::test]
fn issue_12_mutex_starvation_handoff_while_unwinding() {
    for _ in 0..common::stress(20) {
        let m = Arc::new(gort::sync::Mutex::new(0u32));
        let (waiter_tx, waiter_rx) = chan::chan(1);
        let m2 = m.clone();
        let panicker = gort::spawn(move || {
            let g = m2.lock();
            let waiter = {
                let m = m2.clone();
                gort::spawn(move || {
                    let g = m.lock();
                    let wrong = std::thread::panicking();
                    drop(g);
                    wrong
                })
            };
            waiter_tx.send(waiter).unwrap();
            // Let the waiter queue up for over 1 ms, then wake it and take the lock again
            // before it runs (it is only runnable): it then marks the mutex starving and
            // queues again.
            gort::time::sleep(Duration::from_millis(3));
            drop(g);
            let _g = m2.lock();
            for _ in 0..5 {
                gort::yield_now();
            }
            resume_unwind(Box::new("starving"));
        });
        assert!(panicker.join().is_err());
        let waiter = waiter_rx.recv().unwrap();
        assert!(
            !waiter.join().unwrap(),
            "the waiter saw another goroutine's panic"
        );
        assert_eq!(*m.lock(), 0);
    }
}

/// Child for the hook test: a panic hook that waits on a gort channel, in two goroutines
/// that panic one after the other on one processor.
#[test]
fn issue_12_a_blocking_panic_hook_does_not_abort() {
    if common::is_child("issue_12_a_blocking_panic_hook_does_not_abort") {
        static GATE: OnceLock<(Sender<()>, Receiver<()>)> = OnceLock::new();
        static IN_HOOK: AtomicUsize = AtomicUsize::new(0);
        let (_, gate) = GATE.get_or_init(|| chan::chan(0));
        // Start the runtime first: it wraps the hook installed before it starts.
        gort::spawn(|| ()).join().unwrap();
        std::panic::set_hook(Box::new(move |_| {
            if gort::goroutine_id().is_some() {
                IN_HOOK.fetch_add(1, Ordering::SeqCst);
                let _ = gate.recv();
            }
        }));
        let a = gort::spawn(|| panic!("first"));
        let b = gort::spawn(|| panic!("second"));
        let start = Instant::now();
        while IN_HOOK.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Both goroutines are in the hook (or one is, if hooks cannot overlap): release them.
        GATE.get().unwrap().0.close();
        assert!(a.join().is_err());
        assert!(b.join().is_err());
        println!("both panics reported");
        return;
    }
    for procs in ["1", "2"] {
        let out = common::run_child(
            "issue_12_a_blocking_panic_hook_does_not_abort",
            &[("GORT_MAXPROCS", procs)],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("both panics reported"),
            "GORT_MAXPROCS={procs}: {:?}\n{stdout}\n{stderr}",
            out.status
        );
    }
}

/// A goroutine that catches a panic it blocked during goes back to normal scheduling: it can
/// park again, move between threads, and the processor count is respected afterwards.
#[gort::test]
fn issue_12_after_unwinding_a_goroutine_schedules_normally() {
    let hs: Vec<_> = (0..8)
        .map(|_| {
            gort::spawn(|| {
                let (tx, rx) = chan::chan::<u32>(0);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let guard = BlockOnDrop {
                        block: Block::Sleep,
                        entered: chan::chan(1).0,
                        release: chan::chan(1).1,
                        lock: Arc::new(gort::sync::Mutex::new(())),
                        moved: Arc::new(AtomicUsize::new(0)),
                    };
                    let _g = guard;
                    resume_unwind(Box::new(1));
                }));
                assert!(r.is_err());
                assert!(!std::thread::panicking());
                gort::spawn(move || tx.send(7).unwrap());
                let v = rx.recv().unwrap();
                for _ in 0..10 {
                    gort::time::sleep(Duration::from_micros(100));
                }
                v
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 7);
    }
}

/// Review item 5: every goroutine blocked while unwinding holds an OS thread of its own, and
/// those threads count against the thread limit. Under the limit the program completes; past
/// it, the fatal error names the cause (it used to say only "thread exhaustion").
#[test]
fn issue_review_thread_exhaustion_names_goroutines_blocked_while_unwinding() {
    const NAME: &str = "issue_review_thread_exhaustion_names_goroutines_blocked_while_unwinding";
    const N: usize = 40;
    if common::is_child(NAME) {
        struct SendOnDrop(Sender<u32>);
        impl Drop for SendOnDrop {
            fn drop(&mut self) {
                let _ = self.0.send(1); // unbuffered: waits until main receives
            }
        }
        let (tx, rx) = chan::chan::<u32>(0);
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let tx = tx.clone();
                gort::spawn(move || {
                    let _g = SendOnDrop(tx);
                    resume_unwind(Box::new(0));
                })
            })
            .collect();
        // Let them all block in their Drop (each on a thread of its own), then drain.
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..N {
            rx.recv().unwrap();
        }
        for h in hs {
            assert!(h.join().is_err());
        }
        println!("all {N} panics came back");
        return;
    }
    let ok = common::run_child(NAME, &[("GORT_MAXPROCS", "1"), ("GORT_MAX_THREADS", "100")]);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(
        ok.status.success() && String::from_utf8_lossy(&ok.stdout).contains("panics came back"),
        "{:?}\n{stderr}",
        ok.status
    );
    let out = common::run_child(NAME, &[("GORT_MAXPROCS", "1"), ("GORT_MAX_THREADS", "16")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("runtime: program exceeds 16-thread limit\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("threads are held by goroutines blocked while unwinding a panic"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fatal error: thread exhaustion"),
        "{stderr}"
    );
}
