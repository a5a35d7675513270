//! gort::net: sockets that park goroutines (and plain threads) instead of blocking workers.
//!
//! Behaviour, not timing: each test checks what std would return (values and `io::Error`
//! kinds) and that waiting parks rather than blocks (the whole file also runs with
//! `GORT_MAXPROCS=1`, where a blocked worker would hang every test).

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream, UdpSocket};

#[test]
fn maxprocs_1() {
    common::rerun_single_proc()
}

/// An echo server: one goroutine per connection, copying until EOF. Returns its address.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    gort::go!(move || {
        for c in l.incoming() {
            let c = c.unwrap();
            gort::go!(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match (&c).read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if (&c).write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[gort::test]
fn echo_1000_clients_x_100_messages() {
    let addr = echo_server();
    let clients = 1000;
    let msgs = 100;
    let echoed = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..clients)
        .map(|i| {
            let echoed = echoed.clone();
            gort::go!(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_nodelay(true).unwrap();
                for m in 0..msgs {
                    let out = format!("{i:04}:{m:03}\n");
                    c.write_all(out.as_bytes()).unwrap();
                    let mut back = [0u8; 9];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(&back[..], out.as_bytes());
                    echoed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(echoed.load(Ordering::Relaxed), clients * msgs);
}

#[gort::test]
fn accept_read_write_shutdown() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = gort::go!(move || {
        let (mut c, peer) = l.accept().unwrap();
        assert_eq!(peer, c.peer_addr().unwrap());
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap(); // until the client shuts its write half
        c.write_all(s.to_uppercase().as_bytes()).unwrap();
        s
    });
    let mut c = TcpStream::connect(addr).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    c.write_all(b"hello, gort").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    c.read_to_string(&mut back).unwrap();
    assert_eq!(back, "HELLO, GORT");
    assert_eq!(server.join().unwrap(), "hello, gort");
}

#[gort::test]
fn large_transfer_parks_writer_until_reader_drains() {
    // 8 MiB cannot fit in the socket buffers: the writer must park on EAGAIN for write
    // readiness and resume as the reader drains.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let total = 8 << 20;
    let writer = gort::go!(move || {
        let (c, _) = l.accept().unwrap();
        let chunk: Vec<u8> = (0..65536).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        while sent < total {
            (&c).write_all(&chunk).unwrap();
            sent += chunk.len();
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let mut buf = vec![0u8; 100_000];
    let mut got = 0usize;
    while got < total {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, ((got + k) % 65536 % 251) as u8);
        }
        got += n;
    }
    writer.join().unwrap();
    assert_eq!(
        c.read(&mut buf).unwrap(),
        0,
        "EOF after the writer dropped its stream"
    );
}

#[gort::test]
fn read_timeout_is_wouldblock_like_std() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_quiet, _) = l.accept().unwrap();
    assert_eq!(c.read_timeout().unwrap(), None);
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    let t = Instant::now();
    let e = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(50));
    // std rejects a zero timeout.
    let e = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    // While one goroutine waits out its deadline, others keep running.
    let h = gort::go!(move || (&c).read(&mut [0u8; 8]).map_err(|e| e.kind()));
    let mut n = 0;
    while !h.is_finished() {
        n += 1;
        gort::yield_now();
    }
    assert!(n > 0);
    assert_eq!(h.join().unwrap(), Err(io::ErrorKind::WouldBlock));
}

#[test]
fn read_timeout_on_a_plain_thread() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_quiet, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let t = Instant::now();
    let e = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[gort::test]
fn write_timeout_when_peer_does_not_read() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_quiet, _) = l.accept().unwrap();
    c.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let chunk = vec![0u8; 1 << 16];
    let e = loop {
        match (&c).write(&chunk) {
            Ok(n) => assert!(n > 0),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
}

#[gort::test]
fn connect_to_closed_port_is_refused() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    let e = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
}

/// A raw listener with `listen(fd, 0)`: its accept queue holds one connection; once full,
/// the kernel drops further SYNs and those connects hang.
fn tiny_backlog_listener() -> (std::net::TcpListener, SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // SAFETY: re-listen on our own listening socket with a backlog of 0.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    (l, addr)
}

#[gort::test]
fn connect_timeout_times_out() {
    let (_l, addr) = tiny_backlog_listener();
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..16 {
        let t = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(e) => {
                timed_out = Some((e, t.elapsed()));
                break;
            }
        }
    }
    let (e, waited) = timed_out.expect("a connect to a full accept queue must time out");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(waited >= Duration::from_millis(100));
}

/// Makes `s`'s close send a RST (SO_LINGER with a zero timeout).
fn linger_zero(fd: i32) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid linger value for a socket we own.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

