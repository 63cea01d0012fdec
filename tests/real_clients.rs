//! Real, external clients against the examples' server code: `nc` and `socat` against
//! `examples/echo.rs`, `redis-cli` and `redis-benchmark` against `examples/kv.rs`, and (with
//! the `hyper` feature) `curl` against `examples/http.rs`.
//!
//! The examples' `serve` functions are compiled into this test (`#[path]` modules), so the
//! code under test is exactly the examples', without building them separately; each server
//! runs on its own thread and runtime, on a free port. The clients are the distribution's
//! binaries. A missing binary never passes silently: under `.ci/run`, which installs them all
//! (`.ci/packages`) and sets `CORING_REQUIRE_CLIENTS=1`, it fails the test with the apt package
//! to install; elsewhere (a fresh machine with only Rust) the test does not run and prints a
//! notice that bypasses the harness's capture. Every client runs under a deadline and is
//! killed past it.

mod common;

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use coring::net::TcpListener;
use coring::runtime::Runtime;

#[allow(dead_code)]
#[path = "../examples/echo.rs"]
mod echo;

#[allow(dead_code)]
#[path = "../examples/kv.rs"]
mod kv;

#[cfg(feature = "hyper")]
#[allow(dead_code)]
#[path = "../examples/http.rs"]
mod http;

/// Starts `serve` on a listener bound to a free loopback port, on its own thread and
/// runtime (left running until the test process exits); returns the address.
fn start<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let runtime = Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("local_addr")).unwrap();
            serve(listener).await
        })
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the server did not start")
}

/// Runs `command` with `input` on its standard input; kills it and fails after `limit`.
fn run(command: &mut Command, input: Vec<u8>, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input); // dropping stdin then closes it: end of input
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Deterministic, incompressible test data.
fn data(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn nc_against_the_echo_server() {
    let Some(nc) = common::require_tool("nc", "netcat-openbsd") else {
        return;
    };
    let addr = start(echo::serve);
    let input: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i} from netcat\n").into_bytes())
        .collect();
    // -N: shut down the socket's write side at end of input (netcat-openbsd), so the server
    // sees end of stream after echoing everything, closes, and nc exits.
    let out = run(
        Command::new(nc)
            .arg("-N")
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string()),
        input.clone(),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "nc failed ({}); stderr: {} (is it netcat-openbsd?)",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(out.stdout.len(), input.len(), "echoed byte count");
    assert!(out.stdout == input, "nc got different bytes back");
}

#[test]
fn socat_moves_megabytes_through_the_echo_server() {
    let Some(socat) = common::require_tool("socat", "socat") else {
        return;
    };
    let addr = start(echo::serve);
    let input = data(4 << 20, 0x5eed);
    let out = run(
        Command::new(socat)
            .args(["-t", "10", "-T", "30", "-b", "65536", "-"])
            .arg(format!("TCP:{addr}")),
        input.clone(),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "socat failed ({}); stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(out.stdout.len(), input.len(), "echoed byte count");
    assert!(out.stdout == input, "socat got different bytes back");
}

#[test]
fn redis_cli_commands_against_kv() {
    let Some(cli) = common::require_tool("redis-cli", "redis-tools") else {
        return;
    };
    let addr = start(kv::serve);
    let port = addr.port().to_string();
    let ask = |args: &[&str]| -> String {
        let out = run(
            Command::new(&cli)
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(args),
            Vec::new(),
            Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim_end().to_string()
    };
    assert_eq!(ask(&["PING"]), "PONG");
    assert_eq!(ask(&["PING", "hi there"]), "hi there");
    assert_eq!(ask(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(ask(&["GET", "greeting"]), "hello world");
    assert_eq!(ask(&["INCR", "visits"]), "1");
    assert_eq!(ask(&["INCR", "visits"]), "2");
    assert_eq!(
        ask(&["INCR", "greeting"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(ask(&["EXISTS", "greeting", "visits", "nope"]), "2");
    assert_eq!(ask(&["DEL", "greeting", "nope"]), "1");
    assert_eq!(ask(&["GET", "greeting"]), "");
    assert_eq!(ask(&["DBSIZE"]), "1");
    assert!(ask(&["NOSUCHCOMMAND"]).starts_with("ERR unknown command"));
}

#[test]
fn redis_cli_pipe_mode_is_pipelined() {
    let Some(cli) = common::require_tool("redis-cli", "redis-tools") else {
        return;
    };
    let addr = start(kv::serve);
    let port = addr.port().to_string();
    // 20000 requests written back to back, RESP arrays and inline commands mixed.
    let mut input = Vec::new();
    for i in 0..10_000 {
        let (key, value) = (format!("key:{i}"), format!("value-{i}"));
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
        input.extend_from_slice(b"INCR counter\r\n");
    }
    let out = run(
        Command::new(&cli).args(["-h", "127.0.0.1", "-p", &port, "--pipe"]),
        input,
        Duration::from_secs(60),
    );
    let report = text(&out.stdout);
    assert!(out.status.success(), "redis-cli --pipe: {report}");
    assert!(
        report.contains("errors: 0, replies: 20000"),
        "redis-cli --pipe reported: {report}"
    );
    let count = run(
        Command::new(&cli).args(["-h", "127.0.0.1", "-p", &port, "GET", "counter"]),
        Vec::new(),
        Duration::from_secs(20),
    );
    assert_eq!(text(&count.stdout).trim(), "10000");
}

#[test]
fn redis_benchmark_against_kv() {
    let Some(bench) = common::require_tool("redis-benchmark", "redis-tools") else {
        return;
    };
    let addr = start(kv::serve);
    let port = addr.port().to_string();
    for pipeline in ["1", "16"] {
        let out = run(
            Command::new(&bench).args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "ping,set,get,incr",
                "-n",
                "20000",
                "-P",
                pipeline,
                "-q",
            ]),
            Vec::new(),
            Duration::from_secs(120),
        );
        let report = text(&out.stdout).replace('\r', "\n");
        let errors = text(&out.stderr);
        assert!(
            out.status.success(),
            "redis-benchmark -P {pipeline} failed: {report}\n{errors}"
        );
        for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"] {
            let line = report
                .lines()
                .find(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second"));
            assert!(
                line.is_some(),
                "redis-benchmark -P {pipeline}: no result for {test}:\n{report}"
            );
        }
        let lower = format!("{report}{errors}").to_lowercase();
        assert!(
            !lower.contains("error") && !lower.contains("warning"),
            "redis-benchmark -P {pipeline} reported a problem:\n{report}\n{errors}"
        );
    }
}

#[cfg(feature = "hyper")]
#[test]
fn curl_against_the_http_server_with_keep_alive() {
    let Some(curl) = common::require_tool("curl", "curl") else {
        return;
    };
    let addr = start(http::serve);
    let url = format!("http://{addr}/");
    // Two URLs on one command line: curl reuses the connection when the server keeps it.
    let out = run(
        Command::new(curl).args(["-sS", "-v", "--max-time", "20", &url, &url]),
        Vec::new(),
        Duration::from_secs(30),
    );
    let log = text(&out.stderr);
    assert!(out.status.success(), "curl failed: {log}");
    assert_eq!(text(&out.stdout), "Hello, World!Hello, World!");
    assert!(log.contains("HTTP/1.1 200 OK"), "{log}");
    assert!(
        log.to_lowercase().contains("existing connection"),
        "curl did not reuse the connection (keep-alive):\n{log}"
    );
}
