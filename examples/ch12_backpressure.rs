//! Learning Go, ch. 12, "Implement backpressure": a `PressureGauge` — a buffered channel of
//! tokens — limits how many requests run at once and rejects the rest immediately (a select
//! with `default`) instead of letting work pile up.
//!
//! Run: `cargo run --example ch12_backpressure`. A small load generator fires 8 requests at
//! a gauge with room for 3 while they are all held in flight, then a second wave after they
//! finish: the first wave shows 3 accepted and 5 rejected, the second wave 3 accepted.

use std::sync::Arc;

use gort::chan;
use gort::chan::{Receiver, Sender};
use gort::sync::{Mutex, WaitGroup};

struct PressureGauge {
    /// Holds one token per request allowed to run.
    ch: (Sender<()>, Receiver<()>),
}

#[derive(Debug)]
struct NoCapacity;

impl std::fmt::Display for NoCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no more capacity")
    }
}

impl PressureGauge {
    fn new(limit: usize) -> PressureGauge {
        let (tx, rx) = chan::<()>(limit);
        for _ in 0..limit {
            tx.send(()).unwrap();
        }
        PressureGauge { ch: (tx, rx) }
    }

    fn process(&self, f: impl FnOnce()) -> Result<(), NoCapacity> {
        gort::select! {
            recv(self.ch.1) -> _ => {
                f();
                self.ch.0.send(()).unwrap();
                Ok(())
            },
            default => Err(NoCapacity),
        }
    }
}

/// Fires `n` concurrent requests; every accepted request holds its token until `release`
/// is closed. Returns (accepted, rejected).
fn wave(pg: &Arc<PressureGauge>, n: usize, hold: bool) -> (usize, usize) {
    let (release_tx, release_rx) = chan::<()>(0);
    let (started_tx, started_rx) = chan::<()>(n);
    let outcomes = Arc::new(Mutex::new((0, 0)));
    let wg = WaitGroup::new();
    for _ in 0..n {
        let (pg, release_rx, started_tx, outcomes) = (
            pg.clone(),
            release_rx.clone(),
            started_tx.clone(),
            outcomes.clone(),
        );
        wg.go(move || {
            let r = pg.process(|| {
                started_tx.send(()).unwrap();
                if hold {
                    let _ = release_rx.recv(); // "doThingThatShouldBeLimited"
                }
            });
            let mut o = outcomes.lock();
            match r {
                Ok(()) => o.0 += 1,
                Err(NoCapacity) => {
                    o.1 += 1;
                    started_tx.send(()).unwrap();
                }
            }
        });
    }
    // Every request has either started its work or been rejected...
    for _ in 0..n {
        started_rx.recv().unwrap();
    }
    // ...then let the held ones finish.
    drop(release_tx);
    wg.wait();
    let o = *outcomes.lock();
    o
}

#[gort::main]
fn main() {
    let pg = Arc::new(PressureGauge::new(3));
    let (ok, rejected) = wave(&pg, 8, true);
    println!(
        "wave 1 (8 requests held in flight): {ok} accepted, {rejected} rejected: {NoCapacity}"
    );
    let (ok, rejected) = wave(&pg, 3, false);
    println!("wave 2 (3 requests): {ok} accepted, {rejected} rejected");
}
