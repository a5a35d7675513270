//! Goroutine stacks at their limits (regressions from the review of the stack code): the
//! `mprotect` guard budget and what it leaves to the rest of the program, panics nothing can
//! catch (a result that panics when dropped), a panic report on the smallest stack, and
//! memory given back after a burst. Fatal and limit paths run in child processes (each child
//! runs one test, with the runtime fresh); apart from `tests/stack.rs` so that both files run
//! in parallel.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gort::thread;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// Runs the test `name` of this binary as a child (with `env`), for at most 60 s.
fn child(name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.env(common::CHILD, name)
        .env("RUST_BACKTRACE", "0")
        .args([name, "--exact", "--nocapture", "--test-threads", "1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::output_within(&mut cmd, 60)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lines of /proc/self/maps: the kernel mappings of this process.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Uses up kernel mappings (one mapping, every other page made read-only: each such page
/// splits it) until only `left` of `vm.max_map_count` remain, so that the `mprotect` guard
/// budget, computed from the mappings in use at the first guard, is small and the tests
/// below reach it in a second. None (the test is skipped) where the limit was raised so far
/// that this would take long. Leaks the mapping: children only.
fn use_up_mappings_but(left: usize) -> Option<()> {
    let limit = common::max_map_count()?;
    if limit > 300_000 {
        eprintln!("vm.max_map_count = {limit}: too many mappings to use up, test skipped");
        return None;
    }
    let add = limit.checked_sub(left + mappings())?;
    let pages = add + 1;
    let page = 4096;
    // SAFETY: a fresh private mapping nobody else knows about; only its protection changes.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            pages * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        for i in (1..pages).step_by(2) {
            let r = libc::mprotect(p.cast::<u8>().add(i * page).cast(), page, libc::PROT_READ);
            assert_eq!(r, 0, "mprotect {i}");
        }
    }
    Some(())
}

/// Spawns goroutines that park until `release` is set, with `Builder::spawn`, until it
/// fails (for `patience`: a stack is given back just after its goroutine's joiner hears of
/// its end); returns them and the error.
fn park_until_spawn_fails(
    release: &Arc<AtomicBool>,
    patience: Duration,
) -> (Vec<thread::JoinHandle<()>>, String) {
    let mut hs = Vec::new();
    let mut failing_since = None;
    loop {
        let r = release.clone();
        match thread::Builder::new().spawn(move || {
            while !r.load(Ordering::Acquire) {
                thread::park();
            }
        }) {
            Ok(h) => {
                hs.push(h);
                failing_since = None;
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= patience {
                    return (hs, e.to_string());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(hs.len() < 100_000, "the budget was never reached");
    }
}

/// `Builder::spawn`, retried for up to 2 s while it fails: a goroutine gives its stack back
/// just after its joiner hears of its end.
fn spawn_soon<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + Clone + 'static,
) -> std::io::Result<thread::JoinHandle<T>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match thread::Builder::new().spawn(f.clone()) {
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            r => return r,
        }
    }
}

fn release_all(release: &AtomicBool, hs: Vec<thread::JoinHandle<()>>) {
    release.store(true, Ordering::Release);
    for h in hs {
        h.thread().unpark();
        h.join().unwrap();
    }
}

/// Review item 1: on the `mprotect` path, once the budget of mappings was spent, stacks given
/// back (guards and all) must be handed out again; before, every later spawn failed because
/// the pool offered a new slot (whose guard cannot be made) first.
#[test]
fn stacks_given_back_are_reused_once_the_mprotect_budget_is_spent() {
    const NAME: &str = "stacks_given_back_are_reused_once_the_mprotect_budget_is_spent";
    if common::is_child(NAME) {
        if use_up_mappings_but(12_000).is_none() {
            println!("RESULT skipped");
            return;
        }
        let (first, rest) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (a, _) = park_until_spawn_fails(&first, Duration::ZERO);
        // Stacks of the lowest arena: those handed out first.
        let (b, err) = park_until_spawn_fails(&rest, Duration::ZERO);
        assert!(b.is_empty(), "the budget was spent: {} more", b.len());
        assert!(err.contains("vm.max_map_count"), "{err}");
        let n = a.len();
        // Give back the first 200 (guarded stacks, free again).
        let mut a = a.into_iter();
        release_all(&first, a.by_ref().take(200).collect());
        for i in 0..200 {
            spawn_soon(|| 1)
                .unwrap_or_else(|e| panic!("spawn {i} after stacks were given back: {e}"))
                .join()
                .unwrap();
        }
        // And 200 at once, parked together: every stack given back is usable.
        let again = Arc::new(AtomicBool::new(false));
        let (c, _) = park_until_spawn_fails(&again, Duration::from_millis(300));
        assert!(c.len() >= 200, "only {} of 200 stacks reused", c.len());
        release_all(&again, c);
        release_all(&rest, a.collect());
        println!("RESULT ok: budget {n} stacks");
        return;
    }
    let out = child(NAME, &[("GORT_STACK_GUARD", "mprotect")]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("RESULT "), "{stdout}\n{stderr}");
}

/// Review item 3: the runtime's own threads (Ms started for goroutines blocked in system
/// calls or `blocking`) hold kernel mappings too; the `mprotect` guard budget must leave
/// them theirs, and the fixed reserve must stay for the rest of the program: when stacks run
/// out, at least `MAPPINGS_RESERVED` (4,096) mappings are still free, and more runtime
/// threads can start. Before, the budget was fixed when the runtime started: threads alive
/// ate into the reserve, and one more thread failed ("failed to create new OS thread").
#[test]
fn runtime_threads_keep_their_mappings_under_the_mprotect_budget() {
    const NAME: &str = "runtime_threads_keep_their_mappings_under_the_mprotect_budget";
    const BLOCKED: usize = 150;
    if common::is_child(NAME) {
        if use_up_mappings_but(14_000).is_none() {
            println!("RESULT skipped");
            return;
        }
        let limit = common::max_map_count().unwrap();
        // Runtime threads: goroutines blocked (their OS threads asleep in a std Condvar)
        // inside `blocking` until `go_on` drops; each holds an M, and its P moves on.
        let blocked = |n: usize| {
            let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
            let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    let (gate, started) = (gate.clone(), started.clone());
                    spawn_soon(move || {
                        gort::blocking(|| {
                            started.fetch_add(1, Ordering::SeqCst);
                            let (m, cv) = &*gate;
                            let mut open = m.lock().unwrap();
                            while !*open {
                                open = cv.wait(open).unwrap();
                            }
                        })
                    })
                    .expect("a stack for a blocked goroutine")
                })
                .collect();
            while started.load(Ordering::SeqCst) < n {
                std::thread::sleep(Duration::from_millis(1));
            }
            (Open(gate), hs)
        };
        let (go_on, hs) = blocked(BLOCKED);
        let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
        assert!(threads > BLOCKED, "{threads} threads");
        let release = Arc::new(AtomicBool::new(false));
        let (parked, err) = park_until_spawn_fails(&release, Duration::ZERO);
        assert!(err.contains("vm.max_map_count"), "{err}");
        let free = limit.saturating_sub(mappings());
        assert!(
            free >= 4096,
            "stacks ran out with {free} mappings free (threads {threads}, {} parked)",
            parked.len()
        );
        // The blocked threads end; as many new ones start (the reserve is theirs).
        drop(go_on);
        for h in hs {
            h.join().unwrap();
        }
        let (go_on, hs) = blocked(BLOCKED);
        drop(go_on);
        for h in hs {
            h.join().unwrap();
        }
        release_all(&release, parked);
        println!("RESULT ok: {free} mappings free when stacks ran out");
        return;
    }
    let out = child(NAME, &[("GORT_STACK_GUARD", "mprotect")]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("RESULT "), "{stdout}\n{stderr}");
}

