//! Runtime core: spawning, joining, panics, yielding, parking, sleeping, settings (stacks:
//! tests/stack.rs).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gort::thread;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

#[gort::test]
fn spawn_100k_from_a_goroutine_and_join() {
    let n = 100_000u64;
    let hs: Vec<_> = (0..n).map(|i| gort::spawn(move || i * 3)).collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 3 * n * (n - 1) / 2);
}

#[test]
fn spawn_from_a_plain_thread_and_join() {
    let _w = common::watchdog(120, "spawn_from_a_plain_thread_and_join");
    let hs: Vec<_> = (0..10_000u64).map(|i| gort::spawn(move || i)).collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 10_000 * 9_999 / 2);
}

fn tree(depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let a = gort::spawn(move || tree(depth - 1));
    let b = gort::spawn(move || tree(depth - 1));
    a.join().unwrap() + b.join().unwrap()
}

#[gort::test]
fn nested_spawns() {
    assert_eq!(tree(12), 4096);
}

#[gort::test]
fn join_returns_values_and_panics() {
    let h = gort::spawn(|| String::from("hello"));
    assert_eq!(h.join().unwrap(), "hello");
    let seven = std::hint::black_box(7);
    let h = gort::spawn(move || -> u32 { panic!("expected panic {seven}") });
    let err = h.join().unwrap_err();
    assert_eq!(err.downcast_ref::<String>().unwrap(), "expected panic 7");
    let h = gort::spawn(|| std::panic::panic_any(42u8));
    assert_eq!(*h.join().unwrap_err().downcast_ref::<u8>().unwrap(), 42);
    // The runtime lives on after panics.
    assert_eq!(gort::spawn(|| 1).join().unwrap(), 1);
}

#[gort::test]
fn is_finished_and_detach_on_drop() {
    let gate = Arc::new(AtomicBool::new(false));
    let g2 = gate.clone();
    let h = gort::spawn(move || {
        while !g2.load(Ordering::Acquire) {
            gort::yield_now();
        }
    });
    assert!(!h.is_finished());
    gate.store(true, Ordering::Release);
    while !h.is_finished() {
        gort::yield_now();
    }
    h.join().unwrap();

    // A dropped handle detaches: the goroutine still runs to completion.
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    drop(gort::spawn(move || r2.store(true, Ordering::Release)));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ran.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline);
        gort::time::sleep(Duration::from_millis(1));
    }
}

#[gort::test]
fn goroutine_ids_names_and_count() {
    let me = gort::goroutine_id().expect("a test body is a goroutine");
    let h = gort::spawn(gort::goroutine_id);
    let other = h.join().unwrap().unwrap();
    assert_ne!(me, other);
    assert!(gort::thread::current()
        .name()
        .unwrap()
        .ends_with("goroutine_ids_names_and_count"));
    let h = thread::Builder::new()
        .name("named".into())
        .spawn(|| thread::current().name().map(str::to_owned))
        .unwrap();
    assert_eq!(h.thread().name(), Some("named"));
    assert_eq!(h.join().unwrap().as_deref(), Some("named"));
    // This goroutine is counted.
    assert!(gort::num_goroutines() >= 1);
    assert!(gort::goroutine_id().is_some());
    assert_eq!(std::thread::spawn(gort::goroutine_id).join().unwrap(), None);
}

#[test]
fn num_goroutines_counts_parked_goroutines() {
    // In a child process running only this test, so the count is exact.
    if common::is_child("num_goroutines_counts_parked_goroutines") {
        let release = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..100)
            .map(|_| {
                let r = release.clone();
                gort::spawn(move || {
                    while !r.load(Ordering::Acquire) {
                        thread::park();
                    }
                })
            })
            .collect();
        println!("PARKED {}", gort::num_goroutines());
        release.store(true, Ordering::Release);
        for h in hs {
            h.thread().unpark();
            h.join().unwrap();
        }
        println!("AFTER {}", gort::num_goroutines());
        return;
    }
    let out = common::run_child("num_goroutines_counts_parked_goroutines", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PARKED 100"), "{stdout}");
    assert!(stdout.contains("AFTER 0"), "{stdout}");
}

#[gort::test]
fn yield_is_fair_between_spinning_goroutines() {
    // Goroutines that only yield must all make progress: none may monopolise a processor.
    let n = 8;
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (c, s) = (counts.clone(), stop.clone());
            gort::spawn(move || {
                while !s.load(Ordering::Acquire) {
                    c[i].fetch_add(1, Ordering::Relaxed);
                    gort::yield_now();
                }
            })
        })
        .collect();
    // Wait until every goroutine has run a good number of rounds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts.iter().any(|c| c.load(Ordering::Relaxed) < 1_000) {
        assert!(Instant::now() < deadline, "a yielding goroutine starved");
        gort::yield_now();
    }
    stop.store(true, Ordering::Release);
    for h in hs {
        h.join().unwrap();
    }
}

