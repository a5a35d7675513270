//! Spawning goroutines and joining them.
//!
//! A spawn takes one G block (gref.rs: from the thread's free list, no lock, no malloc): the
//! goroutine, which carries its task — the user's function and the `Packet` its result goes
//! to — inline (`TaskSlot`; boxed only when the task is bigger than `TASK_INLINE` bytes). No stack yet: it takes one when it first runs. The task
//! catches a panic and delivers the result to the packet; the goroutine is made runnable
//! (runnext of the spawner's processor, like Go's `newproc`).
//!
//! `Packet` protocol (one result, at most one waiting joiner):
//!
//! ```text
//!  state    | meaning                                   | next
//!  ---------+-------------------------------------------+-----------------------------------
//!  RUNNING  | no result yet, nobody waiting              | WAITING (joiner), DONE (goroutine)
//!  WAITING  | joiner stored its Unparker and parks       | DONE (goroutine wakes the joiner),
//!           |                                            | RUNNING (joiner gave up: timeout)
//!  DONE     | result written; readable by the joiner     | final
//! ```
//!
//! Task ownership: two parties need the task, the goroutine (until it has run it or failed
//! to start) and its `JoinHandle` (until dropped). Each holds one bit of the task's
//! `Packet::owners`; whoever clears the last bit drops the task in place (the user's
//! function if it never ran, the result if nobody took it, then the packet, whose drop tells a
//! scope its borrows have ended). The goroutine's memory itself lives as long as any `GRef`.
//!
//! # Safety
//! - `result` is written once by the goroutine before it moves the state to DONE (Release),
//!   and read only by the joiner after it sees DONE (Acquire). `waiter` is written by the
//!   joiner before it moves the state to WAITING and read by the goroutine only after it sees
//!   WAITING.
//! - A task lives in its slot (or in the box the slot points to) from the spawn until the last
//!   owner bit is cleared (AcqRel, so that the dropper sees every write to it); a
//!   `JoinHandle` holds a bit and a `GRef` (the slot's goroutine), so its packet pointer is
//!   valid for its whole life. The task's type is known only to its `TaskOps`, made for it.

use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::goroutine::{GRef, Goroutine, Start};
use super::handle::Thread;
use super::park::{self, Unparker, WaitReason};
use super::scheduler;
use super::scope::ScopeData;
use super::stack;

const RUNNING: u8 = 0;
const WAITING: u8 = 1;
const DONE: u8 = 2;

/// Where a goroutine leaves its result for its joiner.
///
/// `repr(C)` with `owners` first: a task begins with its packet (`Task`), so the owner bits
/// are the first byte of every task, whatever its types (`TaskSlot::owners`), and they sit in
/// what would otherwise be the packet's padding.
#[repr(C)]
pub(crate) struct Packet<T> {
    /// `GOROUTINE | HANDLE`: who still needs the task (module comment; used by `TaskSlot`).
    owners: AtomicU8,
    state: AtomicU8,
    waiter: UnsafeCell<Option<Unparker>>,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
    /// The scope this goroutine belongs to (scoped spawns).
    scope: Option<Arc<ScopeData>>,
}

// SAFETY: the cells follow the protocol in the module comment; T crosses threads once.
unsafe impl<T: Send> Sync for Packet<T> {}

impl<T> Packet<T> {
    fn new(scope: Option<Arc<ScopeData>>) -> Packet<T> {
        Packet {
            owners: AtomicU8::new(GOROUTINE | HANDLE),
            state: AtomicU8::new(RUNNING),
            waiter: UnsafeCell::new(None),
            result: UnsafeCell::new(None),
            scope,
        }
    }

