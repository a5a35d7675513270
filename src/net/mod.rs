//! Networking that parks goroutines, not threads: [`TcpListener`], [`TcpStream`],
//! [`UdpSocket`] (and Unix-domain sockets in [`unix`]).
//!
//! The types are std's, in shape and in behaviour: the same constructors, methods, trait
//! implementations and `io::Error` kinds (a refused connect is `ConnectionRefused`, a reset
//! peer `ConnectionReset`, a read timeout `WouldBlock`, a connect timeout `TimedOut`). The
//! difference is what waiting costs. Each socket is non-blocking underneath and registered
//! with one edge-triggered epoll instance (the runtime's `netpoll.rs`); an operation that would block parks
//! the calling goroutine — its worker thread goes on running other goroutines — until the
//! poller sees the socket become ready. On a plain thread the same call parks the thread, so
//! a socket can be used from goroutines and threads alike, and moved between them.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use gort::net::{TcpListener, TcpStream};
//!
//! // An echo server: one goroutine per connection.
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! gort::go!(move || {
//!     for conn in listener.incoming() {
//!         let conn = conn.unwrap();
//!         gort::go!(move || {
//!             let _ = std::io::copy(&mut &conn, &mut &conn);
//!         });
//!     }
//! });
//!
//! let mut c = TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello\n").unwrap();
//! let mut line = String::new();
//! BufReader::new(&c).read_line(&mut line).unwrap();
//! assert_eq!(line, "hello\n");
//! ```
//!
//! Differences from std, all small:
//!
//! - `try_clone` returns another handle to the same descriptor (std duplicates it with
//!   `dup`): the handles share the socket, its timeouts and its non-blocking mode, and the
//!   socket closes when the last handle drops. To wake a goroutine parked on a clone, shut
//!   the socket down (`shutdown(Shutdown::Both)`), as in Go one closes the connection.
//! - Timeouts are deadlines kept by gort, not `SO_RCVTIMEO`/`SO_SNDTIMEO`: each `read` or
//!   `write` call gets the whole timeout, and on expiry returns std's error for it
//!   (`WouldBlock`, "Resource temporarily unavailable").
//! - `set_nonblocking(true)` makes calls return `WouldBlock` instead of parking; the
//!   descriptor itself is always non-blocking while gort owns it. `into_std`, `From` and
//!   `IntoRawFd` give it back deregistered and in blocking mode.
//! - `TcpListener::bind` listens with the system's maximum backlog (`net.core.somaxconn`),
//!   like Go, where std uses 128.
//!
//! # Layers
//!
//! ```text
//!  std-shaped types    tcp.rs   TcpListener, TcpStream      thin: constructors, connect,
//!                      udp.rs   UdpSocket                   addressing, options of their
//!                      unix.rs  UnixListener, UnixStream,   own; the rest is expanded
//!                               UnixDatagram                from surface.rs
//!                      surface.rs   the methods and traits std gives several types
//!                                   (timeouts, peek, shutdown, accept, Read/Write,
//!                                   conversions), written once as macros
//!  ----------------------------------------------------------------------------------------
//!  socket core         socket.rs    Socket<T>: one registered non-blocking socket; the
//!                                   "try, on WouldBlock park, with a deadline" loop,
//!                                   timeouts, non-blocking mode, accept, connect with a
//!                                   deadline, shutdown, peek, SO_ERROR, back to std
//!  ----------------------------------------------------------------------------------------
//!  system calls        sys.rs       what std's socket types do not offer
//!  ========================================================================================
//!  the runtime         runtime/netpoll.rs   registration (one per socket) and readiness
//!                                   edges: epoll, the netpoll thread, the workers' polls,
//!                                   parking and waking waiters (Go's runtime/netpoll.go)
//! ```
//!
//! Each layer uses only the ones below it. The std-shaped types know the core (`Socket`
//! and `Dir`), never the poller; the core knows the poller only through `Registration`
//! (`new`, `seq`, `wait`) and `Dir`. The poller belongs to the runtime, which polls it
//! from its workers and asks it for I/O waiters when it looks for a deadlock; it knows
//! nothing of this module.
//!
//! Address resolution (`ToSocketAddrs` with a host name) may query DNS; it runs inside
//! [`crate::blocking`], so it does not hold up the other goroutines. Addresses that are
//! already IP addresses (`SocketAddr`, `(IpAddr, u16)`) are used as they are.

mod socket;
mod surface;
mod sys;
mod tcp;
mod udp;
pub mod unix;

use std::io;

/// std's address and option types, so that a port from `std::net` changes only the path.
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// Resolves `addr`. A host name may mean a DNS query, which blocks: that runs inside
/// [`crate::blocking`], which hands the worker's other goroutines to another thread when any
/// are waiting. Addresses given as `SocketAddr`, `(IpAddr, u16)` and the like never query
/// DNS, so they skip that hand-off (it would cost far more than the resolution).
fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    if may_query_dns::<A>() {
        crate::blocking(|| addr.to_socket_addrs().map(Iterator::collect))
    } else {
        addr.to_socket_addrs().map(Iterator::collect)
    }
}

/// The first address of `addr` (resolved as [`resolve`] does, without collecting).
fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<Option<SocketAddr>> {
    if may_query_dns::<A>() {
        crate::blocking(|| Ok(addr.to_socket_addrs()?.next()))
    } else {
        Ok(addr.to_socket_addrs()?.next())
    }
}

/// True if resolving an `A` may query DNS: the string forms (`&str`, `String`, `(&str, u16)`,
/// `(String, u16)`). Decided from the type's name, which is only a hint: a wrong guess costs
/// a needless hand-off, or a DNS query outside `blocking` (which sysmon still hands off).
fn may_query_dns<A: ?Sized>() -> bool {
    std::any::type_name::<A>().contains("str")
}

/// Calls `f` on each address of `addr` until one succeeds; the last error otherwise (std's
/// `each_addr`).
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match f(&a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    use super::unix::UnixStream;
    use crate::runtime::io_waiters;

    /// A reader parked on a socket counts for the runtime's poller (the deadlock detector's
    /// view of I/O), and stops counting once woken.
    #[test]
    fn io_waiters_counts_a_parked_reader() {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            (&b).read_exact(&mut buf).unwrap();
            buf[0]
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while io_waiters() == 0 {
            assert!(Instant::now() < deadline, "the reader never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        (&a).write_all(&[42]).unwrap();
        assert_eq!(reader.join().unwrap(), 42);
        assert_eq!(io_waiters(), 0);
    }

    #[test]
    fn only_string_addresses_may_query_dns() {
        assert!(super::may_query_dns::<&str>());
        assert!(super::may_query_dns::<String>());
        assert!(super::may_query_dns::<(&str, u16)>());
        assert!(super::may_query_dns::<(String, u16)>());
        assert!(!super::may_query_dns::<SocketAddr>());
        assert!(!super::may_query_dns::<&SocketAddr>());
        assert!(!super::may_query_dns::<(IpAddr, u16)>());
        assert!(!super::may_query_dns::<(Ipv4Addr, u16)>());
        assert!(!super::may_query_dns::<&[SocketAddr]>());
    }
}
