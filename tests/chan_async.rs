//! Channel futures: `Receiver::recv_async` and `Sender::send_async` against goroutines, plain
//! threads, `select!` and the dynamic `Select` on the other end; buffered, unbuffered and
//! unbounded channels; close and every Receiver gone while a future waits; cancellation
//! (a dropped future leaves no waiter behind and loses or duplicates no value); a new waker
//! between polls; FIFO places kept across polls; many futures on tokio and on `block_on`;
//! an exactly-once stress mixing futures with blocking operations and selects.

mod common;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use gort::chan::{self, RecvError, Select, SendError};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (c.clone(), Waker::from(c))
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn poll<F: Future>(f: Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(w))
}

/// A value that counts its drops (to see values neither lost nor dropped twice).
struct Tracked(u32, Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits until the goroutine named `name` is parked with `state` (e.g. "chan receive"): it
/// has left its entry in a wait queue.
fn wait_parked(name: &str, state: &str) {
    let needle = format!("\"name\":\"{name}\",\"state\":\"{state}\"");
    for _ in 0..20_000 {
        if gort::dump_json().contains(&needle) {
            return;
        }
        gort::time::sleep(Duration::from_millis(1));
    }
    panic!("goroutine {name} never parked in {state}");
}

fn named<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> gort::JoinHandle<T> {
    gort::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawn")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

const CAPS: [usize; 3] = [0, 3, usize::MAX];

fn channel<T>(cap: usize) -> (chan::Sender<T>, chan::Receiver<T>) {
    if cap == usize::MAX {
        chan::unbounded()
    } else {
        chan::chan(cap)
    }
}

// ---------------------------------------------------------------------------------------
// Futures against goroutines and threads.

fn recv_async_from(cap: usize, sender_is_thread: bool) {
    let (tx, rx) = channel::<u64>(cap);
    let send_all = move || {
        for i in 0..200 {
            tx.send(i).unwrap();
        }
    };
    let (g, t) = if sender_is_thread {
        (None, Some(std::thread::spawn(send_all)))
    } else {
        (Some(gort::spawn(send_all)), None)
    };
    let mut got = Vec::new();
    while let Ok(v) = gort::block_on(rx.recv_async()) {
        got.push(v);
    }
    assert_eq!(got, (0..200).collect::<Vec<_>>(), "cap {cap}");
    if let Some(g) = g {
        g.join().unwrap();
    }
    if let Some(t) = t {
        t.join().unwrap();
    }
}

fn send_async_to(cap: usize, receiver_is_thread: bool) {
    let (tx, rx) = channel::<u64>(cap);
    let recv_all = move || rx.iter().collect::<Vec<_>>();
    let (g, t) = if receiver_is_thread {
        (None, Some(std::thread::spawn(recv_all)))
    } else {
        (Some(gort::spawn(recv_all)), None)
    };
    for i in 0..200 {
        gort::block_on(tx.send_async(i)).unwrap();
    }
    drop(tx);
    let got = match (g, t) {
        (Some(g), _) => g.join().unwrap(),
        (_, Some(t)) => t.join().unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(got, (0..200).collect::<Vec<_>>(), "cap {cap}");
}

#[gort::test]
fn futures_in_a_goroutine_with_goroutines_and_threads_on_the_other_end() {
    for cap in CAPS {
        for thread in [false, true] {
            recv_async_from(cap, thread);
            send_async_to(cap, thread);
        }
    }
}

#[test]
fn futures_on_a_plain_thread_with_goroutines_and_threads_on_the_other_end() {
    let _w = common::watchdog(60, "futures on a plain thread");
    for cap in CAPS {
        for thread in [false, true] {
            recv_async_from(cap, thread);
            send_async_to(cap, thread);
        }
    }
}

#[test]
fn ready_at_once_without_registering() {
    let (tx, rx) = chan::chan::<u32>(2);
    let (count, w) = counting();
    assert_eq!(poll(pin!(tx.send_async(1)), &w), Poll::Ready(Ok(())));
    assert_eq!(poll(pin!(rx.recv_async()), &w), Poll::Ready(Ok(1)));
    drop(tx);
    assert_eq!(poll(pin!(rx.recv_async()), &w), Poll::Ready(Err(RecvError)));
    assert_eq!(count.get(), 0);
}

#[test]
fn futures_are_send_and_name_their_types() {
    fn is_send<T: Send>(_: &T) {}
    fn is_sync<T: Sync>(_: &T) {}
    let (tx, rx) = chan::chan::<String>(0);
    let r: chan::RecvFuture<'_, String> = rx.recv_async();
    let s: chan::SendFuture<'_, String> = tx.send_async(String::new());
    is_send(&r);
    is_send(&s);
    is_sync(&r);
    is_sync(&s);
    assert_eq!(format!("{r:?}"), "RecvFuture { state: \"Start\", .. }");
}

#[test]
#[should_panic(expected = "RecvFuture polled after it completed")]
fn polling_a_completed_future_panics() {
    let (tx, rx) = chan::chan::<u32>(1);
    tx.send(1).unwrap();
    let (_c, w) = counting();
    let mut f = pin!(rx.recv_async());
    assert_eq!(poll(f.as_mut(), &w), Poll::Ready(Ok(1)));
    let _ = poll(f.as_mut(), &w);
}

// ---------------------------------------------------------------------------------------
// Close and disconnection while a future waits.

#[test]
fn close_wakes_a_pending_recv_with_recv_error() {
    for cap in CAPS {
        let (tx, rx) = channel::<u32>(cap);
        let (count, w) = counting();
        let mut f = pin!(rx.recv_async());
        assert!(poll(f.as_mut(), &w).is_pending());
        tx.close();
        assert_eq!(count.get(), 1);
        assert_eq!(poll(f.as_mut(), &w), Poll::Ready(Err(RecvError)));
    }
}

#[test]
fn last_sender_dropped_wakes_a_pending_recv() {
    let (tx, rx) = chan::chan::<u32>(0);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(tx);
    });
    assert_eq!(gort::block_on(rx.recv_async()), Err(RecvError));
    t.join().unwrap();
}

#[test]
fn close_hands_a_pending_send_its_value_back() {
    for cap in [0, 1] {
        let (tx, rx) = chan::chan::<String>(cap);
        if cap == 1 {
            tx.send("fill".into()).unwrap();
        }
        let (count, w) = counting();
        let mut f = pin!(tx.send_async("v".to_string()));
        assert!(poll(f.as_mut(), &w).is_pending());
        tx.close();
        assert_eq!(count.get(), 1);
        assert_eq!(
            poll(f.as_mut(), &w),
            Poll::Ready(Err(SendError("v".to_string())))
        );
        // Buffered values are still received after close.
        if cap == 1 {
            assert_eq!(rx.recv().as_deref(), Ok("fill"));
        }
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

#[test]
fn send_async_on_a_closed_channel_returns_the_value() {
    let (tx, rx) = chan::chan::<u32>(1);
    tx.close();
    assert_eq!(gort::block_on(tx.send_async(3)), Err(SendError(3)));
    drop(rx);
    let (tx, rx) = chan::chan::<u32>(0);
    drop(rx);
    assert_eq!(gort::block_on(tx.send_async(4)), Err(SendError(4)));
}

#[test]
fn every_receiver_gone_hands_a_pending_send_its_value_back() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (count, w) = counting();
    let mut f = pin!(tx.send_async(9));
    assert!(poll(f.as_mut(), &w).is_pending());
    let t = std::thread::spawn(move || drop(rx));
    t.join().unwrap();
    assert_eq!(count.get(), 1);
    assert_eq!(poll(f.as_mut(), &w), Poll::Ready(Err(SendError(9))));
}

// ---------------------------------------------------------------------------------------
// Cancellation.

#[test]
fn a_dropped_recv_future_leaves_no_waiter_behind() {
    for cap in [0, 2] {
        let (tx, rx) = chan::chan::<u32>(cap);
        let (count, w) = counting();
        {
            let mut f = pin!(rx.recv_async());
            assert!(poll(f.as_mut(), &w).is_pending());
        }
        // A ghost waiter would take this value (unbuffered) or be handed it.
        if cap == 0 {
            assert_eq!(tx.try_send(1), Err(chan::TrySendError::Full(1)));
        } else {
            tx.try_send(1).unwrap();
            assert_eq!(rx.len(), 1);
        }
        assert_eq!(count.get(), 0);
        // And a later receiver gets what is sent.
        let h = gort::spawn(move || rx.recv().unwrap());
        if cap == 0 {
            tx.send(2).unwrap();
            assert_eq!(h.join().unwrap(), 2);
        } else {
            assert_eq!(h.join().unwrap(), 1);
        }
    }
}

#[test]
fn a_dropped_recv_future_that_was_handed_a_value_gives_it_back() {
    // Unbuffered: the sender completed (the future had the value); the next receiver gets it.
    let (tx, rx) = chan::chan::<u32>(0);
    let (count, w) = counting();
    {
        let mut f = Box::pin(rx.recv_async());
        assert!(poll(f.as_mut(), &w).is_pending());
        let t = std::thread::spawn(move || {
            tx.send(5).unwrap();
            tx
        });
        let tx = t.join().unwrap();
        assert_eq!(count.get(), 1);
        drop(f); // never polled again
        assert_eq!(rx.len(), 1, "the value is back in the channel");
        // Over-full: a send must wait for it to be received.
        assert_eq!(tx.try_send(6), Err(chan::TrySendError::Full(6)));
    }
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(rx.len(), 0);
}

#[test]
fn a_given_back_value_keeps_its_place_before_later_ones() {
    let (tx, rx) = chan::chan::<u32>(2);
    let (_c, w) = counting();
    let mut f = Box::pin(rx.recv_async());
    assert!(poll(f.as_mut(), &w).is_pending());
    tx.send(1).unwrap(); // handed to the future
    tx.send(2).unwrap();
    tx.send(3).unwrap(); // the buffer is full
    drop(f); // 1 goes back to the front: [1, 2, 3], one over capacity
    assert_eq!(rx.len(), 3);
    let blocked = {
        let tx = tx.clone();
        std::thread::spawn(move || tx.send(4).unwrap())
    };
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Ok(3));
    assert_eq!(rx.recv(), Ok(4));
    blocked.join().unwrap();
    assert_eq!(tx.try_send(5), Ok(()));
}

#[gort::test]
fn a_given_back_value_goes_to_the_next_waiting_receiver() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (_c, w) = counting();
    let mut f = Box::pin(rx.recv_async());
    assert!(poll(f.as_mut(), &w).is_pending());
    let rx2 = rx.clone();
    let g = named("next-receiver", move || rx2.recv());
    wait_parked("next-receiver", "chan receive");
    tx.send(7).unwrap(); // to the future, first in line
    drop(f);
    assert_eq!(g.join().unwrap(), Ok(7));
}

