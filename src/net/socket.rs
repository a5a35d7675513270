//! The socket core: one non-blocking socket registered with the runtime's poller
//! (`runtime/netpoll.rs`), and every operation that std's socket types share, written once
//! (Go's `internal/poll.FD`).
//!
//! [`Socket<T>`] wraps a std socket `T` (`std::net::TcpStream`, `UdpSocket`,
//! `std::os::unix::net::UnixListener`, ...). The std type does the system calls that are its
//! own (std already maps every errno to its `io::Error` kinds); the core adds what makes the
//! socket park instead of block, and what every family does the same way:
//!
//! - [`read`](Socket::read) / [`write`](Socket::write): the retry-or-park loop below, used
//!   by every I/O call of every type (`read`, `recv_from`, `send_to`, `accept`, `peek`, ...);
//! - the read and write timeouts (deadlines) and the user's non-blocking mode;
//! - [`accept`](Socket::accept) (the loop, then the new connection adopted) and
//!   [`connect`](Socket::connect) (non-blocking connect, park until writable, deadline);
//! - [`shutdown`](Socket::shutdown), [`peek`](Socket::peek),
//!   [`take_error`](Socket::take_error): the same system call whatever the family;
//! - [`into_std`](Socket::into_std): the std socket back, deregistered and blocking.
//!
//! The std-shaped types (`tcp.rs`, `udp.rs`, `unix.rs`) hold an `Arc<Socket<T>>` and
//! forward to it; the methods std gives several of them are written once, in `surface.rs`.
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
//!
//! # Invariants
//!
//! 1. **The descriptor is non-blocking while a `Socket` owns it** (`O_NONBLOCK`, set by
//!    [`Socket::new`] or by `SOCK_NONBLOCK` at creation). The user's non-blocking mode is the
//!    `nonblocking` flag, never the file flag; only [`Socket::into_inner`] clears the flag.
//! 2. **The registration goes before the descriptor** (field order, and explicitly in
//!    `into_inner`): `EPOLL_CTL_DEL` always names this socket (`runtime/netpoll.rs`, Safety 3).
//! 3. **One `Socket` per socket.** `try_clone` handles share the `Arc`, so timeouts and mode
//!    are per socket (as std's duplicated descriptors share the file's status and options);
//!    the socket closes when the last handle drops.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sys;
pub(crate) use crate::runtime::netpoll::Dir;
use crate::runtime::netpoll::Registration;