    fn complete(&self, r: std::thread::Result<T>) {
        // SAFETY: only the goroutine writes `result`, once, before DONE.
        unsafe { *self.result.get() = Some(r) };
        if self.state.swap(DONE, Ordering::AcqRel) == WAITING {
            // SAFETY: the joiner wrote `waiter` before WAITING and no longer touches it.
            if let Some(w) = unsafe { (*self.waiter.get()).take() } {
                w.unpark();
            }
        }
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Waits for the result until `deadline`. Returns false on timeout.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.is_done() {
            return true;
        }
        // SAFETY: state is RUNNING, so the goroutine does not read `waiter` until it sees
        // WAITING, which we store after this write.
        unsafe { *self.waiter.get() = Some(park::current()) };
        if self
            .state
            .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return true; // DONE meanwhile
        }
        loop {
            match deadline {
                None => park::park(WaitReason::Join),
                Some(d) => park::park_until(WaitReason::Join, d),
            }
            if self.is_done() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Err: DONE after all.
                return self
                    .state
                    .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                    .is_err();
            }
        }
    }

    /// Registers a future's waker to be woken when the result is in (`JoinFuture`). Returns
    /// false if the result is already in (then nothing is registered).
    ///
    /// `registered` says whether an earlier poll left a waker (state WAITING): the cell is
    /// then taken back first (WAITING -> RUNNING), so the goroutine never reads it while it
    /// changes; a waker that would wake the same task is kept as it is.
    fn register(&self, waker: &std::task::Waker, registered: bool) -> bool {
        if registered
            && self
                .state
                .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false; // DONE
        }
        if !registered && self.is_done() {
            return false;
        }
        // SAFETY: the state is RUNNING and we are the only joiner (the future owns the
        // handle): the goroutine does not read `waiter` until it sees WAITING.
        let slot = unsafe { &mut *self.waiter.get() };
        if !slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
            *slot = Some(Unparker::from_waker(waker.clone()));
        }
        self.state
            .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Withdraws a registered waker (a `JoinFuture` dropped before the result came).
    fn unregister(&self) {
        if self
            .state
            .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: back in RUNNING, the cell is ours again (as in `register`).
            drop(unsafe { (*self.waiter.get()).take() });
        }
    }

    /// Takes the result; only after `wait` returned true.
    fn take(&self) -> std::thread::Result<T> {
        debug_assert!(self.is_done());
        // SAFETY: DONE was observed with Acquire: the goroutine's write is visible and it
        // will not touch `result` again.
        unsafe { (*self.result.get()).take() }.expect("join result taken twice")
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        let unhandled_panic = matches!(self.result.get_mut(), Some(Err(_)));
        // Drop the result (nobody joined: a value, or a panic's payload) before the scope is
        // told: it may borrow from the scope. Its drop may run on a goroutine that has
        // finished its function (outside every `catch_unwind`), or on a worker: a panic
        // there has nowhere to go, so the process aborts, as std's does for a thread's
        // result.
        drop_result(self.result.get_mut().take());
        if let Some(scope) = &self.scope {
            scope.decrement(unhandled_panic);
        }
    }
}

/// Drops a goroutine's result where no panic may unwind: aborts with std's message
/// ("thread result panicked on drop") if its `Drop` panics.
fn drop_result<R>(r: R) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(r))) {
        // Its own drop might panic too: never run it.
        std::mem::forget(payload);
        super::panic::rtabort("thread result panicked on drop");
    }
}

/// An owned permission to join a goroutine (block until it finishes and take its result).
///
/// Dropping a `JoinHandle` detaches the goroutine: it goes on running, and if it panics, the
/// panic is still reported on stderr. Shaped like `std::thread::JoinHandle`.
pub struct JoinHandle<T> {
    /// The packet, inside the task of the goroutine `thread` refers to (which keeps it alive).
    packet: NonNull<Packet<T>>,
    thread: Thread,
}

