//! Learning Go, ch. 12, "Know when to use buffered and unbuffered channels": `processChannel`
//! launches exactly as many goroutines as results it wants, and gives them a buffered
//! channel with room for every result, so no writer ever blocks.
//!
//! Run: `cargo run --example ch12_buffered_results`. Prints the 10 results, sorted.

use gort::chan;
use gort::chan::Receiver;

fn process(v: u64) -> u64 {
    v * 10
}

fn process_channel(ch: &Receiver<u64>) -> Vec<u64> {
    const CONC: usize = 10;
    let (results_tx, results) = chan::<u64>(CONC);
    for _ in 0..CONC {
        let (ch, results_tx) = (ch.clone(), results_tx.clone());
        gort::go!(move || {
            let v = ch.recv().unwrap();
            // The buffer has room for every result: this send never blocks.
            results_tx.try_send(process(v)).expect("buffer has room");
        });
    }
    let mut out: Vec<u64> = (0..CONC).map(|_| results.recv().unwrap()).collect();
    out.sort();
    out
}

#[gort::main]
fn main() {
    let (tx, rx) = chan::<u64>(0);
    gort::go!(move || {
        for i in 1..=10 {
            tx.send(i).unwrap();
        }
    });
    println!("results: {:?}", process_channel(&rx));
}
