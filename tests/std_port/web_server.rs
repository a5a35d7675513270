// A multi-threaded web server in the style of the Rust Book's chapter 20, written for
// `std`. tests/std_port.rs compiles this very file twice: once against `std`, once with
// `std` standing for `gort::std` (the porting substitution), and runs both.
// (Plain `//` comments: this file is `include!`d, where inner doc comments are not allowed.)

use std::{
    io::{prelude::*, BufReader},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, Condvar, Mutex, RwLock,
    },
    thread,
    time::Duration,
};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The types this program's threads, locks and channels have (checked by the test).
pub type Types = (thread::JoinHandle<()>, Mutex<()>, mpsc::Receiver<()>, Condvar, RwLock<()>);

pub struct ThreadPool {
    workers: Vec<Worker>,
    sender: Option<mpsc::Sender<Job>>,
}

impl ThreadPool {
    /// A pool of `size` workers.
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn new(size: usize) -> ThreadPool {
        assert!(size > 0);
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = (0..size)
            .map(|id| Worker::new(id, Arc::clone(&receiver)))
            .collect();
        ThreadPool {
            workers,
            sender: Some(sender),
        }
    }

    pub fn execute<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.sender.as_ref().unwrap().send(Box::new(f)).unwrap();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.sender.take());
        for worker in self.workers.drain(..) {
            worker.thread.join().unwrap();
        }
    }
}

struct Worker {
    #[allow(dead_code)]
    id: usize,
    thread: thread::JoinHandle<()>,
}

impl Worker {
    fn new(id: usize, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) -> Worker {
        let thread = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || loop {
                let message = receiver.lock().unwrap().recv();
                match message {
                    Ok(job) => job(),
                    Err(_) => break,
                }
            })
            .unwrap();
        Worker { id, thread }
    }
}

/// Shared server state: a hit counter per path, read often, written rarely.
#[derive(Default)]
struct Stats {
    hits: RwLock<Vec<(String, usize)>>,
    served: AtomicUsize,
    all_done: (Mutex<usize>, Condvar),
}

impl Stats {
    fn hit(&self, path: &str) {
        let mut hits = self.hits.write().unwrap();
        match hits.iter_mut().find(|(p, _)| p == path) {
            Some((_, n)) => *n += 1,
            None => hits.push((path.to_string(), 1)),
        }
    }

    fn count(&self, path: &str) -> usize {
        let hits = self.hits.read().unwrap();
        hits.iter().find(|(p, _)| p == path).map_or(0, |(_, n)| *n)
    }
}

fn handle_connection(mut stream: TcpStream, stats: &Stats) {
    let buf_reader = BufReader::new(&mut stream);
    let request_line = buf_reader.lines().next().unwrap().unwrap();
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let (status_line, contents) = match &request_line[..] {
        "GET / HTTP/1.1" => ("HTTP/1.1 200 OK", "hello".to_string()),
        "GET /sleep HTTP/1.1" => {
            thread::sleep(Duration::from_millis(50));
            ("HTTP/1.1 200 OK", "slept".to_string())
        }
        _ => ("HTTP/1.1 404 NOT FOUND", format!("no {path}")),
    };
    stats.hit(&path);
    let who = thread::current()
        .name()
        .map(str::to_owned)
        .unwrap_or_default();
    let body = format!("{contents} from {}", who.split('-').next().unwrap_or(""));
    let response = format!(
        "{status_line}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).unwrap();
    stats.served.fetch_add(1, Ordering::SeqCst);
    let (lock, cvar) = &stats.all_done;
    *lock.lock().unwrap() += 1;
    cvar.notify_all();
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Serves `paths` (each requested by its own client thread) with a pool of 4 workers and
/// returns the responses in request order, plus the hit counts of "/" and "/sleep".
pub fn run(paths: &[&str]) -> (Vec<String>, usize, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let n = paths.len();
    let server = {
        let stats = Arc::clone(&stats);
        thread::spawn(move || {
            let pool = ThreadPool::new(4);
            for stream in listener.incoming().take(n) {
                let stream = stream.unwrap();
                let stats = Arc::clone(&stats);
                pool.execute(move || handle_connection(stream, &stats));
            }
            // Dropping the pool joins its workers.
        })
    };
    let responses: Vec<String> = thread::scope(|s| {
        let clients: Vec<_> = paths.iter().map(|p| s.spawn(move || get(addr, p))).collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    {
        let (lock, cvar) = &stats.all_done;
        let served = cvar.wait_while(lock.lock().unwrap(), |n_done| *n_done < n).unwrap();
        assert_eq!(*served, n);
    }
    server.join().unwrap();
    assert_eq!(stats.served.load(Ordering::SeqCst), n);
    (responses, stats.count("/"), stats.count("/sleep"))
}
