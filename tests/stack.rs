//! Goroutine stacks: sizes and their errors, guards on both guard paths (page-table markers
//! and mprotect), overflow reports, trimming on reuse, pooling, and scale: a million
//! goroutines suspended at once at the default `vm.max_map_count`.

mod common;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gort::thread;

/// The tests that hold a million goroutines (gigabytes of stack pages) run one at a time,
/// and not while this file's `GORT_MAXPROCS=1` re-run (which runs them too) is under way.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn maxprocs_1() {
    let _heavy = heavy();
    common::rerun_single_proc();
}

/// A million, or `GORT_SCALE_N`.
fn scale_n() -> usize {
    std::env::var("GORT_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// True if this kernel has `MADV_GUARD_INSTALL` (Linux 6.13+), probed here, apart from gort.
fn kernel_has_guard_markers() -> bool {
    // SAFETY: a scratch mapping of one page, unmapped again; nothing else uses it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let ok = libc::madvise(p, 4096, 102) == 0;
        libc::munmap(p, 4096);
        ok
    }
}

/// The guard paths this kernel can run: `mprotect` always, `madvise` where it has markers.
fn guard_modes() -> Vec<&'static str> {
    let mut v = vec!["mprotect"];
    if kernel_has_guard_markers() {
        v.push("madvise");
    } else {
        eprintln!("this kernel has no MADV_GUARD_INSTALL (Linux 6.13+): madvise path not tested");
    }
    v
}

/// Lines of /proc/self/maps: the kernel mappings of this process.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn recurse(n: usize) -> usize {
    let buf = [n as u8; 512];
    if n == 0 {
        return buf[7] as usize;
    }
    recurse(n - 1) + std::hint::black_box(&buf)[3] as usize
}

/// Recurses `n` frames and calls `at_bottom` with the address of a local at the deepest one.
fn recurse_then(n: usize, at_bottom: &mut dyn FnMut(usize)) -> usize {
    let buf = [n as u8; 512];
    if n == 0 {
        at_bottom(std::hint::black_box(&buf).as_ptr() as usize);
        return buf[7] as usize;
    }
    recurse_then(n - 1, at_bottom) + std::hint::black_box(&buf)[3] as usize
}

/// The child's stderr from the overflow report on: checked to be `fatal error: stack
/// overflow`, then the goroutine line, then an abort.
fn overflow_report(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "not an abort; stderr:\n{stderr}"
    );
    let at = stderr
        .find("fatal error: stack overflow")
        .unwrap_or_else(|| panic!("no report in stderr:\n{stderr}"));
    let report = stderr[at..].to_string();
    assert!(
        report.starts_with("fatal error: stack overflow\n\ngoroutine "),
        "{report}"
    );
    report
}

/// `stack=[0x.., 0x..)` of an overflow report.
fn reported_stack(report: &str) -> (usize, usize) {
    let s = &report[report.find("stack=[").expect("stack range") + 7..];
    let (lo, rest) = s.split_once(", ").unwrap();
    let hi = &rest[..rest.find(')').unwrap()];
    let hex = |v: &str| usize::from_str_radix(v.trim_start_matches("0x"), 16).unwrap();
    (hex(lo), hex(hi))
}

#[gort::test]
fn deep_recursion_within_the_stack_size() {
    // ~600 bytes per frame: 300 frames fit the default 256 KiB; 3,000 need a bigger stack.
    let expected = std::thread::spawn(|| recurse(300)).join().unwrap();
    assert_eq!(gort::spawn(|| recurse(300)).join().unwrap(), expected);
    let h = thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(|| recurse(3_000))
        .unwrap();
    h.join().unwrap();
}

