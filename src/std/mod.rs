//! `gort::std`: std with `thread` and `sync` running on goroutines — a drop-in for std.
//!
//! Porting a program written for OS threads is the textual substitution
//!
//! ```text
//!   std::thread  ->  gort::std::thread
//!   std::sync    ->  gort::std::sync
//! ```
//!
//! and nothing else: every item keeps std's name, signature and behaviour, `LockResult`s
//! and poisoning included. Inside a `use std::{..}` list that names `sync` or `thread`,
//! write `gort::std::{..}`: this module re-exports the rest of std unchanged, so
//! `use gort::std::{collections::HashMap, sync::{mpsc, Arc, Mutex}, thread, time::Duration};`
//! is the port of the same list with `std`.
//!
//! ```
//! use gort::std::sync::{mpsc, Arc, Mutex};
//! use gort::std::thread;
//!
//! let counter = Arc::new(Mutex::new(0));
//! let (tx, rx) = mpsc::channel();
//! let handles: Vec<_> = (0..4)
//!     .map(|i| {
//!         let (counter, tx) = (Arc::clone(&counter), tx.clone());
//!         thread::spawn(move || {
//!             *counter.lock().unwrap() += 1;
//!             tx.send(i).unwrap();
//!         })
//!     })
//!     .collect();
//! drop(tx);
//! for h in handles {
//!     h.join().unwrap();
//! }
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 1, 2, 3]);
//! assert_eq!(*counter.lock().unwrap(), 4);
//! ```
//!
//! # Design
//! Nothing here is a second implementation. The locks are `gort::sync`'s (one Mutex core, one
//! RwLock core, one Condvar) with std's poison flag around them (`sync/poison.rs`); `mpsc` is
//! `gort::chan` (one channel core: `channel()` is an unbounded channel, `sync_channel(n)` one
//! of capacity `n`); `OnceLock`, `WaitTimeoutResult` and `BarrierWaitResult` are
//! `gort::sync`'s own types; `Once` (std's poisoning state machine) and `LazyLock` are built
//! on `gort::sync::{Mutex, Condvar}`; the thread types (`Thread`, `ThreadId`, `JoinHandle`,
//! `Scope`, `ScopedJoinHandle`) are `gort::thread`'s. Types that never block (`Arc`, `Weak`,
//! `atomic`, `PoisonError`, `TryLockError`, the mpsc error types, `LocalKey`) are std's own,
//! re-exported, so values cross freely between ported and unported code.
//!
//! ```text
//!  src/std/
//!    mod.rs           this facade: std re-exported, with `sync` and `thread` replaced
//!    thread.rs        spawn (std's 2 MiB / RUST_MIN_STACK stacks), Builder, scope, ...
//!    sync/mod.rs      the std::sync item list: re-exports and the types below
//!    sync/poison.rs   the poison flag and the guard's "was panicking" bit
//!    sync/mutex.rs    Mutex, MutexGuard: gort::sync::Mutex + poison
//!    sync/rwlock.rs   RwLock and its guards (incl. downgrade): gort::sync::RwLock + poison
//!    sync/condvar.rs  Condvar: gort::sync::Condvar taking and giving back std-shaped guards
//!    sync/once.rs     Once, OnceState (call_once_force, wait): std's states on Mutex + Condvar
//!    sync/lazy_lock.rs LazyLock on that Once, poisoned by a panicking initialiser as std's
//!    sync/barrier.rs  Barrier: gort::sync::Barrier with std's `const fn new` (0 acts as 1)
//!    sync/mpsc.rs     channel, sync_channel, Sender, SyncSender, Receiver, iterators
//! ```
//!
//! # What differs from std
//! - A "thread" here is a goroutine: `spawn` is cheap, `thread::current()` inside one is the
//!   goroutine, its `id()` is the goroutine's. Blocking (locks, channels, `sleep`, `join`,
//!   `park`) parks the goroutine, and its worker thread runs others; on a plain OS thread the
//!   same calls block the thread.
//! - **Thread-locals belong to the OS worker thread, not to the goroutine**: a goroutine may
//!   resume on another worker after any blocking point, and other goroutines use the same
//!   worker's thread-locals. `thread_local!`/`LocalKey` are std's, re-exported so that code
//!   compiles, with this caveat; goroutine-local storage (`gort::goroutine_local!`) is the
//!   replacement where a value must follow the goroutine.
//! - Guards (`MutexGuard`, `RwLock*Guard`) are not tied to the OS thread, so they are `Send`
//!   where std's are not (which only lets more programs compile).
//! - `mpsc::Receiver` is `Sync` (std's is `Send` only): it is a `gort::chan::Receiver`, safe
//!   to share. Code written for std compiles unchanged; code that relies on it being `Sync`
//!   does not compile with std.
//! - `thread::spawn` reserves std's stack size (2 MiB, or `RUST_MIN_STACK`), committed only as
//!   it is touched; a stack overflow is reported as gort reports one (`fatal error: stack
//!   overflow` naming the goroutine), then the process aborts, as std's does.
//! - Not provided: the OS-handle extensions (`JoinHandleExt::as_pthread_t`,
//!   `into_pthread_t`: there is no pthread behind a goroutine) and std's unstable items
//!   (mapped guards, `ReentrantLock`, `mpmc`, `sleep_until`, `add_spawn_hook`, ...), which
//!   stable code cannot use.

pub use ::std::*;

pub mod sync;
pub mod thread;
