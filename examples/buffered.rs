//! A Tour of Go: buffered channels — sends fill the buffer without a receiver; `len` counts
//! what is buffered, `cap` is the buffer's size; a send to a full buffer would wait.
//!
//! Run: `cargo run --example buffered`. Prints 1, 2 and the len/cap at each step.
use gort::chan::TrySendError;

#[gort::main]
fn main() {
    let (tx, rx) = gort::chan::<i32>(2);
    println!("len {} cap {}", tx.len(), tx.cap());
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    println!("len {} cap {}", tx.len(), tx.cap());
    // A third send would block (Go: "all goroutines are asleep - deadlock!"); try_send says so.
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    println!("full: a third send would wait");
    println!("{}", rx.recv().unwrap());
    println!("{}", rx.recv().unwrap());
    println!("len {} cap {}", rx.len(), rx.cap());
}
