#![doc = include_str!("../docs/crate.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

extern crate self as gort;

pub mod chan;
pub mod context;
pub mod local;
pub mod net;
pub mod runtime;
pub mod std;
pub mod sync;
pub mod thread;
pub mod time;

pub use chan::chan;
pub use go_macro::{go, main, select, test};
pub use runtime::{
    block_on, blocking, dump, dump_json, goroutine_id, lock_os_thread, max_procs, num_goroutines,
    spawn, unlock_os_thread, yield_now, Config, ConfigError, JoinFuture, JoinHandle,
};

/// The names most programs use, for a glob import: `use gort::prelude::*;`.
///
/// Prefer it to `use gort::*`: the crate root has a module named `std` (the drop-in
/// [`gort::std`](crate::std)), and a glob import of the root makes every later `use std::..`
/// ambiguous (E0659), and `std::..` paths in code resolve to `gort::std`.
///
/// ```
/// use gort::prelude::*;
/// use std::time::Duration;
///
/// let (tx, rx) = chan::<u32>(1);
/// let h = go!(move || tx.send(7).unwrap());
/// select! {
///     recv(rx) -> v => assert_eq!(v, Ok(7)),
///     recv(time::after(Duration::from_secs(5))) -> _ => panic!("timed out"),
/// }
/// h.join().unwrap();
/// ```
pub mod prelude {
    pub use crate::chan::{self, chan, Receiver, Select, Sender};
    pub use crate::context::{self, Context};
    pub use crate::sync::{Mutex, RwLock, WaitGroup};
    pub use crate::{
        block_on, blocking, go, goroutine_local, select, spawn, sync, thread, time, yield_now,
        JoinHandle,
    };
}

/// `go!` accepts a call, a method call or a closure; anything else is a compile error that
/// says so:
///
/// ```compile_fail
/// let h = gort::go!(1 + 2);
/// ```
///
/// And the spawned function must be `Send + 'static` like `std::thread::spawn`'s:
///
/// ```compile_fail
/// let v = vec![1];
/// let r = &v;
/// gort::go!(move || r.len());
/// ```
#[doc(hidden)]
pub mod __compile_fail {}

/// Items used by the code the macros expand to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runtime::entry::{run_main, run_test, run_test_report};
}
