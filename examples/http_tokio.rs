//! The service of `examples/http.rs` on tokio's current-thread runtime, for comparison:
//! `cargo run --release --features tokio-example --example http_tokio -- [ADDR]`
//! (default 127.0.0.1:8080). The usual tokio setup: hyper-util's `TokioIo` and `TokioTimer`.

use std::convert::Infallible;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// The service: the same in `examples/http.rs`.
async fn hello(_request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::from("Hello, World!")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(addr.as_str()).await?;
    println!("http (tokio + hyper) on http://{}", listener.local_addr()?);
    loop {
        let (stream, _peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::task::spawn(async move {
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
            if let Err(e) = served {
                if !e.is_incomplete_message() {
                    eprintln!("http_tokio: connection error: {e}");
                }
            }
        });
    }
}
