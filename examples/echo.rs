//! An echo server: `cargo run --release --example echo -- [ADDR] [--threads N]`
//! (default 127.0.0.1:8080, one thread).
//!
//! Each connection reads up to 4096 bytes and writes all of them back, with TCP_NODELAY on.
//! With `--threads N`, every worker binds its own `SO_REUSEPORT` listener on the address and
//! the kernel spreads connections over them.

use coring::buf::IoBuf;
use coring::net::TcpListener;

/// Accepts connections on `listener` forever, one echo task each (`tests/real_clients.rs`
/// runs this against `nc` and `socat`).
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        coring::spawn(async move {
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
        });
    }
}

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| std::io::Error::other("--threads takes a positive number"))?;
            }
            other => addr = other.to_string(),
        }
    }
    let runtime = coring::runtime::Runtime::builder()
        .worker_threads(threads)
        .build()?;
    let results = runtime.block_on_each(move |worker| {
        let addr = addr.clone();
        async move {
            let listener = if threads == 1 {
                TcpListener::bind(addr.as_str()).await?
            } else {
                TcpListener::bind_reuseport(addr.as_str()).await?
            };
            if worker == 0 {
                println!(
                    "echo server listening on {} ({threads} thread{})",
                    listener.local_addr()?,
                    if threads == 1 { "" } else { "s" }
                );
            }
            serve(listener).await
        }
    });
    for result in results {
        result??;
    }
    Ok(())
}
