//! Goroutine-local storage: `goroutine_local!` on goroutines and plain threads.

mod common;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

gort::goroutine_local! {
    static ID: Cell<u64> = Cell::new(0);
    static LOG: RefCell<Vec<u64>> = RefCell::new(Vec::new());
}

#[gort::test]
fn each_goroutine_keeps_its_own_value_across_blocking_points() {
    let n = common::stress(200) as u64;
    let hs: Vec<_> = (1..=n)
        .map(|i| {
            gort::spawn(move || {
                ID.set(i);
                for round in 0..20 {
                    match round % 3 {
                        0 => gort::yield_now(),
                        1 => gort::time::sleep(Duration::from_micros(50)),
                        _ => {
                            let (tx, rx) = gort::chan::<u64>(0);
                            let h = gort::spawn(move || tx.send(1).unwrap());
                            rx.recv().unwrap();
                            h.join().unwrap();
                        }
                    }
                    assert_eq!(ID.get(), i, "round {round}");
                    LOG.with_borrow_mut(|l| l.push(ID.get()));
                }
                LOG.take()
            })
        })
        .collect();
    for (i, h) in (1..=n).zip(hs) {
        assert_eq!(h.join().unwrap(), vec![i; 20]);
    }
}

#[gort::test]
fn a_reference_held_across_blocking_stays_the_goroutines() {
    // The hazard with thread_local!: a `with` closure that blocks continues on another
    // thread still holding the first thread's value. Here the value is the goroutine's.
    let n = common::stress(100) as u64;
    let hs: Vec<_> = (1..=n)
        .map(|i| {
            gort::spawn(move || {
                ID.set(i);
                ID.with(|id| {
                    for _ in 0..10 {
                        gort::time::sleep(Duration::from_micros(20));
                        assert_eq!(id.get(), i);
                        id.set(id.get()); // writes race with nobody
                    }
                });
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

static INITS: AtomicUsize = AtomicUsize::new(0);

gort::goroutine_local! {
    static LAZY: Cell<u32> = {
        INITS.fetch_add(1, Ordering::SeqCst);
        Cell::new(5)
    };
}

#[gort::test]
fn values_are_created_lazily_once_per_goroutine() {
    let before = INITS.load(Ordering::SeqCst);
    // Goroutines that never touch the key do not run its initialiser.
    let hs: Vec<_> = (0..10).map(|_| gort::spawn(|| ())).collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(INITS.load(Ordering::SeqCst), before);
    let hs: Vec<_> = (0..10)
        .map(|_| {
            gort::spawn(|| {
                assert_eq!(LAZY.get(), 5);
                LAZY.set(6);
                assert_eq!(LAZY.get(), 6);
                LAZY.with(|c| c.get())
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 6);
    }
    assert_eq!(INITS.load(Ordering::SeqCst), before + 10);
    // `set` on a fresh goroutine does not run the initialiser.
    gort::spawn(|| {
        LAZY.set(9);
        assert_eq!(LAZY.get(), 9);
    })
    .join()
    .unwrap();
    assert_eq!(INITS.load(Ordering::SeqCst), before + 10);
}

gort::goroutine_local! {
    static NAME: RefCell<String> = RefCell::new("init".to_string());
    static COUNT: Cell<u32> = const { Cell::new(1) };
}

#[gort::test]
fn cell_and_refcell_methods() {
    gort::spawn(|| {
        assert_eq!(COUNT.get(), 1);
        assert_eq!(COUNT.replace(4), 1);
        assert_eq!(COUNT.take(), 4);
        assert_eq!(COUNT.get(), 0);
        COUNT.set(8);
        assert_eq!(COUNT.get(), 8);

        assert_eq!(NAME.with_borrow(|s| s.clone()), "init");
        NAME.with_borrow_mut(|s| s.push('!'));
        assert_eq!(NAME.replace("x".into()), "init!");
        NAME.set("y".into());
        assert_eq!(NAME.take(), "y");
        assert_eq!(NAME.with_borrow(String::len), 0);
        assert!(NAME.try_with(|_| ()).is_ok());
    })
    .join()
    .unwrap();
}

/// Counts drops, and records which goroutine dropped it.
struct Noisy(Arc<AtomicUsize>);

impl Drop for Noisy {
    fn drop(&mut self) {
        assert!(gort::goroutine_id().is_some() || std::thread::current().name().is_some());
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

gort::goroutine_local! {
    static NOISY: RefCell<Option<Noisy>> = const { RefCell::new(None) };
}

#[gort::test]
fn destructors_run_when_the_goroutine_ends_before_join_returns() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    gort::spawn(move || NOISY.set(Some(Noisy(d))))
        .join()
        .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[gort::test]
fn destructors_run_when_the_goroutine_panics() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let r = gort::spawn(move || {
        NOISY.set(Some(Noisy(d)));
        panic!("goroutine panics with a local alive");
    })
    .join();
    assert!(r.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

static CHAIN_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A destructor that blocks and touches another goroutine-local.
struct Chained;

impl Drop for Chained {
    fn drop(&mut self) {
        gort::time::sleep(Duration::from_millis(1));
        COUNT.set(COUNT.get() + 1);
        NOISY2.with_borrow_mut(|v| v.push(1));
        CHAIN_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

struct Last;

impl Drop for Last {
    fn drop(&mut self) {
        CHAIN_DROPS.fetch_add(10, Ordering::SeqCst);
    }
}

gort::goroutine_local! {
    static CHAINED: RefCell<Option<Chained>> = const { RefCell::new(None) };
    static NOISY2: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

#[gort::test]
fn destructors_may_block_and_use_other_locals() {
    CHAIN_DROPS.store(0, Ordering::SeqCst);
    gort::spawn(|| {
        CHAINED.set(Some(Chained));
        LAST.set(Some(Last));
    })
    .join()
    .unwrap();
    assert_eq!(CHAIN_DROPS.load(Ordering::SeqCst), 11);
}

struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("destructor panics");
    }
}

gort::goroutine_local! {
    static BAD: RefCell<Option<PanicsOnDrop>> = const { RefCell::new(None) };
}

#[gort::test]
fn a_panicking_destructor_fails_the_join_and_the_others_still_drop() {
    let (bad, good) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b, g) = (bad.clone(), good.clone());
    let r = gort::spawn(move || {
        BAD.set(Some(PanicsOnDrop(b)));
        NOISY.set(Some(Noisy(g)));
        3
    })
    .join();
    let err = r.unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"destructor panics"));
    assert_eq!(bad.load(Ordering::SeqCst), 1);
    assert_eq!(good.load(Ordering::SeqCst), 1);
}

#[gort::test]
fn a_child_goroutine_does_not_inherit_values() {
    ID.set(77);
    let h = gort::spawn(|| ID.get());
    assert_eq!(h.join().unwrap(), 0);
    assert_eq!(ID.get(), 77);
}

#[test]
fn on_plain_threads_it_is_a_thread_local() {
    let drops = Arc::new(AtomicUsize::new(0));
    let ts: Vec<_> = (1..=4u64)
        .map(|i| {
            let d = drops.clone();
            std::thread::Builder::new()
                .name(format!("plain-{i}"))
                .spawn(move || {
                    ID.set(i);
                    NOISY.set(Some(Noisy(d)));
                    std::thread::sleep(Duration::from_millis(2));
                    ID.get()
                })
                .unwrap()
        })
        .collect();
    for (i, t) in (1..=4).zip(ts) {
        assert_eq!(t.join().unwrap(), i);
    }
    // Dropped at each thread's exit.
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    // And a goroutine spawned from a plain thread has its own.
    ID.set(5);
    assert_eq!(gort::spawn(|| ID.get()).join().unwrap(), 0);
    assert_eq!(ID.get(), 5);
}

#[gort::test]
fn many_keys_many_goroutines() {
    gort::goroutine_local! {
        static A: Cell<u8> = const { Cell::new(1) };
        static B: Cell<u16> = const { Cell::new(2) };
        static C: RefCell<String> = RefCell::new(String::from("c"));
    }
    let hs: Vec<_> = (0..common::stress(500))
        .map(|i| {
            gort::spawn(move || {
                if i % 2 == 0 {
                    A.set(A.get() + 1);
                }
                if i % 3 == 0 {
                    C.with_borrow_mut(|c| c.push('!'));
                }
                gort::yield_now();
                (A.get(), B.get(), C.with_borrow(|c| c.clone()))
            })
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        let (a, b, c) = h.join().unwrap();
        assert_eq!(a, if i % 2 == 0 { 2 } else { 1 });
        assert_eq!(b, 2);
        assert_eq!(c, if i % 3 == 0 { "c!" } else { "c" });
    }
}

// ---- destructors that reach for goroutine-locals (regressions, issue 10 review) ----

/// What a destructor saw when it reached for a key: `Some(v)` or `None` (AccessError).
type Seen = std::sync::Mutex<Vec<(&'static str, Option<u32>)>>;

static SEEN: Seen = std::sync::Mutex::new(Vec::new());

fn seen(what: &'static str, v: Option<u32>) {
    SEEN.lock().unwrap().push((what, v));
}

/// Its destructor reaches for its own key (every value of the key is one of these).
struct TouchesItself;

impl Drop for TouchesItself {
    fn drop(&mut self) {
        seen("self", SELF_KEY.try_with(|_| 1).ok());
    }
}

/// A's destructor reads B, B's reads A.
struct TouchesB;

impl Drop for TouchesB {
    fn drop(&mut self) {
        seen("a reads b", PAIR_B.try_with(|b| b.1.get()).ok());
    }
}

struct TouchesA;

impl Drop for TouchesA {
    fn drop(&mut self) {
        seen("b reads a", PAIR_A.try_with(|a| a.1.get()).ok());
    }
}

gort::goroutine_local! {
    static SELF_KEY: TouchesItself = TouchesItself;
    static PAIR_A: (TouchesB, Cell<u32>) = (TouchesB, Cell::new(0));
    static PAIR_B: (TouchesA, Cell<u32>) = (TouchesA, Cell::new(0));
}

/// Serialises the tests that use `SEEN`.
static SEEN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_seen() -> Vec<(&'static str, Option<u32>)> {
    std::mem::take(&mut *SEEN.lock().unwrap())
}

/// A destructor that touches its own key gets `AccessError` (as std's thread-locals do),
/// instead of re-creating the value for ever; `with` panics.
#[test]
fn a_destructor_touching_its_own_key_gets_access_error() {
    let _s = SEEN_LOCK.lock().unwrap();
    let _w = common::watchdog(60, "a_destructor_touching_its_own_key_gets_access_error");
    take_seen();
    gort::spawn(|| SELF_KEY.with(|_| ())).join().unwrap();
    assert_eq!(take_seen(), vec![("self", None)]);
    // On a plain thread too.
    std::thread::spawn(|| SELF_KEY.with(|_| ())).join().unwrap();
    assert_eq!(take_seen(), vec![("self", None)]);
}

/// Two destructors that touch each other's keys end: the one destroyed second finds the
/// first gone (AccessError); the one destroyed first sees the other's live value. Values are
/// destroyed in the reverse order of their creation, as std's are.
#[test]
fn destructors_touching_each_other_end() {
    let _s = SEEN_LOCK.lock().unwrap();
    let _w = common::watchdog(60, "destructors_touching_each_other_end");
    take_seen();
    gort::spawn(|| {
        PAIR_A.with(|a| a.1.set(1));
        PAIR_B.with(|b| b.1.set(2));
    })
    .join()
    .unwrap();
    // B was created last, so it goes first: it reads A alive; then A finds B destroyed.
    assert_eq!(
        take_seen(),
        vec![("b reads a", Some(1)), ("a reads b", None)]
    );
    std::thread::spawn(|| {
        PAIR_B.with(|b| b.1.set(2));
        PAIR_A.with(|a| a.1.set(1));
    })
    .join()
    .unwrap();
    assert_eq!(
        take_seen(),
        vec![("a reads b", Some(2)), ("b reads a", None)]
    );
}

/// Its destructor reads `LIVE` (set to 42 before this value was created).
struct ReadsLive;

impl Drop for ReadsLive {
    fn drop(&mut self) {
        seen("live", LIVE.try_with(Cell::get).ok());
        // `with` on a destroyed key panics, as std's does.
        let r = std::panic::catch_unwind(|| SELF_KEY2.with(|_| ()));
        seen("with on a destroyed key panics", Some(r.is_err() as u32));
    }
}

gort::goroutine_local! {
    static LIVE: Cell<u32> = const { Cell::new(0) };
    static READS_LIVE: RefCell<Option<ReadsLive>> = const { RefCell::new(None) };
    static SELF_KEY2: Cell<u32> = const { Cell::new(0) };
}

/// A destructor that reads another key that is still alive sees its value (42), not a
/// fresh initial one.
#[test]
fn a_destructor_sees_the_live_values_of_other_keys() {
    let _s = SEEN_LOCK.lock().unwrap();
    let _w = common::watchdog(60, "a_destructor_sees_the_live_values_of_other_keys");
    take_seen();
    let body = || {
        SELF_KEY2.set(1); // created first: destroyed last...
        LIVE.set(42);
        READS_LIVE.set(Some(ReadsLive)); // ...created last: destroyed first
    };
    gort::spawn(body).join().unwrap();
    let want = vec![
        ("live", Some(42)),
        ("with on a destroyed key panics", Some(0)),
    ];
    assert_eq!(take_seen(), want);
    std::thread::spawn(body).join().unwrap();
    assert_eq!(take_seen(), want);
}

/// Its destructor uses goroutine-locals and blocks in gort, on a plain thread's exit.
struct UsesOthersOnThreadExit;

impl Drop for UsesOthersOnThreadExit {
    fn drop(&mut self) {
        let id = ID.get(); // alive: set below
        COUNT.set(COUNT.get() + 1); // never created on this thread: created now
        let (tx, rx) = gort::chan::<u64>(0);
        let h = gort::spawn(move || tx.send(id * 2).unwrap());
        println!(
            "thread exit saw {id} {} {}",
            COUNT.get(),
            rx.recv().unwrap()
        );
        h.join().unwrap();
    }
}

gort::goroutine_local! {
    static ON_EXIT: RefCell<Option<UsesOthersOnThreadExit>> = const { RefCell::new(None) };
}

#[test]
fn thread_exit_child() {
    if !common::is_child("thread_exit_child") {
        return;
    }
    std::thread::spawn(|| {
        ID.set(21);
        ON_EXIT.set(Some(UsesOthersOnThreadExit));
    })
    .join()
    .unwrap();
    println!("joined");
}

/// On a plain thread, a goroutine-local's destructor that uses other goroutine-locals (and
/// gort channels) works as with std's thread-locals; it used to abort the process ("thread
/// local panicked on drop").
#[test]
fn on_a_plain_thread_destructors_may_use_other_keys() {
    let out = common::run_child("thread_exit_child", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("thread exit saw 21 2 42\n"), "{stdout}");
    assert!(stdout.contains("joined"), "{stdout}");
}
