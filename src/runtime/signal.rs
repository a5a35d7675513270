//! Stack overflow detection: a SIGSEGV/SIGBUS handler that recognises a goroutine's guard.
//!
//! Every worker thread gets an alternate signal stack (a fault on an exhausted goroutine stack
//! cannot run a handler on that same stack): its own if it has one big enough, else ours,
//! unmapped again when the thread exits, with the thread's previous one put back
//! (`AltStack`). The process-wide handler looks at the faulting address, not at the memory's
//! protection (a guard is a page-table marker or a `PROT_NONE` range, see stack/guard.rs):
//! if it lies in the guard region of the goroutine running on this thread, it prints
//!
//! ```text
//! fatal error: stack overflow
//!
//! goroutine 7 "name" [running]: 256 KiB stack exhausted
//! stack=[0x7f0e1c004000, 0x7f0e1c044000) guard=[0x7f0e1c000000, 0x7f0e1c004000) fault at 0x7f0e1c003ff8
//! ```
//!
//! and aborts. Any other fault goes to the handler that was installed before ours (std's,
//! which reports thread stack overflows, or the default action).
//!
//! # Safety
//! The handler only does async-signal-safe things: reads a const-initialised thread-local
//! pointer and atomics, formats into a stack buffer, `write(2)`s, and `abort`s or re-raises.
//! The previous action is stored once, before our handler is installed, and never changed.
//! An alternate stack is unmapped only after `sigaltstack(SS_DISABLE)` on its own thread,
//! which is not running a handler then (it is returning from its thread function).

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use super::goroutine::{self, Goroutine};

const ALT_STACK_SIZE: usize = 64 * 1024;

struct Previous {
    segv: libc::sigaction,
    bus: libc::sigaction,
}

// SAFETY: plain old data written once before the handler can run, then only read.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Records the guard region of `g`'s stack (called when the stack is assigned).
pub(crate) fn set_guard(g: &Goroutine, (lo, hi): (usize, usize)) {
    debug_assert_eq!(hi - lo, super::stack::GUARD_SIZE);
    g.guard.store(lo, Ordering::Relaxed);
}

/// The guard region `[lo, hi)` of `g`'s stack, `lo == 0` before it has one.
fn guard_of(g: &Goroutine) -> (usize, usize) {
    let lo = g.guard.load(Ordering::Relaxed);
    (lo, lo + super::stack::GUARD_SIZE)
}

/// Installs the process-wide handler (once, when the runtime starts).
pub(crate) fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sigaction structs are plain data; zeroed is a valid initial value, and
        // sigaction(2) fills `old` before we replace the handler.
        unsafe {
            let mut action: libc::sigaction = MaybeUninit::zeroed().assume_init();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut segv: libc::sigaction = MaybeUninit::zeroed().assume_init();
            let mut bus: libc::sigaction = MaybeUninit::zeroed().assume_init();
            libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut segv);
            libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut bus);
            let prev = Previous { segv, bus };
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
            prev
        }
    });
}

/// A worker thread's alternate signal stack; dropping it (when the thread function returns)
/// puts back the one the thread had before and unmaps ours.
pub(crate) struct AltStack {
    /// Our mapping, or null if the thread's own stack was kept (or none could be made).
    mem: *mut libc::c_void,
    /// The alternate stack the thread had before ours (restored on drop).
    prev: libc::stack_t,
}

/// Room our handler, and the handler it chains to (std's), need on the alternate stack
/// beyond what the kernel needs to deliver the signal (`AT_MINSIGSTKSZ`).
const HANDLER_ROOM: usize = 16 * 1024;

/// Bytes of alternate stack a thread needs: the kernel's signal frame (`AT_MINSIGSTKSZ`;
/// about 12 KiB on CPUs with large vector state) and the handlers' room.
fn alt_stack_needed() -> usize {
    // SAFETY: getauxval has no preconditions; 0 means unknown.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    min.max(libc::MINSIGSTKSZ) + HANDLER_ROOM
}

