//! Stack overflow detection: a SIGSEGV/SIGBUS handler that recognises a goroutine's guard.
//!
//! Every worker thread gets an alternate signal stack (a fault on an exhausted goroutine stack
//! cannot run a handler on that same stack). The process-wide handler looks at the faulting
//! address: if it lies in the guard region of the goroutine running on this thread, it prints
//!
//! ```text
//! fatal error: stack overflow
//!
//! goroutine 7 "name" [running]: 256 KiB stack exhausted
//! ```
//!
//! and aborts. Any other fault goes to the handler that was installed before ours (std's,
//! which reports thread stack overflows, or the default action).
//!
//! # Safety
//! The handler only does async-signal-safe things: reads a const-initialised thread-local
//! pointer and atomics, formats into a stack buffer, `write(2)`s, and `abort`s or re-raises.
//! The previous action is stored once, before our handler is installed, and never changed.

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
    g.guard[0].store(lo, Ordering::Relaxed);
    g.guard[1].store(hi, Ordering::Relaxed);
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

/// Gives the calling worker thread an alternate signal stack (leaked with the thread).
pub(crate) fn install_thread() {
    // SAFETY: a fresh private mapping used only as this thread's signal stack; workers live
    // as long as the process, so it is never unmapped.
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
            return; // no alt stack: overflows then show as plain SIGSEGV
        }
        let ss = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        libc::sigaltstack(&ss, std::ptr::null_mut());
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let g = goroutine::current_ptr();
    if !g.is_null() {
        // SAFETY: the running goroutine is alive while its worker runs it.
        let g = unsafe { &*g };
        let lo = g.guard[0].load(Ordering::Relaxed);
        let hi = g.guard[1].load(Ordering::Relaxed);
        if lo != 0 && addr >= lo && addr < hi {
            report_overflow(g);
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
fn report_overflow(g: &Goroutine) -> ! {
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
    buf.push(b" KiB stack exhausted\nhint: give the goroutine a bigger stack with gort::thread::Builder::stack_size or gort::Config::stack_size\n");
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