#[test]
fn a_dropped_send_future_leaves_no_waiter_and_drops_its_unsent_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::chan::<Tracked>(0);
    let (_c, w) = counting();
    {
        let mut f = pin!(tx.send_async(Tracked(1, drops.clone())));
        assert!(poll(f.as_mut(), &w).is_pending());
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped with the future");
    assert!(matches!(rx.try_recv(), Err(chan::TryRecvError::Empty)));
    // A later receive waits for a later sender.
    let t = std::thread::spawn(move || rx.recv().map(|v| v.0));
    tx.send(Tracked(2, drops.clone())).unwrap();
    assert_eq!(t.join().unwrap(), Ok(2));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn a_dropped_send_future_whose_value_was_taken_sent_it_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::chan::<Tracked>(0);
    let (count, w) = counting();
    let mut f = Box::pin(tx.send_async(Tracked(1, drops.clone())));
    assert!(poll(f.as_mut(), &w).is_pending());
    let got = std::thread::spawn(move || rx.recv().unwrap())
        .join()
        .unwrap();
    assert_eq!(count.get(), 1);
    drop(f);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the receiver owns it");
    assert_eq!(got.0, 1);
    drop(got);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn cancel_hands_back_an_unsent_value_and_nothing_once_sent() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (_c, w) = counting();
    // Never polled.
    assert_eq!(pin!(tx.send_async(1)).cancel(), Some(1));
    // Waiting.
    let mut f = pin!(tx.send_async(2));
    assert!(poll(f.as_mut(), &w).is_pending());
    assert_eq!(f.as_mut().cancel(), Some(2));
    assert!(matches!(rx.try_recv(), Err(chan::TryRecvError::Empty)));
    // Taken by a receiver.
    let mut f = Box::pin(tx.send_async(3));
    assert!(poll(f.as_mut(), &w).is_pending());
    assert_eq!(rx.recv(), Ok(3));
    assert_eq!(f.as_mut().cancel(), None);
    // Left by close.
    let mut f = Box::pin(tx.send_async(4));
    assert!(poll(f.as_mut(), &w).is_pending());
    tx.close();
    assert_eq!(f.as_mut().cancel(), Some(4));
}

