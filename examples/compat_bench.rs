//! What [`Compat`] costs: echo throughput through the compat wrapper (tokio's `AsyncRead` /
//! `AsyncWrite`, as a codec or hyper would drive it) against coring's native owned-buffer API.
//!
//! `cargo run --release --features compat --example compat_bench -- [--conns N]
//! [--sizes 128,4096,65536] [--secs S] [--rounds R] [--no-pin]`
//!
//! One process, two threads, each with its own coring runtime, pinned as in the project's
//! benchmark protocol: the server on CPU 1, the load generator on CPU 0. The server listens
//! twice: one listener runs the native echo loop of `examples/echo.rs` (read up to 4096
//! bytes, write them all back), the other the same loop through `Compat<TcpStream>` (read
//! into a 4096-byte slice, write it all, flush). The generator keeps N connections each
//! sending a payload and waiting for all of it to come back, and counts round trips over a
//! window after a warm-up. Native and compat alternate within each round; the table gives
//! medians over the rounds, and the server thread's CPU time (user + system, from
//! `/proc/self/task/TID/stat`) per round trip.

use std::cell::Cell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use coring::buf::IoBuf;
use coring::compat::Compat;
use coring::net::{TcpListener, TcpStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The echo loop of `examples/echo.rs`.
async fn native_echo(stream: TcpStream) {
    let mut buf = vec![0u8; 4096];
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

/// The same loop through the compat wrapper, as poll-based code drives it.
async fn compat_echo(stream: TcpStream) {
    let mut io = Compat::new(stream);
    let mut buf = vec![0u8; 4096];
    loop {
        let read = poll_fn(|cx| {
            let mut dst = ReadBuf::new(&mut buf);
            match Pin::new(&mut io).poll_read(cx, &mut dst) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(dst.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut written = 0;
        while written < n {
            match poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &buf[written..n])).await {
                Ok(k) => written += k,
                Err(_) => return,
            }
        }
        if poll_fn(|cx| Pin::new(&mut io).poll_flush(cx))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn accept_loop(listener: TcpListener, compat: bool) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        if compat {
            coring::spawn(compat_echo(stream));
        } else {
            coring::spawn(native_echo(stream));
        }
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only read and
    // write that local set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            eprintln!("compat_bench: could not pin to CPU {cpu}");
        }
    }
}

fn thread_id() -> i64 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// utime + stime of thread `tid` of this process, in seconds.
fn thread_cpu(tid: i64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12] // utime, stime: fields 14 and 15, counted from `state` (3)
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

struct Sample {
    round_trips_per_sec: f64,
    server_us_per_round_trip: f64,
}

/// One window of load on `addr`.
async fn measure(addr: SocketAddr, conns: usize, size: usize, secs: f64, server: i64) -> Sample {
    let count = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let (count, stop) = (count.clone(), stop.clone());
            coring::spawn(async move {
                let stream = TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut out = vec![7u8; size];
                let mut back = Vec::with_capacity(size);
                while !stop.get() {
                    let (res, b) = stream.write_all(out).await;
                    out = b;
                    res.expect("write");
                    back.clear();
                    let (res, b) = stream.read_exact(back).await;
                    back = b;
                    res.expect("read");
                    count.set(count.get() + 1);
                }
            })
        })
        .collect();
    coring::time::sleep(Duration::from_millis(500)).await; // warm-up
    let (start, cpu_start, count_start) = (Instant::now(), thread_cpu(server), count.get());
    coring::time::sleep(Duration::from_secs_f64(secs)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let trips = (count.get() - count_start) as f64;
    let cpu = thread_cpu(server) - cpu_start;
    stop.set(true);
    for client in clients {
        client.await.expect("client task");
    }
    Sample {
        round_trips_per_sec: trips / elapsed,
        server_us_per_round_trip: cpu * 1e6 / trips.max(1.0),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> std::io::Result<()> {
    let (mut conns, mut sizes, mut secs, mut rounds, mut pin) =
        (64usize, vec![128usize, 4096, 65536], 2.0f64, 3usize, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("option needs a value");
        match arg.as_str() {
            "--conns" => conns = value().parse().expect("--conns N"),
            "--sizes" => {
                sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("--sizes A,B,C"))
                    .collect()
            }
            "--secs" => secs = value().parse().expect("--secs S"),
            "--rounds" => rounds = value().parse().expect("--rounds R"),
            "--no-pin" => pin = false,
            other => panic!("unknown option {other}"),
        }
    }

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if pin {
            pin_to(1);
        }
        let runtime = coring::runtime::Runtime::new().expect("server runtime");
        runtime.block_on(async move {
            let native = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let compat = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addrs = (native.local_addr().unwrap(), compat.local_addr().unwrap());
            tx.send((addrs, thread_id())).unwrap();
            let native = coring::spawn(accept_loop(native, false));
            let _ = accept_loop(compat, true).await;
            drop(native);
        });
    });
    let ((native_addr, compat_addr), server) = rx.recv().expect("server started");
    if pin {
        pin_to(0);
    }
    let runtime = coring::runtime::Runtime::new()?;
    println!("echo through Compat<TcpStream> vs native, {conns} connections, {secs} s windows, median of {rounds} rounds");
    println!(
        "| payload | native rt/s | compat rt/s | compat/native | native server us/rt | compat server us/rt |"
    );
    println!("|---|---|---|---|---|---|");
    runtime.block_on(async {
        for &size in &sizes {
            let (mut native, mut compat) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                native.push(measure(native_addr, conns, size, secs, server).await);
                compat.push(measure(compat_addr, conns, size, secs, server).await);
            }
            let rate = |s: &[Sample]| median(s.iter().map(|s| s.round_trips_per_sec).collect());
            let cpu = |s: &[Sample]| median(s.iter().map(|s| s.server_us_per_round_trip).collect());
            let (n, c) = (rate(&native), rate(&compat));
            println!(
                "| {size} B | {n:.0} | {c:.0} | {:.3} | {:.2} | {:.2} |",
                c / n,
                cpu(&native),
                cpu(&compat)
            );
        }
    });
    Ok(())
}
