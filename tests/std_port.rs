//! Porting by substitution: a realistic program written for `std` (tests/std_port/, a
//! thread-pool web server in the Rust Book's chapter 20 style) is compiled twice from the
//! same source — against `std`, and with `std` meaning `gort::std` — and both builds must
//! serve the same responses. Each runs from a plain thread and from a goroutine.

mod common;

/// The program as written, on std's threads.
mod on_std {
    include!("std_port/web_server.rs");
}

/// The same source with the substitution: every `std::` path resolves in `gort::std`, which
/// is std with `sync` and `thread` replaced.
mod on_gort {
    use gort::std;
    include!("std_port/web_server.rs");
}

#[test]
fn maxprocs_1() {
    common::rerun_single_proc();
}

const PATHS: &[&str] = &["/", "/sleep", "/", "/missing", "/sleep", "/", "/", "/sleep"];

/// What both builds must answer.
fn check(responses: &[String], root_hits: usize, sleep_hits: usize) {
    assert_eq!(responses.len(), PATHS.len());
    for (path, r) in PATHS.iter().zip(responses) {
        let (status, body) = match *path {
            "/" => ("200 OK", "hello from worker"),
            "/sleep" => ("200 OK", "slept from worker"),
            _ => ("404 NOT FOUND", "no /missing from worker"),
        };
        let expected = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(*r, expected, "response to {path}");
    }
    assert_eq!(root_hits, 4);
    assert_eq!(sleep_hits, 3);
}

crate::both! {
    /// The program built against std runs (the reference).
    fn web_server_on_std() {
        let (responses, root, sleep) = on_std::run(PATHS);
        check(&responses, root, sleep);
    }

    /// The same source, ported by substitution, runs on goroutines and answers the same.
    fn web_server_on_gort() {
        let (responses, root, sleep) = on_gort::run(PATHS);
        check(&responses, root, sleep);
    }
}

/// The two builds really differ: the ported one's threads, locks and channels are gort's.
#[test]
fn the_substitution_switches_the_types() {
    let std_types = std::any::type_name::<on_std::Types>();
    let gort_types = std::any::type_name::<on_gort::Types>();
    assert!(!std_types.contains("gort"), "{std_types}");
    for t in [
        "gort::runtime::spawn::JoinHandle",
        "gort::std::sync::mutex::Mutex",
        "gort::std::sync::mpsc::Receiver",
        "gort::std::sync::condvar::Condvar",
        "gort::std::sync::rwlock::RwLock",
    ] {
        assert!(gort_types.contains(t), "{t} not in {gort_types}");
    }
}
