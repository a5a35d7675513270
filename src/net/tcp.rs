//! TCP: [`TcpListener`] and [`TcpStream`], std-shaped, parking the goroutine (or thread)
//! while the socket is not ready. What they share with the other socket types comes from
//! `surface.rs`; this file holds what is TCP's own.

use std::io;
use std::net::{self, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::socket::Socket;
use super::surface::{data_socket, listener, socket_common, stream_io};
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

socket_common!(TcpListener, net::TcpListener, SocketAddr);
listener!(TcpListener, TcpStream, SocketAddr, Incoming);

socket_common!(TcpStream, net::TcpStream, SocketAddr);
data_socket!(TcpStream, SocketAddr);
stream_io!(TcpStream);

impl TcpListener {
    /// Creates a listener bound to `addr` (the first of its addresses that binds), like
    /// std's. The backlog is the system's maximum (`net.core.somaxconn`), as in Go.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let l = net::TcpListener::from(sys::tcp_listen(a)?);
            Ok(TcpListener {
                sock: Arc::new(Socket::new_nonblocking(l)?),
            })
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

    /// Sets `IPV6_V6ONLY` (deprecated in std too: on Linux it fails once the socket is
    /// bound, and `bind` is the only way to make a listener).
    #[deprecated(
        since = "0.1.0",
        note = "this option can only be set before the socket is bound"
    )]
    pub fn set_only_v6(&self, only_v6: bool) -> io::Result<()> {
        #[allow(deprecated)]
        self.sock.get().set_only_v6(only_v6)
    }

    /// Reads `IPV6_V6ONLY` (deprecated in std too).
    #[deprecated(
        since = "0.1.0",
        note = "this option can only be set before the socket is bound"
    )]
    pub fn only_v6(&self) -> io::Result<bool> {
        #[allow(deprecated)]
        self.sock.get().only_v6()
    }
}

impl TcpStream {
    /// Connects to `addr`, trying each of its addresses in turn (as std does), parking
    /// while the connection is being established.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| {
            Ok(TcpStream {
                sock: Arc::new(Socket::connect(a, None)?),
            })
        })
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
        let deadline = crate::time::deadline_after(timeout);
        Ok(TcpStream {
            sock: Arc::new(Socket::connect(addr, Some(deadline))?),
        })
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

    /// Sets `SO_LINGER` (std has it unstable, Go as `SetLinger`): `Some(d)` makes the close
    /// wait up to `d` (whole seconds) for unsent data, and `Some(Duration::ZERO)` makes it
    /// reset the connection at once; `None` (the default) closes in the background.
    ///
    /// With a non-zero linger, dropping the last handle blocks its thread (a worker, in a
    /// goroutine) while the data drains, as `close` does in C and in Go on Linux.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        sys::set_linger(self.sock.fd(), linger)
    }

    /// Reads `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sys::linger(self.sock.fd())
    }
}
