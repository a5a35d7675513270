//! A non-blocking std socket registered with the poller: the one place where "try the
//! system call; on `EAGAIN` park until the poller sees readiness, then try again" lives
//! (Go's `poll.FD`).
//!
//! The std type does the system calls (std already maps every errno to its `io::Error`
//! kinds); this wrapper adds the waiting, the timeouts and the user's non-blocking mode:
//!
//! ```text
//!  attempt result     | user non-blocking | what happens
//!  -------------------+-------------------+---------------------------------------------
//!  Ok / other error   | any               | returned as is
//!  Interrupted        | any               | retried
//!  WouldBlock         | yes               | returned (std's behaviour)
//!  WouldBlock         | no                | park until readiness or the timeout; retry,
//!                     |                   | or return std's timeout error (EAGAIN, which
//!                     |                   | std reports for SO_RCVTIMEO/SO_SNDTIMEO)
//! ```
//!
//! Timeouts are deadlines computed when an operation first has to wait, so each `read` or
//! `write` call gets the whole timeout, as with std's socket options.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::poller::{Dir, Registration};
use super::sys;

/// A registered non-blocking socket of std type `T`.
pub(crate) struct Socket<T: AsRawFd> {
    /// Dropped before `io` (field order), so the registration goes before the fd closes.
    reg: Registration,
    /// The std socket, in non-blocking mode.
    io: T,
    /// Read timeout in nanoseconds, 0 for none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds, 0 for none.
    write_timeout: AtomicU64,
    /// `set_nonblocking(true)` was called: return WouldBlock instead of parking.
    nonblocking: AtomicBool,
}

impl<T: AsRawFd> Socket<T> {
    /// Puts `io` in non-blocking mode and registers it with the poller.
    pub(crate) fn new(io: T) -> io::Result<Socket<T>> {
        sys::set_nonblocking(io.as_raw_fd(), true)?;
        Self::new_nonblocking(io)
    }

    /// Registers `io`, which is already in non-blocking mode.
    pub(crate) fn new_nonblocking(io: T) -> io::Result<Socket<T>> {
        Ok(Socket {
            reg: Registration::new(io.as_raw_fd())?,
            io,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
        })
    }

    /// The std socket (non-blocking: use it only through `read`/`write` for I/O).
    #[inline]
    pub(crate) fn get(&self) -> &T {
        &self.io
    }

    /// The raw descriptor.
    #[inline]
    pub(crate) fn fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }

    /// Deregisters and returns the std socket in blocking mode.
    pub(crate) fn into_inner(self) -> T {
        let Socket { reg, io, .. } = self;
        drop(reg);
        // Best effort: a failure leaves a non-blocking socket, which std handles too.
        let _ = sys::set_nonblocking(io.as_raw_fd(), false);
        io
    }

    /// Runs `f` until it does not return WouldBlock, parking for read readiness.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(Dir::Read, &self.read_timeout, f)
    }

    /// Runs `f` until it does not return WouldBlock, parking for write readiness.
    #[inline]
    pub(crate) fn write<R>(&self, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(Dir::Write, &self.write_timeout, f)
    }

    fn op<R>(
        &self,
        dir: Dir,
        timeout: &AtomicU64,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            let seq = self.reg.seq(dir);
            match f(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.nonblocking.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    let d =
                        *deadline.get_or_insert_with(|| match timeout.load(Ordering::Relaxed) {
                            0 => None,
                            ns => Some(crate::time::deadline_after(Duration::from_nanos(ns))),
                        });
                    if !self.reg.wait(dir, seq, d) {
                        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Waits until a connect in progress finishes (write readiness), or `deadline`.
    pub(crate) fn finish_connect(&self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            let seq = self.reg.seq(Dir::Write);
            if sys::connect_result(self.fd())? {
                return Ok(());
            }
            if !self.reg.wait(Dir::Write, seq, deadline) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                ));
            }
        }
    }

    /// Sets the read or write timeout (std's rules: `Some(0)` is an error).
    pub(crate) fn set_timeout(&self, dir: Dir, t: Option<Duration>) -> io::Result<()> {
        let ns = match t {
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            Some(d) => d.as_nanos().clamp(1, u64::MAX as u128) as u64,
            None => 0,
        };
        match dir {
            Dir::Read => self.read_timeout.store(ns, Ordering::Relaxed),
            Dir::Write => self.write_timeout.store(ns, Ordering::Relaxed),
        }
        Ok(())
    }

    /// The read or write timeout.
    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        let ns = match dir {
            Dir::Read => self.read_timeout.load(Ordering::Relaxed),
            Dir::Write => self.write_timeout.load(Ordering::Relaxed),
        };
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    /// std's `set_nonblocking`: operations return WouldBlock instead of waiting.
    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }
}