#[gort::test]
fn peer_reset_is_connection_reset() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    // The reader parks first; the reset must wake it with the error.
    let reader = gort::go!(move || {
        let mut buf = [0u8; 16];
        let e = c.read(&mut buf).unwrap_err();
        (e.kind(), c)
    });
    gort::time::sleep(Duration::from_millis(20));
    linger_zero(s.as_raw_fd());
    drop(s);
    let (kind, mut c) = reader.join().unwrap();
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
    // Writing to a reset connection fails too (EPIPE or ECONNRESET), without SIGPIPE.
    let e = loop {
        match c.write(b"x") {
            Ok(n) => assert_eq!(n, 1),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{e}"
    );
}

#[gort::test]
fn peer_close_is_eof() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let h = gort::go!(move || {
        let (s, _) = l.accept().unwrap();
        gort::time::sleep(Duration::from_millis(10));
        drop(s);
    });
    let mut buf = [0u8; 4];
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    h.join().unwrap();
}

#[test]
fn plain_threads_only() {
    // No goroutine anywhere: std threads park on their futex, woken by the poller.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        buf
    });
    let client = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(10)); // the server is parked in read
        c.write_all(b"plain").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&client.join().unwrap(), b"plain");
    assert_eq!(&server.join().unwrap(), b"plain");
}

#[test]
fn goroutine_server_thread_clients() {
    let addr = echo_server();
    let hs: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                for m in 0..50u32 {
                    let v = (i * 1000 + m).to_le_bytes();
                    c.write_all(&v).unwrap();
                    let mut back = [0u8; 4];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, v);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn stream_moves_between_goroutine_and_thread() {
    let addr = echo_server();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"1").unwrap();
    // Move the stream into a goroutine, then back to this thread.
    let mut c = gort::go!(move || {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"1");
        c.write_all(b"2").unwrap();
        c
    })
    .join()
    .unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"2");
}

#[gort::test]
fn try_clone_reader_and_writer_goroutines() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    gort::go!(move || {
        let (s, _) = l.accept().unwrap();
        let _ = io::copy(&mut &s, &mut &s);
    });
    let c = TcpStream::connect(addr).unwrap();
    let mut r = c.try_clone().unwrap();
    let reader = gort::go!(move || {
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        all
    });
    let mut w = c.try_clone().unwrap();
    let writer = gort::go!(move || {
        for i in 0..100u8 {
            w.write_all(&[i; 100]).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    writer.join().unwrap();
    let all = reader.join().unwrap();
    assert_eq!(all.len(), 100 * 100);
    assert!(all
        .chunks(100)
        .enumerate()
        .all(|(i, c)| c == [i as u8; 100]));
}

#[gort::test]
fn many_acceptors_on_one_listener() {
    // Several goroutines park in accept on one shared listener; every connection must be
    // taken by one of them (no acceptor may swallow a readiness edge another needed).
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let n = 40;
    let acceptors: Vec<_> = (0..4)
        .map(|_| {
            let l = l.clone();
            let accepted = accepted.clone();
            gort::go!(move || {
                let mut mine = Vec::new();
                while accepted.fetch_add(1, Ordering::SeqCst) < n {
                    mine.push(l.accept().unwrap().0);
                }
                mine.len()
            })
        })
        .collect();
    let clients: Vec<_> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let total: usize = acceptors.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, n);
    drop(clients);
}

#[gort::test]
fn nonblocking_mode_returns_wouldblock() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    c.set_nonblocking(true).unwrap();
    assert_eq!(
        (&c).read(&mut [0u8; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    c.set_nonblocking(false).unwrap();
    l.set_nonblocking(false).unwrap();
    let (mut s, _) = l.accept().unwrap();
    s.write_all(b"ok").unwrap();
    let mut b = [0u8; 2];
    (&c).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}

#[gort::test]
fn std_conversions() {
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_l.local_addr().unwrap();
    let l = TcpListener::from(std_l);
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    // Back to std: blocking mode, deregistered, same socket.
    let mut std_s: std::net::TcpStream = s.into();
    let mut c2 = TcpStream::from(c.try_clone().unwrap().into_std().unwrap());
    drop(c);
    c2.write_all(b"to std").unwrap();
    let mut b = [0u8; 6];
    std_s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"to std");
    assert_eq!(std_s.peer_addr().unwrap(), c2.local_addr().unwrap());
    c2.set_nodelay(true).unwrap();
    assert!(c2.nodelay().unwrap());
}

#[gort::test]
fn udp_send_to_recv_from() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    // b parks in recv_from before anything is sent.
    let h = gort::go!(move || {
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        for _ in 0..10 {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(from, a_addr);
            got.push(buf[..n].to_vec());
            b.send_to(&buf[..n], from).unwrap();
        }
        got
    });
    let mut buf = [0u8; 64];
    for i in 0..10u8 {
        a.send_to(&[i; 3], b_addr).unwrap();
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((n, from), (3, b_addr));
        assert_eq!(&buf[..3], &[i; 3]);
    }
    let got = h.join().unwrap();
    assert_eq!(got.len(), 10);
}

#[gort::test]
fn udp_connect_send_recv_and_timeout() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    a.send(b"datagram").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.peek(&mut buf).unwrap(), 8);
    assert_eq!(b.recv(&mut buf).unwrap(), 8);
    assert_eq!(&buf[..8], b"datagram");
    b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let t = Instant::now();
    assert_eq!(
        b.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[gort::test]
fn unix_stream_pair_and_listener() {
    use gort::net::unix::{UnixListener, UnixStream};
    let (a, b) = UnixStream::pair().unwrap();
    let h = gort::go!(move || {
        let mut s = String::new();
        (&b).read_to_string(&mut s).unwrap();
        s
    });
    (&a).write_all(b"over a pair").unwrap();
    drop(a);
    assert_eq!(h.join().unwrap(), "over a pair");

    let dir = std::env::temp_dir().join(format!("gort-net-{}", std::process::id()));
    let _ = std::fs::create_dir(&dir);
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let server = gort::go!(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        s.write_all(&b).unwrap();
    });
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"unix").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"unix");
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[gort::test]
fn bind_errors_and_name_resolution() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let e = TcpListener::bind(addr).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
    // A host name goes through the resolver (inside `gort::blocking`).
    let c = TcpStream::connect(("localhost", addr.port())).unwrap();
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(s.local_addr().unwrap(), addr);
    let e = TcpStream::connect("no-such-host.invalid:80").unwrap_err();
    assert!(!matches!(e.kind(), io::ErrorKind::WouldBlock), "{e}");
}

