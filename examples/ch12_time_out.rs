//! Learning Go, ch. 12, "Time out code": a generic `time_limit` runs a worker in a goroutine
//! and returns its result, or an error once the limit passes (a context with a timeout in a
//! select).
//!
//! Run: `cargo run --example ch12_time_out`. One worker finishes in time, one times out.

use std::time::Duration;

use gort::chan;
use gort::context::Context;

fn time_limit<T: Send + 'static>(
    worker: impl FnOnce() -> T + Send + 'static,
    limit: Duration,
) -> Result<T, &'static str> {
    // Buffered: the worker can finish and leave even if nobody reads any more.
    let (out_tx, out) = chan::<T>(1);
    let (ctx, _cancel) = Context::background().with_timeout(limit);
    gort::go!(move || {
        let _ = out_tx.send(worker());
    });
    gort::select! {
        recv(out) -> result => Ok(result.expect("worker sends before it ends")),
        recv(ctx.done()) -> _ => Err("work timed out"),
    }
}

#[gort::main]
fn main() {
    let fast = time_limit(
        || {
            gort::time::sleep(Duration::from_millis(1));
            42
        },
        Duration::from_secs(10),
    );
    println!("fast worker: {fast:?}");
    let slow = time_limit(
        || {
            gort::time::sleep(Duration::from_secs(2));
            7
        },
        Duration::from_millis(20),
    );
    println!("slow worker: {slow:?}");
}
