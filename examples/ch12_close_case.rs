//! Learning Go, ch. 12, "Turn off a case in a select": when one of several input channels is
//! closed, set it to nil so its case never fires again. In gort the case takes an `Option`
//! and `None` turns it off.
//!
//! Run: `cargo run --example ch12_close_case`. Two producers send 3 and 5 values then close;
//! the loop prints every value once and stops when both channels are off.

use gort::chan;
use gort::chan::Receiver;

fn producer(name: &'static str, n: u32) -> Receiver<String> {
    let (tx, rx) = chan::<String>(0);
    gort::go!(move || {
        for i in 1..=n {
            tx.send(format!("{name}{i}")).unwrap();
        }
        tx.close();
    });
    rx
}

#[gort::main]
fn main() {
    let mut in1 = Some(producer("a", 3));
    let mut in2 = Some(producer("b", 5));
    let (_done_tx, done) = chan::<()>(0);
    let mut got = Vec::new();
    let mut count = 0;
    while count < 2 {
        gort::select! {
            recv(in1.as_ref()) -> v => match v {
                Ok(v) => got.push(v),
                Err(_) => {
                    in1 = None; // the case is off from now on
                    count += 1;
                    println!("in1 closed: turned its case off");
                }
            },
            recv(in2.as_ref()) -> v => match v {
                Ok(v) => got.push(v),
                Err(_) => {
                    in2 = None;
                    count += 1;
                    println!("in2 closed: turned its case off");
                }
            },
            recv(done) -> _ => return,
        }
    }
    got.sort();
    println!("received: {}", got.join(" "));
}
