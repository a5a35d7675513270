//! `gort::std::sync::mpsc`: std's channels on gort's channel core. Every test runs twice
//! (see `common::both!`): on the test's plain thread and inside a goroutine.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gort::std::sync::mpsc::{
    self, channel, sync_channel, Receiver, RecvError, RecvTimeoutError, SendError, Sender,
    SyncSender, TryRecvError, TrySendError,
};
use gort::std::sync::Arc;
use gort::std::thread;

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// Compile-time: std's shapes; the error types are std's own.
#[allow(dead_code)]
fn static_shapes() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Sender<u8>>();
    sync::<Sender<u8>>();
    send::<SyncSender<u8>>();
    sync::<SyncSender<u8>>();
    send::<Receiver<u8>>();
    let _: std::sync::mpsc::RecvError = RecvError;
    let _: std::sync::mpsc::SendError<u8> = SendError(1);
    let _: std::sync::mpsc::TrySendError<u8> = TrySendError::Disconnected(1);
    let _: std::sync::mpsc::TryRecvError = TryRecvError::Disconnected;
    let _: std::sync::mpsc::RecvTimeoutError = RecvTimeoutError::Disconnected;
    let _: mpsc::Iter<'static, u8>;
    let _: mpsc::TryIter<'static, u8>;
    let _: mpsc::IntoIter<u8>;
}

crate::both! {
    /// Many producers, one consumer: every value arrives, in order per producer.
    fn channel_many_producers() {
        let (tx, rx) = channel();
        let n = common::stress(500);
        let hs: Vec<_> = (0..4)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..n {
                        tx.send((p, i)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0; 4];
        for (p, i) in rx.iter() {
            assert_eq!(next[p], i, "producer {p} out of order");
            next[p] += 1;
        }
        assert_eq!(next, [n; 4]);
        for h in hs {
            h.join().unwrap();
        }
    }

    /// A `&Sender` shared by several goroutines (Sender is Sync, as std's since 1.72).
    fn shared_sender() {
        let (tx, rx) = channel();
        thread::scope(|s| {
            for i in 0..4 {
                let tx = &tx;
                s.spawn(move || tx.send(i).unwrap());
            }
        });
        drop(tx);
        let mut got: Vec<i32> = rx.into_iter().collect();
        got.sort();
        assert_eq!(got, [0, 1, 2, 3]);
    }

    /// Disconnection, seen from each side, with std's variants and messages.
    fn disconnection() {
        let (tx, rx) = channel::<u32>();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(1), "buffered values are drained first");
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Disconnected));
        assert_eq!(RecvError.to_string(), "receiving on a closed channel");

        let (tx, rx) = channel();
        drop(rx);
        assert_eq!(tx.send(5), Err(SendError(5)), "the value is handed back");
        let (stx, srx) = sync_channel(1);
        drop(srx);
        assert_eq!(stx.send(6), Err(SendError(6)));
        assert_eq!(stx.try_send(7), Err(TrySendError::Disconnected(7)));
    }

    /// sync_channel(0) is a rendezvous: a send waits for a receiver; try_send is Full
    /// unless one is waiting.
    fn rendezvous() {
        let (tx, rx) = sync_channel::<u32>(0);
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        let done = Arc::new(AtomicUsize::new(0));
        let d2 = Arc::clone(&done);
        let h = thread::spawn(move || {
            tx.send(2).unwrap();
            d2.store(1, Ordering::SeqCst);
            tx
        });
        thread::sleep(Duration::from_millis(20));
        assert_eq!(done.load(Ordering::SeqCst), 0, "send returned with no receiver");
        assert_eq!(rx.recv(), Ok(2));
        let tx = h.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
        // A receiver waiting: try_send succeeds.
        let r = thread::spawn(move || rx.recv());
        let t = Instant::now();
        loop {
            match tx.try_send(3) {
                Ok(()) => break,
                Err(TrySendError::Full(_)) if t.elapsed() < Duration::from_secs(30) => {
                    thread::yield_now()
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(r.join().unwrap(), Ok(3));
    }

    /// A bounded channel parks its sender while full; a receiver drop wakes it with its
    /// value handed back.
    fn bounded_blocks_and_disconnects() {
        let (tx, rx) = sync_channel(2);
        tx.send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        let t2 = tx.clone();
        let blocked = thread::spawn(move || t2.send(4));
        thread::sleep(Duration::from_millis(10));
        assert!(!blocked.is_finished());
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(blocked.join().unwrap(), Ok(()));
        let t3 = tx.clone();
        let blocked = thread::spawn(move || t3.send(5));
        thread::sleep(Duration::from_millis(10));
        drop(rx);
        assert_eq!(blocked.join().unwrap(), Err(SendError(5)));
    }

    /// iter, try_iter and into_iter.
    fn iterators() {
        let (tx, rx) = channel();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rx.try_iter().next(), None);
        let h = thread::spawn(move || {
            for i in 10..13 {
                tx.send(i).unwrap();
                thread::sleep(Duration::from_millis(1));
            }
        });
        let mut got = Vec::new();
        for v in &rx {
            got.push(v);
        }
        assert_eq!(got, [10, 11, 12]);
        h.join().unwrap();
        let (tx, rx) = sync_channel(4);
        tx.send('a').unwrap();
        drop(tx);
        assert_eq!(rx.into_iter().collect::<String>(), "a");
    }

    /// Dropping the Receiver drops the values still buffered, at once, while senders are
    /// still alive (std's behaviour).
    fn receiver_drop_drops_buffered_values() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        let (stx, srx) = sync_channel(8);
        for _ in 0..5 {
            tx.send(Counted(Arc::clone(&drops))).unwrap();
            stx.send(Counted(Arc::clone(&drops))).unwrap();
        }
        drop(rx);
        assert_eq!(drops.load(Ordering::SeqCst), 5);
        drop(srx);
        assert_eq!(drops.load(Ordering::SeqCst), 10);
        let e = tx.send(Counted(Arc::clone(&drops))).unwrap_err();
        drop(e);
        assert_eq!(drops.load(Ordering::SeqCst), 11);
        drop((tx, stx));
    }

    /// Debug is std's (no contents).
    fn debug_formats() {
        let (tx, rx) = channel::<u8>();
        let (stx, _srx) = sync_channel::<u8>(1);
        assert_eq!(format!("{tx:?} {stx:?} {rx:?}"), "Sender { .. } SyncSender { .. } Receiver { .. }");
        assert_eq!(format!("{:?}", TrySendError::Full(1)), "TrySendError::Full(..)");
    }

    /// An mpsc Receiver can be used in gort's select! through as_gort().
    fn usable_in_select() {
        let (tx, rx) = channel();
        tx.send(9).unwrap();
        let v = gort::select! {
            recv(rx.as_gort()) -> v => v.unwrap(),
            recv(gort::time::after(Duration::from_secs(30))) -> _ => 0,
        };
        assert_eq!(v, 9);
    }
}
