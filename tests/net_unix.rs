//! gort::net::unix: Unix-domain streams, listeners and datagram sockets behave as std's
//! (values and `io::Error` kinds) and park rather than block: timeouts, peek, shutdown,
//! non-blocking mode, path and abstract addresses, conversions.
//!
//! They run on the same socket core as TCP and UDP (src/net/socket.rs); these tests check
//! each shared path through the Unix types, which `tests/net.rs` checks through TCP.

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gort::net::unix::{SocketAddr, UnixDatagram, UnixListener, UnixStream};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

/// A fresh directory for socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "gort-net-unix-{}-{}-{name}",
            std::process::id(),
            std::env::var("GORT_MAXPROCS").unwrap_or_default()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An abstract socket name unique to this process and test.
fn abstract_addr(name: &str) -> SocketAddr {
    use std::os::linux::net::SocketAddrExt;
    let n = format!(
        "gort-test-{}-{}-{name}",
        std::process::id(),
        std::env::var("GORT_MAXPROCS").unwrap_or_default()
    );
    SocketAddr::from_abstract_name(n.as_bytes()).unwrap()
}

#[gort::test]
fn stream_read_timeout_is_wouldblock_like_std() {
    let (a, _quiet) = UnixStream::pair().unwrap();
    assert_eq!(a.read_timeout().unwrap(), None);
    a.set_read_timeout(Some(Duration::from_millis(40))).unwrap();
    assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_millis(40)));
    let t = Instant::now();
    let e = (&a).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(40));
    let e = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    a.set_read_timeout(None).unwrap();
    assert_eq!(a.read_timeout().unwrap(), None);
}