/// Strict alternation between two parties with park/unpark: a lost wake-up hangs (and the
/// watchdog fails the test).
fn ping_pong(n: usize, turn: &AtomicUsize, me: usize, partner: &Mutex<Option<thread::Thread>>) {
    let partner = loop {
        if let Some(t) = partner.lock().unwrap().clone() {
            break t;
        }
        thread::yield_now();
    };
    for i in 0..n {
        while turn.load(Ordering::Acquire) != 2 * i + me {
            thread::park();
        }
        turn.store(2 * i + me + 1, Ordering::Release);
        partner.unpark();
    }
}

fn park_unpark_pair(a_goroutine: bool, b_goroutine: bool) {
    park_unpark_pair_n(a_goroutine, b_goroutine, common::stress(100_000));
}

fn park_unpark_pair_n(a_goroutine: bool, b_goroutine: bool, n: usize) {
    let _w = common::watchdog(240, "park_unpark_pair");
    let turn = Arc::new(AtomicUsize::new(0));
    let slots: Arc<[Mutex<Option<thread::Thread>>; 2]> =
        Arc::new([Mutex::new(None), Mutex::new(None)]);
    let party = |me: usize, goroutine: bool| {
        let (turn, slots) = (turn.clone(), slots.clone());
        let body = move || {
            *slots[me].lock().unwrap() = Some(thread::current());
            ping_pong(n, &turn, me, &slots[1 - me]);
        };
        if goroutine {
            let h = gort::spawn(body);
            Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
        } else {
            let h = std::thread::spawn(body);
            Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
        }
    };
    let a = party(0, a_goroutine);
    let b = party(1, b_goroutine);
    a();
    b();
    assert_eq!(turn.load(Ordering::Acquire), 2 * n);
}

#[test]
fn park_unpark_goroutine_to_goroutine() {
    park_unpark_pair(true, true);
}

#[test]
fn park_unpark_goroutine_to_thread() {
    park_unpark_pair(true, false);
}

#[test]
fn park_unpark_thread_to_goroutine() {
    park_unpark_pair(false, true);
}

#[test]
fn park_unpark_thread_to_thread() {
    park_unpark_pair(false, false);
}

/// Regression: `unpark` used to return on a plain load that saw a pending token. The
/// goroutine could consume that older token, miss the waker's newer writes (a StoreLoad
/// reordering), and park for good. A plain thread waking a goroutine showed it within a few
/// hundred thousand round trips with GORT_MAXPROCS=1.
#[test]
fn issue_lost_wakeup_when_a_token_is_pending() {
    park_unpark_pair_n(false, true, common::stress(300_000));
}

#[gort::test]
fn unpark_before_park_is_not_lost() {
    let me = thread::current();
    me.unpark();
    thread::park(); // returns at once: the token was there
    let h = gort::spawn(|| {
        thread::park_timeout(Duration::from_millis(1));
        7
    });
    assert_eq!(h.join().unwrap(), 7);
}

#[gort::test]
fn sleeping_goroutines_do_not_hold_workers() {
    // Far more sleepers than workers, all sleeping at once: total time is about one sleep.
    let t = Instant::now();
    let hs: Vec<_> = (0..1_000)
        .map(|_| gort::spawn(|| gort::time::sleep(Duration::from_millis(100))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(100), "woke early: {e:?}");
    assert!(e < Duration::from_secs(20), "sleepers serialised: {e:?}");
}

#[gort::test]
fn sleep_waits_at_least_the_duration() {
    for ms in [0u64, 1, 5, 20] {
        let t = Instant::now();
        gort::time::sleep(Duration::from_millis(ms));
        assert!(t.elapsed() >= Duration::from_millis(ms));
    }
    // A plain thread sleeps normally.
    let t = Instant::now();
    std::thread::spawn(|| gort::time::sleep(Duration::from_millis(10)))
        .join()
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(10));
}

#[test]
fn bad_gort_maxprocs_is_a_clear_error() {
    if common::is_child("bad_gort_maxprocs_is_a_clear_error") {
        gort::spawn(|| ()).join().unwrap();
        return;
    }
    for bad in ["0", "lots"] {
        let out = common::run_child(
            "bad_gort_maxprocs_is_a_clear_error",
            &[("GORT_MAXPROCS", bad)],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("GORT_MAXPROCS must be a positive integer"),
            "GORT_MAXPROCS={bad}: {stderr}"
        );
    }
}

