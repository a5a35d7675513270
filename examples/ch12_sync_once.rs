//! Learning Go, ch. 12, "Run code exactly once": a slow parser initialised lazily, once,
//! even when many goroutines ask for it at the same time — with `Once` (Go's `sync.Once`)
//! and with `once_value` (Go 1.21's `sync.OnceValue`).
//!
//! Run: `cargo run --example ch12_sync_once`. Ten goroutines parse through each version;
//! each slow initialiser runs exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gort::sync::{once_value, Once, OnceLock, WaitGroup};

#[derive(Clone)]
struct SlowComplicatedParser {
    prefix: String,
}

impl SlowComplicatedParser {
    fn parse(&self, data: &str) -> String {
        format!("{}{}", self.prefix, data.to_uppercase())
    }
}

static INITS: AtomicUsize = AtomicUsize::new(0);

fn init_parser() -> SlowComplicatedParser {
    INITS.fetch_add(1, Ordering::SeqCst);
    gort::time::sleep(Duration::from_millis(20)); // slow: the other callers park meanwhile
    SlowComplicatedParser {
        prefix: "parsed:".into(),
    }
}

// Version 1: sync.Once guarding a package-level variable.
static ONCE: Once = Once::new();
static PARSER: OnceLock<SlowComplicatedParser> = OnceLock::new();

fn parse(data: &str) -> String {
    ONCE.call_once(|| {
        let _ = PARSER.set(init_parser());
    });
    PARSER.get().expect("initialised by call_once").parse(data)
}

#[gort::main]
fn main() {
    let wg = WaitGroup::new();
    for i in 0..10 {
        wg.go(move || {
            let out = parse(&format!("x{i}"));
            assert!(out.starts_with("parsed:X"));
        });
    }
    wg.wait();
    println!(
        "Once: 10 parses, init_parser ran {} time(s)",
        INITS.load(Ordering::SeqCst)
    );

    // Version 2: once_value caches the parser itself.
    INITS.store(0, Ordering::SeqCst);
    let init_parser_cached = std::sync::Arc::new(once_value(init_parser));
    for i in 0..10 {
        let cached = init_parser_cached.clone();
        wg.go(move || {
            let parser = cached();
            assert_eq!(parser.parse(&format!("y{i}")), format!("parsed:Y{i}"));
        });
    }
    wg.wait();
    println!(
        "once_value: 10 parses, init_parser ran {} time(s)",
        INITS.load(Ordering::SeqCst)
    );
}
