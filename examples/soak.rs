//! A soak run: an echo server under random connects, drops and aborts, for a set time.
//!
//! `cargo run --release --example soak -- [SECONDS]` (default 30). Not part of the test run.
//!
//! One runtime runs both the echo server and the load, on loopback only. The load keeps up to
//! 64 client tasks busy; each picks at random: a full echo round trip of a random size checked
//! byte for byte; a read abandoned mid-flight (dropped by a short timeout); a connection
//! dropped right after connecting, or with data unsent; a client task aborted at a random
//! moment. Server-side tasks are aborted at random too. Every second the process's resident
//! memory (RSS), descriptor count and the runtime's op slots are sampled.
//!
//! At the end the runtime is shut down and dropped, and the program prints RSS and descriptors
//! at the start and the end. It exits non-zero if descriptors leaked (more open than at the
//! start), if op slots were left after shutdown, if shutdown left ops to the kernel, or if a
//! round trip came back wrong.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use coring::buf::IoBuf;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;
use coring::task::JoinHandle;

const CLIENTS: usize = 64;

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Counts {
    round_trips: Cell<u64>,
    abandoned_reads: Cell<u64>,
    early_drops: Cell<u64>,
    client_aborts: Cell<u64>,
    server_aborts: Cell<u64>,
    errors: Cell<u64>,
    corrupt: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

async fn echo(stream: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (res, b) = stream.read(buf).await;
        let n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (res, b) = stream.write_all(b.slice(..n)).await;
        buf = b.into_inner();
        if res.is_err() {
            return;
        }
    }
}

/// One client's life: connect, then one of the behaviours at random.
async fn client(addr: std::net::SocketAddr, seed: u64, counts: Rc<Counts>) {
    let mut rng = Rng(seed | 1);
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(_) => return bump(&counts.errors),
    };
    match rng.below(10) {
        // Dropped at once, or with part of a message unsent.
        0 => bump(&counts.early_drops),
        1 => {
            let _ = stream.write_all(vec![1u8; 1000]).await;
            bump(&counts.early_drops);
        }
        // A read abandoned mid-flight.
        2 => {
            let read = stream.read(vec![0u8; 4096]);
            let _ = coring::time::timeout(Duration::from_micros(rng.below(2000)), read).await;
            bump(&counts.abandoned_reads);
        }
        // Round trips of random sizes, checked.
        _ => {
            for _ in 0..1 + rng.below(8) {
                let len = 1 + rng.below(256 * 1024) as usize;
                let salt = rng.next() as u8;
                let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(salt)).collect();
                let (res, msg) = stream.write_all(msg).await;
                if res.is_err() {
                    return bump(&counts.errors); // the server side was aborted
                }
                let (res, back) = stream.read_exact(vec![0u8; len]).await;
                match res {
                    Ok(()) if back == msg => bump(&counts.round_trips),
                    Ok(()) => return bump(&counts.corrupt),
                    Err(_) => return bump(&counts.errors),
                }
            }
        }
    }
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("usage: soak [SECONDS]"))
        .unwrap_or(30);
    let (fds_start, rss_start) = (open_fds(), rss_kib());
    let rt = Runtime::new().expect("runtime");
    println!(
        "soak: {secs} s on {}, {CLIENTS} clients; start: RSS {rss_start} KiB, {fds_start} fds",
        rt.driver_kind()
    );
    let counts = Rc::new(Counts::default());
    let c = counts.clone();
    let samples = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let server_tasks: Rc<std::cell::RefCell<Vec<JoinHandle<()>>>> = Rc::default();
        let st = server_tasks.clone();
        let server = coring::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let mut tasks = st.borrow_mut();
                        tasks.retain(|t| !t.is_finished());
                        tasks.push(coring::spawn(echo(stream)));
                    }
                    Err(e) => eprintln!("accept: {e}"),
                }
            }
        });
        let mut rng = Rng(0x5eed);
        let mut clients: Vec<JoinHandle<()>> = Vec::new();
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let mut next_sample = start;
        let mut samples = Vec::new();
        while Instant::now() < end {
            clients.retain(|t| !t.is_finished());
            while clients.len() < CLIENTS {
                clients.push(coring::spawn(client(addr, rng.next(), c.clone())));
            }
            match rng.below(20) {
                0 => {
                    let i = rng.below(clients.len() as u64) as usize;
                    clients[i].abort();
                    bump(&c.client_aborts);
                }
                1 => {
                    let tasks = server_tasks.borrow();
                    if !tasks.is_empty() {
                        tasks[rng.below(tasks.len() as u64) as usize].abort();
                        bump(&c.server_aborts);
                    }
                }
                _ => {}
            }
            coring::time::sleep(Duration::from_micros(200)).await;
            if Instant::now() >= next_sample {
                samples.push((start.elapsed().as_secs(), rss_kib(), open_fds()));
                next_sample += Duration::from_secs(1);
            }
        }
        for t in &clients {
            t.abort();
        }
        for t in clients {
            let _ = t.await;
        }
        server.abort();
        for t in server_tasks.borrow().iter() {
            t.abort();
        }
        samples
    });
    let stuck = rt.shutdown();
    let slots = rt.op_slots();
    drop(rt);
    // Closes submitted at the very end complete with the runtime's drop; give stragglers of
    // other threads (none here) a moment anyway.
    std::thread::sleep(Duration::from_millis(100));
    let (fds_end, rss_end) = (open_fds(), rss_kib());
    for (t, rss, fds) in samples.iter().step_by((samples.len() / 10).max(1)) {
        println!("  t={t:>4} s: RSS {rss} KiB, {fds} fds");
    }
    println!(
        "soak: {} round trips, {} abandoned reads, {} early drops, {} client aborts, {} \
         server aborts, {} errors (expected from aborts), {} corrupt",
        counts.round_trips.get(),
        counts.abandoned_reads.get(),
        counts.early_drops.get(),
        counts.client_aborts.get(),
        counts.server_aborts.get(),
        counts.errors.get(),
        counts.corrupt.get()
    );
    println!(
        "soak: end: RSS {rss_end} KiB ({:+} KiB), {fds_end} fds ({:+}); op slots after \
         shutdown {slots}; ops left to the kernel {stuck}",
        rss_end as i64 - rss_start as i64,
        fds_end as i64 - fds_start as i64
    );
    let mut failed = false;
    if fds_end > fds_start {
        eprintln!("soak: FAILED: {} descriptors leaked", fds_end - fds_start);
        failed = true;
    }
    if slots != 0 || stuck != 0 {
        eprintln!("soak: FAILED: {slots} op slots left, {stuck} ops stuck at shutdown");
        failed = true;
    }
    if counts.corrupt.get() > 0 {
        eprintln!(
            "soak: FAILED: {} round trips came back wrong",
            counts.corrupt.get()
        );
        failed = true;
    }
    if counts.round_trips.get() == 0 {
        eprintln!("soak: FAILED: no round trip completed");
        failed = true;
    }
    std::process::exit(i32::from(failed));
}
