//! The seed's first goroutine program: two goroutines printing interleaved, the main
//! goroutine sleeping long enough for both to finish.
//!
//! ```text
//! $ cargo run --example goroutines
//! 1 a 2 3 b 4 c 5 d e main terminated
//! ```
//!
//! Numbers print every 250 ms and letters every 400 ms, so the interleaving is fixed.

use std::io::Write;
use std::time::Duration;

use gort::{go, time};

fn print_numbers() {
    for i in 1..=5 {
        time::sleep(Duration::from_millis(250));
        print!("{i} ");
        std::io::stdout().flush().unwrap();
    }
}

fn print_letters() {
    for c in 'a'..='e' {
        time::sleep(Duration::from_millis(400));
        print!("{c} ");
        std::io::stdout().flush().unwrap();
    }
}

#[gort::main]
fn main() {
    go!(print_numbers());
    go!(print_letters());
    time::sleep(Duration::from_millis(3000));
    println!("main terminated");
}