// ---------------------------------------------------------------------------------------
// Wakers and FIFO places.

#[test]
fn a_new_waker_replaces_the_old_one() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (a, wa) = counting();
    let (b, wb) = counting();
    let mut f = pin!(rx.recv_async());
    assert!(poll(f.as_mut(), &wa).is_pending());
    assert!(poll(f.as_mut(), &wb).is_pending());
    assert!(poll(f.as_mut(), &wb).is_pending()); // the same waker: nothing changes
    tx.try_send(1).unwrap();
    assert_eq!((a.get(), b.get()), (0, 1));
    assert_eq!(poll(f.as_mut(), &wa), Poll::Ready(Ok(1)));

    let mut s = pin!(tx.send_async(2));
    assert!(poll(s.as_mut(), &wa).is_pending());
    assert!(poll(s.as_mut(), &wb).is_pending());
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!((a.get(), b.get()), (0, 2));
    assert_eq!(poll(s.as_mut(), &wb), Poll::Ready(Ok(())));
}

#[test]
fn futures_keep_their_fifo_place_across_polls() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (_a, wa) = counting();
    let (_b, wb) = counting();
    let mut f1 = pin!(rx.recv_async());
    let mut f2 = pin!(rx.recv_async());
    assert!(poll(f1.as_mut(), &wa).is_pending());
    assert!(poll(f2.as_mut(), &wa).is_pending());
    assert!(poll(f1.as_mut(), &wb).is_pending()); // new waker: same place
    assert!(poll(f2.as_mut(), &wb).is_pending());
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(poll(f1.as_mut(), &wb), Poll::Ready(Ok(1)));
    assert_eq!(poll(f2.as_mut(), &wb), Poll::Ready(Ok(2)));

    let mut s1 = pin!(tx.send_async(10));
    let mut s2 = pin!(tx.send_async(20));
    assert!(poll(s1.as_mut(), &wa).is_pending());
    assert!(poll(s2.as_mut(), &wa).is_pending());
    assert!(poll(s1.as_mut(), &wb).is_pending());
    assert_eq!(rx.try_recv(), Ok(10));
    assert_eq!(rx.try_recv(), Ok(20));
}

