//! gort::context: the behaviours of Go's context tests (each `go_*` test names the Go test it
//! mirrors), plus what Rust adds: dropping a CancelHandle cancels, typed values, timers
//! released on early cancel.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gort::chan::{RecvError, RecvTimeoutError, TryRecvError};
use gort::context::{CancelHandle, Context, ContextError};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

/// A long bound for liveness checks: these never wait for it unless something is broken.
const VERY_LONG: Duration = Duration::from_secs(10);

/// A value type standing in for Go's `otherContext` wrapper (a non-canceller in between).
#[derive(Debug, PartialEq)]
struct Other(u32);

fn is_done_now(ctx: &Context) -> bool {
    matches!(ctx.done().try_recv(), Err(TryRecvError::Closed))
}

/// Waits (parking) until `ctx` is done, failing after VERY_LONG. (A timed receive rather
/// than a select with `time::after`, whose timer would stay armed for VERY_LONG and upset
/// the timer count that `go_cancel_removes` checks; select! is used elsewhere.)
fn wait_done(ctx: &Context, what: &str) {
    match ctx.done().recv_timeout(VERY_LONG) {
        Err(RecvTimeoutError::Closed) => {}
        Ok(()) => panic!("{what}: nothing is ever sent on done()"),
        Err(RecvTimeoutError::Timeout) => panic!("{what}: not done within {VERY_LONG:?}"),
    }
}

