//! A one-thread TCP proxy for `benches/proxy-bench.sh`: `proxy MODE LISTEN UPSTREAM`.
//!
//! Each accepted connection is joined to a new connection to UPSTREAM (TCP_NODELAY on both),
//! and bytes are moved both ways until either side ends. Prints `listening on ADDR` when ready.
//!
//! MODE:
//! - `coring-copy`: `coring::io::copy` in each direction (two copies joined in one task).
//! - `coring-loop`: the obvious hand-written loop in each direction: read up to 16 KiB into an
//!   owned buffer, `write_all` it to the other side.
//! - `tokio-bidi`: tokio current_thread, `tokio::io::copy_bidirectional`.
//!
//! The process counts its io-wq threads (`iou-wrk-*`) once a second and prints the highest
//! count on stderr (`iou-wrk peak N`) when that peak grows.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const MODES: &[&str] = &["coring-copy", "coring-loop", "tokio-bidi"];

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 || !MODES.contains(&args[0].as_str()) {
        eprintln!(
            "usage: proxy MODE LISTEN UPSTREAM\n  MODE: {}",
            MODES.join(", ")
        );
        std::process::exit(2);
    }
    let (listen, upstream) = (args[1].clone(), args[2].clone());
    std::thread::spawn(watch_io_wq);
    match args[0].as_str() {
        "tokio-bidi" => tokio_proxy(&listen, upstream),
        mode => coring_proxy(&listen, upstream, mode == "coring-copy"),
    }
}

/// Prints the highest number of `iou-wrk` threads seen, whenever it grows.
fn watch_io_wq() {
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    loop {
        let now = coring_bench::io_wq_threads();
        if now > PEAK.fetch_max(now, Ordering::Relaxed) {
            eprintln!("iou-wrk peak {now}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn coring_proxy(listen: &str, upstream: String, splice_copy: bool) -> io::Result<()> {
    use coring::net::{TcpListener, TcpStream};

    async fn pump(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            let (res, b) = from.read(buf).await;
            let n = res?;
            if n == 0 {
                let _ = to.shutdown(std::net::Shutdown::Write);
                return Ok(total);
            }
            let (res, b) = to.write_all(coring::buf::IoBuf::slice(b, ..n)).await;
            buf = b.into_inner();
            res?;
            total += n as u64;
        }
    }

    let rt = coring::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            coring::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if splice_copy {
                    let _ = futures_lite::future::zip(
                        async {
                            let r = coring::io::copy(&client, &server).await;
                            let _ = server.shutdown(std::net::Shutdown::Write);
                            r
                        },
                        async {
                            let r = coring::io::copy(&server, &client).await;
                            let _ = client.shutdown(std::net::Shutdown::Write);
                            r
                        },
                    )
                    .await;
                } else {
                    let _ =
                        futures_lite::future::zip(pump(&client, &server), pump(&server, &client))
                            .await;
                }
            });
        }
    })
}

fn tokio_proxy(listen: &str, upstream: String) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (mut client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream.as_str()).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    })
}