#[gort::test]
fn a_future_ahead_of_a_goroutine_stays_ahead() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (_a, wa) = counting();
    let (_b, wb) = counting();
    let mut f = pin!(rx.recv_async());
    assert!(poll(f.as_mut(), &wa).is_pending());
    let rx2 = rx.clone();
    let g = named("behind-a-future", move || rx2.recv());
    wait_parked("behind-a-future", "chan receive");
    assert!(poll(f.as_mut(), &wb).is_pending());
    tx.send(1).unwrap();
    assert_eq!(poll(f.as_mut(), &wb), Poll::Ready(Ok(1)));
    tx.send(2).unwrap();
    assert_eq!(g.join().unwrap(), Ok(2));

    // And a goroutine ahead of a future stays ahead.
    let rx2 = rx.clone();
    let g = named("ahead-of-a-future", move || rx2.recv());
    wait_parked("ahead-of-a-future", "chan receive");
    let mut f = pin!(rx.recv_async());
    assert!(poll(f.as_mut(), &wa).is_pending());
    tx.send(3).unwrap();
    assert_eq!(g.join().unwrap(), Ok(3));
    assert!(poll(f.as_mut(), &wa).is_pending());
    tx.send(4).unwrap();
    assert_eq!(poll(f.as_mut(), &wa), Poll::Ready(Ok(4)));
}

// ---------------------------------------------------------------------------------------
// select! and the dynamic Select on the other end.

#[gort::test]
fn unbuffered_hand_off_with_select_macro() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (_q_tx, q_rx) = chan::chan::<u32>(0);
    // A waiting send future; the select receives from it.
    let (count, w) = counting();
    let mut s = pin!(tx.send_async(1));
    assert!(poll(s.as_mut(), &w).is_pending());
    let got = gort::select! {
        recv(rx) -> v => v,
        recv(q_rx) -> _ => unreachable!(),
    };
    assert_eq!(got, Ok(1));
    assert_eq!(count.get(), 1);
    assert_eq!(poll(s.as_mut(), &w), Poll::Ready(Ok(())));

    // A waiting receive future; the select sends to it.
    let mut r = pin!(rx.recv_async());
    assert!(poll(r.as_mut(), &w).is_pending());
    gort::select! {
        send(tx, 2) -> res => res.unwrap(),
        recv(q_rx) -> _ => unreachable!(),
    }
    assert_eq!(poll(r.as_mut(), &w), Poll::Ready(Ok(2)));

    // A blocked select, then a future on the other end.
    let (tx2, rx2) = (tx.clone(), rx.clone());
    let q = q_rx.clone();
    let g = named("select-recv", move || {
        gort::select! {
            recv(rx2) -> v => v,
            recv(q) -> _ => unreachable!(),
        }
    });
    wait_parked("select-recv", "select");
    gort::block_on(tx.send_async(3)).unwrap();
    assert_eq!(g.join().unwrap(), Ok(3));
    let q = q_rx.clone();
    let g = named("select-send", move || {
        gort::select! {
            send(tx2, 4) -> res => res,
            recv(q) -> _ => unreachable!(),
        }
    });
    wait_parked("select-send", "select");
    assert_eq!(gort::block_on(rx.recv_async()), Ok(4));
    g.join().unwrap().unwrap();
}