#[gort::test]
fn go_background() {
    let bg = Context::background();
    assert_eq!(bg.err(), None);
    assert_eq!(bg.deadline(), None);
    assert!(!is_done_now(&bg));
    assert_eq!(format!("{bg:?}"), "context.Background");
    assert_eq!(ContextError::Canceled.to_string(), "context canceled");
    assert_eq!(
        ContextError::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
}

/// Go: TestWithCancel — c1, a value context over it and a cancel child of that are all live;
/// cancelling c1 closes every done() and sets Canceled.
#[gort::test]
fn go_with_cancel() {
    let (c1, cancel) = Context::background().with_cancel();
    assert_eq!(format!("{c1:?}"), "context.Background.WithCancel");
    let o = c1.with_value(Other(1));
    let (c2, _cancel2) = o.with_cancel();
    let contexts = [&c1, &o, &c2];
    for (i, c) in contexts.iter().enumerate() {
        assert_eq!(c.err(), None, "c[{i}].err() before cancel");
        assert!(
            matches!(c.done().try_recv(), Err(TryRecvError::Empty)),
            "c[{i}].done() ready before cancel"
        );
    }
    cancel.cancel();
    for (i, c) in contexts.iter().enumerate() {
        wait_done(c, "after cancel");
        assert_eq!(c.err(), Some(ContextError::Canceled), "c[{i}].err()");
    }
    cancel.cancel(); // idempotent
    assert_eq!(c1.err(), Some(ContextError::Canceled));
}

/// Go: TestParentFinishesChild — cancelling the parent cancels its cancel, timer and value
/// children, and leaves no children registered.
#[gort::test]
fn go_parent_finishes_child() {
    let (parent, cancel) = Context::background().with_cancel();
    let (cancel_child, _c1) = parent.with_cancel();
    let value_child = parent.with_value(Other(2));
    let (timer_child, _c2) = value_child.with_timeout(Duration::from_secs(3600));
    assert_eq!(parent.registered_children(), 2);
    cancel.cancel();
    for (name, c) in [
        ("parent", &parent),
        ("cancel child", &cancel_child),
        ("value child", &value_child),
        ("timer child", &timer_child),
    ] {
        wait_done(c, name);
        assert_eq!(c.err(), Some(ContextError::Canceled), "{name}");
    }
    assert_eq!(parent.registered_children(), 0);
    // A child created after the parent finished is finished at once.
    let (late, _c3) = parent.with_cancel();
    assert_eq!(late.err(), Some(ContextError::Canceled));
}

/// Go: TestChildFinishesFirst — cancelling a child does not touch the parent, and removes
/// the child from the parent's children.
#[gort::test]
fn go_child_finishes_first() {
    for parent_cancellable in [false, true] {
        let (parent, _pc) = if parent_cancellable {
            let (p, c) = Context::background().with_cancel();
            (p, Some(c))
        } else {
            (Context::background(), None)
        };
        let (child, cancel_child) = parent.with_cancel();
        if parent_cancellable {
            assert_eq!(parent.registered_children(), 1);
        }
        cancel_child.cancel();
        wait_done(&child, "child");
        assert_eq!(child.err(), Some(ContextError::Canceled));
        assert_eq!(parent.err(), None, "cancellation must not flow upward");
        assert!(!is_done_now(&parent));
        assert_eq!(parent.registered_children(), 0);
    }
}

/// Go: TestTimeout (and TestDeadline) — a context with a deadline finishes by itself with
/// DeadlineExceeded, and so does anything below it.
#[gort::test]
fn go_timeout_and_deadline() {
    let t = Instant::now();
    let (c, _cancel) = Context::background().with_timeout(Duration::from_millis(50));
    let d = c.deadline().expect("deadline set");
    assert!(d > t && d <= Instant::now() + Duration::from_millis(50));
    let o = c.with_value(Other(3));
    let (c2, _cancel2) = o.with_timeout(Duration::from_millis(100_000));
    assert_eq!(
        c2.deadline(),
        Some(d),
        "the parent's earlier deadline applies"
    );
    wait_done(&c2, "timeout child");
    assert!(t.elapsed() >= Duration::from_millis(50));
    for c in [&c, &o, &c2] {
        assert_eq!(c.err(), Some(ContextError::DeadlineExceeded));
    }
    // A deadline already past: done at once.
    let (past, _c) = Context::background().with_deadline(Instant::now());
    assert!(is_done_now(&past));
    assert_eq!(past.err(), Some(ContextError::DeadlineExceeded));
}

/// Go: TestCanceledTimeout — cancelling a timer context before its deadline gives Canceled
/// (the first reason wins, the later deadline changes nothing).
#[gort::test]
fn go_canceled_timeout() {
    let (c, _c0) = Context::background().with_timeout(Duration::from_secs(1));
    let o = c.with_value(Other(4));
    let (c, cancel) = o.with_timeout(Duration::from_secs(2));
    cancel.cancel();
    wait_done(&c, "cancelled timer");
    assert_eq!(c.err(), Some(ContextError::Canceled));
}

/// Go: TestWithCancelCanceledParent — a child of a cancelled parent is born cancelled.
#[gort::test]
fn go_with_cancel_canceled_parent() {
    let (parent, pcancel) = Context::background().with_cancel();
    pcancel.cancel();
    let (c, _cancel) = parent.with_cancel();
    assert!(is_done_now(&c));
    assert_eq!(c.err(), Some(ContextError::Canceled));
    // The same through a value layer, and for a timeout child.
    let (t, _tc) = parent
        .with_value(Other(5))
        .with_timeout(Duration::from_secs(5));
    assert_eq!(t.err(), Some(ContextError::Canceled));
}

/// A child of a parent that timed out reports DeadlineExceeded, not Canceled.
#[gort::test]
fn child_of_timed_out_parent_reports_deadline() {
    let (p, _pc) = Context::background().with_timeout(Duration::from_millis(5));
    let (c, _cc) = p.with_cancel();
    wait_done(&c, "child");
    assert_eq!(c.err(), Some(ContextError::DeadlineExceeded));
}

/// Go: TestSimultaneousCancels — a tree of ~100 contexts, all cancelled at once from
/// separate goroutines in arbitrary order: everything ends done, nothing deadlocks.
#[gort::test]
fn go_simultaneous_cancels() {
    let (root, cancel) = Context::background().with_cancel();
    let mut all: Vec<(Context, CancelHandle)> = vec![(root.clone(), cancel)];
    let mut q = vec![root];
    while !q.is_empty() && all.len() < 100 {
        let parent = q.remove(0);
        for _ in 0..4 {
            let (ctx, cancel) = parent.with_cancel();
            q.push(ctx.clone());
            all.push((ctx, cancel));
        }
    }
    let wg = gort::sync::WaitGroup::new();
    let mut ctxs = Vec::new();
    for (i, (ctx, cancel)) in all.into_iter().enumerate() {
        ctxs.push(ctx);
        wg.go(move || {
            if i % 2 == 0 {
                gort::yield_now();
            }
            cancel.cancel();
        });
    }
    for ctx in ctxs.iter().rev() {
        wait_done(ctx, "tree node");
    }
    wg.wait();
}

/// Go: TestInterlockedCancels — a goroutine cancels the child when it sees the parent done.
#[gort::test]
fn go_interlocked_cancels() {
    let (parent, cancel_parent) = Context::background().with_cancel();
    let (child, cancel_child) = parent.with_cancel();
    let p = parent.clone();
    let h = gort::spawn(move || {
        let _ = p.done().recv();
        cancel_child.cancel();
    });
    cancel_parent.cancel();
    wait_done(&child, "child");
    h.join().unwrap();
}

/// Go: TestLayersCancel / TestLayersTimeout — random stacks of value, cancel and timeout
/// layers: values stay visible, cancelling one layer finishes it and everything below.
#[gort::test]
fn go_layers() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for with_timeout in [false, true] {
        for _round in 0..common::stress(20) {
            let mut ctx = Context::background();
            let mut cancels: Vec<(usize, CancelHandle)> = Vec::new();
            let mut layers = Vec::new();
            let mut values: HashMap<u8, u32> = HashMap::new();
            for depth in 0..10 {
                match rnd(3) {
                    0 => {
                        let v = rnd(1000) as u32;
                        ctx = ctx.with_value(Other(v));
                        values.insert(0, v);
                    }
                    1 => {
                        let (c, h) = ctx.with_cancel();
                        ctx = c;
                        cancels.push((depth, h));
                    }
                    _ => {
                        let (c, h) = ctx.with_timeout(Duration::from_secs(3600));
                        ctx = c;
                        cancels.push((depth, h));
                    }
                }
                layers.push(ctx.clone());
                if let Some(v) = values.get(&0) {
                    assert_eq!(ctx.value::<Other>(), Some(&Other(*v)));
                }
            }
            if with_timeout {
                let (c, _h) = ctx.with_timeout(Duration::from_millis(1));
                wait_done(&c, "layer timeout");
                assert_eq!(c.err(), Some(ContextError::DeadlineExceeded));
                assert_eq!(ctx.err(), None, "a child's timeout must not flow upward");
            }
            if cancels.is_empty() {
                continue;
            }
            let (depth, h) = cancels.remove(rnd(cancels.len() as u64) as usize);
            assert_eq!(ctx.err(), None);
            h.cancel();
            for (i, layer) in layers.iter().enumerate() {
                let should = i >= depth;
                if should {
                    wait_done(layer, "cancelled layer");
                    assert_eq!(layer.err(), Some(ContextError::Canceled));
                } else {
                    assert_eq!(layer.err(), None, "layer {i} above the cancelled {depth}");
                }
            }
        }
    }
}

