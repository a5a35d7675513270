//! UDP: [`UdpSocket`], std-shaped, parking the goroutine (or thread) while the socket is
//! not ready. What it shares with the other socket types comes from `surface.rs`; this file
//! holds what is UDP's own (addressing by `ToSocketAddrs`, broadcast and multicast options).

use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::socket::Socket;
use super::surface::{data_socket, datagram_io, socket_common};
use super::{each_addr, first_addr};

/// A UDP socket: std's `UdpSocket`, whose receives (and, rarely, sends) park the calling
/// goroutine or thread until the socket is ready.
///
/// ```
/// use gort::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let to = b.local_addr().unwrap();
/// let h = gort::go!(move || {
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     (buf[..n].to_vec(), from)
/// });
/// a.send_to(b"ping", to).unwrap();
/// let (msg, from) = h.join().unwrap();
/// assert_eq!(msg, b"ping");
/// assert_eq!(from, a.local_addr().unwrap());
/// ```
pub struct UdpSocket {
    sock: Arc<Socket<net::UdpSocket>>,
}

socket_common!(UdpSocket, net::UdpSocket, SocketAddr);
data_socket!(UdpSocket, SocketAddr);
datagram_io!(UdpSocket);

impl UdpSocket {
    /// Creates a socket bound to `addr` (the first of its addresses that binds).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| UdpSocket::from_std(net::UdpSocket::bind(a)?))
    }

    /// Receives one datagram, parking until one arrives; returns its size and its sender's
    /// address. A datagram longer than `buf` is cut to fit.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read(|s| s.recv_from(buf))
    }

    /// Like `recv_from`, without removing the datagram from the queue.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.read(|s| s.peek_from(buf))
    }

    /// Sends `buf` to `addr` (its first address, as std does).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = first_addr(addr)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.sock.write(|s| s.send_to(buf, to))
    }

    /// Sets the default destination for `send` and the only source for `recv`.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.sock.get().connect(a))
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.get().set_broadcast(on)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.get().broadcast()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get().ttl()
    }

    /// Sets `IP_MULTICAST_LOOP`: whether multicast sent here loops back to local sockets.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.sock.get().set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.sock.get().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.sock.get().set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock.get().multicast_loop_v6()
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system chooses).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.get().join_multicast_v4(multiaddr, interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on the interface with index `interface`
    /// (0: the system chooses).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.get().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group (see [`join_multicast_v4`](Self::join_multicast_v4)).
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.get().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group (see [`join_multicast_v6`](Self::join_multicast_v6)).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.get().leave_multicast_v6(multiaddr, interface)
    }
}
