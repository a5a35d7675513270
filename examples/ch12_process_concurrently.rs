//! Learning Go, ch. 12, "Using goroutines": `processConcurrently` — a fixed pool of worker
//! goroutines reads values from an `in` channel and writes results to an `out` channel.
//!
//! Run: `cargo run --example ch12_process_concurrently`. Prints the results (sorted: the
//! workers finish in any order) and the goroutine count afterwards.

use gort::chan;

fn process(val: i32) -> i32 {
    val * val
}

fn process_concurrently(in_vals: Vec<i32>) -> Vec<i32> {
    // create the channels
    let (in_tx, in_rx) = chan::<i32>(5);
    let (out_tx, out_rx) = chan::<i32>(5);
    // launch processing goroutines
    for _ in 0..5 {
        let (in_rx, out_tx) = (in_rx.clone(), out_tx.clone());
        gort::go!(move || {
            for val in &in_rx {
                if out_tx.send(process(val)).is_err() {
                    return;
                }
            }
        });
    }
    // load the data into the in channel in another goroutine; dropping the last Sender
    // closes `in` (Go's `close(in)`), which ends the workers' loops.
    let n = in_vals.len();
    gort::go!(move || {
        for v in in_vals {
            in_tx.send(v).unwrap();
        }
    });
    // read the data from the out channel
    let mut out: Vec<i32> = out_rx.iter().take(n).collect();
    // return the data
    out.sort();
    out
}

#[gort::main]
fn main() {
    let results = process_concurrently((1..=10).collect());
    println!("results: {results:?}");
    // The workers end once `in` is closed and drained.
    while gort::num_goroutines() > 1 {
        gort::time::sleep(std::time::Duration::from_millis(1));
    }
    println!("goroutines left: {}", gort::num_goroutines());
}