/// Go: TestCancelRemoves — cancelled children are removed from their parent, for cancel and
/// timeout children; a timeout context cancelled early releases its timer.
#[gort::test]
fn go_cancel_removes() {
    let (ctx, _c) = Context::background().with_cancel();
    assert_eq!(ctx.registered_children(), 0);
    let (_child, cancel) = ctx.with_cancel();
    assert_eq!(ctx.registered_children(), 1);
    cancel.cancel();
    assert_eq!(ctx.registered_children(), 0);
    let (_child, cancel) = ctx.with_timeout(Duration::from_secs(3600));
    assert_eq!(ctx.registered_children(), 1);
    cancel.cancel();
    assert_eq!(ctx.registered_children(), 0);

    // A long-lived parent does not grow; timers of early-cancelled contexts leave the heap.
    // (Other tests arm timers concurrently: compare with a wide margin.)
    let n = 1000;
    let before = gort::time::armed_count();
    let kids: Vec<_> = (0..n)
        .map(|_| ctx.with_timeout(Duration::from_secs(3600)))
        .collect();
    assert_eq!(ctx.registered_children(), n);
    let armed = gort::time::armed_count();
    assert!(
        armed >= before + n - 50,
        "{armed} timers armed for {n} contexts"
    );
    drop(kids); // dropping the handles cancels
    assert_eq!(ctx.registered_children(), 0);
    let after = gort::time::armed_count();
    assert!(
        after + n - 50 <= armed,
        "timers not released: {after} armed"
    );
}

