//! The std-shaped surface the socket types share: each method or trait that std gives
//! several socket types with one meaning is written here once, as a macro that the type
//! files (`tcp.rs`, `udp.rs`, `unix.rs`) expand for their types.
//!
//! Each type is `struct X { sock: Arc<Socket<StdX>> }` (`socket.rs`); the macros rely on that
//! field and forward to the core, or to the std socket for what is std's own. What is
//! particular to one type (constructors, `connect`, `send_to`, its own options) stays in its
//! file, next to the type.
//!
//! ```text
//!  macro            | expanded for                        | writes
//!  -----------------+-------------------------------------+-------------------------------
//!  socket_common!   | all six types                       | local_addr, try_clone,
//!                   |                                     | take_error, set_nonblocking,
//!                   |                                     | from_std, into_std; From to
//!                   |                                     | and from the std type and
//!                   |                                     | OwnedFd, AsFd, AsRawFd,
//!                   |                                     | FromRawFd, IntoRawFd, Debug
//!  data_socket!     | TcpStream, UdpSocket, UnixStream,   | peer_addr, peek, the read and
//!                   | UnixDatagram                        | write timeouts
//!  stream_io!       | TcpStream, UnixStream               | Read and Write for T and &T,
//!                   |                                     | shutdown
//!  datagram_io!     | UdpSocket, UnixDatagram             | send, recv
//!  listener!        | TcpListener, UnixListener           | accept, incoming, and the
//!                   |                                     | Incoming iterator type
//! ```
//!
//! Why macros rather than one generic public type (`Stream<T>` with `type TcpStream =
//! Stream<std::net::TcpStream>`): the public types stay distinct named structs, exactly as
//! in std (their docs, their `Debug`, their error messages, `gort::net::Incoming<'a>`), and
//! no trait has to be imported to call a method, as none has to be with std.
//!
//! # Safety
//!
//! The only unsafe code is `FromRawFd::from_raw_fd` in [`socket_common!`]. It relies on one
//! invariant: **each descriptor has exactly one owner.** `from_raw_fd` passes the caller's
//! ownership, unchanged, to std's `from_raw_fd` (same contract); from then on the descriptor
//! is owned by one `Socket` (`socket.rs`), shared by the handles' `Arc`, deregistered from the
//! poller and closed exactly once when the last handle drops. `AsFd`/`AsRawFd` only lend it
//! for the handle's lifetime; `into_std`, `into_raw_fd` and `OwnedFd::from` give the caller
//! either that socket (last handle) or a `dup` of it (other handles still own the original),
//! never a second owner of one number.

