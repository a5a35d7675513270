//! Shared test plumbing.
//!
//! - [`rerun_single_proc`]: every test file has a `maxprocs_1` test that re-runs the same test
//!   binary with `GORT_MAXPROCS=1`, so each behaviour is checked with one processor and with
//!   the default (the runtime is process-wide, so one process cannot test both).
//! - [`run_child`]: fatal paths (stack overflow, deadlock) run in a child process, the
//!   way Go's runtime tests do, and the test matches the child's stderr and exit status.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Env var marking a child process started by these helpers.
pub const CHILD: &str = "GORT_TEST_CHILD";

/// Re-runs this test binary (all tests but `maxprocs_1`) with `GORT_MAXPROCS=1`; fails if
/// any of them fails. Does nothing inside such a child, or when `GORT_MAXPROCS` is already set.
pub fn rerun_single_proc() {
    if std::env::var_os(CHILD).is_some() || std::env::var_os("GORT_MAXPROCS").is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .env("GORT_MAXPROCS", "1")
        .env(CHILD, "maxprocs_1")
        .env("RUST_BACKTRACE", "0")
        .args(["--skip", "maxprocs_1", "--test-threads", "2"])
        .output()
        .expect("re-run the test binary");
    if !out.status.success() {
        panic!(
            "tests failed with GORT_MAXPROCS=1:\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// True inside a child started by [`run_child`] for `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == name)
}

/// Runs the single test `test_name` of this binary in a child process with
/// `GORT_TEST_CHILD=<test_name>` and extra env vars; returns its output. The test checks
/// [`is_child`] to know it should do the fatal thing.
pub fn run_child(test_name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.env(CHILD, test_name).env("RUST_BACKTRACE", "0").args([
        test_name,
        "--exact",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run child test process")
}

/// Scales a stress count by `GORT_STRESS` (a multiplier, default 1).
pub fn stress(n: usize) -> usize {
    let k = std::env::var("GORT_STRESS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    n * k.max(1)
}

/// Aborts the process (with a message) if the returned guard is not dropped within `secs`:
/// a hung scheduler then fails the test run instead of hanging CI. For tests that run on
/// plain threads (`#[gort::test]` has its own watchdog).
pub fn watchdog(secs: u64, what: &'static str) -> Watchdog {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !d.load(Ordering::Acquire) {
            if start.elapsed().as_secs() >= secs {
                eprintln!("watchdog: `{what}` did not finish within {secs} s");
                std::process::abort();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    Watchdog(done)
}

/// Disarms the watchdog when dropped.
pub struct Watchdog(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// The kernel's `vm.max_map_count`, if readable.
pub fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `target/<profile>` of this test binary (`target/<profile>/deps/<test>-<hash>`).
pub fn profile_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Runs `cargo build --quiet <selection>` (e.g. `["--examples"]`) with this test binary's
/// cargo, profile and target directory; true if it succeeded.
pub fn cargo_build(selection: &[&str]) -> bool {
    let dir = profile_dir();
    let profile = dir.file_name().unwrap().to_string_lossy().into_owned();
    let target = dir.parent().expect("target dir").to_path_buf();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet"])
        .args(selection)
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    cmd.status().is_ok_and(|st| st.success())
}

/// The binary of example `name`, built first (`cargo build --example name`) so that it is
/// current even when only this test target was built. If cargo cannot be run but the binary
/// exists, it is used as is.
pub fn example(name: &str) -> std::path::PathBuf {
    let built = cargo_build(&["--example", name]);
    let path = profile_dir().join("examples").join(name);
    if !built {
        assert!(path.exists(), "cargo build --example {name} failed");
        eprintln!("could not rebuild example {name}; using the binary present");
    }
    path
}

/// Defines a test whose body runs twice: `on_thread` calls it on the test's own plain thread
/// (where every wait parks the thread) and `in_goroutine` runs it as a goroutine with
/// `#[gort::test]` (where every wait parks the goroutine). Each becomes a module named after
/// the test, holding the two `#[test]`s.
#[macro_export]
macro_rules! both {
    ($(#[doc = $doc:literal])* fn $name:ident() $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body() $body

            #[test]
            fn on_thread() {
                let _w = $crate::common::watchdog(120, stringify!($name));
                body()
            }

            #[gort::test]
            fn in_goroutine() {
                body()
            }
        }
        $crate::both! { $($rest)* }
    };
    () => {};
}

/// The message of a panic payload (`&str` or `String`).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".to_string()
    }
}

/// Runs `f`, expecting it to panic with a message containing `expected`.
#[track_caller]
pub fn assert_panics<R>(expected: &str, f: impl FnOnce() -> R) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    match r {
        Ok(_) => panic!("expected a panic containing {expected:?}"),
        Err(p) => {
            let msg = panic_message(&*p);
            assert!(msg.contains(expected), "panic {msg:?} lacks {expected:?}");
        }
    }
}

/// Runs `cmd` (stdout and stderr captured) for at most `secs` seconds; a child still running
/// then is killed, and its output so far returned (its status says it was killed), so that a
/// child that hangs fails its test with what it printed instead of hanging the run.
pub fn output_within(cmd: &mut Command, secs: u64) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start child process");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            break child.wait().expect("wait for killed child");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Tests that arm many timers, or count armed timers, run one at a time within a test binary
/// (the timer heaps are process-wide and tests run in parallel). A capacity-1 channel is the
/// lock (Go's semaphore idiom): it may be held across blocking points, unlike std's
/// MutexGuard.
pub fn heap_test() -> HeapGuard {
    static SEM: std::sync::OnceLock<(gort::chan::Sender<()>, gort::chan::Receiver<()>)> =
        std::sync::OnceLock::new();
    let sem = SEM.get_or_init(|| gort::chan(1));
    sem.0.send(()).unwrap();
    HeapGuard(&sem.1)
}

/// Held while a [`heap_test`] runs.
pub struct HeapGuard(&'static gort::chan::Receiver<()>);

impl Drop for HeapGuard {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}
