//! Learning Go, ch. 12, exercise 1: three goroutines share a channel; the first two each
//! write 10 numbers, the third reads and prints them all. The function returns once every
//! value is printed, and no goroutine leaks.
//!
//! Run: `cargo run --example ch12_exercise1`. Prints 20 lines `got N` (the two writers'
//! values interleave), a summary, and the goroutine count after (1: only main).

use gort::chan;
use gort::sync::WaitGroup;

fn three_goroutines() -> Vec<u32> {
    let (tx, rx) = chan::<u32>(0);
    let writers = WaitGroup::new();
    for w in 0..2u32 {
        let tx = tx.clone();
        writers.go(move || {
            for i in 0..10 {
                tx.send(w * 100 + i).unwrap();
            }
        });
    }
    // Close the channel once both writers are done (dropping the last Sender would too).
    gort::go!(move || {
        writers.wait();
        tx.close();
    });
    let reader = gort::go!(move || {
        let mut seen = Vec::new();
        for v in &rx {
            println!("got {v}");
            seen.push(v);
        }
        seen
    });
    reader.join().unwrap()
}

#[gort::main]
fn main() {
    let mut seen = three_goroutines();
    seen.sort();
    println!("printed {} values: {seen:?}", seen.len());
    while gort::num_goroutines() > 1 {
        gort::yield_now();
    }
    println!("goroutines after: {}", gort::num_goroutines());
}