/// Opens its gate when dropped: the goroutines blocked on it go on.
struct Open(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Drop for Open {
    fn drop(&mut self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

/// A value whose drop panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb dropped");
    }
}

/// Review item 2: a goroutine's result (or panic payload) that panics when dropped, where
/// nobody can catch it: the process aborts with std's words, as std does for a thread's
/// result. Before, the panic unwound out of the goroutine and killed its worker thread (a
/// detached goroutine), or hung `thread::scope` (a scoped one).
#[test]
fn a_result_that_panics_on_drop_aborts_like_std() {
    const NAME: &str = "a_result_that_panics_on_drop_aborts_like_std";
    if common::is_child(NAME) {
        let case = std::env::var("CASE").unwrap();
        let wait = || std::thread::sleep(Duration::from_millis(500));
        match case.as_str() {
            // Detached, finishing last: the goroutine drops its own result.
            "detached" => drop(gort::spawn(|| {
                gort::time::sleep(Duration::from_millis(20));
                Bomb
            })),
            // Its panic payload panics when dropped.
            "payload" => drop(gort::spawn(|| {
                gort::time::sleep(Duration::from_millis(20));
                std::panic::panic_any(Bomb);
            })),
            // Finished, then its handle dropped: the dropper drops the result.
            "handle" => {
                let h = gort::spawn(|| Bomb);
                while !h.is_finished() {
                    std::thread::yield_now();
                }
                drop(h);
            }
            "scoped" => thread::scope(|s| {
                let h = s.spawn(|| Bomb);
                while !h.is_finished() {
                    std::thread::yield_now();
                }
                drop(h);
            }),
            _ => unreachable!(),
        }
        wait();
        println!("NOT ABORTED");
        return;
    }
    for case in ["detached", "payload", "handle", "scoped"] {
        let out = child(NAME, &[("CASE", case)]);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{case}: {:?}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("fatal runtime error: thread result panicked on drop, aborting"),
            "{case}: {stderr}"
        );
        assert!(stderr.contains("bomb dropped"), "{case}: {stderr}");
    }
}

