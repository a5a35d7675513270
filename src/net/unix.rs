//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], shaped like
//! `std::os::unix::net`'s and parking the goroutine (or thread) like the TCP types. What
//! they share with the other socket types comes from `surface.rs`; this file holds what is
//! their own (path addresses, pairs).
//!
//! A port from std changes `std::os::unix::net` to `gort::net::unix`; [`SocketAddr`] is
//! std's, re-exported here.

use std::io;
use std::os::unix::net as unet;
use std::path::Path;
use std::sync::Arc;

pub use std::os::unix::net::SocketAddr;

use super::socket::Socket;
use super::surface::{data_socket, datagram_io, listener, socket_common, stream_io};

/// A Unix-domain stream listener; `accept` parks until a connection arrives.
///
/// ```
/// use std::io::{Read, Write};
/// use gort::net::unix::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("gort-doc-unix-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("echo.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let server = gort::go!(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut buf = [0; 4];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf).unwrap();
/// });
/// let mut c = UnixStream::connect(&path).unwrap();
/// c.write_all(b"ping").unwrap();
/// let mut buf = [0; 4];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// server.join().unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct UnixListener {
    sock: Arc<Socket<unet::UnixListener>>,
}

/// A Unix-domain stream; reads and writes park until the socket is ready. `Read` and
/// `Write` are implemented for `UnixStream` and `&UnixStream`.
pub struct UnixStream {
    sock: Arc<Socket<unet::UnixStream>>,
}

/// A Unix-domain datagram socket; receives (and sends to a full queue) park until the
/// socket is ready.
pub struct UnixDatagram {
    sock: Arc<Socket<unet::UnixDatagram>>,
}

socket_common!(UnixListener, unet::UnixListener, SocketAddr);
listener!(UnixListener, UnixStream, SocketAddr, Incoming);

socket_common!(UnixStream, unet::UnixStream, SocketAddr);
data_socket!(UnixStream, SocketAddr);
stream_io!(UnixStream);

socket_common!(UnixDatagram, unet::UnixDatagram, SocketAddr);
data_socket!(UnixDatagram, SocketAddr);
datagram_io!(UnixDatagram);

impl UnixListener {
    /// Binds a listener to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(unet::UnixListener::bind(path)?)
    }

    /// Binds a listener to `addr` (a path or, on Linux, an abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(unet::UnixListener::bind_addr(addr)?)
    }
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = Incoming<'a>;
    /// [`UnixListener::incoming`], as with std's.
    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}

impl UnixStream {
    /// Connects to the socket file `path`. A local connect does not wait for the peer to
    /// accept; it runs inside [`crate::blocking`] for the rare case of a full backlog, where
    /// the kernel makes it wait.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::from_std(crate::blocking(|| unet::UnixStream::connect(path))?)
    }

    /// Connects to `addr` (a path or, on Linux, an abstract name), as
    /// [`connect`](Self::connect) does.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::from_std(crate::blocking(|| unet::UnixStream::connect_addr(addr))?)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unet::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }
}

impl UnixDatagram {
    /// A datagram socket bound to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(unet::UnixDatagram::bind(path)?)
    }

    /// A datagram socket bound to `addr` (a path or, on Linux, an abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(unet::UnixDatagram::bind_addr(addr)?)
    }

    /// An unbound datagram socket.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(unet::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = unet::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Connects to the socket file `path`: the default destination for `send` and the only
    /// source for `recv`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.sock.get().connect(path)
    }

    /// Connects to `addr`, as [`connect`](Self::connect) does.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock.get().connect_addr(addr)
    }

    /// Receives one datagram, parking until one arrives; returns its size and its sender's
    /// address. A datagram longer than `buf` is cut to fit. Once the socket is shut down
    /// for reading and empty, returns 0 bytes from an unnamed address, as std's does.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.recv(
            |s| s.recv_from(buf),
            // std's `SocketAddr` has no unnamed constructor: take an unbound socket's.
            || Ok((0, unet::UnixDatagram::unbound()?.local_addr()?)),
        )
    }

    /// Sends to the socket file `path`, parking while the receiver's queue is full.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.sock.write(|s| s.send_to(buf, path))
    }

    /// Sends to `addr`, parking while the receiver's queue is full.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.sock.write(|s| s.send_to_addr(buf, addr))
    }

    /// Shuts down the read half, the write half or both. Goroutines parked on the socket
    /// (through any handle) wake up: a receive returns 0, a send `BrokenPipe`.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }
}
