//! The WaitGroup program: `printNumbers` and `printLetters` run as two goroutines, and main
//! waits for both with a WaitGroup before printing "Done".
//!
//! Run: `cargo run --example ch12_print_numbers_letters`. Numbers 1..5 and letters a..e
//! interleave (each sequence in order), then `Done`.

use std::io::Write;
use std::time::Duration;

use gort::sync::WaitGroup;

fn print_numbers(wg: WaitGroup) {
    for i in 1..=5 {
        print!("{i} ");
        std::io::stdout().flush().unwrap();
        gort::time::sleep(Duration::from_millis(10));
    }
    wg.done();
}

fn print_letters(wg: WaitGroup) {
    for c in 'a'..='e' {
        print!("{c} ");
        std::io::stdout().flush().unwrap();
        gort::time::sleep(Duration::from_millis(10));
    }
    wg.done();
}

#[gort::main]
fn main() {
    let wg = WaitGroup::new();
    wg.add(2);
    gort::go!(print_numbers(wg.clone()));
    gort::go!(print_letters(wg.clone()));
    wg.wait();
    println!("\nDone");
}
