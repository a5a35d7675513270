//! Programs that deadlock (and some that only look as if they might), for Go's
//! "all goroutines are asleep" check. Run one scenario:
//!
//! ```text
//! cargo run --example deadlocks -- seed          # Learning Go, Example 12-1: reported
//! cargo run --example deadlocks -- select        # `select! {}` in main: reported
//! cargo run --example deadlocks -- waitgroup     # a WaitGroup never done: reported
//! cargo run --example deadlocks -- mutex         # a Mutex locked twice: reported
//! cargo run --example deadlocks -- park          # main parks, nobody can wake it: reported
//! cargo run --example deadlocks -- timer         # a timer will wake it: no report
//! cargo run --example deadlocks -- syscall       # a goroutine in a raw syscall may: no report
//! cargo run --example deadlocks -- std-thread    # a std thread may: no report
//! cargo run --example deadlocks -- timed-thread  # a std thread in a timed gort wait: no report
//! cargo run --example deadlocks -- forever-thread # a std thread waits Duration::MAX: reported
//! cargo run --example deadlocks -- forever-timer # main waits Duration::MAX: reported
//! cargo run --example deadlocks -- locked        # main locked to its thread, stuck: reported
//! cargo run --example deadlocks -- unwinding     # stuck in a Drop while panicking: reported
//! cargo run --example deadlocks -- locked-ping   # a locked goroutine that talks: no report
//! cargo run --example deadlocks -- stderr-locked # stuck holding std's stderr lock: reported
//! ```
//!
//! A deadlock report is `fatal error: all goroutines are asleep - deadlock!`, a goroutine
//! dump, and exit status 2.

use std::time::Duration;

use gort::thread;

#[gort::main]
fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "park".into());
    match scenario.as_str() {
        "seed" => {
            // Each side sends first, so each waits for the other to receive.
            let (tx1, rx1) = gort::chan::<i32>(0);
            let (tx2, rx2) = gort::chan::<i32>(0);
            gort::go!(move || {
                let in_goroutine = 1;
                tx1.send(in_goroutine).unwrap();
                let from_main = rx2.recv().unwrap();
                println!("goroutine: {in_goroutine} {from_main}");
            });
            let in_main = 2;
            tx2.send(in_main).unwrap();
            let from_goroutine = rx1.recv().unwrap();
            println!("main: {in_main} {from_goroutine}");
        }
        "select" => {
            gort::select! {}
        }
        "waitgroup" => {
            let wg = gort::sync::WaitGroup::new();
            wg.add(2);
            let w = wg.clone();
            gort::go!(move || w.done()); // one done of the two
            wg.wait();
        }
        "mutex" => {
            let m = gort::sync::Mutex::new(0);
            let _first = m.lock();
            let _second = m.lock(); // Go's self-deadlock: a Mutex is not reentrant
        }
        "park" => {
            // Another goroutine waits too, so the dump shows more than main.
            gort::thread::Builder::new()
                .name("helper".into())
                .spawn(thread::park)
                .unwrap();
            loop {
                thread::park();
            }
        }
        "timer" => {
            let me = thread::current();
            gort::spawn(move || {
                gort::time::sleep(Duration::from_millis(300));
                me.unpark();
            });
            thread::park();
            println!("woken by a timer");
        }
        "syscall" => {
            let me = thread::current();
            gort::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                me.unpark();
            });
            thread::park();
            println!("woken after a syscall");
        }
        "std-thread" => {
            let me = thread::current();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                me.unpark();
            });
            thread::park();
            println!("woken by a std thread");
        }
        "timed-thread" => {
            // A plain thread waiting with a timeout on gort primitives will act again by
            // itself, like a pending timer.
            let (tx, rx) = gort::chan::<u32>(0);
            std::thread::spawn(move || {
                gort::thread::park_timeout(Duration::from_millis(200));
                let (_keep, quiet) = gort::chan::<()>(0);
                let _ = quiet.recv_timeout(Duration::from_millis(200));
                tx.send(7).unwrap();
            });
            println!(
                "got {} from a thread that waited with timeouts",
                rx.recv().unwrap()
            );
        }
        "forever-thread" => {
            // A std thread waits "with a timeout" of Duration::MAX (std's way to say for ever;
            // gort saturates it to a century): as stuck as an untimed wait.
            let (tx, rx) = gort::chan::<u32>(0);
            let (_keep, never) = gort::chan::<u32>(0);
            std::thread::spawn(move || {
                let _ = never.recv_timeout(Duration::MAX);
                tx.send(7).unwrap();
            });
            let _ = rx.recv();
        }
        "forever-timer" => {
            // The main goroutine waits with a timeout of Duration::MAX: for ever.
            let (_tx, rx) = gort::chan::<u32>(0);
            let _ = rx.recv_timeout(Duration::MAX);
        }
        "locked" => {
            // Locked to its OS thread (Go's LockOSThread), waiting for a value nobody sends.
            let (_tx, rx) = gort::chan::<i32>(0);
            gort::lock_os_thread();
            let _ = rx.recv();
        }
        "unwinding" => {
            // A goroutine that blocks for ever in a destructor while it unwinds a panic keeps
            // its OS thread (std's panic state is per thread); main waits for it.
            struct WaitOnDrop(gort::chan::Receiver<i32>);
            impl Drop for WaitOnDrop {
                fn drop(&mut self) {
                    let _ = self.0.recv();
                }
            }
            let (tx, rx) = gort::chan::<i32>(0);
            let h = gort::spawn(move || {
                let _w = WaitOnDrop(rx);
                std::panic::resume_unwind(Box::new("unwinding"));
            });
            let _ = h.join();
            drop(tx);
        }
        "locked-ping" => {
            // Ping-pong between a goroutine locked to its thread and another one: busy, never
            // a deadlock, whichever moment the detector looks.
            let (ping, pings) = gort::chan::<u32>(0);
            let (pong, pongs) = gort::chan::<u32>(0);
            let locked = gort::spawn(move || {
                gort::lock_os_thread();
                for i in 0..20_000 {
                    ping.send(i).unwrap();
                    assert_eq!(pongs.recv().unwrap(), i);
                    if i % 1000 == 0 {
                        gort::time::sleep(Duration::from_millis(1));
                    }
                }
            });
            for v in pings.iter() {
                pong.send(v).unwrap();
            }
            locked.join().unwrap();
            println!("ping-pong with a locked goroutine done");
        }
        "stderr-locked" => {
            // A goroutine stuck while it holds std's stderr lock (as inside an `eprintln!`
            // whose argument's Display waits for something): the report must still be
            // printed (the runtime writes it without that lock).
            let (_tx, rx) = gort::chan::<i32>(0);
            let h = gort::spawn(move || {
                let _stderr = std::io::stderr().lock();
                let _ = rx.recv();
            });
            let _ = h.join();
        }
        other => panic!("unknown scenario {other:?}"),
    }
}