#[gort::test]
fn unbuffered_hand_off_with_dynamic_select() {
    let (tx, rx) = chan::chan::<u32>(0);
    let (_c, w) = counting();

    // A waiting send future; a dynamic select receives (the future is not reserved: the
    // operation takes its value).
    let mut s = pin!(tx.send_async(1));
    assert!(poll(s.as_mut(), &w).is_pending());
    let mut sel = Select::new();
    let i = sel.recv(&rx);
    let op = sel.select();
    assert_eq!(op.index(), i);
    assert_eq!(op.recv(&rx), Ok(1));
    assert_eq!(poll(s.as_mut(), &w), Poll::Ready(Ok(())));

    // A waiting receive future; a dynamic select sends.
    let mut r = pin!(rx.recv_async());
    assert!(poll(r.as_mut(), &w).is_pending());
    let mut sel = Select::new();
    sel.send(&tx);
    let op = sel.select();
    op.send(&tx, 2).unwrap();
    assert_eq!(poll(r.as_mut(), &w), Poll::Ready(Ok(2)));

    // A selected operation dropped: the select had taken the future's value at commit (so
    // that its operation holds it); the drop gives the value back to the channel, where the
    // next receive finds it. The future's send is complete.
    let mut s = pin!(tx.send_async(3));
    assert!(poll(s.as_mut(), &w).is_pending());
    let mut sel = Select::new();
    sel.recv(&rx);
    drop(sel.select());
    assert_eq!(poll(s.as_mut(), &w), Poll::Ready(Ok(())));
    assert_eq!(rx.recv(), Ok(3));

    // A blocked dynamic select receiving; a send future completes with it.
    let rx2 = rx.clone();
    let g = named("dyn-recv", move || {
        let mut sel = Select::new();
        sel.recv(&rx2);
        sel.select().recv(&rx2)
    });
    wait_parked("dyn-recv", "select");
    gort::block_on(tx.send_async(4)).unwrap();
    assert_eq!(g.join().unwrap(), Ok(4));
}

#[gort::test]
fn a_recv_future_meets_a_blocked_dynamic_select_send() {
    // The select's send on an unbuffered channel is a deferred hand-off: the future claims
    // it and waits for the value the select's caller then sends.
    let (tx, rx) = chan::chan::<u32>(0);
    let tx2 = tx.clone();
    let g = named("dyn-send", move || {
        let mut sel = Select::new();
        sel.send(&tx2);
        let op = sel.select();
        gort::time::sleep(Duration::from_millis(5)); // the future waits meanwhile
        op.send(&tx2, 5)
    });
    wait_parked("dyn-send", "select");
    assert_eq!(gort::block_on(rx.recv_async()), Ok(5));
    g.join().unwrap().unwrap();

    // The select drops its operation: the future receives again (from a later sender).
    let tx2 = tx.clone();
    let g = named("dyn-send-dropped", move || {
        let mut sel = Select::new();
        sel.send(&tx2);
        drop(sel.select());
        tx2.send(6)
    });
    wait_parked("dyn-send-dropped", "select");
    assert_eq!(gort::block_on(rx.recv_async()), Ok(6));
    g.join().unwrap().unwrap();

    // The future is dropped while it waits for the value: the select, if it had not yet
    // accepted the claim, waits again and pairs with a later receiver; if it had, its send
    // gives the value to the channel for a later receiver. Either way a later receiver
    // gets it (handoff.rs).
    let (proceed_tx, proceed_rx) = chan::chan::<()>(0);
    let tx2 = tx.clone();
    let g = named("dyn-send-abandoned", move || {
        let mut sel = Select::new();
        sel.send(&tx2);
        let op = sel.select();
        proceed_rx.recv().unwrap();
        op.send(&tx2, 7)
    });
    wait_parked("dyn-send-abandoned", "select");
    let (count, w) = counting();
    {
        let mut f = pin!(rx.recv_async());
        assert!(poll(f.as_mut(), &w).is_pending()); // claimed the select, waits for 7
        let (_b, wb) = counting();
        assert!(poll(f.as_mut(), &wb).is_pending()); // a new waker there too
    }
    let p = gort::go!(move || proceed_tx.send(()).unwrap());
    assert_eq!(rx.recv(), Ok(7));
    g.join().unwrap().unwrap();
    p.join().unwrap();
    assert_eq!(count.get(), 0);

    // The same, the select having accepted first (it has returned): its send gives the
    // value to the channel and returns at once.
    let (chose_tx, chose_rx) = chan::chan::<()>(0);
    let (proceed_tx, proceed_rx) = chan::chan::<()>(0);
    let tx2 = tx.clone();
    let g = named("dyn-send-accepted", move || {
        let mut sel = Select::new();
        sel.send(&tx2);
        let op = sel.select();
        chose_tx.send(()).unwrap();
        proceed_rx.recv().unwrap();
        op.send(&tx2, 8)
    });
    wait_parked("dyn-send-accepted", "select");
    {
        let mut f = pin!(rx.recv_async());
        assert!(poll(f.as_mut(), &w).is_pending());
        chose_rx.recv().unwrap();
    }
    proceed_tx.send(()).unwrap();
    g.join().unwrap().unwrap();
    assert_eq!(rx.try_recv(), Ok(8));
    assert_eq!(count.get(), 0);
}

