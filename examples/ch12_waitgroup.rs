//! Learning Go, ch. 12, "Use WaitGroups": wait for three goroutines; each calls `done`
//! (Go's `defer wg.Done()`) when it finishes.
//!
//! Run: `cargo run --example ch12_waitgroup`. Prints the three things (in any order), then
//! "all done" — always last.

use gort::sync::WaitGroup;

fn do_thing(n: u32) {
    gort::time::sleep(std::time::Duration::from_millis(u64::from(n)));
    println!("did thing {n}");
}

#[gort::main]
fn main() {
    let wg = WaitGroup::new();
    wg.add(3);
    for n in 1..=3 {
        let wg = wg.clone();
        gort::go!(move || {
            do_thing(n);
            wg.done();
        });
    }
    wg.wait();
    println!("all done");
    // The same with the convenience that adds, spawns and dones:
    let wg = WaitGroup::new();
    for n in 4..=5 {
        wg.go(move || do_thing(n));
    }
    wg.wait();
    println!("all done again");
}
