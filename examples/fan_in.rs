//! Pike: fan-in — multiplex two channels into one so that whoever is ready talks.
//!
//! Run: `cargo run --example fan_in`. Prints ten lines from Joe and Ann in whatever order
//! they are ready, then a count per speaker.
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
    for input in [input1, input2] {
        let tx = tx.clone();
        gort::go!(move || {
            for s in input {
                if tx.send(s).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

#[gort::main]
fn main() {
    let c = fan_in(boring("Joe"), boring("Ann"));
    let (mut joe, mut ann) = (0, 0);
    for _ in 0..10 {
        let s = c.recv().unwrap();
        if s.starts_with("Joe") {
            joe += 1
        } else {
            ann += 1
        }
        println!("{s}");
    }
    println!("You're both boring; I'm leaving. (Joe {joe}, Ann {ann})");
}
