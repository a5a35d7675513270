//! Goroutine dumps: `gort::dump()`, SIGQUIT (when `GORT_SIGQUIT_DUMP=1`), deadlock reports.
//!
//! Every live goroutine is found by walking the goroutine blocks (gref.rs): spawning
//! registers nothing, and a dump takes a reference to each live goroutine while it looks.
//!
//! ```text
//! goroutine 1 [chan receive]:
//!     name "main", waiting 1.502s
//! created at src/main.rs:12
//! ```
//!
//! `dump_json` (json.rs) gives the same records as JSON.
//!
//! # Safety
//! The SIGQUIT handler only stores to an atomic (async-signal-safe); the dump itself is
//! made later by sysmon, on an ordinary thread, and written through its output (output.rs:
//! no stderr lock, no blocking write).

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use super::goroutine::{GRef, Goroutine};
use super::timers;

/// Every goroutine that has not finished, by id.
pub(crate) fn all() -> Vec<GRef> {
    let mut v: Vec<GRef> = Vec::new();
    super::gref::for_each_live(|g| {
        if !g.is_finished() {
            v.push(g);
        }
    });
    v.sort_by_key(|g| g.id);
    v
}

/// What a goroutine is doing, in Go's words.
fn status(g: &Goroutine) -> String {
    if g.is_parked() {
        return g.wait_reason().as_str().to_string();
    }
    if let Some(sched) = super::scheduler::try_get() {
        let all = sched.machines.all.lock().unwrap_or_else(|e| e.into_inner());
        for m in all.iter() {
            // Compared, never dereferenced (see `metrics::classify`).
            if std::ptr::eq(m.current.load(Ordering::Acquire), g) {
                return match super::metrics::doing(m) {
                    super::metrics::Doing::Running => "running",
                    super::metrics::Doing::NotInGo => "syscall",
                }
                .into();
            }
        }
    }
    "runnable".into()
}

/// One goroutine as a dump shows it.
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    /// Go's words: a wait reason, "running", "runnable" or "syscall".
    pub(crate) state: String,
    /// How long it has been parked (None when not parked).
    pub(crate) waited_ns: Option<u64>,
    /// Where it was spawned.
    pub(crate) spawned_at: &'static std::panic::Location<'static>,
}

/// Every live goroutine, by id.
pub(crate) fn records() -> Vec<Record> {
    let now = timers::now_nanos();
    all()
        .into_iter()
        .map(|g| {
            let state = status(&g);
            let waited_ns = g
                .is_parked()
                .then(|| now.saturating_sub(g.wait_since.load(Ordering::Relaxed)));
            Record {
                id: g.id,
                name: g.name.as_deref().map(|n| n.as_str().into()),
                state,
                waited_ns,
                spawned_at: g.spawned_at,
            }
        })
        .collect()
}

/// Formats every goroutine, Go style.
pub(crate) fn dump_string() -> String {
    let mut out = String::new();
    for r in records() {
        let st = &r.state;
        let minutes = r.waited_ns.unwrap_or(0) / 60_000_000_000;
        if minutes >= 1 {
            let _ = writeln!(out, "goroutine {} [{st}, {minutes} minutes]:", r.id);
        } else {
            let _ = writeln!(out, "goroutine {} [{st}]:", r.id);
        }
        let name = match &r.name {
            Some(n) => format!("name {n:?}"),
            None => "unnamed".into(),
        };
        match r.waited_ns {
            Some(w) => {
                let _ = writeln!(out, "\t{name}, waiting {:.3}s", w as f64 / 1e9);
            }
            None => {
                let _ = writeln!(out, "\t{name}");
            }
        }
        let site = r.spawned_at;
        let _ = writeln!(out, "created at {}:{}\n", site.file(), site.line());
    }
    out
}

/// Prints every goroutine to stderr with its id, name, state or wait reason, and how long
/// it has waited (Go's `SIGQUIT` traceback, without stacks).
pub fn dump() {
    eprint!("{}", dump_string());
}

static SIGQUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigquit(_: libc::c_int) {
    SIGQUIT.store(true, Ordering::Relaxed);
}

/// Installs the SIGQUIT handler if `GORT_SIGQUIT_DUMP=1`.
pub(crate) fn install_sigquit() {
    if std::env::var("GORT_SIGQUIT_DUMP").is_ok_and(|v| v == "1") {
        // SAFETY: installing a handler that only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(libc::SIGQUIT, on_sigquit as *const () as libc::sighandler_t);
        }
    }
}

/// Called by sysmon: queues a dump on its output if SIGQUIT arrived.
pub(crate) fn serve_sigquit(out: &mut super::output::Output) {
    if SIGQUIT.swap(false, Ordering::Relaxed) {
        out.text("SIGQUIT: goroutine dump\n\n");
        out.text(&dump_string());
    }
}
