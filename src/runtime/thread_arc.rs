//! `ThreadArc`: a per-thread `Arc<T>` that stays usable while the thread's thread-locals are
//! being destroyed.
//!
//! # Why not `thread_local!`
//! At thread exit std destroys each `thread_local!` whose value has a destructor, in the
//! reverse order of their creation, and a `with` on one already destroyed panics — inside
//! another thread-local's destructor that aborts the process ("thread local panicked on
//! drop"). Destructors do block in gort primitives (a pool's `Drop` that sends its items back
//! on a channel, a goroutine-local's destructor that joins a goroutine, `block_on` in a
//! connection's `Drop`), and a plain thread blocks through its parker, its `current()` handle
//! and its `block_on` waker. They must work for as long as std's own `thread::current()` and
//! `park` do, whatever the order in which the thread's thread-locals were created.
//!
//! # Design
//! The thread's reference is kept in a POSIX thread-specific key (`pthread_key_create`, one
//! per `ThreadArc`, made on first use), whose destructor releases it. The C library runs key
//! destructors after the thread-local destructors std registers (glibc's thread exit calls
//! `__call_tls_dtors`, which runs them, before `__nptl_deallocate_tsd`); and if a key's
//! value is set again while key destructors run (something used the handle from another
//! key's destructor), it runs that destructor again, up to `PTHREAD_DESTRUCTOR_ITERATIONS`
//! rounds. A look-up is `pthread_getspecific` (a few instructions; these handles are used
//! on plain threads' blocking paths, which then make a system call anyway).
//!
//! # Safety
//! A key's value is null or a pointer from `Arc::into_raw` that the key owns: set only by
//! `with` (on an empty key) and taken back only by the key's destructor, which the C library
//! calls with the value after clearing the key.

use std::sync::{Arc, OnceLock};

/// A per-thread `Arc<T>`, made by `make` on the thread's first use, released at the very end
/// of the thread (see the module comment).
pub(crate) struct ThreadArc<T: Send + Sync + 'static> {
    key: OnceLock<libc::pthread_key_t>,
    make: fn() -> Arc<T>,
}

impl<T: Send + Sync + 'static> ThreadArc<T> {
    pub(crate) const fn new(make: fn() -> Arc<T>) -> ThreadArc<T> {
        ThreadArc {
            key: OnceLock::new(),
            make,
        }
    }

    fn key(&self) -> libc::pthread_key_t {
        *self.key.get_or_init(|| {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: `key` is a valid out-pointer; `release::<T>` matches the values stored.
            let r = unsafe { libc::pthread_key_create(&mut key, Some(release::<T>)) };
            assert_eq!(r, 0, "gort: pthread_key_create failed ({r})");
            key
        })
    }

    /// Calls `f` with this thread's value, made first if the thread has none (also during
    /// the thread's teardown).
    #[inline]
    pub(crate) fn with<R>(&'static self, f: impl FnOnce(&Arc<T>) -> R) -> R {
        let key = self.key();
        // SAFETY: reading this thread's value of a key we created.
        let mut p = unsafe { libc::pthread_getspecific(key) } as *const T;
        if p.is_null() {
            p = Arc::into_raw((self.make)());
            // SAFETY: storing a pointer the key now owns (module safety notes).
            let r = unsafe { libc::pthread_setspecific(key, p.cast()) };
            assert_eq!(r, 0, "gort: pthread_setspecific failed ({r})");
        }
        // SAFETY: the key owns one reference, released only by the key's destructor at the
        // thread's end, which cannot run during this call on this thread; ManuallyDrop
        // leaves that reference alone.
        let a = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(p) });
        f(&*a)
    }
}

/// A key's destructor: releases the thread's reference.
unsafe extern "C" fn release<T>(p: *mut libc::c_void) {
    // SAFETY: the C library passes the key's value, a pointer from Arc::into_raw that the
    // key owned (module safety notes), and has cleared the key.
    drop(unsafe { Arc::from_raw(p as *const T) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static MADE: AtomicUsize = AtomicUsize::new(0);
    static DROPPED: AtomicUsize = AtomicUsize::new(0);

    struct Counted;

    impl Drop for Counted {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }

    static VALUE: ThreadArc<Counted> = ThreadArc::new(|| {
        MADE.fetch_add(1, Ordering::SeqCst);
        Arc::new(Counted)
    });

    /// Uses `VALUE` from its destructor; created before `VALUE`, so destroyed after it would
    /// have been, were it a thread-local.
    struct UsesValueOnExit;

    impl Drop for UsesValueOnExit {
        fn drop(&mut self) {
            VALUE.with(|v| assert!(Arc::strong_count(v) >= 1));
        }
    }

    thread_local! {
        static ON_EXIT: UsesValueOnExit = const { UsesValueOnExit };
    }

    #[test]
    fn one_per_thread_released_at_exit_and_usable_in_tls_destructors() {
        let (made, dropped) = (MADE.load(Ordering::SeqCst), DROPPED.load(Ordering::SeqCst));
        std::thread::spawn(|| {
            ON_EXIT.with(|_| ());
            let a = VALUE.with(Arc::clone);
            let b = VALUE.with(Arc::clone);
            assert!(Arc::ptr_eq(&a, &b));
        })
        .join()
        .unwrap();
        assert_eq!(MADE.load(Ordering::SeqCst), made + 1);
        assert_eq!(DROPPED.load(Ordering::SeqCst), dropped + 1);
    }
}
