//! Deadlock detection: programs run as child processes, stderr and exit status checked,
//! as Go's runtime tests do.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// Path of an example binary, (re)built once per test process so it is never stale (a
/// `cargo test --test deadlock` run does not build examples; `cargo test --workspace` does,
/// and then this is a no-op).
fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        if let Ok(cargo) = std::env::var("CARGO") {
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "--example", name]);
            if !cfg!(debug_assertions) {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success(), "building example {name}");
        }
        built.push(name.to_string());
    }
    assert!(
        path.exists(),
        "example {name} is not built: run `cargo build --examples`"
    );
    path
}

fn run(scenario: &str) -> Output {
    let _w = common::watchdog(120, "deadlock scenario");
    Command::new(example("deadlocks"))
        .arg(scenario)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn assert_deadlock(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert_eq!(
        stderr.lines().next(),
        Some("fatal error: all goroutines are asleep - deadlock!"),
        "stderr:\n{stderr}"
    );
    stderr
}

fn assert_no_deadlock(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr:\n{stderr}");
    assert!(!stderr.contains("deadlock"), "stderr:\n{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(expect));
}

#[test]
fn seed_example_12_1_is_reported_as_go_does() {
    let stderr = assert_deadlock(&run("seed"));
    // Go: main is goroutine 1, blocked sending; the other goroutine blocked sending too.
    assert!(stderr.contains("goroutine 1 [chan send]:"), "{stderr}");
    assert_eq!(stderr.matches("[chan send]:").count(), 2, "{stderr}");
}

#[test]
fn empty_select_is_reported() {
    let stderr = assert_deadlock(&run("select"));
    assert!(
        stderr.contains("goroutine 1 [select (no cases)]:"),
        "{stderr}"
    );
}

#[test]
fn waitgroup_never_done_is_reported() {
    let stderr = assert_deadlock(&run("waitgroup"));
    assert!(
        stderr.contains("goroutine 1 [sync.WaitGroup.Wait]:"),
        "{stderr}"
    );
}

#[test]
fn mutex_locked_twice_is_reported() {
    let stderr = assert_deadlock(&run("mutex"));
    assert!(
        stderr.contains("goroutine 1 [sync.Mutex.Lock]:"),
        "{stderr}"
    );
}

#[test]
fn main_parked_forever_is_reported_with_a_dump() {
    let out = run("park");
    let stderr = assert_deadlock(&out);
    assert!(stderr.contains("goroutine 1 [park]:"), "{stderr}");
    assert!(stderr.contains("name \"main\""), "{stderr}");
    assert!(stderr.contains("name \"helper\""), "{stderr}");
}

#[test]
fn a_pending_timer_means_no_report() {
    assert_no_deadlock(&run("timer"), "woken by a timer");
}

#[test]
fn a_goroutine_in_a_syscall_means_no_report() {
    assert_no_deadlock(&run("syscall"), "woken after a syscall");
}

/// Regression (found in review): a plain thread in a *timed* gort wait was counted as parked
/// for good, and the program was reported as deadlocked while it still had work to do.
#[test]
fn issue_plain_thread_in_a_timed_wait_means_no_report() {
    assert_no_deadlock(
        &run("timed-thread"),
        "got 7 from a thread that waited with timeouts",
    );
}

#[test]
fn a_std_thread_that_may_act_means_no_report() {
    assert_no_deadlock(&run("std-thread"), "woken by a std thread");
}

/// Regression (issue 12, item 5): the worker of a goroutine locked to its thread counted as
/// running while it waited for that goroutine, so the program was never reported.
#[test]
fn issue_12_a_goroutine_locked_to_its_thread_is_reported() {
    let stderr = assert_deadlock(&run("locked"));
    assert!(stderr.contains("goroutine 1 [chan receive]:"), "{stderr}");
}

/// The report is written without std's stderr lock, which a goroutine stuck for ever may
/// hold (regression, issue 10 review: sysmon waited for that lock, and the program hung).
#[test]
fn a_deadlock_is_reported_while_a_goroutine_holds_the_stderr_lock() {
    let stderr = assert_deadlock(&run("stderr-locked"));
    assert!(stderr.contains("goroutine 1 [join]:"), "{stderr}");
    assert!(stderr.contains("[chan receive]:"), "{stderr}");
}

/// A goroutine stuck in a destructor while unwinding keeps its thread (issue 12, item 1);
/// that is still a deadlock.
#[test]
fn issue_12_a_goroutine_stuck_while_unwinding_is_reported() {
    let stderr = assert_deadlock(&run("unwinding"));
    assert!(stderr.contains("goroutine 1 [join]:"), "{stderr}");
    assert!(stderr.contains("[chan receive]:"), "{stderr}");
}

#[test]
fn a_locked_goroutine_that_talks_is_never_reported() {
    assert_no_deadlock(
        &run("locked-ping"),
        "ping-pong with a locked goroutine done",
    );
}

/// A `#[gort::main]` program called by a test (as the child of a test process, the usual way
/// to test that a program deadlocks).
#[gort::main]
fn deadlocking_program() {
    let (_tx, rx) = gort::chan::<u8>(0);
    let _ = rx.recv();
}

/// Regression (issue 12, item 7): the test harness's own threads (which predate the runtime)
/// were counted as the program's, so a `#[gort::main]` function run by a test never got its
/// report.
#[test]
fn issue_12_gort_main_run_by_a_test_child_is_reported() {
    const NAME: &str = "issue_12_gort_main_run_by_a_test_child_is_reported";
    if common::is_child(NAME) {
        let _ = deadlocking_program();
        unreachable!("the program deadlocks");
    }
    for threads in ["1", "2"] {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .env(common::CHILD, NAME)
            .env("RUST_BACKTRACE", "0")
            .args([NAME, "--exact", "--nocapture", "--test-threads", threads])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > std::time::Duration::from_secs(20) {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "no deadlock report within 20 s (--test-threads {threads}):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let stderr = assert_deadlock(&child.wait_with_output().unwrap());
        assert!(stderr.contains("goroutine 1 [chan receive]:"), "{stderr}");
    }
}
