//! An echo server: `cargo run --release --example echo -- [ADDR]` (default 127.0.0.1:8080).
//!
//! Each connection reads up to 4096 bytes and writes all of them back, with TCP_NODELAY on.

use coring::buf::IoBuf;

#[coring::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = coring::net::TcpListener::bind(addr.as_str()).await?;
    println!("echo server listening on {}", listener.local_addr()?);
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
