//! Learning Go, ch. 12, exercise 3: build a map from 0..100_000 to square roots, cache it
//! with `once_value` (Go's `sync.OnceValue`), and look up every 1,000th number.
//!
//! Run: `cargo run --example ch12_exercise3`. Prints 100 lines `sqrt(N) = R` and how many
//! times the map was built (once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gort::sync::once_value;

static BUILDS: AtomicUsize = AtomicUsize::new(0);

fn build_sqrt_map() -> Arc<HashMap<u32, f64>> {
    BUILDS.fetch_add(1, Ordering::SeqCst);
    Arc::new((0..100_000).map(|i| (i, f64::from(i).sqrt())).collect())
}

#[gort::main]
fn main() {
    // Arc: the cached value is cloned on every call, so make the clone cheap.
    let sqrt_map = once_value(build_sqrt_map);
    for i in (0..100_000).step_by(1000) {
        println!("sqrt({i}) = {:.4}", sqrt_map()[&i]);
    }
    println!("map built {} time(s)", BUILDS.load(Ordering::SeqCst));
}
