//! The tokio bridge (`Builder::tokio_bridge`, `#[coring::test(tokio_bridge = true)]`): crates
//! built on tokio's reactor, used inside coring tasks. `tokio::time` and `tokio::net`, tower's
//! timeout layer, `tokio::spawn`, on every worker; and a real Redis client crate (`redis` with
//! `tokio-comp`) against a real `redis-server`, and `tokio-postgres` against a PostgreSQL
//! server, each started by the test on loopback. Without the bridge the same tokio types fail
//! as they do outside any tokio runtime.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{watchdog, within};
use coring::runtime::Runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(10);

fn bridged(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .tokio_bridge(true)
        .build()
        .unwrap()
}

#[test]
fn tokio_time_inside_coring_tasks_on_every_worker() {
    watchdog(30, || {
        let rt = bridged(2);
        rt.block_on(async {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
            let timed_out = tokio::time::timeout(
                Duration::from_millis(10),
                coring::time::sleep(Duration::from_secs(5)),
            )
            .await;
            assert!(
                timed_out.is_err(),
                "tokio's timeout fires around a coring future"
            );
            // The same on worker 1, which enters the bridge too.
            let on_1 = coring::spawn_on(1, async {
                let mut ticks = tokio::time::interval(Duration::from_millis(2));
                for _ in 0..5 {
                    ticks.tick().await;
                }
                coring::runtime::worker_index()
            });
            assert_eq!(within(LIMIT, "worker 1", on_1).await.unwrap(), Some(1));
        });
    });
}

#[test]
fn tokio_net_talks_to_coring_sockets() {
    watchdog(30, || {
        let rt = bridged(1);
        rt.block_on(async {
            // A coring server, a tokio client, in the same coring task set.
            let listener = coring::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                coring::io::copy(&stream, &stream).await.unwrap()
            });
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            client.write_all(b"through both runtimes").await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            within(LIMIT, "tokio read", client.read_to_end(&mut back))
                .await
                .unwrap();
            assert_eq!(back, b"through both runtimes");
            assert_eq!(server.await.unwrap(), 21);

            // A tokio listener, a coring client.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accept = coring::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                buf
            });
            let client = coring::net::TcpStream::connect(addr).await.unwrap();
            let (res, _) = client.write_all(b"hello").await;
            res.unwrap();
            assert_eq!(
                &within(LIMIT, "tokio accept", accept).await.unwrap(),
                b"hello"
            );
        });
    });
}

#[test]
fn tokio_spawn_from_a_coring_task_runs_on_the_bridge_thread() {
    watchdog(30, || {
        let rt = bridged(1);
        rt.block_on(async {
            let name = tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                std::thread::current().name().map(String::from)
            });
            let name = within(LIMIT, "tokio task", name).await.unwrap();
            assert_eq!(name.as_deref(), Some("coring-tokio-bridge"));
        });
    });
}

#[test]
fn a_tower_timeout_layer_bounds_a_slow_service() {
    use tower::{Service, ServiceBuilder, ServiceExt};
    watchdog(30, || {
        let rt = bridged(1);
        rt.block_on(async {
            let mut service = ServiceBuilder::new()
                .timeout(Duration::from_millis(30))
                .service_fn(|delay_ms: u64| async move {
                    coring::time::sleep(Duration::from_millis(delay_ms)).await;
                    Ok::<_, std::convert::Infallible>(delay_ms)
                });
            let fast = service.ready().await.unwrap().call(1).await;
            assert_eq!(fast.unwrap(), 1);
            let start = Instant::now();
            let slow = service.ready().await.unwrap().call(5_000).await;
            let err = slow.expect_err("the layer times the slow call out");
            assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
        });
    });
}

#[coring::test(tokio_bridge = true, worker_threads = 2)]
async fn the_test_macro_enters_the_bridge() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[test]
fn without_the_bridge_tokio_reactor_types_fail_as_outside_tokio() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await })
        }));
        let payload = caught.expect_err("tokio's timer needs a tokio runtime");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains("no reactor running"), "{message}");
    });
}

/// A `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    addr: SocketAddr,
}