// SAFETY: as std's JoinHandle (Send and Sync for every T): handles are made only by spawns,
// which require `T: Send`; the handle moves or shares only the right to wait for and take
// that result, and the packet follows its protocol (module safety notes).
unsafe impl<T> Send for JoinHandle<T> {}
// SAFETY: as above; `&JoinHandle` only reads the packet's atomic state and the `Thread`.
unsafe impl<T> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    fn packet(&self) -> &Packet<T> {
        // SAFETY: the handle holds an owner bit of the task and a reference to its goroutine
        // (module safety notes).
        unsafe { self.packet.as_ref() }
    }

    /// Waits for the goroutine to finish; returns its value, or the payload of its panic.
    ///
    /// From a goroutine this parks only the goroutine; from a plain thread it blocks the thread.
    pub fn join(self) -> std::thread::Result<T> {
        self.packet().wait(None);
        self.packet().take()
    }

    /// True once the goroutine has finished (returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.packet().is_done()
    }

    /// The goroutine's handle (id, name, `unpark`).
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Waits until `deadline`; `Err(self)` if the goroutine is still running then.
    #[doc(hidden)]
    pub fn join_deadline(self, deadline: Instant) -> Result<std::thread::Result<T>, Self> {
        if self.packet().wait(Some(deadline)) {
            Ok(self.packet().take())
        } else {
            Err(self)
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // Before `thread` (the goroutine, where the task lives) is dropped.
        self.thread.goroutine().task.release(HANDLE);
    }
}

/// Async code awaits a goroutine: `handle.await` is `handle.join()` without blocking the
/// executor's thread (the goroutine's end wakes the awaiting task).
///
/// ```
/// let h = gort::spawn(|| 6 * 7);
/// let v = gort::block_on(async move { h.await.unwrap() });
/// assert_eq!(v, 42);
/// ```
impl<T> std::future::IntoFuture for JoinHandle<T> {
    type Output = std::thread::Result<T>;
    type IntoFuture = JoinFuture<T>;

    fn into_future(self) -> JoinFuture<T> {
        JoinFuture {
            handle: Some(self),
            registered: false,
        }
    }
}

/// The future of a [`JoinHandle`] (`handle.await`): the goroutine's value, or the payload of
/// its panic.
///
/// Dropping it before the goroutine ends withdraws its waker and detaches the goroutine, as
/// dropping the `JoinHandle` does.
#[must_use = "futures do nothing unless polled"]
pub struct JoinFuture<T> {
    handle: Option<JoinHandle<T>>,
    /// A waker is registered in the packet (its state is WAITING, or DONE since).
    registered: bool,
}

impl<T> std::future::Future for JoinFuture<T> {
    type Output = std::thread::Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let h = this
            .handle
            .as_ref()
            .expect("JoinFuture polled after it completed");
        let packet = h.packet();
        if packet.register(cx.waker(), this.registered) {
            this.registered = true;
            return std::task::Poll::Pending;
        }
        this.registered = false;
        let h = this.handle.take().expect("checked above");
        std::task::Poll::Ready(h.packet().take())
    }
}

impl<T> Drop for JoinFuture<T> {
    fn drop(&mut self) {
        if let (Some(h), true) = (&self.handle, self.registered) {
            h.packet().unregister();
        }
    }
}

impl<T> std::fmt::Debug for JoinFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinFuture")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// How to spawn: what `thread::Builder` sets.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    /// Report a failure to get a stack to the caller (Builder spawns): the stack is taken
    /// at the call when it might not be had later (`stack::must_take_now`).
    pub(crate) eager_stack: bool,
}

/// A goroutine's body and its result packet, stored in the goroutine (`TaskSlot`).
/// `repr(C)` with the packet first: a `JoinHandle<T>` finds it without knowing `F`.
#[repr(C)]
struct Task<F, T> {
    packet: Packet<T>,
    /// The user's function; taken once, by the goroutine.
    f: UnsafeCell<Option<F>>,
}

impl<F, T> Drop for Task<F, T> {
    fn drop(&mut self) {
        // The function (and what it borrows) goes before the packet, whose drop may tell a
        // scope that its borrows have ended.
        drop(self.f.get_mut().take());
    }
}

/// Bytes of task a goroutine holds inline (the packet, 48 bytes when the result is `()`, and
/// the function's captures: a few handles); a bigger task, or one aligned to more than 8, is
/// boxed. Sized so that a goroutine's block is 232 bytes (gref.rs).
const TASK_INLINE: usize = 72;

