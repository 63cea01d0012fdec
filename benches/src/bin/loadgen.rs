//! Echo load generator: one thread, one io_uring.
//!
//! `loadgen --addr A --conns N --size S [--warmup 1] [--duration 5] [--spin] [--single-recv]`
//!
//! Opens N connections; each sends S bytes and waits for S bytes back, over and over. Every
//! loop turn submits everything queued and reaps every completion in one `io_uring_enter`.
//! The ring is `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` with the sockets in fixed-file
//! slots and a registered ring fd; each connection has one multishot recv armed for the whole
//! run (buffers from a provided buffer ring), so a round trip costs the generator one send SQE
//! and no poll re-arm. `--single-recv` uses one buffer-select recv per round trip instead
//! (submitted in the same batch as the send); `--spin` never sleeps in the kernel.
//!
//! On this machine the kernel's loopback TCP work dominates both sides (the sender pays for
//! the receiver's softirq), so the generator costs about 4.2 us per 128 B round trip against
//! 4.5-5 us for the cheapest servers: server throughput above ~230k round trips/s cannot be
//! told apart, which is why the grid reports server CPU per round trip beside throughput.
//!
//! Output, on stdout: `window-start` when the warm-up ends, `window-end` when the window
//! closes (the runner samples the server's CPU at these lines), then one line
//! `result conns=N size=S secs=D rtts=R rps=X p50_us=.. p99_us=.. p999_us=.. max_us=..
//! cpu_us_per_rt=..` (the last is the generator's own CPU).

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use coring_bench::{die, Args};
use hdrhistogram::Histogram;
use io_uring::{cqueue, opcode, squeue, types, IoUring};

const TAG_SEND: u64 = 1 << 32;

struct Conn {
    tx: Box<[u8]>,
    size: usize,
    sent: usize,
    recvd: usize,
    start: Instant,
}

