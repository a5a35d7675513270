//! Learning Go, ch. 12, "When to use mutexes instead of channels": a scoreboard owned by one
//! goroutine that receives closures over a channel, versus the same scoreboard behind an
//! `RwLock`. Both get the same concurrent updates and give the same answers.
//!
//! Run: `cargo run --example ch12_scoreboard`.

use std::collections::HashMap;

use gort::chan;
use gort::chan::Sender;
use gort::context::Context;
use gort::sync::{RwLock, WaitGroup};

type Op = Box<dyn FnOnce(&mut HashMap<String, i32>) + Send>;

fn scoreboard_manager(ctx: Context, input: chan::Receiver<Op>) {
    let mut scoreboard = HashMap::new();
    loop {
        gort::select! {
            recv(ctx.done()) -> _ => return,
            recv(input) -> f => match f {
                Ok(f) => f(&mut scoreboard),
                Err(_) => return,
            },
        }
    }
}

#[derive(Clone)]
struct ChannelScoreboardManager(Sender<Op>);

impl ChannelScoreboardManager {
    fn new(ctx: &Context) -> ChannelScoreboardManager {
        let (tx, rx) = chan::<Op>(0);
        let ctx = ctx.clone();
        gort::go!(move || scoreboard_manager(ctx, rx));
        ChannelScoreboardManager(tx)
    }

    fn update(&self, name: &str, val: i32) {
        let name = name.to_string();
        self.0
            .send(Box::new(move |m| {
                m.insert(name, val);
            }))
            .unwrap();
    }

    fn read(&self, name: &str) -> Option<i32> {
        let (result_tx, result) = chan::<Option<i32>>(0);
        let name = name.to_string();
        self.0
            .send(Box::new(move |m| {
                result_tx.send(m.get(&name).copied()).unwrap();
            }))
            .unwrap();
        result.recv().unwrap()
    }
}

struct MutexScoreboardManager {
    scoreboard: RwLock<HashMap<String, i32>>,
}

impl MutexScoreboardManager {
    fn new() -> MutexScoreboardManager {
        MutexScoreboardManager {
            scoreboard: RwLock::new(HashMap::new()),
        }
    }

    fn update(&self, name: &str, val: i32) {
        self.scoreboard.write().insert(name.to_string(), val);
    }

    fn read(&self, name: &str) -> Option<i32> {
        self.scoreboard.read().get(name).copied()
    }
}

const PLAYERS: [&str; 4] = ["ana", "bo", "cy", "di"];

/// Each player's goroutine posts 100 increasing scores; the last one is 100 * (i + 1).
fn play(update: impl Fn(&str, i32) + Send + Sync + Clone + 'static) {
    let wg = WaitGroup::new();
    for (i, p) in PLAYERS.iter().enumerate() {
        let update = update.clone();
        wg.go(move || {
            for s in 1..=100 {
                update(p, s * (i as i32 + 1));
            }
        });
    }
    wg.wait();
}

#[gort::main]
fn main() {
    let (ctx, _cancel) = Context::background().with_cancel();
    let csm = ChannelScoreboardManager::new(&ctx);
    let c = csm.clone();
    play(move |p, s| c.update(p, s));
    let msm = std::sync::Arc::new(MutexScoreboardManager::new());
    let m = msm.clone();
    play(move |p, s| m.update(p, s));
    for p in PLAYERS.iter().chain(["nobody"].iter()) {
        let (a, b) = (csm.read(p), msm.read(p));
        println!("{p:<7} channel: {a:?}  rwlock: {b:?}  same: {}", a == b);
    }
}
