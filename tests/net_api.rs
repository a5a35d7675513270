//! gort::net's TCP and UDP types against std's API: each method std has is there and does
//! what std's does — options land on the socket (read back through a std view of the same
//! descriptor), `peek`, `peek_from`, `take_error`, `shutdown` waking parked goroutines, and
//! the descriptor conversions (`OwnedFd`, raw fds) — while waits park, not block.

mod common;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream, UdpSocket};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

/// A connected pair over loopback: (client, server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// A std socket on a duplicate of `s`'s descriptor: the kernel's view of its options.
fn std_view<T: From<OwnedFd>>(s: &impl AsFd) -> T {
    T::from(s.as_fd().try_clone_to_owned().unwrap())
}

#[gort::test]
fn tcp_peek_parks_then_leaves_the_data() {
    let (c, s) = tcp_pair();
    let h = gort::go!(move || {
        let mut buf = [0u8; 16];
        let n = s.peek(&mut buf).unwrap();
        let mut back = vec![0u8; n];
        (&s).read_exact(&mut back).unwrap();
        (buf[..n].to_vec(), back)
    });
    gort::time::sleep(Duration::from_millis(10));
    (&c).write_all(b"peek").unwrap();
    let (peeked, read) = h.join().unwrap();
    assert_eq!(peeked, b"peek");
    assert_eq!(read, b"peek");
}

#[gort::test]
fn tcp_shutdown_wakes_a_reader_parked_on_a_clone() {
    let (c, _s) = tcp_pair();
    let reader = c.try_clone().unwrap();
    let h = gort::go!(move || (&reader).read(&mut [0u8; 8]).map_err(|e| e.kind()));
    gort::time::sleep(Duration::from_millis(10));
    c.shutdown(Shutdown::Read).unwrap();
    assert_eq!(h.join().unwrap(), Ok(0));
    assert_eq!(c.peek(&mut [0u8; 8]).unwrap(), 0);
    // A plain thread parked on a clone wakes up too.
    let (c, _s) = tcp_pair();
    let reader = c.try_clone().unwrap();
    let t = std::thread::spawn(move || (&reader).read(&mut [0u8; 8]).map_err(|e| e.kind()));
    std::thread::sleep(Duration::from_millis(10));
    c.shutdown(Shutdown::Both).unwrap();
    assert_eq!(t.join().unwrap(), Ok(0));
    let e = (&c).write(b"x").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
}

#[gort::test]
fn tcp_options_land_on_the_socket() {
    let (c, _s) = tcp_pair();
    c.set_ttl(42).unwrap();
    assert_eq!(c.ttl().unwrap(), 42);
    assert_eq!(std_view::<std::net::TcpStream>(&c).ttl().unwrap(), 42);
    c.set_nodelay(true).unwrap();
    assert!(std_view::<std::net::TcpStream>(&c).nodelay().unwrap());
    assert_eq!(c.linger().unwrap(), None);
    c.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(3)));
    c.set_linger(None).unwrap();
    assert_eq!(c.linger().unwrap(), None);
    assert!(c.take_error().unwrap().is_none());

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_ttl(7).unwrap();
    assert_eq!(l.ttl().unwrap(), 7);
    assert_eq!(std_view::<std::net::TcpListener>(&l).ttl().unwrap(), 7);
    assert!(l.take_error().unwrap().is_none());
    // Deprecated in std (settable only before bind): ours answers as std's does, on an
    // IPv4 listener and, where the machine has IPv6, an IPv6 one.
    let v6 = TcpListener::bind("[::1]:0").ok();
    for l in std::iter::once(&l).chain(v6.as_ref()) {
        let std_l = std_view::<std::net::TcpListener>(l);
        #[allow(deprecated)]
        let (ours, std) = (
            (l.only_v6(), l.set_only_v6(false)),
            (std_l.only_v6(), std_l.set_only_v6(false)),
        );
        let kinds = |(a, b): (io::Result<bool>, io::Result<()>)| {
            (a.map_err(|e| e.kind()), b.map_err(|e| e.kind()))
        };
        assert_eq!(kinds(ours), kinds(std));
    }
}

/// `SO_LINGER` with a zero timeout makes the close a reset: the peer's read sees it.
#[gort::test]
fn tcp_linger_zero_resets() {
    let (c, s) = tcp_pair();
    c.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
}

#[gort::test]
fn udp_peek_from_parks_then_leaves_the_datagram() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let h = gort::go!(move || {
        let mut buf = [0u8; 16];
        let (n, from) = b.peek_from(&mut buf).unwrap();
        let peeked = (buf[..n].to_vec(), from);
        let (n, from) = b.recv_from(&mut buf).unwrap();
        (peeked, (buf[..n].to_vec(), from))
    });
    gort::time::sleep(Duration::from_millis(10));
    a.send_to(b"gram", b_addr).unwrap();
    let (peeked, received) = h.join().unwrap();
    assert_eq!(peeked, (b"gram".to_vec(), a_addr));
    assert_eq!(received, peeked);
}

