//! Pike: quit channel with a cleanup handshake — main tells Joe to stop, Joe cleans up and
//! answers on the same channel before returning.
//!
//! Run: `cargo run --example quit_channel`. Prints a few messages, "Bye!" from main, then
//! Joe's cleanup and his "See you!".
use std::time::Duration;

use gort::chan::{Receiver, Sender};

fn boring(msg: &'static str, quit: (Sender<String>, Receiver<String>)) -> Receiver<String> {
    let (tx, rx) = gort::chan(0);
    let (quit_tx, quit_rx) = quit;
    gort::go!(move || {
        for i in 0.. {
            gort::select! {
                send(tx, format!("{msg}: {i}")) -> r => {
                    if r.is_err() {
                        return;
                    }
                }
                recv(quit_rx) -> q => {
                    println!("{msg} got {:?}; cleaning up", q.unwrap());
                    gort::time::sleep(Duration::from_millis(10)); // cleanup()
                    quit_tx.send("See you!".to_string()).unwrap();
                    return;
                }
            }
            gort::time::sleep(Duration::from_millis(rand::random_range(0..20)));
        }
    });
    rx
}

#[gort::main]
fn main() {
    let (quit_tx, quit_rx) = gort::chan::<String>(0);
    let c = boring("Joe", (quit_tx.clone(), quit_rx.clone()));
    for _ in 0..=rand::random_range(0..10) {
        println!("{}", c.recv().unwrap());
    }
    quit_tx.send("Bye!".to_string()).unwrap();
    println!("Joe says: {:?}", quit_rx.recv().unwrap());
}
