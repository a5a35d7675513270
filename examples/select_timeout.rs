//! Pike: timeouts with `select!` — per message (`after` in every round), and for the whole
//! conversation (one `after` created before the loop).
//!
//! Run: `cargo run --example select_timeout`. Prints messages until a message is too slow
//! (part 1), then until the whole conversation's deadline passes (part 2).
use std::time::{Duration, Instant};

use gort::chan::Receiver;
use gort::time::after;

fn boring(msg: &'static str, max_pause_ms: u64) -> Receiver<String> {
    let (tx, rx) = gort::chan(0);
    gort::go!(move || {
        for i in 0.. {
            if tx.send(format!("{msg} {i}")).is_err() {
                return;
            }
            gort::time::sleep(Duration::from_millis(rand::random_range(0..max_pause_ms)));
        }
    });
    rx
}

#[gort::main]
fn main() {
    println!("-- timeout per message (40 ms)");
    let c = boring("Joe", 60);
    loop {
        gort::select! {
            recv(c) -> s => println!("{}", s.unwrap()),
            recv(after(Duration::from_millis(40))) -> _ => {
                println!("You're too slow.");
                break;
            }
        }
    }

    println!("-- timeout for the whole conversation (300 ms)");
    let c = boring("Ann", 60);
    let start = Instant::now();
    let timeout = after(Duration::from_millis(300));
    let mut n = 0;
    loop {
        gort::select! {
            recv(c) -> s => { println!("{}", s.unwrap()); n += 1 },
            recv(timeout) -> _ => {
                println!("You talk too much. ({n} messages in {:?})", start.elapsed());
                return;
            }
        }
    }
}
