//! Runs every `examples/ch12_*` program (Learning Go ch. 12 patterns) and checks what it
//! prints.
//!
//! `cargo test` builds the examples before it runs the tests; they sit next to this test
//! binary (`target/<profile>/examples/<name>`). To be sure they are current (say, after
//! `cargo test --test examples_ch12` alone, which builds only this target), the first test
//! to need them runs `cargo build --examples` with the same cargo, profile and target
//! directory. `maxprocs_1` re-runs this binary with
//! `GORT_MAXPROCS=1`, which the example processes inherit.

mod common;

use common::profile_dir;

use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

/// Makes sure the example binaries are built and current: runs `cargo build --examples` once
/// per test process with this binary's cargo, profile and target directory (a no-op taking
/// about a second when `cargo test` has just built them; it matters when only this test
/// target was built, which would otherwise run stale binaries). If cargo cannot be run but
/// the binaries exist, they are used as they are.
fn build_examples_once() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let dir = profile_dir();
        let built = common::cargo_build(&["--examples"]);
        let present = dir.join("examples").join("ch12_deadlock").exists();
        match built {
            true => {}
            false if present => {
                eprintln!(
                    "examples_ch12: could not rebuild the examples; using the binaries present"
                )
            }
            false => panic!("cargo build --examples failed"),
        }
    });
}

/// Runs example `name` with `args`; returns its output. Kills it after 60 s.
fn run_output(name: &str, args: &[&str]) -> std::process::Output {
    build_examples_once();
    let path = profile_dir().join("examples").join(name);
    let mut child = Command::new(&path)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait for example").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{name} did not finish within 60 s; stdout:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("example output")
}

