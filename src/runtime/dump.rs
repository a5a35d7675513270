//! Goroutine dumps: `gort::dump()`, SIGQUIT (when `GORT_SIGQUIT_DUMP=1`), deadlock reports.
//!
//! A registry of weak references to every goroutine, in 16 mutex-guarded shards (chosen by
//! id batch, so the Ms spawning at once mostly use different shards). A goroutine takes a
//! slot when spawned and gives it back when its last reference is dropped
//! (`Goroutine::drop`): no scan ever touches the memory of other goroutines, and the cost per
//! goroutine is one push and one slot release under an uncontended lock.
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
//! no stderr lock, no blocking write). A slot holds a weak reference made by
//! `Weak::into_raw` and is turned back into a `Weak` only under its shard's lock: by `all`
//! (which upgrades it without dropping it) or by `unregister` (which drops it), exactly once.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::goroutine::{GRef, Goroutine};
use crate::time::timers;

const SHARDS: usize = 16;

struct Shard {
    /// `Weak::into_raw` of registered goroutines; null where free.
    slots: Vec<*const Goroutine>,
    /// Indices of free slots.
    free: Vec<u32>,
}

// SAFETY: the raw pointers are weak references owned by the shard, used only under its lock
// (module safety notes).
unsafe impl Send for Shard {}

static REGISTRY: [Mutex<Shard>; SHARDS] = [const {
    Mutex::new(Shard {
        slots: Vec::new(),
        free: Vec::new(),
    })
}; SHARDS];

fn shard(id: u64) -> std::sync::MutexGuard<'static, Shard> {
    REGISTRY[(id / 64) as usize % SHARDS]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Records a new goroutine (before anything else can see it).
pub(crate) fn register(g: &GRef) {
    let weak = Weak::into_raw(Arc::downgrade(g));
    let mut s = shard(g.id);
    let slot = match s.free.pop() {
        Some(i) => {
            s.slots[i as usize] = weak;
            i
        }
        None => {
            s.slots.push(weak);
            (s.slots.len() - 1) as u32
        }
    };
    drop(s);
    g.registry_slot.store(slot, Ordering::Relaxed);
}

/// Forgets a goroutine whose last reference is being dropped (from `Goroutine::drop`).
pub(crate) fn unregister(g: &Goroutine) {
    let slot = g.registry_slot.load(Ordering::Relaxed);
    if slot == u32::MAX {
        return; // never registered
    }
    let weak = {
        let mut s = shard(g.id);
        let p = std::mem::replace(&mut s.slots[slot as usize], std::ptr::null());
        s.free.push(slot);
        p
    };
    // SAFETY: the slot held this weak reference (made by `register`), now taken out under the
    // lock, so it is dropped exactly once. Strong references are gone and the allocation
    // lives on until Arc's own weak reference goes, after this drop returns.
    drop(unsafe { Weak::from_raw(weak) });
}

/// Every goroutine that has not finished, by id.
pub(crate) fn all() -> Vec<GRef> {
    let mut v: Vec<GRef> = Vec::new();
    for s in &REGISTRY {
        let s = s.lock().unwrap_or_else(|e| e.into_inner());
        for &p in s.slots.iter().filter(|p| !p.is_null()) {
            // SAFETY: a registered weak reference, valid while the slot holds it (we hold the
            // lock); ManuallyDrop: it stays the slot's.
            let weak = std::mem::ManuallyDrop::new(unsafe { Weak::from_raw(p) });
            v.extend(weak.upgrade());
        }
    }
    // Outside the locks: dropping a reference here may be the last one, whose drop
    // unregisters the goroutine.
    v.retain(|g| !g.is_finished());
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
                name: g.name.clone(),
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
