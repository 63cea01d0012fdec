//! hyper 1.x on coring: a server and a client in one runtime over `Compat<TcpStream>`
//! (keep-alive, request and response bodies), the executor running hyper's client
//! connection, and the timer closing a connection whose headers never finish; HTTP/2 with
//! concurrent streams on one connection (hyper's client, and `curl --http2-prior-knowledge`).

#![cfg(feature = "hyper")]

mod common;

use std::time::{Duration, Instant};

use common::watchdog;
use coring::compat::CompatIo;
use coring::hyper::{CoringExecutor, CoringTimer};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;
use hyper::body::{Body, Incoming};
use hyper::rt::Executor;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

/// Echoes the request body, prefixed with the path.
async fn echo(request: Request<Incoming>) -> Result<Response<String>, hyper::Error> {
    let path = request.uri().path().to_string();
    let body = collect(request.into_body()).await?;
    Ok(Response::new(format!(
        "{path}:{}",
        String::from_utf8_lossy(&body)
    )))
}

async fn collect(mut body: Incoming) -> Result<Vec<u8>, hyper::Error> {
    let mut out = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

async fn server(listener: TcpListener) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        coring::spawn(async move {
            let _ = http1::Builder::new()
                .timer(CoringTimer)
                .header_read_timeout(Duration::from_millis(200))
                .serve_connection(stream.compat(), service_fn(echo))
                .await;
        });
    }
}

#[test]
fn client_and_server_on_coring_with_keep_alive() {
    watchdog(60, || {
        Runtime::new().unwrap().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(server(listener));

            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(stream.compat())
                .await
                .unwrap();
            CoringExecutor.execute(async move {
                let _ = connection.await;
            });
            // One connection, many requests (keep-alive), bodies small and large.
            for i in 0..50usize {
                let body = "x".repeat(i * 1000);
                let request = Request::post(format!("/req{i}"))
                    .header("host", "coring")
                    .body(body.clone())
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert!(response.status().is_success());
                let got = collect(response.into_body()).await.unwrap();
                assert_eq!(String::from_utf8(got).unwrap(), format!("/req{i}:{body}"));
            }
            server.abort();
        })
    })
}

#[test]
fn header_read_timeout_fires_through_the_coring_timer() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(server(listener));
            let stream = TcpStream::connect(addr).await.unwrap();
            let (res, _) = stream
                .write_all(&b"GET / HTTP/1.1\r\nhost: x\r\n"[..])
                .await;
            res.unwrap();
            let start = Instant::now();
            // The server gives up on the unfinished headers and closes (maybe with a 408).
            loop {
                let (res, _) = stream.read(vec![0u8; 1024]).await;
                if res.map_or(true, |n| n == 0) {
                    break;
                }
            }
            let waited = start.elapsed();
            assert!(
                waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
                "closed after {waited:?}, expected about 200 ms"
            );
            server.abort();
        })
    })
}

#[test]
fn timer_sleeps_and_resets() {
    use hyper::rt::Timer;
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let start = Instant::now();
            let mut sleep = CoringTimer.sleep(Duration::from_secs(60));
            CoringTimer.reset(&mut sleep, Instant::now() + Duration::from_millis(10));
            sleep.as_mut().await;
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(10) && waited < Duration::from_secs(5));
        })
    })
}

#[test]
fn hyper_sleep_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    use hyper::rt::Timer;
    Runtime::new().unwrap().block_on(async {
        let sleep = CoringTimer.sleep(Duration::from_millis(1));
        assert_send_sync(&sleep);
    });
}

/// Serves HTTP/2 (h2c, prior knowledge) with `echo` on every connection.
async fn h2_server(listener: TcpListener) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        coring::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(CoringExecutor)
                .timer(CoringTimer)
                .serve_connection(stream.compat(), service_fn(echo))
                .await;
        });
    }
}

#[test]
fn http2_streams_run_concurrently_on_one_connection() {
    watchdog(60, || {
        Runtime::new().unwrap().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(h2_server(listener));
            let stream = TcpStream::connect(addr).await.unwrap();
            let (sender, connection) =
                hyper::client::conn::http2::handshake(CoringExecutor, stream.compat())
                    .await
                    .unwrap();
            CoringExecutor.execute(async move {
                let _ = connection.await;
            });
            // 20 requests in flight at once on the one connection.
            let requests: Vec<_> = (0..20usize)
                .map(|i| {
                    let mut sender = sender.clone();
                    coring::spawn(async move {
                        let body = "y".repeat(i * 500);
                        let request = Request::post(format!("http://coring/s{i}"))
                            .body(body.clone())
                            .unwrap();
                        let response = sender.send_request(request).await.unwrap();
                        assert_eq!(response.version(), hyper::Version::HTTP_2);
                        let got = collect(response.into_body()).await.unwrap();
                        assert_eq!(String::from_utf8(got).unwrap(), format!("/s{i}:{body}"));
                    })
                })
                .collect();
            for r in requests {
                common::within(Duration::from_secs(10), "h2 request", r)
                    .await
                    .unwrap();
            }
            server.abort();
        })
    })
}

#[test]
fn curl_speaks_http2_to_a_coring_server() {
    let Some(curl) = common::require_tool("curl", "curl") else {
        return;
    };
    watchdog(60, move || {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            Runtime::new().unwrap().block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                h2_server(listener).await;
            })
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let out = std::process::Command::new(curl)
            .args([
                "--silent",
                "--show-error",
                "--http2-prior-knowledge",
                "--max-time",
                "10",
            ])
            .args(["--data", "over h2", "--write-out", " %{http_version}"])
            .arg(format!("http://{addr}/curl"))
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/curl:over h2 2");
    })
}
