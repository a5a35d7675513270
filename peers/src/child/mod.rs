//! Child mode: `gort-peers --child WORKLOAD IMPL` runs one measurement and prints
//! `VALUE [note]` (or `n/a [why]`) on stdout.
//!
//! One file per implementation; each has every workload under the workload's name, so
//! reading one file shows how that runtime does the whole list.

mod gort_impl;
mod may_impl;
mod std_impl;
mod tokio_impl;
pub mod util;

use std::process::ExitCode;

/// The gort features compiled in (the areas whose gort side runs).
pub fn features() -> Vec<&'static str> {
    let mut f = vec!["runtime"];
    if cfg!(feature = "chan") {
        f.push("chan");
    }
    if cfg!(feature = "sync") {
        f.push("sync");
    }
    if cfg!(feature = "net") {
        f.push("net");
    }
    if cfg!(feature = "blocking") {
        f.push("blocking");
    }
    f
}

/// What a child reports.
pub enum Out {
    /// The value in the workload's unit, and a note (may be empty).
    Value(f64, String),
    /// Not implemented for this implementation, and why.
    Na(&'static str),
}

impl Out {
    pub fn v(v: f64) -> Out {
        Out::Value(v, String::new())
    }
}

pub fn main(args: &[String]) -> ExitCode {
    let (Some(workload), Some(imp)) = (args.first(), args.get(1)) else {
        eprintln!("usage: gort-peers --child WORKLOAD IMPL");
        return ExitCode::from(2);
    };
    let out = match imp.as_str() {
        "gort" => gort_impl::run(workload),
        "tokio" => tokio_impl::run(workload),
        "may" => may_impl::run(workload),
        "std" => std_impl::run(workload),
        _ => Out::Na("unknown implementation"),
    };
    match out {
        Out::Value(v, note) => println!("{v} {note}"),
        Out::Na(why) => println!("n/a {why}"),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Leave at once: parked goroutines, blocked readers and runtimes are not torn down.
    std::process::exit(0)
}