/// Runs example `name` with `args`; returns stdout. Fails on a non-zero exit.
fn run(name: &str, args: &[&str]) -> String {
    let out = run_output(name, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn process_concurrently() {
    let out = run("ch12_process_concurrently", &[]);
    assert_eq!(
        lines(&out),
        [
            "results: [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]",
            "goroutines left: 1"
        ]
    );
}

#[test]
fn count_to_cancels_without_leak() {
    let out = run("ch12_count_to", &[]);
    assert_eq!(
        lines(&out),
        [
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "goroutines: before 1, during 2, after cancel 1"
        ]
    );
}

#[test]
fn buffered_results() {
    let out = run("ch12_buffered_results", &[]);
    assert_eq!(out, "results: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]\n");
}

#[test]
fn backpressure_rejects_over_capacity() {
    let out = run("ch12_backpressure", &[]);
    assert_eq!(
        lines(&out),
        [
            "wave 1 (8 requests held in flight): 3 accepted, 5 rejected: no more capacity",
            "wave 2 (3 requests): 3 accepted, 0 rejected"
        ]
    );
}

#[test]
fn close_case_turns_cases_off() {
    let out = run("ch12_close_case", &[]);
    let l = lines(&out);
    assert_eq!(l.len(), 3, "{out}");
    let mut closed = l[..2].to_vec();
    closed.sort();
    assert_eq!(
        closed,
        [
            "in1 closed: turned its case off",
            "in2 closed: turned its case off"
        ]
    );
    assert_eq!(l[2], "received: a1 a2 a3 b1 b2 b3 b4 b5");
}

#[test]
fn time_out() {
    let out = run("ch12_time_out", &[]);
    assert_eq!(
        lines(&out),
        [
            "fast worker: Ok(42)",
            "slow worker: Err(\"work timed out\")"
        ]
    );
}

#[test]
fn waitgroup() {
    let out = run("ch12_waitgroup", &[]);
    let l = lines(&out);
    assert_eq!(l.len(), 7, "{out}");
    let mut first = l[..3].to_vec();
    first.sort();
    assert_eq!(first, ["did thing 1", "did thing 2", "did thing 3"]);
    assert_eq!(l[3], "all done");
    let mut second = l[4..6].to_vec();
    second.sort();
    assert_eq!(second, ["did thing 4", "did thing 5"]);
    assert_eq!(l[6], "all done again");
}

#[test]
fn waitgroup_close_once() {
    let out = run("ch12_waitgroup_close_once", &[]);
    let want: Vec<String> = (1..=20).map(|i| (i * 2).to_string()).collect();
    assert_eq!(out, format!("gathered 20 results: [{}]\n", want.join(", ")));
}

#[test]
fn sync_once_and_once_value() {
    let out = run("ch12_sync_once", &[]);
    assert_eq!(
        lines(&out),
        [
            "Once: 10 parses, init_parser ran 1 time(s)",
            "once_value: 10 parses, init_parser ran 1 time(s)"
        ]
    );
}

#[test]
fn pipeline_in_time_and_timing_out() {
    let out = run("ch12_pipeline", &[]);
    assert_eq!(
        lines(&out),
        [
            "fast services: C(A(x), B(y))",
            "slow service B: error: context deadline exceeded"
        ]
    );
}

#[test]
fn scoreboard_channel_and_rwlock_agree() {
    let out = run("ch12_scoreboard", &[]);
    assert_eq!(
        lines(&out),
        [
            "ana     channel: Some(100)  rwlock: Some(100)  same: true",
            "bo      channel: Some(200)  rwlock: Some(200)  same: true",
            "cy      channel: Some(300)  rwlock: Some(300)  same: true",
            "di      channel: Some(400)  rwlock: Some(400)  same: true",
            "nobody  channel: None  rwlock: None  same: true"
        ]
    );
}

/// Example 12-2: the select fix prints exactly `main: 2 1`.
#[test]
fn deadlock_fixed_by_select() {
    assert_eq!(run("ch12_deadlock", &[]), "main: 2 1\n");
}

/// Example 12-1: both sides send first; the runtime reports the deadlock as Go does.
#[test]
fn deadlock_reported() {
    let out = run_output("ch12_deadlock", &["deadlock"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().next(),
        Some("fatal error: all goroutines are asleep - deadlock!"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "nothing printed");
}

/// Exercise 1: 20 values printed, each writer's in order; nothing left running.
#[test]
fn exercise1() {
    let out = run("ch12_exercise1", &[]);
    let l = lines(&out);
    assert_eq!(l.len(), 22, "{out}");
    let got: Vec<u32> = l[..20]
        .iter()
        .map(|s| s.strip_prefix("got ").unwrap().parse().unwrap())
        .collect();
    for w in [0, 100] {
        let mine: Vec<u32> = got.iter().copied().filter(|v| v / 100 == w / 100).collect();
        assert_eq!(
            mine,
            (w..w + 10).collect::<Vec<_>>(),
            "writer {w} out of order"
        );
    }
    assert!(l[20].starts_with("printed 20 values: "), "{out}");
    assert_eq!(l[21], "goroutines after: 1");
}

/// Exercise 2: for-select over two channels, each turned off when closed.
#[test]
fn exercise2() {
    let out = run("ch12_exercise2", &[]);
    let l = lines(&out);
    assert_eq!(l.len(), 21, "{out}");
    for g in ["goroutine 1: ", "goroutine 2: "] {
        let vals: Vec<u32> = l[..20]
            .iter()
            .filter_map(|s| s.strip_prefix(g))
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(vals, (0..10).collect::<Vec<_>>(), "{g}");
    }
    assert_eq!(l[20], "read 10 from goroutine 1, 10 from goroutine 2");
}

/// Exercise 3: once_value caches the square-root map; 100 lookups, one build.
#[test]
fn exercise3() {
    let out = run("ch12_exercise3", &[]);
    let l = lines(&out);
    assert_eq!(l.len(), 101, "{out}");
    assert_eq!(l[0], "sqrt(0) = 0.0000");
    assert_eq!(l[10], "sqrt(10000) = 100.0000");
    assert_eq!(l[99], "sqrt(99000) = 314.6427");
    assert_eq!(l[100], "map built 1 time(s)");
}

/// printNumbers / printLetters: both sequences complete and in order, then Done.
#[test]
fn print_numbers_letters() {
    let out = run("ch12_print_numbers_letters", &[]);
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{out}");
    let tokens: Vec<&str> = l[0].split_whitespace().collect();
    let numbers: Vec<&str> = tokens
        .iter()
        .copied()
        .filter(|t| t.parse::<u32>().is_ok())
        .collect();
    let letters: Vec<&str> = tokens
        .iter()
        .copied()
        .filter(|t| t.parse::<u32>().is_err())
        .collect();
    assert_eq!(numbers, ["1", "2", "3", "4", "5"]);
    assert_eq!(letters, ["a", "b", "c", "d", "e"]);
    assert_eq!(l[1], "Done");
}
