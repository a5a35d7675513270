//! Deadlock detection: programs run as child processes, stderr and exit status checked,
//! as Go's runtime tests do.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// Path of an example binary, building it if this test run did not (`cargo test --test`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--example", name]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building example {name}");
    }
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

#[test]
fn a_std_thread_that_may_act_means_no_report() {
    assert_no_deadlock(&run("std-thread"), "woken by a std thread");
}
