//! Chat roulette, from Andrew Gerrand's talk "Go: code that grows with grace" (2012): a TCP
//! server that pairs each incoming connection with the next one and copies both ways.
//!
//! ```text
//! cargo run --example chat_roulette                    # serve on 127.0.0.1:4000
//! cargo run --example chat_roulette -- client          # talk to it (stdin <-> socket),
//!                                                      # run it twice; or use telnet/nc
//! cargo run --example chat_roulette -- demo            # server + two scripted clients
//! ```
//!
//! The Go original, line for line:
//!
//! ```go
//! var partner = make(chan io.ReadWriteCloser)
//!
//! func match(c io.ReadWriteCloser) {
//!     fmt.Fprint(c, "Waiting for a partner...")
//!     select {
//!     case partner <- c:
//!         // now handled by the other goroutine
//!     case p := <-partner:
//!         chat(p, c)
//!     }
//! }
//!
//! func chat(a, b io.ReadWriteCloser) {
//!     fmt.Fprintln(a, "Found one! Say hi.")
//!     fmt.Fprintln(b, "Found one! Say hi.")
//!     errc := make(chan error, 1)
//!     go cp(a, b, errc)
//!     go cp(b, a, errc)
//!     if err := <-errc; err != nil {
//!         log.Println(err)
//!     }
//!     a.Close()
//!     b.Close()
//! }
//! ```
//!
//! Two differences, both Rust's: a `select!` evaluates its send value when it starts, and
//! drops it if another case wins, so the connection offered to a partner is a `try_clone`
//! (a second handle to the same socket); and in Go the slower `cp` goroutine blocks for ever
//! on the full `errc` (a goroutine leak), while here its send fails once `chat` has returned
//! and dropped the receiver, so it ends.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use gort::chan;
use gort::chan::{Receiver, Sender};
use gort::net::{TcpListener, TcpStream};

const LISTEN_ADDR: &str = "127.0.0.1:4000";

/// Accepts connections for ever, a `match_partner` goroutine each.
fn serve(l: TcpListener) -> io::Result<()> {
    let (partner_tx, partner_rx) = chan::<TcpStream>(0);
    for c in l.incoming() {
        let c = c?;
        gort::go!(match_partner(c, partner_tx.clone(), partner_rx.clone()));
    }
    Ok(())
}

/// Offers `c` to a waiting partner, or takes one that is offered — whichever comes first.
fn match_partner(mut c: TcpStream, partner_tx: Sender<TcpStream>, partner_rx: Receiver<TcpStream>) {
    if write!(c, "Waiting for a partner...").is_err() {
        return;
    }
    let offer = match c.try_clone() {
        Ok(o) => o,
        Err(_) => return,
    };
    gort::select! {
        send(partner_tx, offer) -> _ => {
            // Now handled by the other goroutine (it holds our clone).
        },
        recv(partner_rx) -> p => {
            if let Ok(p) = p {
                chat(p, c);
            }
        },
    }
}

/// Connects `a` and `b` until either side hangs up.
fn chat(a: TcpStream, b: TcpStream) {
    let _ = writeln!(&a, "Found one! Say hi.");
    let _ = writeln!(&b, "Found one! Say hi.");
    let (errc_tx, errc_rx) = chan::<io::Result<u64>>(1);
    let (a2, b2) = match (a.try_clone(), b.try_clone()) {
        (Ok(a2), Ok(b2)) => (a2, b2),
        _ => return,
    };
    gort::go!(cp(a2, b2, errc_tx.clone()));
    gort::go!(cp(b, a, errc_tx));
    if let Ok(Err(e)) = errc_rx.recv() {
        eprintln!("chat: {e}");
    }
    // Closing both ends (shutdown reaches every handle) ends the other copy too.
}

/// Copies `r` to `w` until EOF or an error, reports the outcome, then hangs up both.
fn cp(w: TcpStream, r: TcpStream, errc: Sender<io::Result<u64>>) {
    let res = io::copy(&mut &r, &mut &w);
    let _ = w.shutdown(Shutdown::Both);
    let _ = r.shutdown(Shutdown::Both);
    let _ = errc.send(res); // Err if chat already returned: then nobody needs it
}

/// An interactive client: stdin to the socket, the socket to stdout.
fn client(addr: &str) -> io::Result<()> {
    let c = TcpStream::connect(addr)?;
    let r = c.try_clone()?;
    let printer = gort::go!(move || io::copy(&mut &r, &mut io::stdout()));
    // Reading stdin blocks in the kernel: a plain thread does it (it writes to the gort
    // socket, which parks the thread if it must).
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut &c);
        let _ = c.shutdown(Shutdown::Write);
    });
    printer.join().expect("printer panicked")?;
    Ok(())
}

/// Server plus two scripted clients that find each other and exchange a line.
fn demo() -> io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    println!("chat roulette on {addr}");
    gort::go!(serve(l));
    let alice = gort::go!(scripted(addr, "alice"));
    gort::time::sleep(Duration::from_millis(50));
    let bob = gort::go!(scripted(addr, "bob"));
    alice.join().expect("alice panicked")?;
    bob.join().expect("bob panicked")?;
    Ok(())
}

fn scripted(addr: SocketAddr, name: &'static str) -> io::Result<()> {
    let c = TcpStream::connect(addr)?;
    let mut lines = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    lines.read_line(&mut line)?; // "Waiting for a partner...Found one! Say hi."
    print!("{name} sees: {line}");
    writeln!(&c, "hi, I am {name}")?;
    line.clear();
    lines.read_line(&mut line)?;
    print!("{name} sees: {line}");
    Ok(())
}

#[gort::main]
fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("client") => client(args.get(1).map_or(LISTEN_ADDR, String::as_str)),
        Some("demo") => demo(),
        addr => {
            let l = TcpListener::bind(addr.unwrap_or(LISTEN_ADDR))?;
            println!("chat roulette listening on {}", l.local_addr()?);
            serve(l)
        }
    }
}
