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
//!
//! # The window
//! std has no atomic "replace the hook with a function of it" (`update_hook` is unstable),
//! so installing is `take_hook`, `take_hook`, `set_hook`. Between the first and the last,
//! std's default hook is installed: a panic on another thread at that moment is reported by
//! std's default hook (a program's own hook does not see it), and a `set_hook` by another
//! thread at that moment is overwritten (its hook is dropped). The window is kept as short
//! as it can be: everything is allocated and prepared before it, and inside it there are
//! only the three calls (each takes std's hook lock once) and a pointer comparison — no
//! allocation, no formatting. It happens once, when the runtime starts: under
//! `#[gort::main]` before any of the program's code runs, so only a program that uses gort
//! before `main`'s runtime exists (a plain `fn main`) while other threads of its own panic
//! or install hooks can meet it; such a program should install its hook before its first
//! use of gort.

use std::backtrace::Backtrace;
use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::goroutine;

/// A panic hook, as `take_hook` returns it.
type Hook = dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static;

/// The hook ours chains to, and whether it is the program's own (not std's default).
type Next = OnceLock<(Box<Hook>, bool)>;

pub(crate) fn install_hook() {
    if std::thread::panicking() {
        // `take_hook` panics on a panicking thread; the runtime then keeps std's reports.
        return;
    }
    // Prepared before the window (module comment): our hook, and the slot it reads.
    let next: Arc<Next> = Arc::new(OnceLock::new());
    let ours: Box<Hook> = {
        let next = next.clone();
        Box::new(move |info| {
            // Always filled: before the hook is installed.
            let Some((hook, programs_own)) = next.get() else {
                return;
            };
            if !programs_own {
                let name = goroutine::with_current(|g| match &g.name {
                    Some(n) => n.to_string(),
                    None => format!("goroutine {}", g.id),
                });
                if let Some(name) = name {
                    return report(&name, info);
                }
            }
            hook(info)
        })
    };
    // The window: three calls and a comparison.
    let prev = std::panic::take_hook();
    let default = std::panic::take_hook();
    let programs_own = !std::ptr::eq::<Hook>(&*prev, &*default);
    let (kept, unused) = if programs_own {
        (prev, default)
    } else {
        (default, prev)
    };
    let _ = next.set((kept, programs_own));
    std::panic::set_hook(ours);
    // After the window: drop what we do not chain to (std's default, a zero-sized box).
    drop(unused);
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
    // The frames are walked here, on the goroutine's stack (they are its frames); resolving
    // them to names (debug info parsing, tens of KiB of stack) and writing happen on the
    // worker's own stack, so that a goroutine on the smallest stack can report its panic.
    let backtrace = (!bt.is_empty() && bt != "0").then(Backtrace::force_capture);
    if backtrace.is_none() && FIRST.swap(false, Ordering::Relaxed) {
        out.push_str(
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
    }
    goroutine::on_worker_stack(move || {
        if let Some(bt) = backtrace {
            out.push_str(&format!("stack backtrace:\n{bt}\n"));
        }
        let _ = std::io::stderr().lock().write_all(&out.as_bytes()[1..]);
    });
}

/// Runs `f`; if a panic unwinds out of it, prints `fatal runtime error: {what}, aborting`
/// (std's words for the same failures on threads) and aborts the process. For runtime code
/// that runs user destructors where no unwinding may go on: the top of a goroutine's
/// stack (nothing above it can catch, and unwinding out of a coroutine's `resume` would
/// kill the worker thread), and a worker's scheduler.
pub(crate) fn abort_on_unwind<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    /// Aborts when dropped: only while unwinding (the normal path forgets it).
    struct Bomb(&'static str);
    impl Drop for Bomb {
        fn drop(&mut self) {
            rtabort(self.0);
        }
    }
    let bomb = Bomb(what);
    let r = f();
    std::mem::forget(bomb);
    r
}

/// Prints `fatal runtime error: {what}, aborting` as std's `rtabort!` does, and aborts.
/// Writes with one `write(2)`, without std's stderr lock (whoever holds it may be the
/// goroutine that cannot go on).
pub(crate) fn rtabort(what: &str) -> ! {
    let msg = format!("fatal runtime error: {what}, aborting\n");
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    std::process::abort()
}