#[test]
fn stack_overflow_is_reported_on_both_guard_paths() {
    if common::is_child("stack_overflow_is_reported_on_both_guard_paths") {
        let h = thread::Builder::new()
            .name("overflower".into())
            .stack_size(64 * 1024)
            .spawn(|| recurse(usize::MAX / 2))
            .unwrap();
        h.join().ok();
        unreachable!("the overflow must abort the process");
    }
    for mode in guard_modes() {
        let out = common::run_child(
            "stack_overflow_is_reported_on_both_guard_paths",
            &[("GORT_STACK_GUARD", mode)],
        );
        let report = overflow_report(&out);
        assert!(report.contains("\"overflower\""), "{mode}: {report}");
        assert!(
            report.contains("64 KiB stack exhausted"),
            "{mode}: {report}"
        );
        let (lo, hi) = reported_stack(&report);
        assert_eq!(hi - lo, 64 * 1024, "{mode}: {report}");
    }
}

#[test]
fn std_thread_overflow_still_gets_std_message() {
    // gort's SIGSEGV handler chains to the one installed before it (std's), so a plain
    // thread overflowing its own stack is still reported by std.
    if common::is_child("std_thread_overflow_still_gets_std_message") {
        gort::spawn(|| ()).join().unwrap(); // start the runtime (installs gort's handler)
        std::thread::Builder::new()
            .name("plain-overflower".into())
            .stack_size(128 * 1024)
            .spawn(|| recurse(usize::MAX / 2))
            .unwrap()
            .join()
            .ok();
        unreachable!("the overflow must abort the process");
    }
    let out = common::run_child("std_thread_overflow_still_gets_std_message", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // std prints `thread 'NAME' (TID) has overflowed its stack` (the id since Rust 1.88).
    assert!(
        stderr.contains("thread 'plain-overflower'") && stderr.contains("has overflowed its stack"),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("fatal error: stack overflow"), "{stderr}");
}

/// True if the page at `addr` is resident (mincore).
fn resident(addr: usize) -> bool {
    let page = addr & !4095;
    let mut v = [0u8; 1];
    // SAFETY: mincore only reads page tables; the address is page aligned.
    let r = unsafe { libc::mincore(page as *mut _, 4096, v.as_mut_ptr()) };
    r == 0 && v[0] & 1 != 0
}

#[test]
fn a_deep_stack_trimmed_on_reuse_keeps_its_guard() {
    // One processor: the second goroutine gets the stack the first gave back (its cache
    // hands out the most recent first). The first goes ~200 KiB deep into its 256 KiB; the
    // deep pages are released before the second starts (a trim), and the second's overflow
    // must still hit the guard below that same stack.
    if common::is_child("a_deep_stack_trimmed_on_reuse_keeps_its_guard") {
        // gort::spawn, not Builder: a Builder spawn may take its stack from the pool at the
        // call (where mappings can run out), and this test needs the processor's cache.
        let deep = gort::spawn(|| {
            // Measure a frame, then go ~200 KiB deep into the 256 KiB stack.
            let (mut a, mut b) = (0, 0);
            recurse_then(1, &mut |x| a = x);
            recurse_then(2, &mut |x| b = x);
            let frames = 200 * 1024 / (a - b);
            let mut bottom = 0;
            recurse_then(frames, &mut |x| bottom = x);
            assert!(resident(bottom), "the deep page was touched");
            bottom
        })
        .join()
        .unwrap();
        println!("DEEP {deep:#x}");
        gort::spawn(move || {
            println!("OVERFLOWER {}", gort::goroutine_id().unwrap());
            if !resident(deep) {
                println!("TRIMMED");
            }
            recurse(usize::MAX / 2)
        })
        .join()
        .ok();
        unreachable!("the overflow must abort the process");
    }
    for mode in guard_modes() {
        let out = common::run_child(
            "a_deep_stack_trimmed_on_reuse_keeps_its_guard",
            &[("GORT_STACK_GUARD", mode), ("GORT_MAXPROCS", "1")],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = overflow_report(&out);
        let id = stdout
            .split("OVERFLOWER ")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_else(|| panic!("{mode}: no OVERFLOWER line:\n{stdout}"));
        assert!(
            report.contains(&format!("goroutine {id} [running]")),
            "{mode}: {report}"
        );
        // The harness prints `test NAME ... ` before the child's own output on that line.
        let deep = stdout
            .split("DEEP 0x")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .map(|v| usize::from_str_radix(v, 16).unwrap())
            .unwrap_or_else(|| panic!("{mode}: no DEEP line:\n{stdout}"));
        let (lo, hi) = reported_stack(&report);
        assert!(
            (lo..hi).contains(&deep),
            "{mode}: the overflower did not reuse the deep stack [{lo:#x}, {hi:#x}) ∌ {deep:#x}"
        );
        assert!(
            deep - lo < 64 * 1024,
            "{mode}: the first goroutine did not go deep"
        );
        assert!(
            stdout.contains("TRIMMED"),
            "{mode}: the deep pages were not released:\n{stdout}"
        );
    }
}

#[gort::test]
fn huge_stack_sizes_are_clear_errors_not_crashes() {
    // Issue 12, item 2: usize::MAX used to wrap to a tiny stack (SIGSEGV) in release builds
    // and to overflow an addition in debug builds.
    for size in [usize::MAX, usize::MAX / 2 + 1, (1 << 40) + 1, 1 << 45] {
        let e = thread::Builder::new()
            .stack_size(size)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{size}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&size.to_string()) && msg.contains("1 TiB"),
            "{msg}"
        );
    }
    thread::scope(|s| {
        match thread::Builder::new()
            .stack_size(usize::MAX)
            .spawn_scoped(s, || ())
        {
            Ok(_) => panic!("a scoped spawn with a usize::MAX stack succeeded"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
        }
    });
    let e = gort::Config::new()
        .stack_size(usize::MAX)
        .apply()
        .unwrap_err();
    assert_eq!(e, gort::ConfigError::StackSizeTooLarge(usize::MAX));
    assert!(e.to_string().contains("1 TiB"), "{e}");
    // The largest size works: 1 TiB of address space, reserved, not committed.
    let h = thread::Builder::new()
        .stack_size(1 << 40)
        .spawn(|| recurse(100))
        .unwrap();
    assert_eq!(h.join().unwrap(), recurse(100));
}

#[test]
fn stacks_beyond_the_address_space_are_errors_not_crashes() {
    // A size the process may not reserve (here under a 16 GiB address-space limit): an
    // io::Error from Builder::spawn, and a panic with the same words from spawn/go! when it
    // is the default size (GORT_STACK_SIZE).
    if common::is_child("stacks_beyond_the_address_space_are_errors_not_crashes") {
        let limit = libc::rlimit {
            rlim_cur: 16 << 30,
            rlim_max: 16 << 30,
        };
        // SAFETY: setting this process's own limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
        if std::env::var_os("GORT_STACK_SIZE").is_some() {
            let p = std::panic::catch_unwind(|| gort::go!(|| 1).join()).unwrap_err();
            let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
            println!("PANIC {msg}");
        } else {
            let e = thread::Builder::new()
                .stack_size(1 << 40)
                .spawn(|| ())
                .unwrap_err();
            println!("ERROR {:?} {e}", e.kind());
            // Smaller stacks still work.
            thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(|| ())
                .unwrap()
                .join()
                .unwrap();
            println!("SMALLER OK");
        }
        return;
    }
    let name = "stacks_beyond_the_address_space_are_errors_not_crashes";
    let out = common::run_child(name, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ERROR OutOfMemory"), "{stdout}");
    assert!(stdout.contains("address space"), "{stdout}");
    assert!(stdout.contains("SMALLER OK"), "{stdout}");
    let out = common::run_child(name, &[("GORT_STACK_SIZE", "1t")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PANIC gort: cannot reserve"), "{stdout}");
    assert!(stdout.contains("address space"), "{stdout}");
}

#[test]
fn gort_stack_size_sets_the_default() {
    if common::is_child("gort_stack_size_sets_the_default") {
        // ~600 KiB of frames: more than the usual 256 KiB.
        let frames = if cfg!(debug_assertions) { 800 } else { 1_000 };
        let v = gort::spawn(move || recurse(frames)).join().unwrap();
        println!("RECURSED {v}");
        gort::go!(|| recurse(usize::MAX / 2)).join().ok();
        unreachable!("the overflow must abort the process");
    }
    let out = common::run_child(
        "gort_stack_size_sets_the_default",
        &[("GORT_STACK_SIZE", "2m")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RECURSED"), "{stdout}");
    let report = overflow_report(&out);
    assert!(report.contains("2048 KiB stack exhausted"), "{report}");

    for (value, expected) in [
        ("lots", "GORT_STACK_SIZE must be a size in bytes"),
        ("-5", "GORT_STACK_SIZE must be a size in bytes"),
        ("18446744073709551615", "cannot be honoured"),
        ("100000000g", "cannot be honoured"),
    ] {
        let out = common::run_child(
            "gort_stack_size_sets_the_default",
            &[("GORT_STACK_SIZE", value)],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{value}: {stderr}");
        assert!(stderr.contains(expected), "{value}: {stderr}");
        assert!(out.status.signal().is_none(), "{value}: a crash: {stderr}");
    }
}

#[test]
fn bad_gort_stack_guard_is_a_clear_error() {
    if common::is_child("bad_gort_stack_guard_is_a_clear_error") {
        gort::spawn(|| ()).join().unwrap();
        return;
    }
    let out = common::run_child(
        "bad_gort_stack_guard_is_a_clear_error",
        &[("GORT_STACK_GUARD", "paper")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("GORT_STACK_GUARD must be auto, madvise or mprotect"),
        "{stderr}"
    );
}

#[gort::test]
fn large_stacks_are_pooled_by_size_class() {
    // std's 2 MiB: 2,000 goroutines suspended at once on 2 MiB stacks, twice. With guard
    // markers, they share a few arena mappings; the second round reuses the first's slots.
    if !kernel_has_guard_markers() || std::env::var("GORT_STACK_GUARD").is_ok() {
        return;
    }
    let n = 2_000;
    let before = mappings();
    for round in 0..2 {
        let release = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (r, s) = (release.clone(), started.clone());
                thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn(move || {
                        s.fetch_add(1, Ordering::SeqCst);
                        while !r.load(Ordering::Acquire) {
                            thread::park();
                        }
                    })
                    .unwrap()
            })
            .collect();
        while started.load(Ordering::SeqCst) < n {
            gort::time::sleep(Duration::from_millis(1));
        }
        let grown = mappings().saturating_sub(before);
        assert!(
            grown < 100,
            "round {round}: {n} suspended 2 MiB stacks added {grown} mappings"
        );
        release.store(true, Ordering::Release);
        for h in hs {
            h.thread().unpark();
            h.join().unwrap();
        }
    }
}

#[test]
fn out_of_mappings_is_a_named_error_on_the_mprotect_path() {
    // Guards by mprotect cost two mappings per stack: past vm.max_map_count, Builder::spawn
    // returns an error naming the limit and how to raise it, and nothing crashes.
    const N: usize = 40_000;
    if common::is_child("out_of_mappings_is_a_named_error_on_the_mprotect_path") {
        let release = Arc::new(AtomicBool::new(false));
        let mut hs = Vec::new();
        let mut error = None;
        for _ in 0..N {
            let r = release.clone();
            match thread::Builder::new().spawn(move || {
                while !r.load(Ordering::Acquire) {
                    thread::park();
                }
            }) {
                Ok(h) => hs.push(h),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let spawned = hs.len();
        release.store(true, Ordering::Release);
        for h in hs {
            h.thread().unpark();
            h.join().unwrap();
        }
        match error {
            None => println!("RESULT all {spawned} ran"),
            Some(e) => println!("RESULT error after {spawned}: {e}"),
        }
        // Spawning works again once stacks were given back.
        gort::spawn(|| ()).join().unwrap();
        return;
    }
    let _heavy = heavy();
    let out = common::run_child(
        "out_of_mappings_is_a_named_error_on_the_mprotect_path",
        &[("GORT_STACK_GUARD", "mprotect")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child crashed: {:?}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("RESULT").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no result:\n{stdout}\n{stderr}"));
    // gort leaves 4,096 mappings to the rest of the program (stack/guard.rs).
    let limit = common::max_map_count().unwrap_or(65_530);
    if limit.saturating_sub(4096) / 2 >= N {
        assert_eq!(line, format!("RESULT all {N} ran"));
    } else {
        assert!(line.starts_with("RESULT error after"), "{line}");
        assert!(line.contains("vm.max_map_count"), "{line}");
        assert!(line.contains("sysctl"), "{line}");
    }
}

#[test]
fn a_million_goroutines_parked_on_one_channel() {
    // Issue 8: every goroutine holds its stack while it waits, a million at once, at the
    // default vm.max_map_count (guard markers need no mapping per stack). Then close
    // releases them all. Where the kernel has no markers, the mprotect path's named error
    // is checked instead (out_of_mappings_is_a_named_error_on_the_mprotect_path).
    if !kernel_has_guard_markers() {
        eprintln!(
            "this kernel has no MADV_GUARD_INSTALL (Linux 6.13+): a million suspended \
             goroutines need vm.max_map_count >= 2,000,000; the named error is checked by \
             out_of_mappings_is_a_named_error_on_the_mprotect_path"
        );
        return;
    }
    if std::env::var("GORT_STACK_GUARD").is_ok_and(|v| v == "mprotect") {
        return;
    }
    let _heavy = heavy();
    let _w = common::watchdog(600, "a_million_goroutines_parked_on_one_channel");
    let n = scale_n();
    let maps_before = mappings();
    let t0 = std::time::Instant::now();
    let (tx, rx) = gort::chan::<()>(0);
    let parked = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (rx, parked) = (rx.clone(), parked.clone());
            gort::spawn(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                // Nothing is ever sent: only close ends this wait.
                rx.recv().unwrap_err();
            })
        })
        .collect();
    // None can finish before the close below: once all have counted themselves, all hold
    // a stack at the same time.
    eprintln!("spawned {:?}", t0.elapsed());
    while parked.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("parked {:?}", t0.elapsed());
    let maps = mappings();
    assert!(
        maps < maps_before + 10_000,
        "{n} suspended goroutines took {} mappings",
        maps - maps_before
    );
    tx.close();
    for h in hs {
        h.join().unwrap();
    }
    eprintln!("joined {:?}", t0.elapsed());
}

fn link(left: gort::chan::Sender<u64>, right: gort::chan::Receiver<u64>) {
    left.send(1 + right.recv().unwrap()).unwrap();
}

#[test]
fn a_daisy_chain_of_a_million() {
    if !kernel_has_guard_markers() || std::env::var("GORT_STACK_GUARD").is_ok() {
        return; // see a_million_goroutines_parked_on_one_channel
    }
    let _heavy = heavy();
    let _w = common::watchdog(600, "a_daisy_chain_of_a_million");
    let n = scale_n();
    let v = gort::spawn(move || {
        let (leftmost_tx, leftmost_rx) = gort::chan::<u64>(0);
        let mut left = leftmost_tx;
        for _ in 0..n {
            let (right_tx, right_rx) = gort::chan::<u64>(0);
            gort::go!(link(left, right_rx));
            left = right_tx;
        }
        gort::go!(move || left.send(1).unwrap());
        leftmost_rx.recv().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(v, n as u64 + 1);
}

#[test]
fn a_million_short_goroutines_need_few_stacks() {
    let _w = common::watchdog(240, "a_million_short_goroutines_need_few_stacks");
    // Stacks are taken when a goroutine first runs and pooled when it ends.
    let n = 1_000_000;
    let done = Arc::new(AtomicUsize::new(0));
    gort::spawn({
        let done = done.clone();
        move || {
            for _ in 0..n / 1000 {
                let hs: Vec<_> = (0..1000)
                    .map(|_| {
                        let d = done.clone();
                        gort::spawn(move || {
                            d.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            }
        }
    })
    .join()
    .unwrap();
    assert_eq!(done.load(Ordering::Relaxed), n);
}
