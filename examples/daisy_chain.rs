//! Pike: Chinese whispers — a chain of goroutines, each adding one to what its right
//! neighbour passes it. Default 10,000 goroutines; `--n N` for more.
//!
//! Run: `cargo run --release --example daisy_chain -- --n 100000`. Prints N + 1. Every link
//! is a parked goroutine holding its own guarded stack (about one 4 KiB page of memory). On
//! Linux 6.13 and later a guard costs no kernel mapping, so a million links run at the
//! default `vm.max_map_count`; on older kernels each link costs two mappings, and beyond
//! about 30,000 the runtime's error says how to raise the limit.
use std::time::Instant;

use gort::chan::{Receiver, Sender};

fn f(left: Sender<u64>, right: Receiver<u64>) {
    left.send(1 + right.recv().unwrap()).unwrap();
}

#[gort::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.iter().position(|a| a == "--n") {
        Some(i) => args
            .get(i + 1)
            .and_then(|s| s.replace('_', "").parse().ok())
            .expect("--n takes a number"),
        None => 10_000,
    };
    let start = Instant::now();
    let (leftmost_tx, leftmost_rx) = gort::chan::<u64>(0);
    let mut left = leftmost_tx;
    for _ in 0..n {
        let (right_tx, right_rx) = gort::chan::<u64>(0);
        gort::go!(f(left, right_rx));
        left = right_tx;
    }
    gort::go!(move || left.send(1).unwrap());
    let v = leftmost_rx.recv().unwrap();
    println!("{v}");
    eprintln!("{n} goroutines in {:?}", start.elapsed());
    assert_eq!(v, n as u64 + 1);
}
