//! `gort::std::thread`: std's thread API on goroutines. Every test runs twice (see
//! `common::both!`): on the test's plain thread and inside a goroutine.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::assert_panics;
use gort::std::sync::{mpsc, Arc};
use gort::std::thread::{self, Builder, JoinHandle, Scope, ScopedJoinHandle, Thread, ThreadId};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// Uses `kib` KiB of stack below the caller's frame, touching every page on the way.
fn recurse(kib: usize) -> u64 {
    #[inline(never)]
    fn down(start: usize, target: usize) -> u64 {
        let buf = std::hint::black_box([1u8; 512]);
        let here = buf.as_ptr() as usize;
        if start.saturating_sub(here) >= target {
            u64::from(buf[0])
        } else {
            down(start, target) + u64::from(buf[1])
        }
    }
    let mark = std::hint::black_box(0u8);
    down(&mark as *const u8 as usize, kib * 1024)
}

/// The resident memory of this process, in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// Compile-time: shapes std code relies on.
#[allow(dead_code)]
fn static_shapes() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<JoinHandle<u8>>();
    send_sync::<Thread>();
    send_sync::<ThreadId>();
    send_sync::<ScopedJoinHandle<'static, u8>>();
    let _: fn(std::time::Duration) = thread::sleep;
    let _: fn() -> bool = thread::panicking;
    let _: fn() -> std::io::Result<std::num::NonZeroUsize> = thread::available_parallelism;
    let _: thread::Result<()> = Ok(());
    let _: Option<&thread::AccessError> = None;
    fn _scope_shape<'s, 'e>(s: &'s Scope<'s, 'e>) -> ScopedJoinHandle<'s, ()> {
        s.spawn(|| ())
    }
}

