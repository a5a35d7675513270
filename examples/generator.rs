//! Pike: generator — a function that returns a channel. Two services, Joe and Ann, run
//! independently; reading them in turn puts them in lockstep.
//!
//! Run: `cargo run --example generator`. Prints Joe 0, Ann 0, Joe 1, Ann 1, ...
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

#[gort::main]
fn main() {
    let joe = boring("Joe");
    let ann = boring("Ann");
    for _ in 0..5 {
        println!("{}", joe.recv().unwrap());
        println!("{}", ann.recv().unwrap());
    }
    println!("You're both boring; I'm leaving.");
}
