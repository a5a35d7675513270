use std::time::{Duration, Instant};
fn main() {
    gort::spawn(|| {
        for _ in 0..3 {
            let t = Instant::now();
            let rs: Vec<_> = (0..100_000)
                .map(|_| {
                    gort::time::after(Duration::from_millis(
                        std::env::var("D").map_or(1, |v| v.parse().unwrap()),
                    ))
                })
                .collect();
            let t1 = t.elapsed();
            for r in &rs {
                r.recv().unwrap();
            }
            let t2 = t.elapsed();
            drop(rs);
            let t3 = t.elapsed();
            println!(
                "create {:?} recv {:?} drop {:?} per-timer {} ns",
                t1,
                t2 - t1,
                t3 - t2,
                t3.as_nanos() / 100_000
            );
        }
    })
    .join()
    .unwrap();
}
