//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], shaped like
//! `std::os::unix::net`'s and parking the goroutine (or thread) like the TCP types.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::net::{self as unet, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::fd::Socket;
use super::poller::Dir;
use super::tcp::std_conversions;

/// A Unix-domain stream listener; `accept` parks until a connection arrives.
pub struct UnixListener {
    sock: Arc<Socket<unet::UnixListener>>,
}

/// A Unix-domain stream; reads and writes park until the socket is ready.
pub struct UnixStream {
    sock: Arc<Socket<unet::UnixStream>>,
}

/// A Unix-domain datagram socket; receives park until a datagram arrives.
pub struct UnixDatagram {
    sock: Arc<Socket<unet::UnixDatagram>>,
}

impl UnixListener {
    /// Binds a listener to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(unet::UnixListener::bind(path)?)
    }

    /// Accepts a connection, parking until one arrives.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.sock.read(|l| l.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }

    /// `accept` in a loop; never returns `None`.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Another handle to the same listener.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: self.sock.clone(),
        })
    }

    /// With `true`, `accept` returns `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Adopts a std listener.
    pub fn from_std(l: unet::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: Arc::new(Socket::new(l)?),
        })
    }

    /// The std listener, deregistered and blocking (a duplicate if clones are alive).
    pub fn into_std(self) -> io::Result<unet::UnixListener> {
        match Arc::try_unwrap(self.sock) {
            Ok(s) => Ok(s.into_inner()),
            Err(shared) => shared.get().try_clone(),
        }
    }
}

impl UnixStream {
    /// Connects to the socket file `path` (a local connect does not wait for a peer; it
    /// runs inside `blocking` for the rare case of a full backlog).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let s = crate::blocking(|| unet::UnixStream::connect(path))?;
        UnixStream::from_std(s)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unet::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }

    /// Another handle to the same stream (shared timeouts and mode).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: self.sock.clone(),
        })
    }

    /// Each read gives up after `dur` with `ErrorKind::WouldBlock`, as std's.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, dur)
    }

    /// Each write gives up after `dur` with `ErrorKind::WouldBlock`, as std's.
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

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// With `true`, reads and writes return `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Adopts a std stream.
    pub fn from_std(s: unet::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: Arc::new(Socket::new(s)?),
        })
    }

    /// The std stream, deregistered and blocking (a duplicate if clones are alive).
    pub fn into_std(self) -> io::Result<unet::UnixStream> {
        match Arc::try_unwrap(self.sock) {
            Ok(s) => Ok(s.into_inner()),
            Err(shared) => shared.get().try_clone(),
        }
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read(|mut s| s.read_vectored(bufs))
    }
}

impl Write for UnixStream {
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

impl Write for &UnixStream {
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

impl UnixDatagram {
    /// A datagram socket bound to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(unet::UnixDatagram::bind(path)?)
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

    /// Connects to the socket file `path`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.sock.get().connect(path)
    }

    /// Sends to the socket file `path`, parking while the receiver's queue is full.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.sock.write(|s| s.send_to(buf, path))
    }

    /// Receives a datagram and its sender's address, parking until one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read(|s| s.recv_from(buf))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(|s| s.send(buf))
    }

    /// Receives a datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(|s| s.recv(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: self.sock.clone(),
        })
    }

    /// Each receive gives up after `dur` with `ErrorKind::WouldBlock`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, dur)
    }

    /// Each send gives up after `dur` with `ErrorKind::WouldBlock`.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, dur)
    }

    /// With `true`, sends and receives return `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }

    /// Adopts a std socket.
    pub fn from_std(s: unet::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Arc::new(Socket::new(s)?),
        })
    }

    /// The std socket, deregistered and blocking (a duplicate if clones are alive).
    pub fn into_std(self) -> io::Result<unet::UnixDatagram> {
        match Arc::try_unwrap(self.sock) {
            Ok(s) => Ok(s.into_inner()),
            Err(shared) => shared.get().try_clone(),
        }
    }
}

std_conversions!(UnixListener, unet::UnixListener);
std_conversions!(UnixStream, unet::UnixStream);
std_conversions!(UnixDatagram, unet::UnixDatagram);