gort::std::thread_local! {
    static LOCAL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

crate::both! {
    /// spawn / join: the value, or the panic's payload.
    fn spawn_and_join() {
        let h = thread::spawn(|| 6 * 7);
        assert_eq!(h.join().unwrap(), 42);
        let h = thread::spawn(|| -> u32 { panic!("boom {}", 1) });
        let err = h.join().unwrap_err();
        assert_eq!(common::panic_message(&*err), "boom 1");
        let h = thread::spawn(|| thread::sleep(Duration::from_millis(20)));
        assert!(!h.is_finished());
        h.join().unwrap();
    }

    /// Names and ids: Builder::name shows in current().name(); ids are unique and match
    /// the JoinHandle's thread.
    fn names_and_ids() {
        let h = Builder::new()
            .name("named".to_string())
            .spawn(|| (thread::current().name().map(str::to_owned), thread::current().id()))
            .unwrap();
        let handle_id = h.thread().id();
        assert_eq!(h.thread().name(), Some("named"));
        let (name, id) = h.join().unwrap();
        assert_eq!(name.as_deref(), Some("named"));
        assert_eq!(id, handle_id);
        assert_ne!(id, thread::current().id());
        assert!(thread::spawn(|| thread::current().name().is_none()).join().unwrap());
        let ids: Vec<ThreadId> = (0..10)
            .map(|_| thread::spawn(|| thread::current().id()))
            .map(|h| h.join().unwrap())
            .collect();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 10);
        assert!(format!("{:?}", thread::current()).starts_with("Thread"));
    }

    /// A name with a NUL byte panics at spawn with std's message.
    fn nul_in_name_panics() {
        assert_panics("thread name may not contain interior null bytes", || {
            Builder::new().name("a\0b".into()).spawn(|| ())
        });
        assert_panics("thread name may not contain interior null bytes", || {
            thread::scope(|s| {
                let _ = Builder::new().name("\0".into()).spawn_scoped(s, || ());
            })
        });
    }

    /// thread::spawn gets std's 2 MiB stack (gort's default is 256 KiB): 1.5 MiB of
    /// recursion fits; Builder::stack_size is honoured.
    fn std_stack_sizes() {
        assert!(thread::spawn(|| recurse(1536)).join().unwrap() > 0);
        let h = Builder::new().stack_size(4 << 20).spawn(|| recurse(3 * 1024)).unwrap();
        assert!(h.join().unwrap() > 0);
        let v = thread::scope(|s| s.spawn(|| recurse(1536)).join().unwrap());
        assert!(v > 0);
    }

    /// The 2 MiB stacks are reserved, not committed: 200 parked goroutines cost far less
    /// than 200 × 2 MiB.
    fn std_stacks_cost_only_what_is_touched() {
        let before = rss_kib();
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(gort::std::sync::Mutex::new(rx));
        let hs: Vec<_> = (0..200)
            .map(|_| {
                let rx = Arc::clone(&rx);
                thread::spawn(move || {
                    let _ = rx.lock().unwrap().recv();
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        let during = rss_kib();
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
        assert!(
            during.saturating_sub(before) < 100 * 1024,
            "200 std-sized goroutines cost {} KiB of RSS",
            during.saturating_sub(before)
        );
    }

    /// scope: borrows, values, Builder::spawn_scoped, and the panic of an unjoined one.
    fn scoped() {
        let mut data = vec![1, 2, 3];
        let total = AtomicUsize::new(0);
        let n = thread::scope(|s| {
            for x in &data {
                s.spawn(|| total.fetch_add(*x, Ordering::SeqCst));
            }
            let h = Builder::new()
                .name("scoped".into())
                .spawn_scoped(s, || thread::current().name().map(str::to_owned))
                .unwrap();
            assert_eq!(h.thread().name(), Some("scoped"));
            assert_eq!(h.join().unwrap().as_deref(), Some("scoped"));
            data.len()
        });
        assert_eq!(n, 3);
        assert_eq!(total.load(Ordering::SeqCst), 6);
        data.push(4);
        assert_panics("a scoped thread panicked", || {
            thread::scope(|s| {
                s.spawn(|| panic!("unjoined"));
            })
        });
        let r = thread::scope(|s| s.spawn(|| panic!("joined")).join());
        assert!(r.is_err());
    }

    /// park / unpark: the token makes an early unpark count; park_timeout returns.
    fn park_and_unpark() {
        thread::current().unpark();
        thread::park(); // the token was there: returns at once
        // No token: returns after the timeout (or spuriously, which std allows too).
        thread::park_timeout(Duration::from_millis(5));
        let flag = Arc::new(AtomicBool::new(false));
        let f2 = Arc::clone(&flag);
        let h = thread::spawn(move || {
            while !f2.load(Ordering::Acquire) {
                thread::park();
            }
        });
        thread::sleep(Duration::from_millis(10));
        flag.store(true, Ordering::Release);
        h.thread().unpark();
        h.join().unwrap();
        #[allow(deprecated)]
        {
            thread::park_timeout_ms(1);
            thread::sleep_ms(1);
        }
    }

    /// sleep, yield_now, panicking, available_parallelism.
    fn small_functions() {
        let t = Instant::now();
        thread::sleep(Duration::from_millis(15));
        assert!(t.elapsed() >= Duration::from_millis(15));
        thread::yield_now();
        assert!(!thread::panicking());
        struct Check(Arc<AtomicBool>);
        impl Drop for Check {
            fn drop(&mut self) {
                self.0.store(thread::panicking(), Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&seen);
        let _ = thread::spawn(move || {
            let _c = Check(s2);
            panic!("unwinding");
        })
        .join();
        assert!(seen.load(Ordering::SeqCst));
        assert!(thread::available_parallelism().unwrap().get() >= 1);
    }

    /// Builder::spawn_unchecked may borrow, as std's.
    fn spawn_unchecked_borrows() {
        let local = vec![1, 2, 3];
        let r = &local;
        // SAFETY: joined before `local` goes away.
        let h = unsafe { Builder::new().spawn_unchecked(move || r.iter().sum::<i32>()) }.unwrap();
        assert_eq!(h.join().unwrap(), 6);
    }

    /// thread_local! and LocalKey come from std (through gort::std): per OS thread.
    fn thread_locals_compile_and_work() {
        LOCAL.with(|c| c.set(5));
        assert_eq!(LOCAL.with(|c| c.get()), 5);
        let k: &'static thread::LocalKey<std::cell::Cell<u32>> = &LOCAL;
        assert!(k.try_with(|c| c.get()).is_ok());
    }
}

/// The default stack honours RUST_MIN_STACK, read as std reads it: with 64 KiB, 200 KiB of
/// recursion overflows (in a child process: an overflow aborts).
#[test]
fn rust_min_stack_is_honoured() {
    if common::is_child("rust_min_stack_is_honoured") {
        let v = thread::spawn(|| recurse(200)).join();
        println!("survived {v:?}");
        return;
    }
    let out = common::run_child("rust_min_stack_is_honoured", &[("RUST_MIN_STACK", "65536")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "no overflow: {stderr}");
    assert!(stderr.contains("fatal error: stack overflow"), "{stderr}");
    let out = common::run_child(
        "rust_min_stack_is_honoured",
        &[("RUST_MIN_STACK", "1048576")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A panic hook the program installs before the runtime starts is chained to, not
/// replaced: it sees goroutine panics (in a child process: hooks are process-wide).
#[test]
fn panic_hook_installed_before_the_runtime_is_kept() {
    if common::is_child("panic_hook_installed_before_the_runtime_is_kept") {
        std::panic::set_hook(Box::new(|info| {
            let msg = common::panic_message(info.payload());
            eprintln!("program hook: {msg}");
        }));
        let h = Builder::new()
            .name("g".into())
            .spawn(|| panic!("from a goroutine"))
            .unwrap();
        assert!(h.join().is_err());
        return;
    }
    let out = common::run_child("panic_hook_installed_before_the_runtime_is_kept", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("program hook: from a goroutine"),
        "{stderr}"
    );
    assert!(!stderr.contains("thread 'g' panicked"), "{stderr}");
}

/// With std's default hook in place, a goroutine's panic is printed as std prints a
/// thread's, named after the goroutine.
#[test]
fn default_hook_names_the_goroutine() {
    if common::is_child("default_hook_names_the_goroutine") {
        let h = Builder::new()
            .name("worker-7".into())
            .spawn(|| panic!("oops"))
            .unwrap();
        assert!(h.join().is_err());
        return;
    }
    let out = common::run_child("default_hook_names_the_goroutine", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("thread 'worker-7' panicked at"), "{stderr}");
    assert!(stderr.contains("oops"), "{stderr}");
}