impl RedisServer {
    /// Starts one, or returns `None` (with the notice) where `redis-server` is not installed
    /// and `.ci/run` does not require it.
    fn start() -> Option<RedisServer> {
        let binary = common::require_tool("redis-server", "redis-server")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let up = common::wait_until(LIMIT, || std::net::TcpStream::connect(addr).is_ok());
        assert!(up, "redis-server did not listen on {addr}");
        Some(RedisServer { child, addr })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_redis_crate_against_redis_server_from_coring_tasks() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = format!("redis://{}/", server.addr);
    watchdog(60, move || {
        let rt = bridged(2);
        rt.block_on(async move {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = within(
                LIMIT,
                "redis connect",
                client.get_multiplexed_async_connection(),
            )
            .await
            .unwrap();
            for i in 0..200u32 {
                let () = redis::cmd("SET")
                    .arg(format!("key{i}"))
                    .arg(i)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
            // The multiplexed connection is `Clone + Send`: used from worker 1 too.
            let mut other = conn.clone();
            let sum = coring::spawn_on(1, async move {
                let mut sum = 0u64;
                for i in 0..200u32 {
                    let v: u64 = redis::cmd("GET")
                        .arg(format!("key{i}"))
                        .query_async(&mut other)
                        .await
                        .unwrap();
                    sum += v;
                }
                sum
            });
            assert_eq!(within(LIMIT, "worker 1 GETs", sum).await.unwrap(), 19_900);
            let n: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
            assert_eq!(n, 200);
        });
    });
}

/// A PostgreSQL server in a fresh temporary cluster on a free loopback port (trust auth, no
/// fsync), stopped and removed on drop. Run as the `postgres` user when the test runs as root
/// (the server refuses root).
struct PostgresServer {
    child: Child,
    port: u16,
    dir: common::TempDir,
}

impl PostgresServer {
    /// Starts one, or returns `None` (with the notice) where PostgreSQL is not installed and
    /// `.ci/run` does not require it.
    fn start() -> Option<PostgresServer> {
        // Debian installs the server binaries outside PATH, one directory per major version.
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|bin| bin.join("postgres").is_file())
            });
        let Some(bin) = bin else {
            common::report_missing("postgres (in /usr/lib/postgresql/*/bin)", "postgresql");
            return None;
        };
        let dir = common::TempDir::new();
        let data = dir.path().join("data");
        // SAFETY: geteuid takes no arguments and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let (uid, gid) = if as_postgres {
            postgres_user().expect("the postgresql package creates a `postgres` user")
        } else {
            // SAFETY: as above, for getuid/getgid.
            unsafe { (libc::getuid(), libc::getgid()) }
        };
        chown(dir.path(), uid, gid);
        let command = |program: &str| {
            let mut c = Command::new(bin.join(program));
            if as_postgres {
                std::os::unix::process::CommandExt::uid(&mut c, uid);
                std::os::unix::process::CommandExt::gid(&mut c, gid);
            }
            c.current_dir(dir.path());
            c
        };
        let init = command("initdb")
            .args(["-D", data.to_str().unwrap(), "-U", "coring", "--auth=trust"])
            .args(["-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command("postgres")
            .args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
            .args(["-h", "127.0.0.1", "-k", dir.path().to_str().unwrap()])
            .args(["-F", "-c", "max_connections=20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        // Accepting connections, not only listening (it answers "starting up" before).
        let ready = common::wait_until(Duration::from_secs(30), || {
            Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let server = PostgresServer { child, port, dir };
        assert!(ready, "postgres did not accept connections on port {port}");
        Some(server)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's "fast shutdown".
        // SAFETY: kill takes no pointers; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let stopped = common::wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = &self.dir; // removed after the server is gone
    }
}

fn postgres_user() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: getpwnam reads a NUL-terminated name and returns null or a pointer to a static
    // record, read at once (no other thread of this test looks users up).
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    // SAFETY: non-null, so it points to a valid passwd record.
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &std::path::Path, uid: u32, gid: u32) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: chown reads a NUL-terminated path.
    let rc = unsafe { libc::chown(path.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "chown: {}", std::io::Error::last_os_error());
}

#[test]
fn tokio_postgres_against_a_postgresql_server_the_test_starts() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let config = format!(
        "host=127.0.0.1 port={} user=coring dbname=postgres",
        server.port
    );
    watchdog(120, move || {
        let rt = bridged(2);
        rt.block_on(async move {
            let (client, connection) = within(
                LIMIT,
                "postgres connect",
                tokio_postgres::connect(&config, tokio_postgres::NoTls),
            )
            .await
            .unwrap();
            // The connection future drives the socket; tokio_postgres expects it spawned.
            let driver = coring::spawn(connection);
            client
                .batch_execute("CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL)")
                .await
                .unwrap();
            let insert = client
                .prepare("INSERT INTO items (id, name) VALUES ($1, $2)")
                .await
                .unwrap();
            for id in 0..100i32 {
                let name = format!("item {id}");
                client.execute(&insert, &[&id, &name]).await.unwrap();
            }
            // A second connection, made and used on worker 1.
            let config_1 = config.clone();
            let count = coring::runtime::spawn_on_with(1, move || async move {
                let (client, connection) =
                    tokio_postgres::connect(&config_1, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                let driver = coring::spawn(connection);
                let row = client
                    .query_one("SELECT count(*), sum(id) FROM items", &[])
                    .await
                    .unwrap();
                let result: (i64, i64) = (row.get(0), row.get(1));
                drop(client);
                driver.await.unwrap().unwrap();
                result
            });
            let (rows, sum) = within(LIMIT, "worker 1 query", count).await.unwrap();
            assert_eq!((rows, sum), (100, 4950));
            let name: String = client
                .query_one("SELECT name FROM items WHERE id = $1", &[&42i32])
                .await
                .unwrap()
                .get(0);
            assert_eq!(name, "item 42");
            drop(client);
            within(LIMIT, "connection end", driver)
                .await
                .unwrap()
                .unwrap();
        });
    });
}
