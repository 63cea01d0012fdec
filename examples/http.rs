//! A hello-world HTTP/1.1 server on coring with hyper 1.x (keep-alive on):
//! `cargo run --release --features hyper --example http -- [ADDR] [--buf-ring] [--register]`
//! (default 127.0.0.1:8080). With `--buf-ring`, connections read through one shared provided
//! buffer ring ([`Compat::with_buf_ring`](coring::compat::Compat::with_buf_ring)); with
//! `--register`, each accepted stream is put in the ring's file table first
//! ([`TcpStream::register`](coring::net::TcpStream::register)), so its ops skip the kernel's
//! per-op descriptor lookup. `benches/http-bench.sh` measures every variant against tokio.
//!
//! hyper runs unchanged on coring through three adapters: [`Compat`](coring::compat::Compat)
//! (`stream.compat()`) as hyper's `Read`/`Write`, [`CoringTimer`] for hyper's timeouts, and
//! `coring::hyper::CoringExecutor` for the tasks hyper spawns (HTTP/2, clients). One thread;
//! `examples/http_tokio.rs` is the same service on tokio's current-thread runtime.

use std::convert::Infallible;

use coring::buf::BufRing;
use coring::compat::{Compat, CompatIo};
use coring::hyper::CoringTimer;
use coring::net::TcpListener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

/// The service: the same in `examples/http_tokio.rs`.
async fn hello(_request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::from("Hello, World!")))
}

/// Serves HTTP/1.1 on every connection `listener` accepts, one task per connection.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    serve_with(listener, None, false).await
}

/// [`serve`], reading through `ring` when given, and registering each stream in the ring's
/// file table when `register` is set.
pub async fn serve_with(
    listener: TcpListener,
    ring: Option<BufRing>,
    register: bool,
) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let ring = ring.clone();
        coring::spawn(async move {
            if register {
                if let Err(e) = stream.register().await {
                    eprintln!("http: register: {e}"); // served by its descriptor instead
                }
            }
            let io = match &ring {
                Some(ring) => Compat::with_buf_ring(stream, ring),
                None => stream.compat(),
            };
            let served = http1::Builder::new()
                .timer(CoringTimer)
                .serve_connection(io, service_fn(hello))
                .await;
            if let Err(e) = served {
                if !e.is_incomplete_message() {
                    eprintln!("http: connection error: {e}");
                }
            }
        });
    }
}

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut buf_ring = false;
    let mut register = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--buf-ring" => buf_ring = true,
            "--register" => register = true,
            other => addr = other.to_string(),
        }
    }
    coring::runtime::Runtime::new()?.block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("http (coring + hyper) on http://{}", listener.local_addr()?);
        let ring = if buf_ring {
            Some(BufRing::new(1024, 16 * 1024)?)
        } else {
            None
        };
        serve_with(listener, ring, register).await
    })
}
