//! Reporting goroutine panics the way std reports thread panics.
//!
//! std's default hook names the OS thread ("gort-worker-1"), which says nothing useful about
//! a goroutine. When the runtime starts it wraps the installed hook: a panic inside a
//! goroutine is printed as std would print it for a thread named after the goroutine
//! (its name, or `goroutine N`); any other panic goes to the previous hook unchanged.
//! A hook the program installs later replaces ours, as with std.

use std::backtrace::Backtrace;
use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};

use super::goroutine;

pub(crate) fn install_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = goroutine::with_current(|g| match &g.name {
            Some(n) => n.to_string(),
            None => format!("goroutine {}", g.id),
        });
        match name {
            Some(name) => report(&name, info),
            None => prev(info),
        }
    }));
}

fn report(name: &str, info: &PanicHookInfo<'_>) {
    static FIRST: AtomicBool = AtomicBool::new(true);
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let mut out = format!("\nthread '{name}' panicked at {location}:\n{msg}\n");
    let bt = std::env::var("RUST_BACKTRACE").unwrap_or_default();
    if !bt.is_empty() && bt != "0" {
        out.push_str(&format!(
            "stack backtrace:\n{}\n",
            Backtrace::force_capture()
        ));
    } else if FIRST.swap(false, Ordering::Relaxed) {
        out.push_str(
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
    }
    let _ = std::io::stderr().lock().write_all(&out.as_bytes()[1..]);
}
