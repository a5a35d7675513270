//! Pike: fan-in with `select!` — one goroutine instead of one per input.
//!
//! Run: `cargo run --example select`. Prints ten lines from Joe and Ann as they are ready.
use std::time::Duration;

use gort::chan::Receiver;

fn boring(msg: &'static str) -> Receiver<String> {
    let (tx, rx) = gort::chan(0);
    gort::go!(move || {
        for i in 0.. {
            if tx.send(format!("{msg} {i}")).is_err() {
                return;
            }
            gort::time::sleep(Duration::from_millis(rand::random_range(0..50)));
        }
    });
    rx
}

fn fan_in(input1: Receiver<String>, input2: Receiver<String>) -> Receiver<String> {
    let (tx, rx) = gort::chan(0);
    gort::go!(move || loop {
        let s = gort::select! {
            recv(input1) -> s => s,
            recv(input2) -> s => s,
        };
        let Ok(s) = s else { return };
        if tx.send(s).is_err() {
            return;
        }
    });
    rx
}

#[gort::main]
fn main() {
    let c = fan_in(boring("Joe"), boring("Ann"));
    for _ in 0..10 {
        println!("{}", c.recv().unwrap());
    }
    println!("You're both boring; I'm leaving.");
}