#[test]
fn stream_read_timeout_on_a_plain_thread() {
    let (a, _quiet) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let t = Instant::now();
    assert_eq!(
        (&a).read(&mut [0u8; 8]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[gort::test]
fn stream_write_timeout_when_peer_does_not_read() {
    let (a, _quiet) = UnixStream::pair().unwrap();
    a.set_write_timeout(Some(Duration::from_millis(40)))
        .unwrap();
    assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_millis(40)));
    let chunk = vec![0u8; 1 << 16];
    let e = loop {
        match (&a).write(&chunk) {
            Ok(n) => assert!(n > 0),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
}

#[gort::test]
fn stream_peek_parks_then_leaves_the_data() {
    let (a, b) = UnixStream::pair().unwrap();
    let peeker = gort::go!(move || {
        let mut buf = [0u8; 16];
        let n = b.peek(&mut buf).unwrap();
        let peeked = buf[..n].to_vec();
        let mut back = vec![0u8; n];
        (&b).read_exact(&mut back).unwrap();
        (peeked, back)
    });
    // Give the peeker a chance to park first (not required for the assertions).
    gort::time::sleep(Duration::from_millis(10));
    (&a).write_all(b"peekaboo").unwrap();
    let (peeked, back) = peeker.join().unwrap();
    assert_eq!(peeked, b"peekaboo");
    assert_eq!(back, b"peekaboo");
}

#[gort::test]
fn shutdown_wakes_a_reader_parked_on_a_clone() {
    let (a, _b) = UnixStream::pair().unwrap();
    let reader = a.try_clone().unwrap();
    let h = gort::go!(move || (&reader).read(&mut [0u8; 8]).map_err(|e| e.kind()));
    // The reader parks (no data ever comes); the shutdown must wake it with EOF.
    gort::time::sleep(Duration::from_millis(10));
    a.shutdown(Shutdown::Both).unwrap();
    assert_eq!(h.join().unwrap(), Ok(0));
    assert_eq!(
        (&a).write(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
}

#[gort::test]
fn stream_nonblocking_mode_returns_wouldblock() {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    assert_eq!(
        (&a).read(&mut [0u8; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    a.set_nonblocking(false).unwrap();
    (&b).write_all(b"ok").unwrap();
    let mut got = [0u8; 2];
    (&a).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok");
    assert!(a.take_error().unwrap().is_none());
    assert!(a.local_addr().unwrap().is_unnamed());
    assert!(a.peer_addr().unwrap().is_unnamed());
}

#[gort::test]
fn listener_incoming_and_into_iter() {
    let dir = TempDir::new("incoming");
    let path = dir.path("l.sock");
    let l = UnixListener::bind(&path).unwrap();
    assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    assert!(l.take_error().unwrap().is_none());
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    l.set_nonblocking(false).unwrap();
    let clients: Vec<_> = (0..3u8)
        .map(|i| {
            let path = path.clone();
            gort::go!(move || {
                let mut c = UnixStream::connect(&path).unwrap();
                c.write_all(&[i]).unwrap();
            })
        })
        .collect();
    let mut got = Vec::new();
    // `for s in &listener`, as with std's UnixListener.
    for s in &l {
        let mut b = [0u8; 1];
        s.unwrap().read_exact(&mut b).unwrap();
        got.push(b[0]);
        if got.len() == 3 {
            break;
        }
    }
    got.sort();
    assert_eq!(got, [0, 1, 2]);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(l.incoming().size_hint(), (usize::MAX, None));
}

#[gort::test]
fn abstract_addresses() {
    use std::os::linux::net::SocketAddrExt;
    let addr = abstract_addr("stream");
    let l = UnixListener::bind_addr(&addr).unwrap();
    let server = gort::go!(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).unwrap();
        s.write_all(&b).unwrap();
    });
    let mut c = UnixStream::connect_addr(&addr).unwrap();
    assert_eq!(
        c.peer_addr().unwrap().as_abstract_name(),
        addr.as_abstract_name()
    );
    c.write_all(b"abc").unwrap();
    let mut b = [0u8; 3];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"abc");
    server.join().unwrap();

    let (ra, sa) = (abstract_addr("dgram-r"), abstract_addr("dgram-s"));
    let r = UnixDatagram::bind_addr(&ra).unwrap();
    let s = UnixDatagram::bind_addr(&sa).unwrap();
    s.send_to_addr(b"to", &ra).unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = r.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to");
    assert_eq!(from.as_abstract_name(), sa.as_abstract_name());
    s.connect_addr(&ra).unwrap();
    s.send(b"again").unwrap();
    assert_eq!(r.recv(&mut buf).unwrap(), 5);
}

#[gort::test]
fn datagram_timeouts_peek_and_shutdown() {
    let (a, b) = UnixDatagram::pair().unwrap();
    assert_eq!(b.read_timeout().unwrap(), None);
    assert_eq!(b.write_timeout().unwrap(), None);
    b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(b.read_timeout().unwrap(), Some(Duration::from_millis(30)));
    let t = Instant::now();
    assert_eq!(
        b.recv(&mut [0u8; 8]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    a.send(b"one").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.peek(&mut buf).unwrap(), 3);
    assert_eq!(b.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"one");
    assert!(b.take_error().unwrap().is_none());

    // Receives parked on clones wake up when the socket is shut down, with what std's
    // blocking receives return then (0 bytes, an unnamed sender). The kernel's
    // non-blocking receive would say EAGAIN for ever: the core must not park again.
    b.set_read_timeout(None).unwrap();
    let (b2, b3) = (b.try_clone().unwrap(), b.try_clone().unwrap());
    let h = gort::go!(move || b2.recv(&mut [0u8; 8]).map_err(|e| e.kind()));
    let h2 = gort::go!(move || {
        b3.recv_from(&mut [0u8; 8])
            .map(|(n, from)| (n, from.is_unnamed()))
            .map_err(|e| e.kind())
    });
    gort::time::sleep(Duration::from_millis(10));
    b.shutdown(Shutdown::Read).unwrap();
    assert_eq!(h.join().unwrap(), Ok(0));
    let std_b = std::os::unix::net::UnixDatagram::pair().unwrap().0;
    std_b.shutdown(Shutdown::Read).unwrap();
    let std_got = std_b
        .recv_from(&mut [0u8; 8])
        .map(|(n, from)| (n, from.is_unnamed()))
        .map_err(|e| e.kind());
    assert_eq!(h2.join().unwrap(), std_got);
    assert_eq!(std_got, Ok((0, true)));
    assert_eq!(b.peek(&mut [0u8; 8]).unwrap(), 0);
    // Non-blocking, std says WouldBlock after the shutdown too.
    b.set_nonblocking(true).unwrap();
    std_b.set_nonblocking(true).unwrap();
    assert_eq!(
        b.recv(&mut [0u8; 8]).unwrap_err().kind(),
        std_b.recv(&mut [0u8; 8]).unwrap_err().kind()
    );
    assert_eq!(
        b.recv(&mut [0u8; 8]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    // Queued datagrams are still received after a read shutdown, as with std.
    b.set_nonblocking(false).unwrap();
    let (c, d) = UnixDatagram::pair().unwrap();
    c.send(b"queued").unwrap();
    d.shutdown(Shutdown::Read).unwrap();
    assert_eq!(d.recv(&mut [0u8; 8]).unwrap(), 6);
    assert_eq!(d.recv(&mut [0u8; 8]).unwrap(), 0);
}

#[gort::test]
fn datagram_send_parks_while_the_receivers_queue_is_full() {
    let (a, b) = UnixDatagram::pair().unwrap();
    // Fill b's queue: with a write timeout, a send then fails with std's timeout error.
    a.set_write_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut sent = 0usize;
    let e = loop {
        match a.send(&[7u8; 512]) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "the queue never filled");
    };
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    // Without a timeout, a send parks until the receiver drains the queue.
    a.set_write_timeout(None).unwrap();
    let sender = gort::go!(move || a.send(b"last").unwrap());
    gort::time::sleep(Duration::from_millis(10));
    let mut buf = [0u8; 512];
    let mut got = 0usize;
    loop {
        let n = b.recv(&mut buf).unwrap();
        got += 1;
        if n == 4 {
            assert_eq!(&buf[..4], b"last");
            break;
        }
    }
    assert_eq!(got, sent + 1);
    assert_eq!(sender.join().unwrap(), 4);
}

#[gort::test]
fn datagram_paths() {
    let dir = TempDir::new("dgram");
    let (rp, sp) = (dir.path("r.sock"), dir.path("s.sock"));
    let r = UnixDatagram::bind(&rp).unwrap();
    let s = UnixDatagram::bind(&sp).unwrap();
    let h = gort::go!(move || {
        let mut buf = [0u8; 16];
        let (n, from) = r.recv_from(&mut buf).unwrap();
        (
            buf[..n].to_vec(),
            from.as_pathname().map(|p| p.to_path_buf()),
        )
    });
    s.send_to(b"by path", &rp).unwrap();
    let (msg, from) = h.join().unwrap();
    assert_eq!(msg, b"by path");
    assert_eq!(from.as_deref(), Some(sp.as_path()));
    let u = UnixDatagram::unbound().unwrap();
    assert!(u.local_addr().unwrap().is_unnamed());
    u.connect(&sp).unwrap();
    assert_eq!(u.peer_addr().unwrap().as_pathname(), Some(sp.as_path()));
    u.send(b"x").unwrap();
    assert_eq!(s.recv(&mut [0u8; 4]).unwrap(), 1);
}

#[gort::test]
fn conversions() {
    let (a, b) = UnixStream::pair().unwrap();
    // Through OwnedFd and back: the same socket, still parking.
    let fd: OwnedFd = a.into();
    let a = UnixStream::from(fd);
    // Through a raw descriptor and back.
    let raw = b.into_raw_fd();
    // SAFETY: `raw` was just given up by `into_raw_fd`, so it is an open Unix stream that
    // nothing else owns.
    let b = unsafe { UnixStream::from_raw_fd(raw) };
    assert_eq!(b.as_raw_fd(), raw);
    assert_eq!(b.as_fd().as_raw_fd(), raw);
    let h = gort::go!(move || {
        let mut s = String::new();
        (&b).read_to_string(&mut s).unwrap();
        s
    });
    (&a).write_all(b"round trip").unwrap();
    // A shared handle gives std a duplicate; the socket stays open until both are gone.
    let std_a = a.try_clone().unwrap().into_std().unwrap();
    assert_ne!(std_a.as_raw_fd(), a.as_raw_fd());
    drop(a);
    drop(std_a);
    assert_eq!(h.join().unwrap(), "round trip");
    assert!(format!("{:?}", UnixDatagram::unbound().unwrap()).contains("UnixDatagram"));
    let std_l = std::os::unix::net::UnixListener::bind_addr(&abstract_addr("conv")).unwrap();
    let l = UnixListener::from(OwnedFd::from(std_l));
    let back: std::os::unix::net::UnixListener = l.into();
    assert!(back.local_addr().is_ok());
}