/// The inline room for a task.
#[repr(C, align(8))]
struct TaskBuf([MaybeUninit<u8>; TASK_INLINE]);

/// Owner bit of the goroutine (cleared once it has run its task or failed to start).
const GOROUTINE: u8 = 1;
/// Owner bit of the `JoinHandle` (cleared when it is dropped).
const HANDLE: u8 = 2;

/// A goroutine's task, with its type erased: what `Goroutine::task` holds.
pub(crate) struct TaskSlot {
    /// The task itself, or (boxed) a `*mut Task` to it.
    buf: UnsafeCell<TaskBuf>,
    /// The operations of this task's type.
    ops: &'static TaskOps,
}

/// What the runtime can do with a task without knowing its type.
struct TaskOps {
    /// The task's address.
    task: unsafe fn(&TaskSlot) -> *mut u8,
    /// Runs it (or reports that it could not start) and delivers the result.
    run: unsafe fn(*mut u8, &Goroutine, Start),
    /// Drops it.
    drop: unsafe fn(&TaskSlot),
}

/// The `TaskOps` of `Task<F, T>`, inline or boxed.
struct Ops<F, T>(PhantomData<(F, T)>);

impl<F: FnOnce() -> T + Send, T: Send> Ops<F, T> {
    const INLINE: TaskOps = TaskOps {
        task: Self::inline_task,
        run: Self::run,
        drop: Self::inline_drop,
    };
    const BOXED: TaskOps = TaskOps {
        task: Self::boxed_task,
        run: Self::run,
        drop: Self::boxed_drop,
    };

    /// # Safety
    /// `slot` holds this type's task inline.
    unsafe fn inline_task(slot: &TaskSlot) -> *mut u8 {
        slot.buf.get().cast()
    }

    /// # Safety
    /// `slot` holds this type's task inline; called once, by its last owner.
    unsafe fn inline_drop(slot: &TaskSlot) {
        // SAFETY: the caller's contract: the task is there and nobody uses it any more.
        unsafe { std::ptr::drop_in_place(slot.buf.get().cast::<Task<F, T>>()) }
    }

    /// # Safety
    /// `slot` holds a pointer to this type's boxed task.
    unsafe fn boxed_task(slot: &TaskSlot) -> *mut u8 {
        // SAFETY: the caller's contract: the slot begins with the box's pointer.
        unsafe { slot.buf.get().cast::<*mut u8>().read() }
    }

    /// # Safety
    /// `slot` holds a pointer to this type's boxed task; called once, by its last owner.
    unsafe fn boxed_drop(slot: &TaskSlot) {
        // SAFETY: the caller's contract: the box made by `TaskSlot::new`, dropped once.
        drop(unsafe { Box::from_raw(slot.buf.get().cast::<*mut Task<F, T>>().read()) })
    }

    /// # Safety
    /// `task` is this type's task, whose goroutine (`g`) has not run it yet.
    unsafe fn run(task: *mut u8, g: &Goroutine, start: Start) {
        // SAFETY: the caller's contract.
        let task = unsafe { &*task.cast::<Task<F, T>>() };
        // SAFETY: only the goroutine takes `f`, once (the caller's contract).
        let f = unsafe { (*task.f.get()).take() }.expect("a task runs once");
        let r = match start {
            Start::Run => {
                let r = catch_unwind(AssertUnwindSafe(f));
                // Goroutine-locals die with the goroutine, on its stack, before the joiner
                // hears of the end (as a thread's locals die before its join returns).
                match (r, crate::local::run_destructors()) {
                    (Ok(v), Err(p)) => {
                        drop_result(v);
                        Err(p)
                    }
                    (r, Err(p)) => {
                        drop_result(p);
                        r
                    }
                    (r, Ok(())) => r,
                }
            }
            Start::Fail(e) => {
                // On the worker's stack, in its scheduler: nothing may unwind from here.
                super::panic::abort_on_unwind(
                    "a goroutine that could not start panicked dropping its function",
                    move || drop(f),
                );
                let msg = format!("goroutine {} could not start: {e}", g.id);
                eprintln!("{msg}");
                Err(Box::new(msg) as Box<dyn Any + Send>)
            }
        };
        scheduler::get().count_live(-1);
        task.packet.complete(r);
    }
}

