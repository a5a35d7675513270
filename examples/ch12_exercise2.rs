//! Learning Go, ch. 12, exercise 2: two goroutines each write 10 numbers to their own
//! channel; a for-select loop reads both, printing each number and who wrote it, and exits
//! after all values are read (closed channels are turned off with `None`). No leaks.
//!
//! Run: `cargo run --example ch12_exercise2`. Prints 20 lines `goroutine G: N`, then a
//! per-goroutine count.

use gort::chan;
use gort::chan::Receiver;

fn writer(id: u32) -> Receiver<u32> {
    let (tx, rx) = chan::<u32>(0);
    gort::go!(move || {
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        // `tx` drops here: the channel closes.
    });
    let _ = id;
    rx
}

#[gort::main]
fn main() {
    let mut ch1 = Some(writer(1));
    let mut ch2 = Some(writer(2));
    let mut counts = [0; 2];
    while ch1.is_some() || ch2.is_some() {
        gort::select! {
            recv(ch1.as_ref()) -> v => match v {
                Ok(v) => {
                    println!("goroutine 1: {v}");
                    counts[0] += 1;
                }
                Err(_) => ch1 = None,
            },
            recv(ch2.as_ref()) -> v => match v {
                Ok(v) => {
                    println!("goroutine 2: {v}");
                    counts[1] += 1;
                }
                Err(_) => ch2 = None,
            },
        }
    }
    println!(
        "read {} from goroutine 1, {} from goroutine 2",
        counts[0], counts[1]
    );
}
