//! What `coring::io::copy` should do, measured: `copy-bench [--mib 256] [--rounds 5]`.
//!
//! Moves `--mib` MiB between a file in the page cache and a loopback TCP socket, both ways,
//! with coring pinned to CPU 1 and a blocking `std` peer on CPU 0 (a sink that reads and
//! discards, or a source that writes). Two ways to move the bytes:
//! - `splice`: through a pipe with `IORING_OP_SPLICE` (the kernel runs every splice in an
//!   io-wq thread), 64 KiB at a time;
//! - `loop`: the obvious loop, one 64 KiB owned buffer, `IORING_OP_READ` then `write_all`.
//!
//! Prints, per direction and way, the median over rounds (the order alternates) of GB/s and
//! of coring's CPU per MiB (the process's, io-wq threads included, less the peer thread's),
//! and the most io-wq threads seen.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use coring::buf::IoBuf;
use coring::op::rw::{Read as ReadOp, CURRENT_POSITION};
use coring::op::Op;
use coring_bench::{cpu_time, io_wq_threads, pin_to};

const CHUNK: usize = 64 * 1024;

async fn by_splice(from: &impl AsRawFd, to: &impl AsRawFd) -> u64 {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just created and are owned by nobody else.
    let (pr, pw) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut total = 0;
    loop {
        let n = coring::io::splice(from, None, &pw, None, CHUNK as u32)
            .await
            .unwrap();
        if n == 0 {
            return total;
        }
        let mut left = n;
        while left > 0 {
            left -= coring::io::splice(&pr, None, to, None, left as u32)
                .await
                .unwrap();
        }
        total += n as u64;
    }
}

async fn by_loop(from: &impl AsRawFd, to: &impl AsRawFd) -> u64 {
    use coring::op::rw::Write as WriteOp;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let (res, b) = Op::submit(ReadOp::new(from.as_raw_fd(), buf, CURRENT_POSITION)).await;
        let n = res.unwrap();
        if n == 0 {
            return total;
        }
        let mut slice = b.slice(..n);
        let mut written = 0;
        while written < n {
            let (res, s) = Op::submit(WriteOp::new(
                to.as_raw_fd(),
                slice.into_inner().slice(written..n),
                CURRENT_POSITION,
            ))
            .await;
            written += res.unwrap();
            slice = s.into_inner().slice(..n);
        }
        buf = slice.into_inner();
        total += n as u64;
    }
}

/// One run: `(seconds, cpu seconds, io-wq threads)`.
fn run(
    rt: &coring::runtime::Runtime,
    file_to_socket: bool,
    splice: bool,
    path: &str,
    bytes: u64,
) -> (f64, f64, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        pin_to(0);
        let start = cpu_time(libc::RUSAGE_THREAD);
        let mut s = TcpStream::connect(addr).unwrap();
        let mut buf = vec![7u8; CHUNK];
        if file_to_socket {
            while s.read(&mut buf).unwrap() > 0 {}
        } else {
            let mut left = bytes;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                s.write_all(&buf[..n]).unwrap();
                left -= n as u64;
            }
        }
        drop(s);
        cpu_time(libc::RUSAGE_THREAD) - start
    });
    let (sock, _) = listener.accept().unwrap();
    let file = if file_to_socket {
        std::fs::File::open(path).unwrap()
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap()
    };
    let (start, cpu0) = (Instant::now(), cpu_time(libc::RUSAGE_SELF));
    let moved = rt.block_on(async {
        match (file_to_socket, splice) {
            (true, true) => by_splice(&file, &sock).await,
            (true, false) => by_loop(&file, &sock).await,
            (false, true) => by_splice(&sock, &file).await,
            (false, false) => by_loop(&sock, &file).await,
        }
    });
    let threads = io_wq_threads();
    let wall = start.elapsed().as_secs_f64();
    drop(sock);
    let peer_cpu = peer.join().unwrap();
    // The process's CPU, io-wq threads included, less the peer thread's.
    let cpu = (cpu_time(libc::RUSAGE_SELF) - cpu0)
        .saturating_sub(peer_cpu)
        .as_secs_f64();
    assert_eq!(moved, bytes);
    (wall, cpu, threads)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = coring_bench::Args::parse(&[]);
    let mib: u64 = args.parse_or("mib", 256);
    let rounds: usize = args.parse_or("rounds", 5);
    pin_to(1);
    let bytes = mib << 20;
    let path = format!("/var/tmp/copy-bench-{}", std::process::id());
    std::fs::write(&path, vec![5u8; bytes as usize]).unwrap();
    let rt = coring::runtime::Runtime::new().unwrap();
    for file_to_socket in [true, false] {
        let mut results: [(Vec<f64>, Vec<f64>, usize); 2] = Default::default();
        for round in 0..rounds {
            for i in 0..2 {
                let splice = (i + round) % 2 == 0;
                if !file_to_socket {
                    std::fs::write(&path, b"").unwrap();
                }
                let (wall, cpu, threads) = run(&rt, file_to_socket, splice, &path, bytes);
                let r = &mut results[usize::from(splice)];
                r.0.push(bytes as f64 / wall / 1e9);
                r.1.push(cpu * 1e6 / mib as f64);
                r.2 = r.2.max(threads);
            }
        }
        let dir = if file_to_socket {
            "file->socket"
        } else {
            "socket->file"
        };
        for (way, r) in ["loop", "splice"].iter().zip(results) {
            println!(
                "{dir} {way:6} {:.2} GB/s  {:.0} us CPU/MiB  io-wq threads {}",
                median(r.0),
                median(r.1),
                r.2
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}
