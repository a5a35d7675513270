//! `gort::std::sync`: std's `sync` module, on goroutines, with std's poisoning.
//!
//! Every stable item of `std::sync`, with std's signatures: `lock()`, `read()`, `write()`
//! and the `Condvar` waits return `LockResult`s, `try_lock` a `TryLockResult`, and a guard
//! dropped by a panic poisons its lock exactly as std's does. Blocking parks the goroutine
//! (or the plain thread). Items that never block are std's own, re-exported.
//!
//! | item | built on |
//! |------|----------|
//! | [`Mutex`], [`MutexGuard`] | `gort::sync::Mutex` + poison flag |
//! | [`RwLock`], [`RwLockReadGuard`], [`RwLockWriteGuard`] (incl. `downgrade`) | `gort::sync::RwLock` + poison flag |
//! | [`Condvar`], [`WaitTimeoutResult`] | `gort::sync::Condvar` |
//! | [`Barrier`], [`BarrierWaitResult`] | `gort::sync::Barrier` |
//! | [`Once`], [`OnceState`], [`ONCE_INIT`] | std's poisoning states on `gort::sync::{Mutex, Condvar}` |
//! | [`OnceLock`] | `gort::sync::OnceLock` (the same type) |
//! | [`LazyLock`] | [`Once`] |
//! | [`mpsc`] | `gort::chan` |
//! | [`Arc`], [`Weak`], [`atomic`], [`PoisonError`], [`TryLockError`], [`LockResult`], [`TryLockResult`] | std (re-exported) |
//!
//! Not provided: std's unstable items (`Exclusive`, `ReentrantLock`, `MappedMutexGuard` and
//! the other mapped guards, `mpmc`, `oneshot`, `nonpoison`, `poison`, `UniqueArc`, and the
//! unstable methods such as `Mutex::get_cloned`/`set`/`replace`, `OnceLock::try_insert`,
//! `LazyLock::into_inner`, `Receiver::recv_deadline`), which stable code cannot use.

mod barrier;
mod condvar;
mod lazy_lock;
pub mod mpsc;
mod mutex;
mod once;
mod poison;
mod rwlock;

pub use barrier::Barrier;
pub use condvar::Condvar;
pub use lazy_lock::LazyLock;
pub use mutex::{Mutex, MutexGuard};
#[allow(deprecated)]
pub use once::{Once, OnceState, ONCE_INIT};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use crate::sync::{BarrierWaitResult, OnceLock, WaitTimeoutResult};

pub use std::sync::{atomic, Arc, LockResult, PoisonError, TryLockError, TryLockResult, Weak};