/// A registered non-blocking socket of std type `T`.
pub(crate) struct Socket<T: AsRawFd> {
    /// Dropped before `io` (field order), so the registration goes before the fd closes.
    reg: Registration,
    /// The std socket, in non-blocking mode (invariant 1).
    io: T,
    /// Read timeout in nanoseconds, 0 for none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds, 0 for none.
    write_timeout: AtomicU64,
    /// `set_nonblocking(true)` was called: return WouldBlock instead of parking.
    nonblocking: AtomicBool,
    /// `shutdown(Read | Both)` was called (see [`Socket::recv`]). Set before the system
    /// call, so that a receiver woken by the shutdown's readiness edge sees it.
    read_shut: AtomicBool,
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
            read_shut: AtomicBool::new(false),
        })
    }

    /// The std socket (non-blocking: use it only through `read`/`write` for I/O; its
    /// option getters and setters are fine as they are).
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

    /// The std socket of the last handle, deregistered and in blocking mode; while other
    /// handles share the socket, a duplicate of the descriptor (which shares its
    /// non-blocking file status with theirs, as any `dup` does).
    pub(crate) fn into_std(this: Arc<Socket<T>>) -> io::Result<T>
    where
        T: AsFd + From<OwnedFd>,
    {
        match Arc::try_unwrap(this) {
            Ok(s) => Ok(s.into_inner()),
            Err(shared) => Ok(T::from(shared.io.as_fd().try_clone_to_owned()?)),
        }
    }

    /// Runs `f` until it does not return WouldBlock, parking for read readiness.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(
            Dir::Read,
            &self.read_timeout,
            f,
            None::<fn() -> io::Result<R>>,
        )
    }

    /// A receive on a datagram socket (`f`: std's `recv`, `recv_from`, or a peek): as
    /// [`read`](Self::read), except that once the socket has been shut down for reading, a
    /// receive that would wait returns `eof()` instead, which should be what the kernel's
    /// blocking receive returns then (0 bytes). A non-blocking receive on a shut-down
    /// datagram socket says EAGAIN for ever (streams say 0 themselves), so without this a
    /// receiver parked when the socket is shut down would never finish. In the user's
    /// non-blocking mode it still returns WouldBlock, as the kernel does.
    #[inline]
    pub(crate) fn recv<R>(
        &self,
        f: impl FnMut(&T) -> io::Result<R>,
        eof: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        self.op(Dir::Read, &self.read_timeout, f, Some(eof))
    }

    /// Runs `f` until it does not return WouldBlock, parking for write readiness.
    #[inline]
    pub(crate) fn write<R>(&self, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(
            Dir::Write,
            &self.write_timeout,
            f,
            None::<fn() -> io::Result<R>>,
        )
    }

    /// The loop of the table in the module comment.
    fn op<R>(
        &self,
        dir: Dir,
        timeout: &AtomicU64,
        mut f: impl FnMut(&T) -> io::Result<R>,
        eof: Option<impl FnOnce() -> io::Result<R>>,
    ) -> io::Result<R> {
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            let seq = self.reg.seq(dir);
            match f(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.nonblocking.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    if eof.is_some() && self.read_shut.load(Ordering::SeqCst) {
                        return eof.map_or(Err(e), |eof| eof());
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

    /// Accepts a connection on this listening socket (`f` is the std type's `accept`),
    /// parking until one arrives; the new socket comes back registered and non-blocking.
    pub(crate) fn accept<S: AsRawFd, A>(
        &self,
        f: impl FnMut(&T) -> io::Result<(S, A)>,
    ) -> io::Result<(Socket<S>, A)> {
        let (s, addr) = self.read(f)?;
        Ok((Socket::new(s)?, addr))
    }

    /// Reads without removing the data from the queue (`recv` with `MSG_PEEK`, as std's
    /// `peek` on every socket type), parking until there is some; 0 once the socket is
    /// shut down for reading and empty.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(|s| sys::peek(s.as_raw_fd(), buf), || Ok(0))
    }

    /// Shuts down the read half, the write half or both. Goroutines parked on the socket
    /// wake up (the shutdown is a readiness edge) and see EOF (a datagram receive: see
    /// [`recv`](Self::recv)) or `BrokenPipe`.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            // Before the system call: its readiness edge must find the flag set. Left set
            // if the call fails (ENOTCONN: a stream no longer connected, whose reads do not
            // wait; std's datagram sockets that have `shutdown` never fail it).
            self.read_shut.store(true, Ordering::SeqCst);
        }
        sys::shutdown(self.fd(), how)
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        sys::take_error(self.fd())
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

impl<T: AsRawFd + From<OwnedFd>> Socket<T> {
    /// A new stream socket connected to `addr`: a non-blocking connect, then a park (for
    /// write readiness) until it completes or `deadline` passes (`ErrorKind::TimedOut`).
    pub(crate) fn connect(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<Socket<T>> {
        let fd = sys::socket(sys::family(addr), libc::SOCK_STREAM)?;
        let connected = sys::start_connect(fd.as_raw_fd(), addr)?;
        // Registering after the connect started loses nothing: epoll reports a descriptor
        // that is already writable when it is added.
        let sock = Socket::new_nonblocking(T::from(fd))?;
        if !connected {
            sock.wait_connected(deadline)?;
        }
        Ok(sock)
    }

    /// Parks until the connect in progress finishes (write readiness), or `deadline`.
    fn wait_connected(&self, deadline: Option<Instant>) -> io::Result<()> {
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
}
