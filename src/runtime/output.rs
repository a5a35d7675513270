//! sysmon's output on stderr: it never takes std's stderr lock and never blocks.
//!
//! sysmon keeps the scheduler moving (hand-offs, overdue timers, deadlock detection), so it
//! must not wait for stderr: not for std's `Stderr` lock, which any goroutine or thread may
//! hold for as long as it likes (`stderr().lock()` across a blocking call, a slow `eprintln!`
//! of a huge value), and not for a full pipe whose reader is slow or gone. Its output (the
//! `GORT_SCHEDTRACE` lines, SIGQUIT dumps, fatal reports) is therefore formatted first,
//! queued in an [`Output`], and written with raw system calls that cannot block:
//!
//! ```text
//!  stderr is       | written with
//!  ----------------+-------------------------------------------------------------------
//!  a pipe or FIFO  | write() on a descriptor of its own opened with O_NONBLOCK from
//!                  | /proc/self/fd/2 (fd 2's own flags, shared with other processes and
//!                  | with std's writes, stay as they are); opened per flush and closed at
//!                  | once, so it follows a later dup2 onto fd 2 and never keeps the pipe open
//!  a socket        | send(MSG_DONTWAIT | MSG_NOSIGNAL)
//!  anything else   | write() of at most 4 KiB, each after poll() said writable (regular
//!  (file, tty)     | files always are)
//! ```
//!
//! What stderr does not take now stays queued for sysmon's next wake. Trace lines are
//! dropped (and counted, then reported once stderr drains) while more than `BACKLOG` bytes
//! wait; a dump is queued whole. On an error other than "would block" (the reader is gone:
//! EPIPE, a closed descriptor) the queue is discarded. A fatal report waits for stderr a
//! little ([`Output::flush_for`]) since the process exits right after.
//!
//! Lines written by sysmon and lines of the program's `eprintln!` may interleave (each
//! `write` of at most 4 KiB into a pipe is atomic); they never mix within a line.

use std::time::{Duration, Instant};

/// Trace lines are dropped while this many bytes wait.
const BACKLOG: usize = 64 * 1024;
/// Largest single write: a pipe takes up to PIPE_BUF (4 KiB) atomically.
const CHUNK: usize = 4096;

/// Output queued for stderr (owned by sysmon; see the module comment).
#[derive(Default)]
pub(crate) struct Output {
    /// Bytes not written yet.
    queued: Vec<u8>,
    /// Trace lines dropped since stderr last drained.
    dropped: u64,
}

/// What stderr did with a write.
enum Took {
    /// This many bytes (possibly 0: it would block).
    Bytes(usize),
    /// Nobody can read it any more (or it is not open): give up.
    Gone,
}

impl Output {
    pub(crate) fn new() -> Output {
        Output::default()
    }

    /// Queues a trace line (with its newline), unless stderr is backed up: then it is dropped
    /// and counted.
    pub(crate) fn line(&mut self, line: &str) {
        if self.queued.len() > BACKLOG {
            self.dropped += 1;
            return;
        }
        self.queued.extend_from_slice(line.as_bytes());
        self.queued.push(b'\n');
    }

    /// Queues `text` whole (a dump, a report).
    pub(crate) fn text(&mut self, text: &str) {
        self.queued.extend_from_slice(text.as_bytes());
    }

    /// True while something waits to be written.
    pub(crate) fn is_pending(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Writes what stderr takes now, without blocking.
    pub(crate) fn flush(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        match write_nonblocking(&self.queued) {
            Took::Bytes(n) => {
                self.queued.drain(..n);
            }
            Took::Gone => self.queued.clear(),
        }
        if self.queued.is_empty() && self.dropped > 0 {
            let note = format!(
                "gort: {} GORT_SCHEDTRACE lines dropped: stderr was not writable\n",
                self.dropped
            );
            self.dropped = 0;
            self.queued.extend_from_slice(note.as_bytes());
            self.flush();
        }
    }

    /// Writes everything, waiting for stderr to take it for at most `patience` in all (for
    /// fatal reports: the process exits next). What is left then is dropped.
    pub(crate) fn flush_for(&mut self, patience: Duration) {
        let until = Instant::now() + patience;
        loop {
            self.flush();
            let now = Instant::now();
            if self.queued.is_empty() || now >= until {
                return;
            }
            let ms = (until - now).as_millis().clamp(1, 100) as libc::c_int;
            let mut pfd = libc::pollfd {
                fd: 2,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the result only decides when to try again.
            unsafe { libc::poll(&mut pfd, 1, ms) };
        }
    }
}

/// Writes a fatal report to stderr without std's lock, waiting at most `patience` for it.
pub(crate) fn fatal(text: &str, patience: Duration) {
    let mut out = Output::new();
    out.text(text);
    out.flush_for(patience);
}

/// Writes as much of `buf` as stderr takes without blocking (see the module's table).
fn write_nonblocking(buf: &[u8]) -> Took {
    // SAFETY: `stat` is plain data, filled by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes the struct we pass.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return Took::Gone;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => {
            // SAFETY: opening a path with a NUL-terminated literal; the descriptor is ours
            // and closed below.
            let fd = unsafe {
                libc::open(
                    c"/proc/self/fd/2".as_ptr(),
                    libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                // No /proc, or no reader (ENXIO): fall back to poll + write on fd 2.
                return pump(buf, |b| polled_write(2, b));
            }
            let took = pump(buf, |b| {
                // SAFETY: `fd` is our own descriptor; `b` is a live slice.
                step(unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) })
            });
            // SAFETY: closing the descriptor opened above.
            unsafe { libc::close(fd) };
            took
        }
        libc::S_IFSOCK => pump(buf, |b| {
            // SAFETY: `b` is a live slice; the flags make the call non-blocking and keep
            // SIGPIPE away.
            step(unsafe {
                libc::send(
                    2,
                    b.as_ptr().cast(),
                    b.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            })
        }),
        _ => pump(buf, |b| polled_write(2, b)),
    }
}

/// The outcome of one raw write.
enum Step {
    Wrote(usize),
    /// Interrupted by a signal: try again.
    Retry,
    /// It would block: stop for now.
    Block,
    /// Nobody can read it: give up.
    Gone,
}

/// Reads the result of a raw write (and errno when it failed).
fn step(n: isize) -> Step {
    if n > 0 {
        return Step::Wrote(n as usize);
    }
    if n == 0 {
        return Step::Block;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINTR) => Step::Retry,
        Some(libc::EAGAIN) => Step::Block,
        _ => Step::Gone,
    }
}

/// `write(fd, b)` if poll says `fd` is writable now.
fn polled_write(fd: libc::c_int, b: &[u8]) -> Step {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    if ready < 0 {
        return Step::Block;
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Step::Gone;
    }
    if pfd.revents & libc::POLLOUT == 0 {
        return Step::Block;
    }
    // SAFETY: `b` is a live slice.
    step(unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) })
}

/// Writes `buf` in chunks of at most `CHUNK` with `write_one` until all is written or it
/// would block.
fn pump(buf: &[u8], mut write_one: impl FnMut(&[u8]) -> Step) -> Took {
    let mut done = 0;
    while done < buf.len() {
        let end = (done + CHUNK).min(buf.len());
        match write_one(&buf[done..end]) {
            Step::Wrote(n) => done += n,
            Step::Retry => {}
            Step::Block => break,
            Step::Gone => return Took::Gone,
        }
    }
    Took::Bytes(done)
}