impl TaskSlot {
    /// A slot holding `f`'s task, owned by both the goroutine and the handle.
    fn new<F, T>(f: F, scope: Option<Arc<ScopeData>>) -> TaskSlot
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let task = Task {
            packet: Packet::new(scope),
            f: UnsafeCell::new(Some(f)),
        };
        let mut buf = TaskBuf([MaybeUninit::uninit(); TASK_INLINE]);
        let fits = std::mem::size_of::<Task<F, T>>() <= TASK_INLINE
            && std::mem::align_of::<Task<F, T>>() <= std::mem::align_of::<TaskBuf>();
        let ops = if fits {
            // SAFETY: the task fits the buffer's size and alignment (checked above).
            unsafe { buf.0.as_mut_ptr().cast::<Task<F, T>>().write(task) };
            &Ops::<F, T>::INLINE
        } else {
            let b = Box::into_raw(Box::new(task));
            // SAFETY: a pointer fits the buffer (72 bytes aligned to 8).
            unsafe { buf.0.as_mut_ptr().cast::<*mut Task<F, T>>().write(b) };
            &Ops::<F, T>::BOXED
        };
        TaskSlot {
            buf: UnsafeCell::new(buf),
            ops,
        }
    }

    /// The packet of a task whose result type is `T`.
    ///
    /// # Safety
    /// `T` is the result type this slot was made with.
    unsafe fn packet<T>(&self) -> NonNull<Packet<T>> {
        // SAFETY: the packet is the task's first field (`repr(C)`).
        NonNull::new(unsafe { (self.ops.task)(self) }.cast()).expect("a task has an address")
    }

    /// Runs the task (once, by its goroutine `g`), then lets go of it.
    pub(crate) fn run(&self, g: &Goroutine, start: Start) {
        // SAFETY: the ops were made for this task's type; the goroutine runs it once (its
        // owner bit is still set: only this call clears it).
        unsafe { (self.ops.run)((self.ops.task)(self), g, start) };
        self.release(GOROUTINE);
    }

    /// The goroutine is being dropped without having run its task (it never started): lets
    /// go of it for the goroutine. Only then: once run, the task may be gone (a boxed one is
    /// freed by its last owner), owner bits and all.
    pub(crate) fn abandon(&mut self) {
        self.release(GOROUTINE);
    }

    /// The task's owner bits (the first field of its packet, the first field of the task).
    fn owners(&self) -> &AtomicU8 {
        // SAFETY: the task lives while an owner bit is set, and whoever calls this holds
        // one; `Task` and `Packet` are `repr(C)` with the packet and the owner bits first.
        unsafe { &*(self.ops.task)(self).cast::<AtomicU8>() }
    }

    /// Clears `who`'s owner bit; the last owner drops the task.
    fn release(&self, who: u8) {
        if self.owners().fetch_and(!who, Ordering::AcqRel) == who {
            // SAFETY: nobody else needs the task any more (module safety notes).
            unsafe { (self.ops.drop)(self) };
        }
    }
}

