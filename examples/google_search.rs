//! Fake Google search, from Rob Pike's talk "Go Concurrency Patterns" (2012): the same
//! search written four times, each version faster or more robust than the one before.
//!
//! ```text
//! cargo run --example google_search            # all four versions
//! cargo run --example google_search -- 3.0     # one of 1.0, 2.0, 2.1, 3.0
//! ```
//!
//! - **1.0** calls Web, Image and Video one after the other: the sum of their latencies.
//! - **2.0** runs them in parallel and collects three results from a channel: the maximum.
//! - **2.1** adds a timeout with `select!` and `time::after`: never slower than 80 ms, but a
//!   slow server's result is dropped.
//! - **3.0** asks two replicas of each and keeps the first reply (`first`): almost always
//!   all three results, within the timeout.
//!
//! Pike's point: no locks, no condition variables, no callbacks. In Go the losing replicas
//! of `First` stay blocked on their send for ever (a goroutine leak unless the channel is
//! buffered); here a send to a channel whose receiver is gone returns `Err`, so they end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan;

/// A search result.
type Result = String;

/// A search backend: query in, result out (after a while).
type Search = Arc<dyn Fn(&str) -> Result + Send + Sync>;

/// A backend that takes a random 0–100 ms to answer.
fn fake_search(kind: &'static str) -> Search {
    Arc::new(move |query: &str| {
        gort::time::sleep(Duration::from_millis(rand::random_range(0..100)));
        format!("{kind} result for {query:?}")
    })
}

struct Backends {
    web: Search,
    image: Search,
    video: Search,
    web2: Search,
    image2: Search,
    video2: Search,
}

/// Google 1.0: sequential.
fn google_1_0(b: &Backends, query: &str) -> Vec<Result> {
    vec![(b.web)(query), (b.image)(query), (b.video)(query)]
}

/// Google 2.0: fan out, fan in. No locks, no condition variables, no callbacks.
fn google_2_0(b: &Backends, query: &str) -> Vec<Result> {
    let (tx, rx) = chan::<Result>(0);
    for search in [&b.web, &b.image, &b.video] {
        let (tx, search, query) = (tx.clone(), search.clone(), query.to_string());
        gort::go!(move || tx.send(search(&query)));
    }
    (0..3).filter_map(|_| rx.recv().ok()).collect()
}

/// Google 2.1: don't wait for slow servers.
fn google_2_1(b: &Backends, query: &str) -> Vec<Result> {
    let (tx, rx) = chan::<Result>(0);
    for search in [&b.web, &b.image, &b.video] {
        let (tx, search, query) = (tx.clone(), search.clone(), query.to_string());
        gort::go!(move || tx.send(search(&query)));
    }
    let timeout = gort::time::after(Duration::from_millis(80));
    let mut results = Vec::new();
    for _ in 0..3 {
        gort::select! {
            recv(rx) -> r => results.extend(r.ok()),
            recv(timeout) -> _ => {
                println!("timed out");
                return results;
            },
        }
    }
    results
}

/// Sends the query to every replica and returns the first reply.
fn first(query: &str, replicas: &[&Search]) -> Result {
    let (tx, rx) = chan::<Result>(0);
    for replica in replicas {
        let (tx, replica, query) = (tx.clone(), Arc::clone(replica), query.to_string());
        gort::go!(move || tx.send(replica(&query)));
    }
    rx.recv().expect("a replica answers")
}

/// Google 3.0: reduce tail latency with replicated servers.
fn google_3_0(b: &Backends, query: &str) -> Vec<Result> {
    let (tx, rx) = chan::<Result>(0);
    let pairs = [
        (&b.web, &b.web2),
        (&b.image, &b.image2),
        (&b.video, &b.video2),
    ];
    for (r1, r2) in pairs {
        let (tx, r1, r2, query) = (tx.clone(), r1.clone(), r2.clone(), query.to_string());
        gort::go!(move || tx.send(first(&query, &[&r1, &r2])));
    }
    let timeout = gort::time::after(Duration::from_millis(80));
    let mut results = Vec::new();
    for _ in 0..3 {
        gort::select! {
            recv(rx) -> r => results.extend(r.ok()),
            recv(timeout) -> _ => {
                println!("timed out");
                return results;
            },
        }
    }
    results
}

#[gort::main]
fn main() {
    let b = Backends {
        web: fake_search("web"),
        image: fake_search("image"),
        video: fake_search("video"),
        web2: fake_search("web"),
        image2: fake_search("image"),
        video2: fake_search("video"),
    };
    type Version = fn(&Backends, &str) -> Vec<Result>;
    let versions: [(&str, Version); 4] = [
        ("1.0", google_1_0),
        ("2.0", google_2_0),
        ("2.1", google_2_1),
        ("3.0", google_3_0),
    ];
    let want = std::env::args().nth(1);
    for (name, google) in versions {
        if want.as_deref().is_some_and(|w| w != name) {
            continue;
        }
        let start = Instant::now();
        let results = google(&b, "golang");
        let elapsed = start.elapsed();
        println!("Google {name}: {results:?}");
        println!("{elapsed:?}");
    }
}