/// CPU time (user + system) used by this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn an_idle_runtime_uses_no_cpu() {
    if common::is_child("an_idle_runtime_uses_no_cpu") {
        // Busy for a moment, then idle for a second: workers park, sysmon backs off.
        let hs: Vec<_> = (0..1000).map(|i| gort::spawn(move || i)).collect();
        for h in hs {
            h.join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        let before = cpu_time();
        std::thread::sleep(Duration::from_secs(1));
        println!("IDLE_CPU_US {}", (cpu_time() - before).as_micros());
        return;
    }
    let out = common::run_child("an_idle_runtime_uses_no_cpu", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let us: u64 = stdout
        .split("IDLE_CPU_US ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no figure: {stdout}"));
    // Parked workers cost nothing; sysmon wakes ~100 times a second for a few µs.
    assert!(us < 100_000, "an idle second cost {us} µs of CPU");
}

#[test]
fn config_after_start_is_an_error() {
    gort::spawn(|| ()).join().unwrap();
    assert_eq!(
        gort::Config::new().max_procs(3).apply(),
        Err(gort::ConfigError::AlreadyStarted)
    );
    assert_eq!(
        gort::Config::new().max_procs(0).apply(),
        Err(gort::ConfigError::ZeroMaxProcs)
    );
    match std::env::var("GORT_MAXPROCS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => assert_eq!(gort::max_procs(), n),
        None => {
            // std rounds a cgroup CPU quota down (at least 1); gort rounds it up with a
            // minimum of 2, as Go 1.25 does. Without a quota both are the CPU count.
            let std_n = std::thread::available_parallelism().map_or(1, |n| n.get());
            let n = gort::max_procs();
            assert!(
                std_n <= n && n <= (std_n + 1).max(2),
                "max_procs {n}, std's available_parallelism {std_n}"
            );
        }
    }
}

#[test]
fn panic_in_a_detached_goroutine_is_reported_and_the_program_goes_on() {
    if common::is_child("panic_in_a_detached_goroutine_is_reported_and_the_program_goes_on") {
        drop(
            thread::Builder::new()
                .name("doomed".into())
                .spawn(|| panic!("detached failure"))
                .unwrap(),
        );
        gort::time::sleep(Duration::from_millis(200));
        println!("still alive");
        return;
    }
    let out = common::run_child(
        "panic_in_a_detached_goroutine_is_reported_and_the_program_goes_on",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("still alive"));
    assert!(stderr.contains("thread 'doomed' panicked at"), "{stderr}");
    assert!(stderr.contains("detached failure"), "{stderr}");
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn ident<T>(x: T) -> T {
    x
}

struct Counter(u64);

impl Counter {
    fn plus(self, k: u64) -> u64 {
        self.0 + k
    }
}

#[gort::test]
fn go_macro_forms() {
    use gort::go;
    // Arguments are evaluated now, in the caller, as in Go.
    let mut x = 1;
    let h = go!(add(x, 10));
    x = 100;
    assert_eq!(h.join().unwrap(), 11);
    assert_eq!(x, 100);
    assert_eq!(go!(ident::<&str>("path")).join().unwrap(), "path");
    assert_eq!(go!(std::cmp::max(3, 9)).join().unwrap(), 9);
    // A method call: receiver and arguments evaluated in the caller.
    let c = Counter(5);
    assert_eq!(go!(c.plus(2)).join().unwrap(), 7);
    let v = String::from("abc");
    assert_eq!(go!(move || v.len()).join().unwrap(), 3);
    let f = |a: u64| a * 2;
    assert_eq!(go!((f)(21)).join().unwrap(), 42);
}

#[gort::test]
#[should_panic(expected = "should panic works")]
fn gort_test_supports_should_panic() {
    panic!("should panic works");
}

#[gort::test]
#[ignore = "checks that #[ignore] passes through; never run"]
fn gort_test_supports_ignore() {
    panic!("ignored tests do not run");
}

#[gort::test]
fn gort_test_may_return_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

/// Regression (issue 12, item 8): a body may start with inner attributes, and they still
/// apply to the function (this file is linted with `-D warnings`: an attribute that got lost
/// would fail the build as surely as a misplaced one).
#[gort::test]
fn issue_12_gort_test_accepts_inner_attributes() {
    #![allow(unused_variables)]
    //! An inner doc comment is an inner attribute too.
    let unused = 1;
}

#[gort::test]
#[should_panic(expected = "inner attributes and should_panic")]
fn issue_12_gort_test_inner_attributes_with_should_panic() {
    #![allow(unreachable_code)]
    panic!("inner attributes and should_panic");
    #[allow(clippy::diverging_sub_expression)]
    let _never: u8 = unreachable!();
}

/// Compiled, never run (running a `#[gort::main]` turns deadlock reports on for the process).
#[allow(dead_code)]
#[gort::main]
fn issue_12_gort_main_accepts_inner_attributes() -> Result<(), String> {
    #![allow(unused_variables, clippy::needless_return)]
    let unused = 1;
    return Ok(());
}