/// Gives the calling worker thread an alternate signal stack, for as long as the returned
/// value lives: keep it until the thread ends.
///
/// A thread that already has one big enough keeps it (no mapping added). std gives every
/// thread it spawns one of just `AT_MINSIGSTKSZ` bytes (or `SIGSTKSZ`), enough for the
/// kernel's frame but not for our handler and std's after it, so a worker usually gets
/// ours (64 KiB, one mapping, pages committed only if a signal uses them); std's is put
/// back when ours is dropped, and std unmaps it when the thread ends, as it would have.
/// The thread also counts towards the mappings kept out of the `mprotect` guards' budget
/// while this lives (stack/guard.rs).
#[must_use = "the alternate signal stack is removed when this is dropped"]
pub(crate) fn install_thread() -> AltStack {
    super::stack::count_thread(true);
    // SAFETY: a zeroed stack_t is valid; sigaltstack(NULL, &old) only reads the current one.
    let mut prev: libc::stack_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: querying this thread's alternate stack.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut prev) } != 0 {
        prev.ss_flags = libc::SS_DISABLE;
    }
    let none = |prev| AltStack {
        mem: std::ptr::null_mut(),
        prev,
    };
    let size = ALT_STACK_SIZE.max(alt_stack_needed());
    if prev.ss_flags & libc::SS_DISABLE == 0 && prev.ss_size >= alt_stack_needed() {
        return none(prev);
    }
    // SAFETY: a fresh private mapping used only as this thread's signal stack.
    unsafe {
        let mem = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            // No alt stack of ours: overflows then show as plain SIGSEGV (or on std's).
            return none(prev);
        }
        let ss = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: size,
        };
        if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
            libc::munmap(mem, size);
            return none(prev);
        }
        AltStack { mem, prev }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        super::stack::count_thread(false);
        if self.mem.is_null() {
            return;
        }
        let prev = libc::stack_t {
            ss_sp: self.prev.ss_sp,
            ss_flags: self.prev.ss_flags & libc::SS_DISABLE,
            ss_size: self.prev.ss_size,
        };
        let size = ALT_STACK_SIZE.max(alt_stack_needed());
        // SAFETY: this thread installed `mem` as its alternate stack and is not running a
        // handler on it (module safety notes); once the previous one is back (or none), no
        // signal can use ours, so it can be unmapped. The previous one is still mapped: its
        // owner (std) unmaps it only after this, when the thread ends.
        unsafe {
            if libc::sigaltstack(&prev, std::ptr::null_mut()) == 0 {
                libc::munmap(self.mem, size);
            }
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let g = goroutine::current_ptr();
    if !g.is_null() {
        // SAFETY: the running goroutine is alive while its worker runs it.
        let g = unsafe { &*g };
        let (lo, hi) = guard_of(g);
        if lo != 0 && addr >= lo && addr < hi {
            report_overflow(g, addr);
        }
    }
    let Some(prev) = PREVIOUS.get() else {
        return;
    };
    let prev = if sig == libc::SIGBUS {
        &prev.bus
    } else {
        &prev.segv
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again and the
        // kernel takes the default action (core dump).
        // SAFETY: resetting a signal disposition is async-signal-safe.
        unsafe {
            let mut dfl: libc::sigaction = MaybeUninit::zeroed().assume_init();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed as an SA_SIGINFO handler with this ABI.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous handler was installed as a plain handler with this ABI.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// Writes the overflow report to stderr and aborts. Async-signal-safe.
fn report_overflow(g: &Goroutine, addr: usize) -> ! {
    let mut buf = Buf::new();
    buf.push(b"fatal error: stack overflow\n\ngoroutine ");
    buf.push_num(g.id);
    if let Some(name) = &g.name {
        buf.push(b" \"");
        buf.push(name.as_bytes());
        buf.push(b"\"");
    }
    buf.push(b" [running]: ");
    buf.push_num((g.stack_size / 1024) as u64);
    buf.push(b" KiB stack exhausted\n");
    let (lo, hi) = guard_of(g);
    buf.push(b"stack=[");
    buf.push_hex(hi);
    buf.push(b", ");
    buf.push_hex(hi + g.stack_size);
    buf.push(b") guard=[");
    buf.push_hex(lo);
    buf.push(b", ");
    buf.push_hex(hi);
    buf.push(b") fault at ");
    buf.push_hex(addr);
    buf.push(b"\nhint: give the goroutine a bigger stack with gort::thread::Builder::stack_size, gort::Config::stack_size or GORT_STACK_SIZE\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe; buf is valid for its length.
    unsafe {
        libc::write(2, buf.data.as_ptr().cast(), buf.len);
        libc::abort();
    }
}

struct Buf {
    data: [u8; 512],
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: [0; 512],
            len: 0,
        }
    }
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.data.len() - self.len);
        self.data[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn push_hex(&mut self, n: usize) {
        let mut digits = [0u8; 18];
        digits[0] = b'0';
        digits[1] = b'x';
        let width = (usize::BITS as usize / 4).max(1);
        let mut len = 2;
        let mut started = false;
        for i in (0..width).rev() {
            let d = (n >> (4 * i)) & 0xf;
            if d != 0 || started || i == 0 {
                started = true;
                digits[len] = b"0123456789abcdef"[d];
                len += 1;
            }
        }
        self.push(&digits[..len]);
    }
    fn push_num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// True if `addr`'s page is mapped (mincore fails with ENOMEM on unmapped memory).
    fn mapped(addr: usize) -> bool {
        let mut v = [0u8; 1];
        // SAFETY: mincore only reads the page tables; `addr` is page aligned.
        unsafe { libc::mincore(addr as *mut _, 1, v.as_mut_ptr()) == 0 }
    }

    /// The calling thread's alternate signal stack, if any.
    fn current_alt_stack() -> Option<usize> {
        // SAFETY: a zeroed stack_t is valid; sigaltstack only writes it.
        let mut ss: libc::stack_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: querying the current alternate stack.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) };
        (ss.ss_flags & libc::SS_DISABLE == 0).then_some(ss.ss_sp as usize)
    }

    /// Issue 12, item 4: a worker thread that exits (a spare M after its keep-alive) must not
    /// leave its alternate signal stack mapped, and must give the thread back the one it
    /// had (std's, which std unmaps itself). The thread below lives as `run_thread` does:
    /// it installs the stack first and holds the guard until its function returns (the
    /// explicit drop stands for that return; checking right after it, on the thread, leaves
    /// no time for another thread to map something at the freed address).
    #[test]
    fn issue_12_alt_stack_is_unmapped_when_its_thread_exits() {
        std::thread::spawn(|| {
            let before = current_alt_stack();
            let alt = install_thread();
            let addr = current_alt_stack().expect("an alternate stack is installed");
            assert!(mapped(addr));
            if addr == before.unwrap_or(0) {
                return; // the thread's own was big enough: nothing of ours to unmap
            }
            drop(alt);
            assert_eq!(current_alt_stack(), before, "the previous one is back");
            assert!(!mapped(addr), "the alternate signal stack is still mapped");
        })
        .join()
        .unwrap();
    }

    /// Stack review item 3: a thread that already has a big enough alternate stack keeps it
    /// (no mapping added per worker), and one too small for the handlers is replaced, then
    /// restored.
    #[test]
    fn an_alt_stack_big_enough_is_kept_and_a_small_one_restored() {
        std::thread::spawn(|| {
            for (size, kept) in [(alt_stack_needed() + 4096, true), (8192, false)] {
                let mut mem = vec![0u8; size];
                let ss = libc::stack_t {
                    ss_sp: mem.as_mut_ptr().cast(),
                    ss_flags: 0,
                    ss_size: size,
                };
                // SAFETY: `mem` outlives its use as this thread's alternate stack (it is
                // replaced below, before `mem` is dropped).
                assert_eq!(unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) }, 0);
                let ours = mem.as_ptr() as usize;
                let alt = install_thread();
                assert_eq!(current_alt_stack() == Some(ours), kept, "size {size}");
                drop(alt);
                assert_eq!(current_alt_stack(), Some(ours), "size {size}: restored");
                let off = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                // SAFETY: no handler runs on this thread now.
                unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
            }
        })
        .join()
        .unwrap();
    }
}
