//! Learning Go, ch. 12, "Putting our concurrent tools together": `GatherAndProcess` calls
//! services A and B in parallel, feeds both results to service C, and gives the whole thing
//! 50 ms (a context with a timeout). `abProcessor` and `cProcessor` own their channels;
//! every wait is a select that also watches `ctx.done()`.
//!
//! Run: `cargo run --example ch12_pipeline`. One run whose services answer in a few
//! milliseconds succeeds; one whose service B takes 200 ms fails with
//! "context deadline exceeded".

use std::time::Duration;

use gort::chan;
use gort::chan::{Receiver, Sender};
use gort::context::{Context, ContextError};

#[derive(Debug, Clone)]
struct Input {
    a: String,
    b: String,
}

#[derive(Debug)]
struct COut(String);

#[derive(Debug, Default)]
struct CIn {
    a: String,
    b: String,
}

/// Latencies of the simulated services.
#[derive(Clone, Copy)]
struct Latency {
    a: Duration,
    b: Duration,
    c: Duration,
}

/// A simulated remote call: answers after `d`, or gives up when the context ends.
fn call(ctx: &Context, d: Duration, answer: String) -> Result<String, ContextError> {
    gort::select! {
        recv(gort::time::after(d)) -> _ => Ok(answer),
        recv(ctx.done()) -> _ => Err(ctx.err().expect("done means cancelled")),
    }
}

struct AbProcessor {
    out_a: (Sender<String>, Receiver<String>),
    out_b: (Sender<String>, Receiver<String>),
    errs: (Sender<ContextError>, Receiver<ContextError>),
}

impl AbProcessor {
    fn new() -> AbProcessor {
        AbProcessor {
            out_a: chan(1),
            out_b: chan(1),
            errs: chan(2),
        }
    }

    fn start(&self, ctx: &Context, data: Input, lat: Latency) {
        let (ctx_a, out_a, errs_a) = (ctx.clone(), self.out_a.0.clone(), self.errs.0.clone());
        gort::go!(
            move || match call(&ctx_a, lat.a, format!("A({})", data.a)) {
                Ok(v) => drop(out_a.send(v)),
                Err(e) => drop(errs_a.send(e)),
            }
        );
        let (ctx_b, out_b, errs_b) = (ctx.clone(), self.out_b.0.clone(), self.errs.0.clone());
        gort::go!(
            move || match call(&ctx_b, lat.b, format!("B({})", data.b)) {
                Ok(v) => drop(out_b.send(v)),
                Err(e) => drop(errs_b.send(e)),
            }
        );
    }

    fn wait(&self, ctx: &Context) -> Result<CIn, ContextError> {
        let mut c_data = CIn::default();
        for _ in 0..2 {
            gort::select! {
                recv(self.out_a.1) -> a => c_data.a = a.unwrap(),
                recv(self.out_b.1) -> b => c_data.b = b.unwrap(),
                recv(self.errs.1) -> e => return Err(e.unwrap()),
                recv(ctx.done()) -> _ => return Err(ctx.err().unwrap()),
            }
        }
        Ok(c_data)
    }
}

struct CProcessor {
    out_c: (Sender<COut>, Receiver<COut>),
    errs: (Sender<ContextError>, Receiver<ContextError>),
}

impl CProcessor {
    fn new() -> CProcessor {
        CProcessor {
            out_c: chan(1),
            errs: chan(1),
        }
    }

    fn start(&self, ctx: &Context, input: CIn, lat: Latency) {
        let (ctx, out_c, errs) = (ctx.clone(), self.out_c.0.clone(), self.errs.0.clone());
        gort::go!(
            move || match call(&ctx, lat.c, format!("C({}, {})", input.a, input.b)) {
                Ok(v) => drop(out_c.send(COut(v))),
                Err(e) => drop(errs.send(e)),
            }
        );
    }

    fn wait(&self, ctx: &Context) -> Result<COut, ContextError> {
        gort::select! {
            recv(self.out_c.1) -> out => Ok(out.unwrap()),
            recv(self.errs.1) -> e => Err(e.unwrap()),
            recv(ctx.done()) -> _ => Err(ctx.err().unwrap()),
        }
    }
}

fn gather_and_process(ctx: &Context, data: Input, lat: Latency) -> Result<COut, ContextError> {
    let (ctx, _cancel) = ctx.with_timeout(Duration::from_millis(50));
    let ab = AbProcessor::new();
    ab.start(&ctx, data, lat);
    let input_c = ab.wait(&ctx)?;
    let c = CProcessor::new();
    c.start(&ctx, input_c, lat);
    c.wait(&ctx)
}

#[gort::main]
fn main() {
    let data = Input {
        a: "x".into(),
        b: "y".into(),
    };
    let ms = Duration::from_millis;
    let fast = Latency {
        a: ms(2),
        b: ms(3),
        c: ms(2),
    };
    let slow = Latency { b: ms(200), ..fast };
    match gather_and_process(&Context::background(), data.clone(), fast) {
        Ok(out) => println!("fast services: {}", out.0),
        Err(e) => println!("fast services: error: {e}"),
    }
    match gather_and_process(&Context::background(), data, slow) {
        Ok(out) => println!("slow service B: {}", out.0),
        Err(e) => println!("slow service B: error: {e}"),
    }
}