/// Review, minor: a goroutine on the smallest stack (16 KiB) that panics with
/// `RUST_BACKTRACE=1` reports its panic with a backtrace and is joined; before, resolving
/// the backtrace on its stack overflowed it ("fatal error: stack overflow").
#[test]
fn a_goroutine_on_the_smallest_stack_reports_its_panic_with_a_backtrace() {
    const NAME: &str = "a_goroutine_on_the_smallest_stack_reports_its_panic_with_a_backtrace";
    if common::is_child(NAME) {
        let h = thread::Builder::new()
            .name("tiny".into())
            .stack_size(16 * 1024)
            .spawn(|| -> u32 { panic!("boom on a small stack") })
            .unwrap();
        assert!(h.join().is_err());
        println!("RESULT joined");
        return;
    }
    for bt in ["1", "full"] {
        let out = child(NAME, &[("RUST_BACKTRACE", bt)]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{bt}: {:?}\n{stderr}", out.status);
        assert!(stdout.contains("RESULT joined"), "{bt}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("thread 'tiny' panicked at")
                && stderr.contains("boom on a small stack")
                && stderr.contains("stack backtrace:"),
            "{bt}: {stderr}"
        );
    }
}

/// Review, minor: a `GORT_STACK_SIZE` too large says "gort: " once.
#[test]
fn gort_stack_size_too_large_is_one_clear_error() {
    const NAME: &str = "gort_stack_size_too_large_is_one_clear_error";
    if common::is_child(NAME) {
        gort::spawn(|| ()).join().unwrap();
        return;
    }
    let out = child(NAME, &[("GORT_STACK_SIZE", "2t")]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("gort: GORT_STACK_SIZE=2t: a goroutine stack of 2199023255552 bytes"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("gort: ").count(), 1, "{stderr}");
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Recursion `n` frames deep, about 4 KiB each.
#[inline(never)]
fn deep(n: usize) -> u8 {
    let mut buf = [n as u8; 4096];
    std::hint::black_box(&mut buf);
    if n == 0 {
        return buf[1];
    }
    deep(n - 1).wrapping_add(std::hint::black_box(&buf)[7])
}

/// Review item 5: after a burst of goroutines that went deep, an idle program gives the
/// pages of their stacks back within a few seconds: the stacks in the pool are trimmed
/// once they stayed free for a scavenger period, those in the processors' caches lose
/// their deep pages when the processors go idle. Before, 200 such goroutines left 40 MB
/// resident for good (the pool kept up to 64 MiB of warm stacks per size class).
#[test]
fn idle_stacks_give_their_pages_back() {
    const NAME: &str = "idle_stacks_give_their_pages_back";
    const N: usize = 100;
    if common::is_child(NAME) {
        gort::spawn(|| ()).join().unwrap();
        let base = rss_kib();
        let (tx, rx) = gort::chan::<()>(0);
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let rx = rx.clone();
                gort::spawn(move || {
                    deep(40); // about 170 KiB of the 256 KiB stack
                    let _ = rx.recv();
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300)); // all of them deep and parked

        let busy = rss_kib();
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
        let mut now = rss_kib();
        for _ in 0..80 {
            if now < base + 8 * 1024 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            now = rss_kib();
        }
        println!("RESULT base {base} KiB, busy {busy} KiB, idle {now} KiB");
        assert!(busy > base + 10 * 1024, "the goroutines did not go deep");
        assert!(now < base + 8 * 1024, "stacks kept their pages");
        return;
    }
    let out = child(NAME, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("RESULT "), "{stdout}\n{stderr}");
}
