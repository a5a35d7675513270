//! Stack overflow detection: a SIGSEGV/SIGBUS handler that recognises a goroutine's guard.
//!
//! Every worker thread gets an alternate signal stack (a fault on an exhausted goroutine stack
//! cannot run a handler on that same stack), unmapped again when the thread exits
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
/// disables and unmaps it.
pub(crate) struct AltStack {
    /// The mapping, or null if none could be made.
    mem: *mut libc::c_void,
}

/// Gives the calling worker thread an alternate signal stack, for as long as the returned
/// value lives: keep it until the thread ends.
#[must_use = "the alternate signal stack is removed when this is dropped"]
pub(crate) fn install_thread() -> AltStack {
    // SAFETY: a fresh private mapping used only as this thread's signal stack.
    unsafe {
        let mem = libc::mmap(
            std::ptr::null_mut(),
            ALT_STACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            // No alt stack: overflows then show as plain SIGSEGV.
            return AltStack {
                mem: std::ptr::null_mut(),
            };
        }
        let ss = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
            libc::munmap(mem, ALT_STACK_SIZE);
            return AltStack {
                mem: std::ptr::null_mut(),
            };
        }
        AltStack { mem }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.mem.is_null() {
            return;
        }
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: this thread installed `mem` as its alternate stack and is not running a
        // handler on it (module safety notes); once disabled, no signal can use it, so it can
        // be unmapped.
        unsafe {
            if libc::sigaltstack(&off, std::ptr::null_mut()) == 0 {
                libc::munmap(self.mem, ALT_STACK_SIZE);
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
    /// leave its alternate signal stack mapped. The thread below lives as `run_thread` does:
    /// it installs the stack first and holds the guard until its function returns (the
    /// explicit drop stands for that return; checking right after it, on the thread, leaves
    /// no time for another thread to map something at the freed address).
    #[test]
    fn issue_12_alt_stack_is_unmapped_when_its_thread_exits() {
        std::thread::spawn(|| {
            let alt = install_thread();
            let addr = current_alt_stack().expect("an alternate stack is installed");
            assert!(mapped(addr));
            drop(alt);
            assert_eq!(current_alt_stack(), None, "the alternate stack is disabled");
            assert!(!mapped(addr), "the alternate signal stack is still mapped");
        })
        .join()
        .unwrap();
    }
}
