//! A Tour of Go: range and close — a sender closes the channel to say "no more values";
//! the receiver's `for v in &rx` (Go's `for v := range ch`) ends when it is drained.
//!
//! Run: `cargo run --example range_and_close`. Prints the first 10 Fibonacci numbers.
use gort::chan::Sender;

fn fibonacci(n: usize, c: Sender<u64>) {
    let (mut x, mut y) = (0, 1);
    for _ in 0..n {
        c.send(x).unwrap();
        (x, y) = (y, x + y);
    }
    c.close();
}

#[gort::main]
fn main() {
    let (tx, rx) = gort::chan::<u64>(10);
    gort::go!(fibonacci(rx.cap(), tx));
    for v in &rx {
        println!("{v}");
    }
    // After close and drain, a receive reports the channel closed (Go's `v, ok := <-c`).
    assert!(rx.recv().is_err());
}
