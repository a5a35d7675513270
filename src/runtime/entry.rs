//! What `#[gort::main]` and `#[gort::test]` expand to: run the body as a goroutine, wait.

use std::process::{ExitCode, Termination};
use std::time::Duration;

use super::spawn::{spawn_with, Options};

/// Runs `f` as the main goroutine and waits for it on the calling (main) thread.
///
/// The body's return value is turned into an exit code inside the goroutine (as std does
/// with `main`'s `Termination`), so `main` may return a non-`Send` error type. When the main
/// goroutine panics, the panic continues on the main thread (exit code 101).
///
/// Deadlock reports are on while the main goroutine runs: they end when it returns or
/// panics (deadlock.rs), so a test that calls a `#[gort::main]` function in-process leaves
/// no detector behind for the tests that run beside it or after it.
#[track_caller]
pub fn run_main<T: Termination + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ExitCode {
    let reports = crate::runtime::deadlock::enable();
    let h = spawn_with(
        move || {
            let _reports = reports;
            f().report()
        },
        Options {
            name: Some("main".into()),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    match h.join() {
        Ok(code) => code,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Runs a test body as a goroutine and waits for it (`#[gort::test]` on a `fn` returning `()`).
///
/// The test fails if the body panics (the payload is re-raised, so `#[should_panic]` works),
/// or if it does not finish within `GORT_TEST_TIMEOUT` seconds (default 300): a watchdog so
/// that a hung scheduler fails the test instead of hanging CI.
#[track_caller]
pub fn run_test(name: &'static str, f: impl FnOnce() + Send + 'static) {
    run_test_inner(name, f)
}

/// Like [`run_test`] for a test returning a `Termination` value (such as `Result`): the value
/// is reported inside the goroutine, so the error type need not be `Send`.
#[track_caller]
pub fn run_test_report<T: Termination + 'static>(
    name: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> ExitCode {
    run_test_inner(name, move || f().report())
}

#[track_caller]
fn run_test_inner<R: Send + 'static>(
    name: &'static str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let timeout = std::env::var("GORT_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300);
    let h = spawn_with(
        f,
        Options {
            name: Some(name.into()),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    match h.join_deadline(super::clock::deadline_after(Duration::from_secs(timeout))) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => {
            eprintln!("{}", crate::runtime::dump::dump_string());
            panic!("gort test watchdog: `{name}` did not finish within {timeout} s (GORT_TEST_TIMEOUT)");
        }
    }
}
