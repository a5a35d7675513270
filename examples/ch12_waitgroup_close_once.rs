//! Learning Go, ch. 12, "Use WaitGroups": `processAndGather` — several workers write to one
//! output channel, which must be closed exactly once, after all of them are done: a separate
//! goroutine waits on the WaitGroup and closes it.
//!
//! Run: `cargo run --example ch12_waitgroup_close_once`. Prints the gathered results.

use gort::chan;
use gort::chan::Receiver;
use gort::sync::WaitGroup;

fn process_and_gather<T, R>(input: Receiver<T>, processor: fn(T) -> R, num: usize) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (out_tx, out) = chan::<R>(num);
    let wg = WaitGroup::new();
    wg.add(num);
    for _ in 0..num {
        let (input, out_tx, wg) = (input.clone(), out_tx.clone(), wg.clone());
        gort::go!(move || {
            for v in &input {
                out_tx.send(processor(v)).unwrap();
            }
            wg.done();
        });
    }
    // Close `out` once, after every worker is done. (Go needs this goroutine; in gort the
    // channel would also close when the workers' Senders drop — we keep one here to show the
    // pattern.)
    gort::go!(move || {
        wg.wait();
        out_tx.close();
    });
    out.iter().collect()
}

#[gort::main]
fn main() {
    let (tx, rx) = chan::<u32>(0);
    gort::go!(move || {
        for i in 1..=20 {
            tx.send(i).unwrap();
        }
    });
    let mut result = process_and_gather(rx, |v| v * 2, 4);
    result.sort();
    println!("gathered {} results: {result:?}", result.len());
}