#[gort::test]
fn dropping_the_handle_cancels() {
    // The documented pitfall: `_` drops the handle, cancelling at once.
    let (ctx, _) = Context::background().with_cancel();
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(60));
    assert_eq!(ctx.err(), None);
    drop(cancel);
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
}

#[gort::test]
fn typed_values() {
    #[derive(Debug, PartialEq)]
    struct User(&'static str);
    #[derive(Debug, PartialEq)]
    struct TraceId(u64);
    let ctx = Context::background()
        .with_value(User("gopher"))
        .with_value(TraceId(7));
    let (ctx, _c) = ctx.with_cancel();
    let ctx = ctx.with_value(User("shadowing"));
    assert_eq!(ctx.value::<User>(), Some(&User("shadowing")));
    assert_eq!(ctx.value::<TraceId>(), Some(&TraceId(7)));
    assert_eq!(ctx.value::<String>(), None);
    let dbg = format!("{ctx:?}");
    assert!(
        dbg.starts_with("context.Background.WithValue(") && dbg.contains(".WithCancel.WithValue("),
        "{dbg}"
    );
}

/// done() works from plain threads too, and in select! against other channels.
#[test]
fn done_on_plain_threads() {
    let (ctx, cancel) = Context::background().with_cancel();
    let c2 = ctx.clone();
    let t = std::thread::spawn(move || c2.done().recv());
    std::thread::sleep(Duration::from_millis(5));
    cancel.cancel();
    assert_eq!(t.join().unwrap(), Err(RecvError));
    let (tx, rx) = gort::chan::<u32>(1);
    tx.send(1).unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    let got = gort::select! {
        recv(ctx.done()) -> _ => 0,
        recv(rx) -> v => v.unwrap(),
    };
    assert_eq!(got, 1);
    cancel.cancel();
    let got = gort::select! {
        recv(ctx.done()) -> r => { assert_eq!(r, Err(RecvError)); 2 },
        recv(rx) -> v => v.unwrap(),
    };
    assert_eq!(got, 2);
}

/// A very deep chain (values and cancellers alternating) cancels and drops without
/// recursing once per level (which would overflow a goroutine's stack).
#[gort::test]
fn deep_chain_cancel_and_drop() {
    let depth = 100_000;
    let (root, cancel) = Context::background().with_cancel();
    let mut ctx = root.clone();
    let mut handles = Vec::with_capacity(depth / 2);
    for i in 0..depth {
        if i % 2 == 0 {
            ctx = ctx.with_value(Other(i as u32));
        } else {
            let (c, h) = ctx.with_cancel();
            ctx = c;
            handles.push(h);
        }
    }
    assert_eq!(ctx.value::<Other>(), Some(&Other(depth as u32 - 2)));
    cancel.cancel();
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    drop(handles);
    drop(ctx);
    assert_eq!(root.registered_children(), 0);
}
