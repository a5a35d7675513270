//! Pike: restoring sequencing — each message carries a private wait channel; a speaker
//! blocks on it until main says "go ahead", so after fan-in the speakers alternate again.
//!
//! Run: `cargo run --example sync_fan_in`. Prints Joe/Ann pairs: each round has one of each.
use std::time::Duration;

use gort::chan::{Receiver, Sender};

struct Message {
    text: String,
    wait: Sender<bool>,
}

fn boring(msg: &'static str) -> Receiver<Message> {
    let (tx, rx) = gort::chan(0);
    gort::go!(move || {
        let (wait_tx, wait_rx) = gort::chan::<bool>(0);
        for i in 0.. {
            let m = Message {
                text: format!("{msg}: {i}"),
                wait: wait_tx.clone(),
            };
            if tx.send(m).is_err() {
                return;
            }
            gort::time::sleep(Duration::from_millis(rand::random_range(0..30)));
            if wait_rx.recv().is_err() {
                return;
            }
        }
    });
    rx
}

fn fan_in(a: Receiver<Message>, b: Receiver<Message>) -> Receiver<Message> {
    let (tx, rx) = gort::chan(0);
    for input in [a, b] {
        let tx = tx.clone();
        gort::go!(move || {
            for m in input {
                if tx.send(m).is_err() {
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
    for round in 0..5 {
        let msg1 = c.recv().unwrap();
        let msg2 = c.recv().unwrap();
        println!("round {round}: {} | {}", msg1.text, msg2.text);
        assert_ne!(&msg1.text[..3], &msg2.text[..3], "one of each per round");
        msg1.wait.send(true).unwrap();
        msg2.wait.send(true).unwrap();
    }
    println!("You're both boring; I'm leaving.");
}
