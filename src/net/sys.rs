//! Thin libc wrappers the std socket API does not offer, or offers on each type separately:
//! non-blocking socket creation, a non-blocking `connect`, a listener with a large backlog,
//! socket-address conversion, and the calls the socket core (`socket.rs`) makes the same way
//! for every family (`shutdown`, `peek`, `SO_ERROR`, `SO_LINGER`).
//!
//! Everything else (accept, read, write, send_to, most options) goes through std's own
//! socket types, which already do the right thing on a non-blocking descriptor.
//!
//! # Safety
//!
//! Every `unsafe` block here is a libc call or a reinterpretation of a C socket address. They
//! rest on these invariants:
//!
//! 1. **Pointers are to live locals of the right size.** Each pointer handed to the kernel
//!    points at a local of the calling function (a `sockaddr_storage`, an option value, a
//!    `socklen_t`) or a caller's buffer, that outlives the call, and the length passed with
//!    it is at most that object's size. The kernel only accesses them during the call.
//!    Option values are [`OptVal`] types: plain C data for which every bit pattern,
//!    all zeroes included, is valid, so whatever the kernel writes into one is a valid value.
//! 2. **Socket addresses are plain data in a big enough, aligned buffer.**
//!    `sockaddr_storage` is at least as large as `sockaddr_in` and `sockaddr_in6` and aligned
//!    for both; all three are integers and integer arrays, for which every bit pattern
//!    (including all zeroes) is valid. So zero-initialising one, writing a `sockaddr_in(6)`
//!    into it, or viewing it as one is sound whatever its bytes hold; `ss_family` only says
//!    which view is *meaningful*.
//! 3. **A new descriptor has exactly one owner.** A descriptor returned by `socket(2)` is
//!    wrapped in an `OwnedFd` immediately (after the error check), so it is closed exactly once,
//!    when that owner drops, and never leaks on an early `?` return.
//! 4. **Borrowed descriptors.** Functions taking a `RawFd` only pass it to system calls; a
//!    wrong descriptor gives an error (`EBADF`, `ENOTSOCK`), never memory unsafety. Callers
//!    (`socket.rs`, `tcp.rs`) pass a descriptor that they own and keep open for the duration of
//!    the call (I/O safety: a closed and reused number would act on another file).