#[gort::test]
fn udp_options_land_on_the_socket() {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let view = || std_view::<std::net::UdpSocket>(&u);
    u.set_ttl(9).unwrap();
    assert_eq!((u.ttl().unwrap(), view().ttl().unwrap()), (9, 9));
    u.set_broadcast(true).unwrap();
    assert!(u.broadcast().unwrap() && view().broadcast().unwrap());
    u.set_multicast_loop_v4(false).unwrap();
    assert!(!u.multicast_loop_v4().unwrap() && !view().multicast_loop_v4().unwrap());
    u.set_multicast_ttl_v4(5).unwrap();
    assert_eq!(
        (
            u.multicast_ttl_v4().unwrap(),
            view().multicast_ttl_v4().unwrap()
        ),
        (5, 5)
    );
    // Joining a group needs a multicast route, which a container may lack: ours must
    // answer as std's does on the same kind of socket.
    let group = Ipv4Addr::new(239, 255, 42, 99);
    let std_u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let kind = |r: io::Result<()>| r.map_err(|e| e.kind());
    let joined = kind(u.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        joined,
        kind(std_u.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED))
    );
    if joined.is_ok() {
        u.leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
            .unwrap();
    }
    // IPv6 options, where the machine has IPv6.
    if let Ok(u6) = UdpSocket::bind("[::1]:0") {
        u6.set_multicast_loop_v6(false).unwrap();
        assert!(!u6.multicast_loop_v6().unwrap());
        assert!(!std_view::<std::net::UdpSocket>(&u6)
            .multicast_loop_v6()
            .unwrap());
        let g6 = "ff02::1:ff42:99".parse().unwrap();
        let std6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let joined = kind(u6.join_multicast_v6(&g6, 0));
        assert_eq!(joined, kind(std6.join_multicast_v6(&g6, 0)));
        if joined.is_ok() {
            u6.leave_multicast_v6(&g6, 0).unwrap();
        }
    }
}

/// A connected UDP socket whose peer port is closed gets ICMP port unreachable: the
/// pending error (`SO_ERROR`) is `ConnectionRefused`, and `take_error` clears it.
#[gort::test]
fn udp_take_error_reports_the_pending_error() {
    let closed = {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.local_addr().unwrap()
    };
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.connect(closed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let e = loop {
        u.send(b"anyone?").unwrap();
        if let Some(e) = u.take_error().unwrap() {
            break e;
        }
        assert!(Instant::now() < deadline, "no ICMP error arrived");
        gort::time::sleep(Duration::from_millis(5));
    };
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert!(u.take_error().unwrap().is_none());
}

#[gort::test]
fn udp_timeouts_and_nonblocking_mode() {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(u.read_timeout().unwrap(), None);
    u.set_write_timeout(Some(Duration::from_millis(25)))
        .unwrap();
    assert_eq!(u.write_timeout().unwrap(), Some(Duration::from_millis(25)));
    assert_eq!(
        u.set_write_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    u.set_nonblocking(true).unwrap();
    assert_eq!(
        u.recv_from(&mut [0u8; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        u.peek_from(&mut [0u8; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    u.set_nonblocking(false).unwrap();
    u.set_read_timeout(Some(Duration::from_millis(25))).unwrap();
    let t = Instant::now();
    assert_eq!(
        u.peek_from(&mut [0u8; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(t.elapsed() >= Duration::from_millis(25));
    // `send_to` with no address is std's InvalidInput.
    let none: &[SocketAddr] = &[];
    assert_eq!(
        u.send_to(b"x", none).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[gort::test]
fn descriptor_conversions() {
    let (c, s) = tcp_pair();
    // TcpStream -> OwnedFd -> TcpStream: the same connection, still parking.
    let fd: OwnedFd = s.into();
    let s = TcpStream::from(fd);
    // Raw descriptors, both ways.
    let raw = c.into_raw_fd();
    // SAFETY: `raw` was just given up by `into_raw_fd`: an open TCP socket owned by nobody.
    let c = unsafe { TcpStream::from_raw_fd(raw) };
    assert_eq!(c.as_raw_fd(), raw);
    let h = gort::go!(move || {
        let mut b = [0u8; 5];
        (&s).read_exact(&mut b).unwrap();
        b
    });
    gort::time::sleep(Duration::from_millis(5));
    (&c).write_all(b"fdfd!").unwrap();
    assert_eq!(&h.join().unwrap(), b"fdfd!");
    // OwnedFd from a listener and a UDP socket, and back.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let l = TcpListener::from(OwnedFd::from(l));
    assert_eq!(l.local_addr().unwrap(), addr);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uaddr = u.local_addr().unwrap();
    let u = UdpSocket::from(OwnedFd::from(u));
    assert_eq!(u.local_addr().unwrap(), uaddr);
    // Debug is std's (it names the descriptor and addresses).
    assert!(format!("{u:?}").contains(&uaddr.to_string()));
    // Incoming is std's shape: fused, unbounded.
    assert_eq!(l.incoming().size_hint(), (usize::MAX, None));
}

/// What a port from `std::net` imports is here too.
#[test]
fn std_net_names_are_reexported() {
    let a: gort::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
    let v4 = gort::net::SocketAddrV4::new(gort::net::Ipv4Addr::LOCALHOST, 80);
    assert_eq!(a, gort::net::SocketAddr::V4(v4));
    let ip: gort::net::IpAddr = gort::net::Ipv6Addr::LOCALHOST.into();
    assert!(ip.is_loopback());
    assert!("x".parse::<gort::net::IpAddr>().is_err());
    let _: gort::net::Shutdown = gort::net::Shutdown::Both;
    fn resolves<A: gort::net::ToSocketAddrs>(a: A) -> bool {
        a.to_socket_addrs().is_ok()
    }
    assert!(resolves(a));
}
