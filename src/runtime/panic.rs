//! Reporting goroutine panics the way std reports thread panics.
//!
//! std's default hook names the OS thread ("gort-worker-1"), which says nothing useful about
//! a goroutine. When the runtime starts it wraps the installed hook:
//!
//! - if that is std's default hook, a panic inside a goroutine is printed as std would print
//!   it for a thread named after the goroutine (its name, or `goroutine N`), and any other
//!   panic goes to the default hook unchanged;
//! - if the program installed its own hook before the runtime started, that hook is chained
//!   to, not replaced: it is called for every panic, goroutine panics included (it is the
//!   program's choice what to print — or to print nothing).
//!
//! A hook the program installs later replaces ours, as with std.
//!
//! Telling std's default hook from a program's: `take_hook` returns the installed hook and
//! leaves std's default in its place, so a second `take_hook` returns the default for sure.
//! Both boxes of the default hold the same zero-sized function and vtable, made by the same
//! code in std; a program's hook has another vtable (or a non-zero-sized closure at another
//! address). Comparing the two wide pointers therefore tells them apart.

use std::backtrace::Backtrace;
use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};

use super::goroutine;

/// A panic hook, as `take_hook` returns it.
type Hook = dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static;

pub(crate) fn install_hook() {
    if std::thread::panicking() {
        // `take_hook` panics on a panicking thread; the runtime then keeps std's reports.
        return;
    }
    let prev = std::panic::take_hook();
    let default = std::panic::take_hook();
    let programs_own = !std::ptr::eq::<Hook>(&*prev, &*default);
    let next = if programs_own { prev } else { default };
    std::panic::set_hook(Box::new(move |info| {
        if !programs_own {
            let name = goroutine::with_current(|g| match &g.name {
                Some(n) => n.to_string(),
                None => format!("goroutine {}", g.id),
            });
            if let Some(name) = name {
                return report(&name, info);
            }
        }
        next(info)
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