#[gort::test]
fn connection_churn_recycles_registrations() {
    // Many short connections, opened and closed concurrently: registrations are recycled
    // while the poller may still hold stale events for them (spurious wake-ups only).
    let addr = echo_server();
    let workers = 50;
    let rounds = common::stress(40);
    let hs: Vec<_> = (0..workers)
        .map(|w| {
            gort::go!(move || {
                for r in 0..rounds {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let msg = [(w + r) as u8; 32];
                    c.write_all(&msg).unwrap();
                    let mut back = [0u8; 32];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                    if r % 2 == 0 {
                        c.shutdown(Shutdown::Both).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn udp_between_thread_and_goroutine() {
    let t = UdpSocket::bind("127.0.0.1:0").unwrap();
    let g = UdpSocket::bind("127.0.0.1:0").unwrap();
    let g_addr = g.local_addr().unwrap();
    let h = gort::go!(move || {
        let mut buf = [0u8; 8];
        for _ in 0..20 {
            let (n, from) = g.recv_from(&mut buf).unwrap();
            g.send_to(&buf[..n], from).unwrap();
        }
    });
    let mut buf = [0u8; 8];
    for i in 0..20u32 {
        t.send_to(&i.to_le_bytes(), g_addr).unwrap();
        let (n, _) = t.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &i.to_le_bytes());
    }
    h.join().unwrap();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs in a child process (alone, so that no other test opens descriptors meanwhile):
/// every path that creates a socket — accept, connect, refused connect, timed-out connect,
/// reset, UDP, Unix sockets, clones, conversions — gives back every descriptor.
#[test]
fn no_fd_leaks() {
    if !common::is_child("no_fd_leaks") {
        let out = common::run_child("no_fd_leaks", &[]);
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // Warm up: the runtime's and the poller's own descriptors are created once.
    gort::spawn(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    })
    .join()
    .unwrap();
    let before = open_fds();
    gort::spawn(|| {
        let addr = echo_server_closable();
        for _ in 0..50 {
            let c = TcpStream::connect(addr.0).unwrap();
            let c2 = c.try_clone().unwrap();
            (&c).write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            (&c2).read_exact(&mut b).unwrap();
        }
        addr.1.store(1, Ordering::SeqCst);
        let _ = TcpStream::connect(addr.0); // wakes the acceptor, which then exits
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        for _ in 0..20 {
            assert!(TcpStream::connect(closed).is_err());
        }
        let (l, full) = tiny_backlog_listener();
        let mut held = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&full, Duration::from_millis(20)) {
                Ok(s) => held.push(s),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            }
        }
        drop((held, l));
        for _ in 0..20 {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            assert!(u.recv(&mut [0u8; 1]).is_err());
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let std_c: std::net::TcpStream = c.into();
        drop(std_c);
        let (s, _) = l.accept().unwrap();
        let fd: std::os::fd::OwnedFd = s.try_clone().unwrap().into(); // a dup: `s` lives
        drop((TcpStream::from(fd), s));
        unix_sockets_for_fd_leaks();
    })
    .join()
    .unwrap();
    // Let the server-side goroutines see EOF and drop their streams.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// The Unix-domain part of `no_fd_leaks`: accepts, clones, conversions, timed-out receives.
fn unix_sockets_for_fd_leaks() {
    use gort::net::unix::{UnixDatagram, UnixListener, UnixStream};
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    use std::os::linux::net::SocketAddrExt;
    let name = format!("gort-net-leaks-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    for _ in 0..20 {
        let c = UnixStream::connect_addr(&addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let c2 = c.try_clone().unwrap();
        (&c2).write_all(b"x").unwrap();
        (&s).read_exact(&mut [0u8; 1]).unwrap();
        drop(UnixStream::from(OwnedFd::from(s)));
        drop(c.into_std().unwrap()); // a duplicate: c2 still shares the socket
    }
    for _ in 0..20 {
        let (a, b) = UnixDatagram::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        assert!(b.recv(&mut [0u8; 1]).is_err());
        let raw = a.into_raw_fd();
        // SAFETY: `raw` was just given up by `into_raw_fd`: open, and owned by nobody.
        drop(unsafe { UnixDatagram::from_raw_fd(raw) });
    }
}

/// An echo server whose acceptor exits when the flag is set (so its listener closes).
fn echo_server_closable() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicUsize::new(0));
    let flag = stop.clone();
    gort::go!(move || {
        for c in l.incoming() {
            if flag.load(Ordering::SeqCst) != 0 {
                return;
            }
            let c = c.unwrap();
            gort::go!(move || {
                let _ = io::copy(&mut &c, &mut &c);
            });
        }
    });
    (addr, stop)
}

/// A goroutine parked on a socket shows as `[IO wait]` in the goroutine dump, as in Go.
#[test]
fn dump_shows_io_wait() {
    if !common::is_child("dump_shows_io_wait") {
        let out = common::run_child("dump_shows_io_wait", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{err}");
        assert!(err.contains("[IO wait"), "no IO wait in the dump:\n{err}");
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let reader = gort::thread::Builder::new()
        .name("reader".into())
        .spawn(move || (&c).read(&mut [0u8; 1]).map(|n| n == 1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    gort::dump();
    (&s).write_all(b"x").unwrap();
    assert!(reader.join().unwrap().unwrap());
}

/// The network examples run and say what they should (when `cargo test` has built them;
/// `cargo test --test net` alone does not build examples).
#[test]
fn examples_run() {
    let dir = std::env::current_exe().unwrap();
    let dir = dir.parent().unwrap().parent().unwrap().join("examples");
    let run = |name: &str, args: &[&str]| -> Option<String> {
        let exe = dir.join(name);
        if !exe.exists() {
            eprintln!("skipping {name}: not built");
            return None;
        }
        let out = std::process::Command::new(exe).args(args).output().unwrap();
        assert!(out.status.success(), "{name} failed: {out:?}");
        Some(String::from_utf8(out.stdout).unwrap())
    };
    if let Some(out) = run("echo_server", &["demo", "0.3"]) {
        assert!(
            out.contains("requests/s") && !out.contains("failed"),
            "{out}"
        );
    }
    if let Some(out) = run("chat_roulette", &["demo"]) {
        assert!(out.contains("alice sees: hi, I am bob"), "{out}");
        assert!(out.contains("bob sees: hi, I am alice"), "{out}");
    }
    if let Some(out) = run("google_search", &[]) {
        for v in ["1.0", "2.0", "2.1", "3.0"] {
            assert!(out.contains(&format!("Google {v}: [")), "{out}");
        }
    }
}

/// Go's pattern: a goroutine turns a socket into a channel; the consumer selects between it
/// and a timeout.
#[gort::test]
fn socket_to_channel_with_select_timeout() {
    use std::io::BufRead;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let (tx, rx) = gort::chan::<String>(0);
    gort::go!(move || {
        for line in io::BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (&c).write_all(b"one\ntwo\n").unwrap();
    let mut got = Vec::new();
    loop {
        gort::select! {
            recv(rx) -> line => got.push(line.unwrap()),
            recv(gort::time::after(Duration::from_millis(50))) -> _ => break,
        }
    }
    assert_eq!(got, ["one", "two"]);
    drop(c); // EOF: the reader goroutine ends and the channel closes
    assert!(rx.recv().is_err());
}
