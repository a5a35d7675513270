//! TCP: [`TcpListener`] and [`TcpStream`], std-shaped, parking the goroutine (or thread)
//! while the socket is not ready.
//!
//! # Safety
//!
//! The only unsafe code is `FromRawFd::from_raw_fd` in the `std_conversions!` macro (also
//! expanded in `udp.rs` and `unix.rs`). It relies on one invariant: **each descriptor has
//! exactly one owner.** `from_raw_fd` passes the caller's ownership, unchanged, to std's
//! `from_raw_fd` (same contract); from then on the descriptor is owned by one
//! `Socket` (`fd.rs`), shared by the handles' `Arc`, deregistered from the poller and closed
//! exactly once when the last handle drops. `AsFd`/`AsRawFd` only lend it for the handle's
//! lifetime; `into_std`/`into_raw_fd` give the caller either that socket (last handle) or a
//! `dup` of it (other handles still own the original), never a second owner of one number.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fd::Socket;
use super::poller::Dir;
use super::{each_addr, sys};

/// A TCP socket server, listening for connections: std's `TcpListener`, but `accept` parks
/// the calling goroutine instead of blocking its worker thread.
///
/// ```
/// use std::io::{Read, Write};
/// use gort::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = gort::go!(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf).unwrap();
/// });
/// let mut c = TcpStream::connect(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut buf = [0; 5];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hello");
/// server.join().unwrap();
/// ```
pub struct TcpListener {
    sock: Arc<Socket<net::TcpListener>>,
}

/// A TCP connection: std's `TcpStream`, whose reads, writes and connects park the calling
/// goroutine (or plain thread) until the socket is ready.
///
/// `Read` and `Write` are implemented for `TcpStream` and `&TcpStream`, so one goroutine can
/// read while another writes through a shared reference or a [`try_clone`](Self::try_clone).
pub struct TcpStream {
    sock: Arc<Socket<net::TcpStream>>,
}

/// An iterator over the connections a [`TcpListener`] accepts; never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Creates a listener bound to `addr` (the first of its addresses that binds), like
    /// std's. The backlog is the system's maximum (`net.core.somaxconn`), as in Go.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let fd = sys::tcp_listen(a)?;
            let l = net::TcpListener::from(fd);
            Ok(TcpListener {
                sock: Arc::new(Socket::new_nonblocking(l)?),
            })
        })
    }

    /// Accepts a new connection, parking until one arrives.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, addr) = self.sock.read(|l| l.accept())?;
        Ok((TcpStream::from_std(s)?, addr))
    }

    /// An iterator over incoming connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Another handle to the same listener (it shares the socket, its registration and its
    /// non-blocking mode, as std's `try_clone` shares the socket).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.clone(),
        })
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get().ttl()
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// With `true`, `accept` returns `WouldBlock` instead of parking (std's behaviour).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Adopts a std listener (made non-blocking and registered with the poller).
    pub fn from_std(l: net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: Arc::new(Socket::new(l)?),
        })
    }

    /// The std listener, deregistered and in blocking mode (if other `try_clone` handles
    /// are alive, a duplicate that shares their non-blocking file status).
    pub fn into_std(self) -> io::Result<net::TcpListener> {
        match Arc::try_unwrap(self.sock) {
            Ok(s) => Ok(s.into_inner()),
            Err(shared) => shared.get().try_clone(),
        }
    }
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to `addr`, trying each of its addresses in turn (as std does), parking
    /// while the connection is being established.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| connect(a, None))
    }

    /// Connects to `addr`, giving up with `ErrorKind::TimedOut` after `timeout` (a zero
    /// timeout is an `InvalidInput` error, as with std).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        connect(addr, Some(crate::time::deadline_after(timeout)))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }

    /// Another handle to the same connection. Like std's (which duplicates the descriptor),
    /// both handles share the socket, its timeouts and its non-blocking mode; the socket is
    /// closed when the last handle is dropped.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.clone(),
        })
    }

    /// Each `read` gives up after `dur` with std's error (`ErrorKind::WouldBlock`, EAGAIN).
    /// `None` waits for ever; `Some(Duration::ZERO)` is an `InvalidInput` error.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, dur)
    }

    /// Each `write` gives up after `dur` with std's error (`ErrorKind::WouldBlock`, EAGAIN).
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, dur)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Dir::Read))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Dir::Write))
    }

    /// Reads without removing the data from the queue, parking until some is there.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.get().set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.get().nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get().ttl()
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// With `true`, reads and writes return `WouldBlock` instead of parking (std's
    /// behaviour).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Adopts a connected std stream (made non-blocking and registered with the poller).
    pub fn from_std(s: net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: Arc::new(Socket::new(s)?),
        })
    }

    /// The std stream, deregistered and in blocking mode (if other `try_clone` handles are
    /// alive, a duplicate that shares their non-blocking file status).
    pub fn into_std(self) -> io::Result<net::TcpStream> {
        match Arc::try_unwrap(self.sock) {
            Ok(s) => Ok(s.into_inner()),
            Err(shared) => shared.get().try_clone(),
        }
    }
}

