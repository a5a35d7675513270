//! Learning Go, ch. 12, "Use the context to terminate goroutines": `countTo` streams numbers
//! on a channel until the reader is done; cancelling the context stops the producer, so
//! breaking out of the loop early leaks nothing.
//!
//! Run: `cargo run --example ch12_count_to`. Prints 0..=5, then the goroutine count before,
//! during and after: the producer is gone after `cancel`.
//!
//! (In gort the producer would also stop when the receiver is dropped — a send with no
//! receivers left returns `Err` — but the context is the pattern that works in Go too.)

use std::time::{Duration, Instant};

use gort::chan;
use gort::chan::Receiver;
use gort::context::Context;

fn count_to(ctx: &Context, max: u32) -> Receiver<u32> {
    let (tx, rx) = chan::<u32>(0);
    let ctx = ctx.clone();
    gort::go!(move || {
        // `tx` drops when this returns: Go's `defer close(ch)`.
        for i in 0..max {
            gort::select! {
                recv(ctx.done()) -> _ => return,
                send(tx, i) -> res => if res.is_err() { return },
            }
        }
    });
    rx
}

#[gort::main]
fn main() {
    let before = gort::num_goroutines();
    let (ctx, cancel) = Context::background().with_cancel();
    let ch = count_to(&ctx, 10);
    for i in &ch {
        if i > 5 {
            break;
        }
        println!("{i}");
    }
    let during = gort::num_goroutines();
    cancel.cancel(); // Go: defer cancel()
                     // The producer sees ctx.done() and returns (allow it a moment to be scheduled).
    let deadline = Instant::now() + Duration::from_secs(10);
    while gort::num_goroutines() > before && Instant::now() < deadline {
        gort::time::sleep(Duration::from_millis(1));
    }
    let after = gort::num_goroutines();
    println!("goroutines: before {before}, during {during}, after cancel {after}");
    drop(ch);
}