fn connect(addr: &str) -> TcpStream {
    for attempt in 0..100 {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if attempt < 99 => {
                if attempt == 0 {
                    eprintln!("loadgen: connect {addr}: {e}; retrying");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => die(&format!("connect {addr}: {e}")),
        }
    }
    unreachable!()
}

fn main() -> io::Result<()> {
    let args = Args::parse(&["spin", "single-recv"]);
    let spin = args.flag("spin");
    let multishot = !args.flag("single-recv");
    let addr = args.get("addr").unwrap_or("127.0.0.1:8080").to_string();
    let nconns: usize = args.parse_or("conns", 64);
    let size: usize = args.parse_or("size", 128);
    let warmup = args.secs_or("warmup", 1.0);
    let duration = args.secs_or("duration", 5.0);
    if nconns == 0 || size == 0 {
        die("--conns and --size must be positive");
    }

    let streams: Vec<TcpStream> = (0..nconns)
        .map(|_| {
            let s = connect(&addr);
            s.set_nodelay(true).expect("nodelay");
            s
        })
        .collect();
    let fds: Vec<i32> = streams.iter().map(|s| s.as_raw_fd()).collect();

    let entries = (2 * nconns + 8).next_power_of_two().max(64) as u32;
    let mut ring: IoUring<squeue::Entry, cqueue::Entry> = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .setup_cqsize(entries * 2)
        .build(entries)?;
    let (mut submitter, mut sq, mut cq) = ring.split();
    submitter.register_files(&fds)?;
    submitter.register_ring_fd()?;

    let now = Instant::now();
    let mut conns: Vec<Conn> = (0..nconns)
        .map(|i| Conn {
            tx: vec![(i % 251) as u8; size].into_boxed_slice(),
            size,
            sent: 0,
            recvd: 0,
            start: now,
        })
        .collect();

    let send = |c: &Conn, i: usize| {
        opcode::Send::new(
            types::Fixed(i as u32),
            c.tx[c.sent..].as_ptr(),
            (c.tx.len() - c.sent) as u32,
        )
        .build()
        .user_data(TAG_SEND | i as u64)
    };
    let mut bufs = coring_bench::floor::BufRing::new(&submitter, 4096, 1)?;
    // One multishot recv per connection, armed for the whole run: no poll re-arm per round
    // trip. Received bytes are only counted.
    let recv = |i: usize| {
        if multishot {
            opcode::RecvMulti::new(types::Fixed(i as u32), 1).build()
        } else {
            opcode::Recv::new(types::Fixed(i as u32), std::ptr::null_mut(), 4096)
                .buf_group(1)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
        .user_data(i as u64)
    };
    let push = |sq: &mut io_uring::SubmissionQueue<'_>,
                submitter: &io_uring::Submitter<'_>,
                e: squeue::Entry| {
        // SAFETY: entries point into buffers owned by `conns` (or the buffer ring), which
        // outlive the ring's use. A full queue is handed to the kernel first.
        while unsafe { sq.push(&e) }.is_err() {
            sq.sync();
            submitter.submit().expect("submit");
            sq.sync();
        }
    };

    for (i, c) in conns.iter_mut().enumerate() {
        push(&mut sq, &submitter, send(c, i));
        push(&mut sq, &submitter, recv(i));
        c.start = Instant::now();
    }

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let begin = Instant::now();
    let window_start = begin + warmup;
    let window_end = window_start + duration;
    let mut in_window = false;
    let mut rtts: u64 = 0;
    let mut cpu_start = 0u64;
    let ts = types::Timespec::new().sec(1);
    let wait_args = types::SubmitArgs::new().timespec(&ts);
    let mut last_progress = Instant::now();

    loop {
        bufs.publish();
        sq.sync();
        cq.sync();
        let entered = if spin {
            let len = sq.len() as u32;
            // SAFETY: no extra argument is passed; GETEVENTS with min_complete 0 runs the
            // deferred task work without sleeping.
            unsafe { submitter.enter::<libc::sigset_t>(len, 0, 1, None) }
        } else {
            submitter.submit_with_args(1, &wait_args)
        };
        match entered {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        cq.sync();
        let now = Instant::now();
        let mut progressed = false;
        for cqe in &mut cq {
            progressed = true;
            let ud = cqe.user_data();
            let i = (ud & 0xffff_ffff) as usize;
            let res = cqe.result();
            let c = &mut conns[i];
            if res == -libc::ENOBUFS {
                push(&mut sq, &submitter, recv(i));
                continue;
            }
            if res <= 0 {
                if res == 0 {
                    die(&format!("connection {i}: the server closed it"));
                }
                die(&format!(
                    "connection {i}: {}",
                    io::Error::from_raw_os_error(-res)
                ));
            }
            if ud & TAG_SEND != 0 {
                c.sent += res as usize;
                if c.sent < c.tx.len() {
                    push(&mut sq, &submitter, send(c, i));
                    continue;
                }
            } else {
                c.recvd += res as usize;
                if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                    bufs.add(bid);
                }
                if !cqueue::more(cqe.flags()) && (multishot || c.recvd < c.size) {
                    push(&mut sq, &submitter, recv(i));
                }
                if c.recvd < c.size {
                    continue;
                }
            }
            if c.sent == c.tx.len() && c.recvd >= c.size {
                if in_window {
                    rtts += 1;
                    let ns = now.duration_since(c.start).as_nanos() as u64;
                    hist.record(ns.max(1)).ok();
                }
                c.sent = 0;
                c.recvd = 0;
                c.start = now;
                push(&mut sq, &submitter, send(c, i));
                if !multishot {
                    push(&mut sq, &submitter, recv(i));
                }
            }
        }
        if progressed {
            last_progress = now;
        } else if now.duration_since(last_progress) > Duration::from_secs(10) {
            die("no progress for 10 s");
        }
        if !in_window && now >= window_start {
            in_window = true;
            cpu_start = coring_bench::proc_cpu_us(std::process::id())?;
            println!("window-start");
            io::stdout().flush()?;
        } else if in_window && now >= window_end {
            let secs = now.duration_since(window_start).as_secs_f64();
            println!("window-end");
            let cpu = coring_bench::proc_cpu_us(std::process::id())? - cpu_start;
            let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
            println!(
                "result conns={nconns} size={size} secs={secs:.3} rtts={rtts} rps={:.0} \
                 p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} cpu_us_per_rt={:.3}",
                rtts as f64 / secs,
                us(0.5),
                us(0.99),
                us(0.999),
                hist.max() as f64 / 1000.0,
                cpu as f64 / rtts.max(1) as f64,
            );
            io::stdout().flush()?;
            return Ok(());
        }
    }
}