/// A non-blocking connect, then a park until it completes or `deadline` passes.
fn connect(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let fd = sys::socket(sys::family(addr), libc::SOCK_STREAM)?;
    let connected = sys::start_connect(fd.as_raw_fd(), addr)?;
    // Registering after the connect started loses nothing: epoll reports a descriptor that
    // is already writable when it is added.
    let sock = Socket::new_nonblocking(net::TcpStream::from(fd))?;
    if !connected {
        sock.finish_connect(deadline)?;
    }
    Ok(TcpStream {
        sock: Arc::new(sock),
    })
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read(|mut s| s.read_vectored(bufs))
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(|mut s| s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write(|mut s| s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! std_conversions {
    ($gort:ident, $std:ty) => {
        impl From<$std> for $gort {
            /// Adopts the std socket. Panics if the poller cannot register it (out of
            /// memory or `max_user_watches`); [`Self::from_std`] reports that instead.
            fn from(s: $std) -> $gort {
                $gort::from_std(s).unwrap_or_else(|e| {
                    panic!("gort::net: cannot register a socket with the poller: {e}")
                })
            }
        }

        impl From<$gort> for $std {
            #[doc = concat!("See [`", stringify!($gort), "::into_std`]; panics only if ")]
            #[doc = "duplicating a shared socket fails."]
            fn from(s: $gort) -> $std {
                s.into_std()
                    .unwrap_or_else(|e| panic!("gort::net: cannot duplicate a socket: {e}"))
            }
        }

        impl AsRawFd for $gort {
            fn as_raw_fd(&self) -> RawFd {
                self.sock.fd()
            }
        }

        impl AsFd for $gort {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.sock.get().as_fd()
            }
        }

        impl FromRawFd for $gort {
            /// # Safety
            /// `fd` must be an open socket of the right kind that the caller owns; ownership
            /// moves to the new value (as with std's `from_raw_fd`).
            ///
            /// # Panics
            /// As `From<std type>` does, if the poller cannot register the socket (the socket
            /// is then closed, since the new value owned it).
            unsafe fn from_raw_fd(fd: RawFd) -> $gort {
                // SAFETY: this function's contract is std's `from_raw_fd` contract: `fd` is an
                // open socket the caller owns and gives up. Ownership moves to the std socket,
                // then to the new value's `Socket`, which closes it once (module Safety); if
                // registration fails, `from` panics and dropping the std socket closes it, also
                // exactly once.
                $gort::from(unsafe { <$std>::from_raw_fd(fd) })
            }
        }

        impl IntoRawFd for $gort {
            fn into_raw_fd(self) -> RawFd {
                <$std>::from(self).into_raw_fd()
            }
        }

        impl fmt::Debug for $gort {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.sock.get(), f)
            }
        }
    };
}

pub(crate) use std_conversions;

std_conversions!(TcpListener, net::TcpListener);
std_conversions!(TcpStream, net::TcpStream);