// ---------------------------------------------------------------------------------------
// Many futures: tokio tasks and block_on.

#[gort::test]
fn many_tokio_tasks_meet_goroutines() {
    let rt = tokio_rt();
    let n = 300u64;
    for cap in CAPS {
        // Tasks receive, goroutines send.
        let (tx, rx) = channel::<u64>(cap);
        let rx = Arc::new(rx);
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(async move { rx.recv_async().await.unwrap() })
            })
            .collect();
        let senders: Vec<_> = (0..4)
            .map(|k| {
                let tx = tx.clone();
                gort::spawn(move || {
                    for i in (k..n).step_by(4) {
                        tx.send(i).unwrap();
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let mut got: Vec<u64> = tasks
            .into_iter()
            .map(|t| gort::block_on(t).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "cap {cap}");

        // Tasks send, goroutines receive.
        let tx = Arc::new(tx);
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let tx = tx.clone();
                rt.spawn(async move { tx.send_async(i).await.unwrap() })
            })
            .collect();
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                gort::spawn(move || (0..n / 4).map(|_| rx.recv().unwrap()).collect::<Vec<_>>())
            })
            .collect();
        for t in tasks {
            gort::block_on(t).unwrap();
        }
        let mut got: Vec<u64> = receivers
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "cap {cap}");
    }
    gort::blocking(move || rt.shutdown_timeout(Duration::from_secs(5)));
}

#[gort::test]
fn tokio_tasks_dropping_pending_recv_futures_lose_nothing() {
    // A tokio task polls a recv future once, yields (a goroutine may hand it a value
    // meanwhile), then drops it, or else waits for it with a timeout that may drop it too.
    let rt = tokio_rt();
    for cap in CAPS {
        let (tx, rx) = channel::<u64>(cap);
        let n = common::stress(300) as u64;
        let task = rt.spawn(async move {
            let mut got = Vec::new();
            for round in 0u64.. {
                let mut f = pin!(rx.recv_async());
                let first = poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
                let r = match first {
                    Poll::Ready(r) => Some(r),
                    Poll::Pending => {
                        tokio::task::yield_now().await;
                        if round % 2 == 0 {
                            None // dropped: a handed value goes back
                        } else {
                            tokio::time::timeout(Duration::from_millis(1), f).await.ok()
                        }
                    }
                };
                match r {
                    Some(Ok(v)) => got.push(v),
                    Some(Err(RecvError)) => return got,
                    None => {}
                }
            }
            unreachable!()
        });
        for i in 0..n {
            if i % 2 == 0 {
                gort::time::sleep(Duration::from_micros(20));
            }
            tx.send(i).unwrap();
        }
        drop(tx);
        let got = gort::block_on(task).unwrap();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "cap {cap}");
    }
    gort::blocking(move || rt.shutdown_timeout(Duration::from_secs(5)));
}

