//! `gort::thread`, the std::thread-shaped facade: code ported by changing imports.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::thread;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

#[gort::test]
fn scoped_goroutines_borrow_from_the_caller() {
    let mut data = vec![1, 2, 3, 4];
    let total = AtomicUsize::new(0);
    thread::scope(|s| {
        for chunk in data.chunks(2) {
            s.spawn(|| {
                total.fetch_add(chunk.iter().sum::<usize>(), Ordering::Relaxed);
            });
        }
    });
    // Every scoped goroutine has finished: the borrow has ended.
    assert_eq!(total.load(Ordering::Relaxed), 10);
    data.push(5);
    assert_eq!(data.len(), 5);
}

#[gort::test]
fn scope_returns_values_and_joins_handles() {
    let v = [10, 20, 30];
    let (a, b) = thread::scope(|s| {
        let h1 = s.spawn(|| v[0] + v[1]);
        let h2 = s.spawn(|| v.iter().sum::<i32>());
        (h1.join().unwrap(), h2.join().unwrap())
    });
    assert_eq!((a, b), (30, 60));
}

#[gort::test]
fn scope_waits_for_slow_goroutines() {
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), 10);
}

#[gort::test]
#[should_panic(expected = "a scoped thread panicked")]
fn unjoined_scoped_panic_propagates() {
    thread::scope(|s| {
        s.spawn(|| panic!("inner failure"));
    });
}

#[gort::test]
fn joined_scoped_panic_is_returned_not_propagated() {
    let r = thread::scope(|s| s.spawn(|| panic!("inner")).join());
    assert!(r.is_err());
}

#[test]
fn scope_on_a_plain_thread() {
    let _w = common::watchdog(60, "scope_on_a_plain_thread");
    let counter = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..100 {
            s.spawn(|| counter.fetch_add(1, Ordering::Relaxed));
        }
    });
    assert_eq!(counter.load(Ordering::Relaxed), 100);
}

#[gort::test]
fn builder_names_and_stack_sizes() {
    let h = thread::Builder::new()
        .name("alpha".into())
        .stack_size(1 << 20)
        .spawn(|| {
            // Use most of the requested megabyte: it must be there.
            let mut big = [0u8; 700 * 1024];
            big[0] = 1;
            std::hint::black_box(&mut big);
            (thread::current().name().map(str::to_owned), big[0])
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), (Some("alpha".to_owned()), 1));
    // Tiny sizes are rounded up to a usable minimum rather than failing.
    let h = thread::Builder::new().stack_size(1).spawn(|| 5).unwrap();
    assert_eq!(h.join().unwrap(), 5);
    let r = thread::scope(|s| {
        thread::Builder::new()
            .name("scoped".into())
            .spawn_scoped(s, || thread::current().name().map(str::to_owned))
            .unwrap()
            .join()
            .unwrap()
    });
    assert_eq!(r.as_deref(), Some("scoped"));
}

#[gort::test]
fn current_ids_are_unique_and_stable() {
    let me = thread::current();
    assert_eq!(me.id(), thread::current().id());
    thread::yield_now();
    assert_eq!(me.id(), thread::current().id());
    let ids: Vec<_> = (0..50)
        .map(|_| thread::spawn(|| thread::current().id()))
        .map(|h| h.join().unwrap())
        .collect();
    let mut uniq = ids.clone();
    uniq.sort_by_key(|id| id.goroutine_id());
    uniq.dedup();
    assert_eq!(uniq.len(), ids.len());
    assert!(ids.iter().all(|id| id.goroutine_id().is_some()));
    let os = std::thread::spawn(|| thread::current().id())
        .join()
        .unwrap();
    assert_eq!(os.goroutine_id(), None);
    assert_ne!(os, me.id());
}

#[gort::test]
fn park_timeout_returns_and_unpark_wakes() {
    let t = Instant::now();
    thread::park_timeout(Duration::from_millis(20));
    // May return spuriously (like std), but not hang.
    assert!(t.elapsed() < Duration::from_secs(30));

    let flag = Arc::new(AtomicUsize::new(0));
    let f2 = flag.clone();
    let h = thread::spawn(move || {
        while f2.load(Ordering::Acquire) == 0 {
            thread::park();
        }
    });
    thread::sleep(Duration::from_millis(5));
    flag.store(1, Ordering::Release);
    h.thread().unpark();
    h.join().unwrap();
}

#[test]
fn port_of_std_thread_code_runs_unchanged() {
    let _w = common::watchdog(60, "port_of_std_thread_code_runs_unchanged");
    // The same body as a std::thread program, with `use gort::thread` instead.
    let handles: Vec<thread::JoinHandle<u64>> = (0..8)
        .map(|i| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(1));
                (0..=i).sum()
            })
        })
        .collect();
    let sums: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sums, vec![0, 1, 3, 6, 10, 15, 21, 28]);
}

// ---- gort primitives inside thread-local destructors (regression, issue 10 review) ----

/// Uses gort's thread facade, a channel, a sleep and a mutex from its destructor, when the
/// thread's gort thread-locals (its parker, its `current()` handle, its waiter cache) are
/// already destroyed.
struct UsesGortInDrop;

impl Drop for UsesGortInDrop {
    fn drop(&mut self) {
        let me = thread::current();
        me.unpark();
        thread::park(); // the token is there: returns at once
        thread::park_timeout(Duration::from_millis(1));
        thread::sleep(Duration::from_millis(1));
        let (tx, rx) = gort::chan::<u32>(0);
        let h = gort::spawn(move || {
            gort::time::sleep(Duration::from_millis(5));
            tx.send(7).unwrap();
        });
        let v = rx.recv().unwrap(); // parks this thread
        h.join().unwrap();
        let m = gort::sync::Mutex::new(v);
        let g = m.lock();
        println!(
            "gort in a thread-local destructor: {} {:?}",
            *g,
            me.id() == thread::current().id()
        );
    }
}

thread_local! {
    static USES_GORT_IN_DROP: UsesGortInDrop = const { UsesGortInDrop };
}

#[test]
fn gort_in_tls_drop_child() {
    if !common::is_child("gort_in_tls_drop_child") {
        return;
    }
    std::thread::spawn(|| {
        // Registered first, so destroyed last (after the thread-locals made below).
        USES_GORT_IN_DROP.with(|_| ());
        let me = thread::current();
        me.unpark();
        thread::park();
        let (tx, rx) = gort::chan::<u8>(0);
        let h = gort::spawn(move || tx.send(1).unwrap());
        rx.recv().unwrap();
        h.join().unwrap();
    })
    .join()
    .unwrap();
    println!("joined");
}

/// Blocking in gort (a channel, park, sleep) and `thread::current()` in a thread-local's
/// destructor work as std's do there; they used to abort the process (a gort thread-local,
/// already destroyed, was used with `with`).
#[test]
fn gort_primitives_in_a_thread_local_destructor() {
    let out = common::run_child("gort_in_tls_drop_child", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("gort in a thread-local destructor: 7 true\n"),
        "{stdout}"
    );
    assert!(stdout.contains("joined"), "{stdout}");
}
