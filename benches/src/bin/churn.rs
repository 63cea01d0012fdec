//! Connection churn load for `benches/churn-bench.sh`:
//! `churn --addr A [--threads 8] [--secs 3] [--warmup 1] [--size 128]`.
//!
//! Each of `--threads` blocking threads loops: connect (TCP_NODELAY), send `--size` bytes,
//! read them back, close. After the warm-up it prints `window-start`, then after `--secs`
//! `window-end` and one line `result conns=N per_s=R`. Blocking threads keep the client
//! simple; the figure that matters is the server's CPU per connection, which the runner
//! samples around the window.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args = coring_bench::Args::parse(&[]);
    let addr: SocketAddr = args
        .get("addr")
        .unwrap_or_else(|| coring_bench::die("--addr HOST:PORT is required"))
        .parse()
        .unwrap_or_else(|e| coring_bench::die(&format!("--addr: {e}")));
    let threads: usize = args.parse_or("threads", 8);
    let secs: f64 = args.parse_or("secs", 3.0);
    let warmup: f64 = args.parse_or("warmup", 1.0);
    let size: usize = args.parse_or("size", 128);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || {
                let out = vec![7u8; size];
                let mut back = vec![0u8; size];
                while !stop.load(Ordering::Relaxed) {
                    let mut s = match TcpStream::connect(addr) {
                        Ok(s) => s,
                        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        Err(e) => panic!("connect: {e}"),
                    };
                    s.set_nodelay(true).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    s.write_all(&out).unwrap();
                    s.read_exact(&mut back).unwrap();
                    drop(s);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let start = (Instant::now(), done.load(Ordering::Relaxed));
    println!("window-start");
    std::thread::sleep(Duration::from_secs_f64(secs));
    let end = (Instant::now(), done.load(Ordering::Relaxed));
    println!("window-end");
    let conns = end.1 - start.1;
    let per_s = conns as f64 / (end.0 - start.0).as_secs_f64();
    println!("result conns={conns} per_s={per_s:.0}");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
}
