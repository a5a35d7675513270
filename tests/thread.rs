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