#[gort::test]
fn many_goroutines_block_on_channel_futures() {
    let n = 500u64;
    for cap in CAPS {
        let (tx, rx) = channel::<u64>(cap);
        let receivers: Vec<_> = (0..n)
            .map(|_| {
                let rx = rx.clone();
                gort::spawn(move || gort::block_on(rx.recv_async()).unwrap())
            })
            .collect();
        let senders: Vec<_> = (0..n)
            .map(|i| {
                let tx = tx.clone();
                gort::spawn(move || gort::block_on(tx.send_async(i)).unwrap())
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let mut got: Vec<u64> = receivers.into_iter().map(|r| r.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "cap {cap}");
    }
}

// ---------------------------------------------------------------------------------------
// Exactly once, everything mixed.

/// A tiny xorshift for the stress choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Sends `v` with a future that is polled once and then, at random, cancelled (its value
/// comes back and is sent again) or driven by `block_on` (another waker: a re-registration
/// in place).
fn send_maybe_cancelled(tx: &chan::Sender<u64>, mut v: u64, rng: &mut Rng) {
    let (_c, w) = counting();
    loop {
        let mut f = pin!(tx.send_async(v));
        match poll(f.as_mut(), &w) {
            Poll::Ready(r) => return r.unwrap(),
            Poll::Pending if rng.below(2) == 0 => match f.as_mut().cancel() {
                Some(back) => v = back,
                None => return, // taken meanwhile
            },
            Poll::Pending => return gort::block_on(f).unwrap(),
        }
    }
}

/// Receives with a future that may be dropped after one poll; `None` once closed.
fn recv_maybe_cancelled(rx: &chan::Receiver<u64>, rng: &mut Rng) -> Option<u64> {
    let (_c, w) = counting();
    loop {
        let mut f = pin!(rx.recv_async());
        match poll(f.as_mut(), &w) {
            Poll::Ready(r) => return r.ok(),
            Poll::Pending if rng.below(2) == 0 => {
                gort::yield_now(); // a sender may hand it a value now, which goes back
                continue; // dropped
            }
            Poll::Pending => return gort::block_on(f).ok(),
        }
    }
}

fn stress_round(cap: usize, seed: u64, rt: &tokio::runtime::Handle) {
    let per = common::stress(400) as u64;
    let (tx, rx) = channel::<u64>(cap);
    // Never ready: the selects' other cases (the test keeps the other ends, unused).
    let (_quiet_keep_tx, quiet_rx) = chan::chan::<u64>(0);
    let (quiet_tx, _quiet_keep_rx) = chan::chan::<u64>(0);
    let got = Arc::new(Mutex::new(Vec::new()));
    // Producers: each sends its own range, with a different operation.
    let mut producers = Vec::new();
    for p in 0..4u64 {
        let tx = tx.clone();
        let quiet_rx = quiet_rx.clone();
        let mut rng = Rng((seed ^ (p + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        let f = move || {
            for i in p * per..(p + 1) * per {
                match p {
                    0 => tx.send(i).unwrap(),
                    1 => send_maybe_cancelled(&tx, i, &mut rng),
                    2 => gort::select! {
                        send(tx, i) -> r => r.unwrap(),
                        recv(quiet_rx) -> _ => unreachable!(),
                    },
                    _ => {
                        let mut sel = Select::new();
                        sel.send(&tx);
                        sel.recv(&quiet_rx);
                        let op = sel.select();
                        assert_eq!(op.index(), 0);
                        op.send(&tx, i).unwrap();
                    }
                }
                if rng.below(8) == 0 {
                    gort::yield_now();
                }
            }
        };
        if p == 1 && seed % 2 == 0 {
            producers.push(Err(std::thread::spawn(f)));
        } else {
            producers.push(Ok(gort::spawn(f)));
        }
    }
    // A tokio task sends too, with timeouts that cancel and resend.
    let tokio_base = 4 * per;
    let tokio_tx = tx.clone();
    let tokio_prod = rt.spawn(async move {
        for i in tokio_base..tokio_base + per {
            let mut f = pin!(tokio_tx.send_async(i));
            loop {
                match tokio::time::timeout(Duration::from_micros(30), f.as_mut()).await {
                    Ok(r) => break r.unwrap(),
                    Err(_) => {
                        if let Some(v) = f.as_mut().cancel() {
                            f.set(tokio_tx.send_async(v));
                        } else {
                            break; // sent just before the timeout
                        }
                    }
                }
            }
        }
    });
    drop(tx);
    // Consumers: each with a different operation, until closed.
    let mut consumers = Vec::new();
    for c in 0..4u64 {
        let rx = rx.clone();
        let got = got.clone();
        let quiet_tx = quiet_tx.clone();
        let mut rng = Rng((seed ^ (c + 11).wrapping_mul(0xD1B5_4A32_D192_ED03)) | 1);
        consumers.push(gort::spawn(move || {
            let mut mine = Vec::new();
            loop {
                let v = match c {
                    0 => rx.recv().ok(),
                    1 => recv_maybe_cancelled(&rx, &mut rng),
                    2 => gort::select! {
                        recv(rx) -> v => v.ok(),
                        send(quiet_tx, 0) -> _ => unreachable!(),
                    },
                    _ => {
                        let mut sel = Select::new();
                        sel.recv(&rx);
                        let op = sel.select();
                        op.recv(&rx).ok()
                    }
                };
                match v {
                    Some(v) => mine.push(v),
                    None => break,
                }
            }
            got.lock().unwrap().extend(mine);
        }));
    }
    let tokio_got = got.clone();
    let tokio_cons = rt.spawn(async move {
        let mut mine = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_micros(40), rx.recv_async()).await {
                Ok(Ok(v)) => mine.push(v),
                Ok(Err(RecvError)) => break,
                Err(_) => {} // dropped: a handed value goes back
            }
        }
        tokio_got.lock().unwrap().extend(mine);
    });
    for p in producers {
        match p {
            Ok(g) => g.join().unwrap(),
            Err(t) => t.join().unwrap(),
        }
    }
    gort::block_on(tokio_prod).unwrap();
    for c in consumers {
        c.join().unwrap();
    }
    gort::block_on(tokio_cons).unwrap();
    drop(quiet_tx);
    let mut got = std::mem::take(&mut *got.lock().unwrap());
    got.sort_unstable();
    let n = 5 * per;
    assert_eq!(got.len() as u64, n, "cap {cap} seed {seed}: count");
    assert!(
        got.iter().copied().eq(0..n),
        "cap {cap} seed {seed}: every value exactly once"
    );
}

#[gort::test]
fn exactly_once_with_futures_blocking_operations_and_selects() {
    let rt = tokio_rt();
    let seed0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    for (k, cap) in [0, 1, 4, usize::MAX].into_iter().enumerate() {
        let seed = seed0.wrapping_add(k as u64 * 0x1000_0001);
        stress_round(cap, seed, rt.handle());
    }
    gort::blocking(move || rt.shutdown_timeout(Duration::from_secs(5)));
}

#[test]
fn poll_fn_wrappers_work_too() {
    // A future used inside another (poll_fn), polled by block_on on a plain thread.
    let (tx, rx) = chan::chan::<u32>(0);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send(8).unwrap();
    });
    let mut f = Box::pin(rx.recv_async());
    let v = gort::block_on(poll_fn(|cx| f.as_mut().poll(cx)));
    assert_eq!(v, Ok(8));
    t.join().unwrap();
}

/// A receive future handed a value, dropped after the close: no receive reports Closed
/// before the value is given back; a range loop waits for it (r2 item 2).
#[test]
fn future_held_value_given_back_after_close_is_received() {
    for round in 0..common::stress(20) {
        for cap in [0, 1, 4, usize::MAX] {
            let (tx, rx) = if cap == usize::MAX {
                chan::unbounded::<u32>()
            } else {
                chan::chan::<u32>(cap)
            };
            let mut cx = Context::from_waker(Waker::noop());
            let mut f = Box::pin(rx.recv_async());
            assert!(f.as_mut().poll(&mut cx).is_pending());
            tx.send(2).unwrap(); // handed to the waiting future
            tx.close();
            assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Empty), "cap {cap}");
            let rx2 = rx.clone();
            let range = gort::go!(move || rx2.iter().collect::<Vec<_>>());
            if round % 2 == 0 {
                gort::time::sleep(Duration::from_millis(1));
            }
            drop(f);
            assert_eq!(range.join().unwrap(), vec![2], "cap {cap} round {round}");
            assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Closed));
        }
    }
}

/// A future that consumes its held value after the close releases waiting receivers.
#[test]
fn future_held_value_consumed_after_close_releases_waiters() {
    let (tx, rx) = chan::chan::<u32>(1);
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = Box::pin(rx.recv_async());
    assert!(f.as_mut().poll(&mut cx).is_pending());
    tx.send(5).unwrap();
    tx.close();
    let rx2 = rx.clone();
    let waiter = gort::go!(move || rx2.recv());
    gort::time::sleep(Duration::from_millis(2));
    assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(5)));
    assert_eq!(waiter.join().unwrap(), Err(RecvError));
}