/// Spawns a goroutine running `f`.
///
/// # Safety
/// Everything `f` and `T` borrow must outlive the goroutine (the caller joins it before the
/// borrows end, as `thread::scope` does). With `F: 'static, T: 'static` this always holds.
#[track_caller]
pub(crate) unsafe fn spawn_unchecked<'a, F, T>(
    f: F,
    opts: Options,
    scope: Option<Arc<ScopeData>>,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let sched = scheduler::get();
    let size = match opts.stack_size {
        Some(n) => stack::round_size(n)?,
        None => sched.stack_size,
    };
    // The stack is taken now if one might not be had later (stack::must_take_now), so that
    // the failure is the caller's; otherwise the goroutine takes one from its processor's
    // cache when it first runs.
    let stack = if stack::must_take_now(size, opts.eager_stack) {
        Some(stack::get(size)?)
    } else {
        None
    };
    let id = super::machine::new_goroutine_id(&sched.next_id);
    // The goroutine's task may borrow for 'a: nothing reaches it after the goroutine and its
    // handle are gone, which the caller's contract puts before the borrows end.
    let task = TaskSlot::new(f, scope);
    let name = opts.name.map(Box::new);
    let at = std::panic::Location::caller();
    let (g, handle_ref) = GRef::new_pair(move || Goroutine::new(id, name, size, task, stack, at));
    // SAFETY: the slot was made for `F` and `T` just above.
    let packet = unsafe { g.task.packet::<T>() };
    sched.count_live(1);
    let thread = Thread::for_goroutine(handle_ref);
    super::park::note_use(); // for the deadlock detector (deadlock.rs)
    scheduler::ready(g, true);
    Ok(JoinHandle { packet, thread })
}

/// Spawns a goroutine with options; the `'static` (safe) form.
#[track_caller]
pub(crate) fn spawn_with<F, T>(f: F, opts: Options) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: F and T are 'static, so nothing they borrow can end.
    unsafe { spawn_unchecked(f, opts, None) }
}

/// Spawns a new goroutine and returns a [`JoinHandle`] for it.
///
/// The goroutine starts on one of the runtime's worker threads (the runtime starts on first
/// use). It gets its stack when it first runs, so spawning is cheap and a million spawns
/// that finish quickly need only a handful of stacks.
///
/// # Panics
/// If no goroutine stack can be allocated (memory or address space is exhausted, or, on
/// kernels without `MADV_GUARD_INSTALL`, the `vm.max_map_count` limit is reached), with a
/// message that says what ran out and how to raise the limit — as `std::thread::spawn`
/// panics when it cannot create a thread. Use
/// [`thread::Builder::spawn`](crate::thread::Builder::spawn) to get an `io::Error` instead.
///
/// ```
/// let h = gort::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn_with(f, Options::default()) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn is_inline(slot: &TaskSlot) -> bool {
        // SAFETY: the ops were made for this slot's task.
        unsafe { (slot.ops.task)(slot) == slot.buf.get().cast() }
    }

    #[test]
    fn small_tasks_are_inline_and_big_ones_boxed() {
        // The usual closure (a few handles) and its result fit in the goroutine.
        let (tx, rx) = (Arc::new(1u64), Arc::new(2u64));
        let small = TaskSlot::new(move || *tx + *rx, None);
        assert!(is_inline(&small));
        let big = [7u8; 512];
        let large = TaskSlot::new(move || big.len(), None);
        assert!(!is_inline(&large));
        for slot in [small, large] {
            slot.release(GOROUTINE);
            slot.release(HANDLE); // the last owner drops the task (unrun)
        }
        let h = spawn(move || big.iter().map(|&b| b as u64).sum::<u64>());
        assert_eq!(h.join().unwrap(), 7 * 512);
    }

    #[test]
    fn results_and_functions_are_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        // A result nobody joins: dropped with the handle (the goroutine has finished).
        let d = drops.clone();
        let h = spawn(move || Counted(d));
        while !h.is_finished() {
            std::thread::yield_now();
        }
        drop(h);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // A joined result: dropped by its receiver only.
        let d = drops.clone();
        let v = spawn(move || Counted(d)).join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(v);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // Captures are dropped when the function has run, joined or not.
        let c = Counted(drops.clone());
        spawn(move || std::hint::black_box(&c).0.load(Ordering::SeqCst))
            .join()
            .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        let c = Counted(drops.clone());
        let big = [0u8; 256]; // boxed task
        let h = spawn(move || {
            let _ = (&c, big);
        });
        while !h.is_finished() {
            std::thread::yield_now();
        }
        drop(h);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }
}
