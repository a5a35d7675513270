//! gort-peers: the same workloads on gort, Go, tokio, may and std threads / crossbeam,
//! side by side.
//!
//! # Design
//!
//! Every measurement runs in a fresh child process (`gort-peers --child WORKLOAD IMPL`, or the
//! Go program `peers-go WORKLOAD`) that prints one line: the value, then an optional note.
//! A child per measurement keeps the runtimes from disturbing each other (five schedulers'
//! idle threads, RSS and thread counts, `GORT_MAXPROCS`/`GOMAXPROCS` set per workload) and
//! makes a hung or crashed implementation cost one cell, not the run.
//!
//! The parent runs `reps` rounds; in each round every implementation runs each workload once,
//! in an order that rotates from round to round, so slow drift of a shared machine (other
//! builds on the two cores) spreads over all columns alike. A cell is the median of its
//! rounds. Ratios are peer ÷ gort in the workload's own unit: for ns/op above 1 means gort is
//! faster, for msgs/s or req/s below 1 means gort is faster.

mod child;
mod harness;
mod workloads;

use std::process::ExitCode;

use harness::{Options, Runner};

fn usage() -> String {
    let mut s = String::from(
        "usage: gort-peers [--reps N] [--markdown] [--markdown-out FILE] [--verbose] [--list] [--timeout SECS] \
         [--impl gort,go,tokio,may,std] [WORKLOAD|AREA ...]\n\nworkloads:\n",
    );
    for w in workloads::ALL {
        s.push_str(&format!("  {:<18} [{}] {}\n", w.name, w.area, w.what));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child::main(&args[1..]);
    }
    let mut opts = Options::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => opts.reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(5).max(1),
            "--timeout" => opts.timeout_secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(60),
            "--markdown" => opts.markdown = true,
            "--markdown-out" => opts.markdown_out = it.next(),
            "--verbose" | "-v" => opts.verbose = true,
            "--impl" => {
                opts.impls = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--list" => {
                print!("{}", usage());
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                print!("{}", usage());
                return ExitCode::SUCCESS;
            }
            w if w.starts_with('-') => {
                eprintln!("unknown option {w}\n{}", usage());
                return ExitCode::from(2);
            }
            w => opts.filter.push(w.to_owned()),
        }
    }
    for f in &opts.filter {
        if !workloads::ALL.iter().any(|w| w.name == f || w.area == f) {
            eprintln!("unknown workload or area {f}\n{}", usage());
            return ExitCode::from(2);
        }
    }
    Runner::new(opts).run();
    ExitCode::SUCCESS
}
