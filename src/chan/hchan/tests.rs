//! Interleavings of the ring's lock-free peers and its waiters that a stress test meets
//! only once in thousands of runs, made deterministic with a pause point: a lock-free peer
//! that saw a waiter's flag stops before it takes the channel lock (`pause_point`, called
//! from `serve_receivers` / `serve_senders` in test builds only).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use super::Chan;

/// The channel whose next lock-free peer pauses (0: none).
static PAUSE_AT: AtomicUsize = AtomicUsize::new(0);
/// Reached (the peer waits) / released (it may go on).
static GATE: Mutex<(bool, bool)> = Mutex::new((false, false));
static GATE_CV: Condvar = Condvar::new();
/// One pausing test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Called by a lock-free peer about to lock channel `addr` to serve a waiter.
pub(super) fn pause_point(addr: usize) {
    if PAUSE_AT.load(Ordering::SeqCst) != addr
        || PAUSE_AT
            .compare_exchange(addr, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return;
    }
    let mut g = GATE.lock().unwrap();
    g.0 = true;
    GATE_CV.notify_all();
    while !g.1 {
        g = GATE_CV.wait(g).unwrap();
    }
}

fn arm<T>(c: &Chan<T>) {
    *GATE.lock().unwrap() = (false, false);
    PAUSE_AT.store(c as *const Chan<T> as usize, Ordering::SeqCst);
}

fn wait_reached() {
    let mut g = GATE.lock().unwrap();
    while !g.0 {
        g = GATE_CV.wait(g).unwrap();
    }
}

fn release() {
    GATE.lock().unwrap().1 = true;
    GATE_CV.notify_all();
}

/// Spins (yielding) until `f` holds under the channel lock.
fn until<T>(c: &Chan<T>, f: impl Fn(&super::Inner<T>) -> bool) {
    while !f(&c.lock()) {
        thread::yield_now();
    }
}

/// Regression (the CI hang of `oversubscribed_plain_threads_contending`): a sender pushes
/// into the empty ring and sees a receiver waiting; before it takes the lock, a second
/// sender finds the ring full and waits. When the first one pops its value into the waiting
/// receiver it makes room: it must also move the waiting sender's value in. It used to
/// leave that sender asleep beside an empty ring, so that, once the other senders were
/// done, every sender and receiver slept for good.
#[test]
fn a_sender_serving_a_receiver_also_refills_from_a_waiting_sender() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Arc::new(Chan::<u32>::new(1));
    let r1 = thread::spawn({
        let c = c.clone();
        move || c.recv(None).ok()
    });
    until(&c, |i| !i.recvq.is_empty());
    arm(&c);
    let s1 = thread::spawn({
        let c = c.clone();
        move || c.send(1, None).is_ok()
    });
    wait_reached(); // s1's value is in the ring; it stands before the lock
    let s2 = thread::spawn({
        let c = c.clone();
        move || c.send(2, None).is_ok()
    });
    until(&c, |i| !i.sendq.is_empty());
    release();
    assert!(s1.join().unwrap());
    assert_eq!(r1.join().unwrap(), Some(1));
    {
        let inner = c.lock();
        assert!(
            inner.sendq.is_empty(),
            "a sender still waits beside a ring with room"
        );
    }
    assert!(s2.join().unwrap());
    assert_eq!(c.len(), 1);
    assert_eq!(c.recv(None).ok(), Some(2));
}

/// The mirror image: a receiver pops from the full ring and sees a sender waiting; before
/// it takes the lock, a second receiver finds the ring empty and waits. When the first one
/// moves the waiting sender's value into the ring, it must also serve the waiting receiver.
#[test]
fn a_receiver_refilling_from_a_sender_also_serves_a_waiting_receiver() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Arc::new(Chan::<u32>::new(1));
    assert!(c.send(0, None).is_ok());
    let s1 = thread::spawn({
        let c = c.clone();
        move || c.send(1, None).is_ok()
    });
    until(&c, |i| !i.sendq.is_empty());
    arm(&c);
    let r1 = thread::spawn({
        let c = c.clone();
        move || c.recv(None).ok()
    });
    wait_reached(); // r1 took 0 from the ring; it stands before the lock
    let r2 = thread::spawn({
        let c = c.clone();
        move || c.recv(None).ok()
    });
    until(&c, |i| !i.recvq.is_empty());
    release();
    assert_eq!(r1.join().unwrap(), Some(0));
    assert!(s1.join().unwrap());
    {
        let inner = c.lock();
        assert!(
            inner.recvq.is_empty(),
            "a receiver still waits beside a ring with a value"
        );
    }
    assert_eq!(r2.join().unwrap(), Some(1));
    assert_eq!(c.len(), 0);
}
