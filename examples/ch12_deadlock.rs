//! Learning Go, ch. 12, Examples 12-1 and 12-2: two goroutines that each send before they
//! receive deadlock; wrapping main's operations in a select fixes it.
//!
//! Run: `cargo run --example ch12_deadlock` prints `main: 2 1` (Example 12-2). With the
//! argument `deadlock` it runs Example 12-1 instead, which the runtime reports as
//! `fatal error: all goroutines are asleep - deadlock!` (exit status 2).

use gort::chan;

#[gort::main]
fn main() {
    let (ch1_tx, ch1) = chan::<i32>(0);
    let (ch2_tx, ch2) = chan::<i32>(0);
    gort::go!(move || {
        let in_goroutine = 1;
        ch1_tx.send(in_goroutine).unwrap();
        // Never happens in 12-2 (as in Go): main does not send on ch2. When main's Sender
        // drops, this receive returns Err and the goroutine ends quietly.
        if let Ok(from_main) = ch2.recv() {
            println!("goroutine: {in_goroutine} {from_main}");
        }
    });
    let in_main = 2;
    if std::env::args().nth(1).as_deref() == Some("deadlock") {
        // Example 12-1: main sends first too; both wait for each other.
        ch2_tx.send(in_main).unwrap();
        let from_goroutine = ch1.recv().unwrap();
        println!("main: {in_main} {from_goroutine}");
        return;
    }
    // Example 12-2: whichever operation can proceed does.
    let mut from_goroutine = 0;
    gort::select! {
        send(ch2_tx, in_main) -> _ => {},
        recv(ch1) -> v => from_goroutine = v.unwrap(),
    }
    println!("main: {in_main} {from_goroutine}");
}
