//! Rob Pike, "Go Concurrency Patterns": channels. A goroutine talks to main over a channel;
//! each send waits for main's receive, so the two synchronise as they communicate.
//!
//! Run: `cargo run --example channels`. Prints five "You say" lines, then leaves.
use std::time::Duration;

use gort::chan::Sender;

fn boring(msg: &str, c: Sender<String>) {
    for i in 0.. {
        if c.send(format!("{msg} {i}")).is_err() {
            return; // main is gone
        }
        gort::time::sleep(Duration::from_millis(rand::random_range(0..50)));
    }
}

#[gort::main]
fn main() {
    let (tx, rx) = gort::chan::<String>(0);
    gort::go!(boring("boring!", tx));
    for _ in 0..5 {
        println!("You say: {:?}", rx.recv().unwrap());
    }
    println!("You're boring; I'm leaving.");
}