/// What every socket type has: `$ty` wraps std's `$std`, whose addresses are `$addr`.
macro_rules! socket_common {
    ($ty:ident, $std:ty, $addr:ty) => {
        impl $ty {
            /// The local address the socket is bound to.
            pub fn local_addr(&self) -> ::std::io::Result<$addr> {
                self.sock.get().local_addr()
            }

            /// Another handle to the same socket. Like std's (which duplicates the
            /// descriptor), the handles share the socket, its timeouts and its non-blocking
            /// mode; the socket closes when the last handle is dropped. To wake a goroutine
            /// parked on another handle, shut the socket down, as in Go one closes it.
            pub fn try_clone(&self) -> ::std::io::Result<$ty> {
                Ok($ty {
                    sock: self.sock.clone(),
                })
            }

            /// Takes the socket's pending error (`SO_ERROR`), clearing it.
            pub fn take_error(&self) -> ::std::io::Result<Option<::std::io::Error>> {
                self.sock.take_error()
            }

            /// With `true`, operations that would wait return `ErrorKind::WouldBlock`
            /// instead of parking (std's behaviour); with `false`, they park again.
            pub fn set_nonblocking(&self, nonblocking: bool) -> ::std::io::Result<()> {
                self.sock.set_nonblocking(nonblocking);
                Ok(())
            }

            /// Adopts a std socket (made non-blocking and registered with the poller).
            pub fn from_std(s: $std) -> ::std::io::Result<$ty> {
                Ok($ty {
                    sock: ::std::sync::Arc::new($crate::net::socket::Socket::new(s)?),
                })
            }

            /// The std socket, deregistered and in blocking mode (if other `try_clone`
            /// handles are alive, a duplicate that shares their non-blocking file status).
            pub fn into_std(self) -> ::std::io::Result<$std> {
                $crate::net::socket::Socket::into_std(self.sock)
            }
        }

        impl From<$std> for $ty {
            /// Adopts the std socket. Panics if the poller cannot register it (out of
            /// memory or `max_user_watches`); [`Self::from_std`] reports that instead.
            fn from(s: $std) -> $ty {
                $ty::from_std(s).unwrap_or_else(|e| {
                    panic!("gort::net: cannot register a socket with the poller: {e}")
                })
            }
        }

        impl From<$ty> for $std {
            #[doc = concat!("See [`", stringify!($ty), "::into_std`]; panics only if ")]
            #[doc = "duplicating a shared socket fails."]
            fn from(s: $ty) -> $std {
                s.into_std()
                    .unwrap_or_else(|e| panic!("gort::net: cannot duplicate a socket: {e}"))
            }
        }

        impl From<::std::os::fd::OwnedFd> for $ty {
            /// Adopts a socket descriptor of the right kind, as std's `From<OwnedFd>` does
            /// (and panics as `From` of the std type does).
            fn from(fd: ::std::os::fd::OwnedFd) -> $ty {
                $ty::from(<$std>::from(fd))
            }
        }

        impl From<$ty> for ::std::os::fd::OwnedFd {
            #[doc = concat!("The descriptor, as [`", stringify!($ty), "::into_std`] gives it.")]
            fn from(s: $ty) -> ::std::os::fd::OwnedFd {
                <$std>::from(s).into()
            }
        }

        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                self.sock.fd()
            }
        }

        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(self.sock.get())
            }
        }

        impl ::std::os::fd::FromRawFd for $ty {
            /// # Safety
            /// `fd` must be an open socket of the right kind that the caller owns; ownership
            /// moves to the new value (as with std's `from_raw_fd`).
            ///
            /// # Panics
            /// As `From<std type>` does, if the poller cannot register the socket (the socket
            /// is then closed, since the new value owned it).
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $ty {
                // SAFETY: this function's contract is std's `from_raw_fd` contract: `fd` is an
                // open socket the caller owns and gives up. Ownership moves to the std socket,
                // then to the new value's `Socket`, which closes it once (module Safety); if
                // registration fails, `from` panics and dropping the std socket closes it, also
                // exactly once.
                $ty::from(unsafe { <$std as ::std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        impl ::std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                ::std::os::fd::IntoRawFd::into_raw_fd(<$std>::from(self))
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self.sock.get(), f)
            }
        }
    };
}

/// What a socket that carries data (not a listener) has: `$ty`'s peer has addresses `$addr`.
macro_rules! data_socket {
    ($ty:ident, $addr:ty) => {
        impl $ty {
            /// The address of the connected peer.
            pub fn peer_addr(&self) -> ::std::io::Result<$addr> {
                self.sock.get().peer_addr()
            }

            /// Receives data without removing it from the queue (for a datagram socket, the
            /// next datagram), parking until there is some.
            pub fn peek(&self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.sock.peek(buf)
            }

            /// Each read or receive gives up after `dur` with std's error for it
            /// (`ErrorKind::WouldBlock`, EAGAIN). `None` waits for ever;
            /// `Some(Duration::ZERO)` is an `InvalidInput` error, as with std.
            pub fn set_read_timeout(
                &self,
                dur: Option<::std::time::Duration>,
            ) -> ::std::io::Result<()> {
                self.sock.set_timeout($crate::net::socket::Dir::Read, dur)
            }

            /// Each write or send gives up after `dur` with std's error for it
            /// (`ErrorKind::WouldBlock`, EAGAIN). `None` waits for ever;
            /// `Some(Duration::ZERO)` is an `InvalidInput` error, as with std.
            pub fn set_write_timeout(
                &self,
                dur: Option<::std::time::Duration>,
            ) -> ::std::io::Result<()> {
                self.sock.set_timeout($crate::net::socket::Dir::Write, dur)
            }

            /// The read timeout (`None`: reads wait for ever).
            pub fn read_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                Ok(self.sock.timeout($crate::net::socket::Dir::Read))
            }

            /// The write timeout (`None`: writes wait for ever).
            pub fn write_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                Ok(self.sock.timeout($crate::net::socket::Dir::Write))
            }
        }
    };
}

