use std::time::{Duration, Instant};
fn main() {
    let t = Instant::now();
    let h = gort::spawn(|| {
        let hs: Vec<_> = (0..100_000u64)
            .map(|i| gort::spawn(move || i * 2))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    println!(
        "sum {} in {:?} goroutines now {}",
        h.join().unwrap(),
        t.elapsed(),
        gort::num_goroutines()
    );
    let t = Instant::now();
    let hs: Vec<_> = (0..1000)
        .map(|_| gort::spawn(|| gort::time::sleep(Duration::from_millis(50))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!("1000 sleepers of 50ms took {:?}", t.elapsed());
    let r = gort::spawn(|| panic!("boom")).join();
    println!("panic joined: {}", r.is_err());
    let t = Instant::now();
    let n = 1_000_000;
    let hs: Vec<_> = (0..n).map(|_| gort::spawn(|| ())).collect();
    for h in hs {
        h.join().unwrap();
    }
    println!("spawn+join from thread: {:?}/op", t.elapsed() / n);
}