use std::io;
use std::mem;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Returns `Err(last_os_error)` when a libc call returned -1.
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new non-blocking, close-on-exec socket.
pub(crate) fn socket(family: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: (1) socket(2) takes only integers, no pointers; the result is checked by `cvt`.
    let fd =
        cvt(unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: (3) `fd` was just returned by socket(2), is open, and is owned by nobody else:
    // the `OwnedFd` becomes its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The address family of `addr`.
pub(crate) fn family(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// `addr` as a C socket address.
pub(crate) fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: (2) sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: (2) the pointer comes from `&mut storage`, a live local, so it is valid
            // for writes; sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in).write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: (2) the pointer comes from `&mut storage`, a live local, so it is valid
            // for writes; sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6).write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Starts connecting non-blocking socket `fd` to `addr`. `Ok(true)`: connected already;
/// `Ok(false)`: in progress (wait until writable, then call [`connect_result`]).
pub(crate) fn start_connect(fd: RawFd, addr: &SocketAddr) -> io::Result<bool> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: (1) `storage` is a live local holding a socket address of `len` bytes, which
    // connect(2) only reads during the call; (4) `fd` is the caller's open socket.
    let r = unsafe {
        libc::connect(
            fd,
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // EINTR: the connection goes on asynchronously, as with EINPROGRESS.
        Some(libc::EINPROGRESS) | Some(libc::EINTR) | Some(libc::EALREADY) => Ok(false),
        Some(libc::EISCONN) => Ok(true),
        _ => Err(e),
    }
}

/// After a non-blocking connect became writable: `Ok(true)` connected, `Ok(false)` still in
/// progress (a spurious wake-up), or the connect's error (Go's `netFD.connect` logic).
pub(crate) fn connect_result(fd: RawFd) -> io::Result<bool> {
    match getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_ERROR)? {
        libc::EINPROGRESS | libc::EALREADY | libc::EINTR => Ok(false),
        libc::EISCONN => Ok(true),
        0 => {
            // SO_ERROR is 0 both while connecting and once connected: ask for the peer.
            // SAFETY: (2) sockaddr_storage is plain old data; all-zero is a valid value.
            let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: (1) `storage` and `len` are live locals and `len` is the size of
            // `storage`, so getpeername(2) writes within it. (4) `fd` is the caller's socket.
            let r = unsafe {
                libc::getpeername(
                    fd,
                    &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if r == 0 {
                Ok(true)
            } else {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ENOTCONN) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// A non-blocking TCP listener on `addr`, with `SO_REUSEADDR` as std sets it and the largest
/// backlog the system allows (std uses 128, which a burst of a thousand connects overflows;
/// the kernel caps ours at `net.core.somaxconn`, as Go's listeners are).
pub(crate) fn tcp_listen(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let fd = socket(family(addr), libc::SOCK_STREAM)?;
    setsockopt::<libc::c_int>(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let (storage, len) = sockaddr(addr);
    // SAFETY: (1) `storage` is a live local holding a socket address of `len` bytes, which
    // bind(2) only reads during the call; `fd` is the OwnedFd created above.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
        )
    })?;
    // SAFETY: listen(2) takes only integers (the kernel clamps the backlog to somaxconn);
    // `fd` is the OwnedFd created above.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), libc::c_int::MAX) })?;
    Ok(fd)
}

/// Sets or clears `O_NONBLOCK` on `fd`.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let mut v: libc::c_int = on as libc::c_int;
    // SAFETY: (1) FIONBIO reads an int through its pointer argument, and `v` is a live c_int
    // local. (4) `fd` is the caller's open descriptor.
    cvt(unsafe { libc::ioctl(fd, libc::FIONBIO, &mut v) }).map(drop)
}

/// Takes the pending error of socket `fd` (`SO_ERROR`, which reading clears).
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let e = getsockopt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: RawFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown(2) takes only integers; (4) `fd` is the caller's open socket.
    cvt(unsafe { libc::shutdown(fd, how) }).map(drop)
}

/// `recv(2)` with `MSG_PEEK`: the next bytes (or datagram) without taking them.
pub(crate) fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: (1) `buf` is the caller's live, exclusively borrowed slice and the length
    // passed is its length, so recv(2) writes within it. (4) `fd` is the caller's socket.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_PEEK,
        )
    };
    if n == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sets `SO_LINGER` (std's unstable `set_linger`: `None` turns it off; whole seconds).
pub(crate) fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let v = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| {
            d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int
        }),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, v)
}

/// Reads `SO_LINGER`.
pub(crate) fn linger(fd: RawFd) -> io::Result<Option<Duration>> {
    let v = getsockopt::<libc::linger>(fd, libc::SOL_SOCKET, libc::SO_LINGER)?;
    Ok((v.l_onoff != 0).then(|| Duration::from_secs(v.l_linger as u64)))
}

/// An option value passed to or from the kernel: plain C data, valid for every bit pattern
/// (module Safety 1).
trait OptVal: Copy {}
impl OptVal for libc::c_int {}
impl OptVal for libc::linger {}

/// `setsockopt(2)` with a value of type `T`.
fn setsockopt<T: OptVal>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: T) -> io::Result<()> {
    // SAFETY: (1) `v` is a live local and the length passed is its size; setsockopt(2) only
    // reads it. (4) `fd` is the caller's open socket.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const T as *const libc::c_void,
            mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt(2)` for a value of type `T`.
fn getsockopt<T: OptVal>(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    // SAFETY: (1) `T` is an `OptVal`: all-zero is a valid value.
    let mut v: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: (1) `v` and `len` are live locals; `len` is the size of `v`, so the kernel
    // writes at most that many bytes, and any bytes it writes make a valid `T` (`OptVal`).
    // (4) `fd` is the caller's open socket.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            &mut v as *mut T as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(v)
}