/// What a stream socket has: `Read` and `Write` for `$ty` and `&$ty`, and `shutdown`.
macro_rules! stream_io {
    ($ty:ident) => {
        impl $ty {
            /// Shuts down the read half, the write half or both. Goroutines parked on the
            /// socket (through any handle) wake up and see EOF or `BrokenPipe`.
            pub fn shutdown(&self, how: ::std::net::Shutdown) -> ::std::io::Result<()> {
                self.sock.shutdown(how)
            }
        }

        impl ::std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                ::std::io::Read::read(&mut &*self, buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                ::std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl ::std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.sock.read(|mut s| ::std::io::Read::read(&mut s, buf))
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                self.sock
                    .read(|mut s| ::std::io::Read::read_vectored(&mut s, bufs))
            }
        }

        impl ::std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                ::std::io::Write::write(&mut &*self, buf)
            }
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                ::std::io::Write::write_vectored(&mut &*self, bufs)
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        impl ::std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.sock
                    .write(|mut s| ::std::io::Write::write(&mut s, buf))
            }
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.sock
                    .write(|mut s| ::std::io::Write::write_vectored(&mut s, bufs))
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// What a datagram socket has: `send` and `recv`. (`recv_from` differs by family in what
/// it returns after a shutdown, so each type writes its own.)
macro_rules! datagram_io {
    ($ty:ident) => {
        impl $ty {
            /// Receives one datagram from the connected peer, parking until one arrives. A
            /// datagram longer than `buf` is cut to fit. Once the socket is shut down for
            /// reading and empty, returns 0.
            pub fn recv(&self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.sock.recv(|s| s.recv(buf), || Ok(0))
            }

            /// Sends `buf` to the connected peer, parking while the socket's send buffer
            /// (or, for a local socket, the receiver's queue) is full.
            pub fn send(&self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.sock.write(|s| s.send(buf))
            }
        }
    };
}

/// What a listener has: `$ty` accepts `$stream`s from peers with addresses `$addr`, and
/// its `incoming` iterator is the type `$incoming`.
macro_rules! listener {
    ($ty:ident, $stream:ident, $addr:ty, $incoming:ident) => {
        impl $ty {
            /// Accepts a new connection, parking until one arrives; returns it and the
            /// peer's address.
            pub fn accept(&self) -> ::std::io::Result<($stream, $addr)> {
                let (sock, addr) = self.sock.accept(|l| l.accept())?;
                Ok((
                    $stream {
                        sock: ::std::sync::Arc::new(sock),
                    },
                    addr,
                ))
            }

            /// An iterator over incoming connections: [`accept`](Self::accept) in a loop,
            /// without the addresses. It never returns `None`.
            pub fn incoming(&self) -> $incoming<'_> {
                $incoming { listener: self }
            }
        }

        #[doc = concat!("An iterator over the connections a [`", stringify!($ty), "`]")]
        #[doc = "accepts (its `incoming`); it never returns `None`."]
        #[derive(Debug)]
        pub struct $incoming<'a> {
            listener: &'a $ty,
        }

        impl<'a> Iterator for $incoming<'a> {
            type Item = ::std::io::Result<$stream>;
            fn next(&mut self) -> Option<::std::io::Result<$stream>> {
                Some(self.listener.accept().map(|(s, _)| s))
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (usize::MAX, None)
            }
        }

        impl ::std::iter::FusedIterator for $incoming<'_> {}
    };
}

pub(crate) use {data_socket, datagram_io, listener, socket_common, stream_io};
