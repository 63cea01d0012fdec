//! Unix domain sockets on real paths (in a temp dir) and in the abstract namespace: listener,
//! stream and datagram round trips, addresses, failure paths (missing path, refused, in use,
//! invalid paths, truncated datagrams), `from_std`, and descriptor passing with SCM_RIGHTS.
//!
//! Descriptor-count checks live in `unix_fd_leaks.rs`, where nothing else runs beside them.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{run, within, TempDir};
use coring::buf::IoBuf;
use coring::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};
use coring::net::unix::SocketAddr;
use coring::net::{UnixDatagram, UnixListener, UnixStream};

const LIMIT: Duration = Duration::from_secs(5);

/// A fresh abstract name (with its leading NUL), unique in this process.
fn abstract_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("\0coring-test-{}-{tag}-{n}", std::process::id())
}

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded: both descriptors are open and ours alone.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC != 0
}

/// Echoes one message of `len` bytes through any owned-buffer stream.
async fn echo_once<S: AsyncReadRent + AsyncWriteRent>(s: &mut S, len: usize) {
    let (res, buf) = s.read_exact(vec![0u8; len]).await;
    res.unwrap();
    let (res, _) = s.write_all(buf).await;
    res.unwrap();
}

#[test]
fn stream_over_a_filesystem_path() {
    run(10, || async {
        let dir = TempDir::new();
        let path = dir.join("echo.sock");
        let listener = UnixListener::bind(&path).unwrap();
        assert!(path.exists(), "bind creates the socket file");
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );

        let server = coring::spawn(async move {
            let (mut stream, peer) = listener.accept().await.unwrap();
            assert!(peer.is_unnamed(), "the client did not bind: {peer:?}");
            echo_once(&mut stream, 11).await;
            // Then the vectored write and end of stream.
            let (res, _) = stream.writev(vec![b"ab".to_vec(), b"cd".to_vec()]).await;
            assert_eq!(res.unwrap(), 4);
            AsyncWriteRent::shutdown(&mut stream).await.unwrap();
        });

        let client = within(LIMIT, "connect", UnixStream::connect(&path))
            .await
            .unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        assert!(client.local_addr().unwrap().is_unnamed());
        let (res, _) = client.write_all(b"hello world").await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "read_exact", client.read_exact(vec![0u8; 11])).await;
        res.unwrap();
        assert_eq!(buf, b"hello world");
        let (res, buf) = within(LIMIT, "read_exact", client.read_exact(vec![0u8; 4])).await;
        res.unwrap();
        assert_eq!(buf, b"abcd");
        let (res, _) = within(LIMIT, "read eof", client.read(vec![0u8; 4])).await;
        assert_eq!(res.unwrap(), 0, "end of stream after the server's shutdown");
        within(LIMIT, "server", server).await.unwrap();
        client.close().await.unwrap();
    });
}

#[test]
fn stream_in_the_abstract_namespace() {
    run(10, || async {
        let name = abstract_name("stream");
        let listener = UnixListener::bind(&name).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(addr.as_abstract_name(), Some(&name.as_bytes()[1..]));
        assert_eq!(addr.as_pathname(), None);
        assert_eq!(addr, SocketAddr::from_abstract_name(&name[1..]).unwrap());
        assert!(
            !Path::new(&name[1..]).exists(),
            "no file for an abstract name"
        );

        let client = within(LIMIT, "connect", UnixStream::connect(&name))
            .await
            .unwrap();
        let (server, _) = within(LIMIT, "accept", listener.accept()).await.unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr);
        let (res, _) = server.write_all(b"abstract").await;
        res.unwrap();
        let (res, buf) = client.read_exact(vec![0u8; 8]).await;
        res.unwrap();
        assert_eq!(buf, b"abstract");

        // The name is taken while the listener lives, and free again once it is closed.
        assert_eq!(
            UnixListener::bind(&name).unwrap_err().kind(),
            ErrorKind::AddrInUse
        );
        listener.close().await.unwrap();
        UnixListener::bind(&name).expect("the abstract name is released on close");
    });
}

#[test]
fn connect_to_a_missing_path_is_not_found() {
    run(10, || async {
        let dir = TempDir::new();
        let err = UnixStream::connect(dir.join("nobody-here.sock"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = UnixDatagram::unbound()
            .unwrap()
            .connect(dir.join("nobody-here.sock"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        // An abstract name nobody bound is refused (there is no file to miss).
        let err = UnixStream::connect(abstract_name("missing"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn connect_to_a_closed_listener_is_refused_and_bind_over_it_in_use() {
    run(10, || async {
        let dir = TempDir::new();
        let path = dir.join("stale.sock");
        UnixListener::bind(&path).unwrap().close().await.unwrap();
        assert!(path.exists(), "closing does not remove the socket file");
        let err = UnixStream::connect(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let err = UnixListener::bind(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
        let err = UnixDatagram::bind(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    });
}

#[test]
fn invalid_paths_are_rejected() {
    run(10, || async {
        let long = "x".repeat(200);
        for bad in ["", "a\0b", long.as_str()] {
            let err = UnixListener::bind(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
            let err = UnixStream::connect(bad).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
            let sock = UnixDatagram::unbound().unwrap();
            let (res, _) = sock.send_to(b"x", bad).await;
            assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(SocketAddr::from_pathname("\0abstract").is_err());
        assert!(SocketAddr::from_abstract_name([b'n'; 108]).is_err());
        assert!(SocketAddr::from_abstract_name([b'n'; 107]).is_ok());
    });
}

#[test]
fn socket_addr_accessors_and_debug() {
    let p = SocketAddr::from_pathname("/tmp/x.sock").unwrap();
    assert_eq!(p.as_pathname(), Some(Path::new("/tmp/x.sock")));
    assert!(!p.is_unnamed() && p.as_abstract_name().is_none());
    assert_eq!(format!("{p:?}"), "\"/tmp/x.sock\" (pathname)");
    let a = SocketAddr::from_abstract_name(b"svc\0x").unwrap();
    assert_eq!(a.as_abstract_name(), Some(&b"svc\0x"[..]));
    assert_eq!(format!("{a:?}"), "\"svc\\x00x\" (abstract)");
    let (s, _) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = UnixStream::from_std(s);
    let unnamed = s.local_addr().unwrap();
    assert!(unnamed.is_unnamed());
    assert_eq!(format!("{unnamed:?}"), "(unnamed)");
}

#[test]
fn pair_reads_writes_and_shuts_down() {
    run(10, || async {
        let (a, mut b) = UnixStream::pair().unwrap();
        assert!(a.peer_addr().unwrap().is_unnamed());
        let (res, _) = a.write_all(b"12345").await;
        res.unwrap();
        echo_once(&mut b, 5).await;
        let (res, buf) = a.read_exact(vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(buf, b"12345");

        a.shutdown(std::net::Shutdown::Write).unwrap();
        let (res, _) = within(LIMIT, "eof", b.read(vec![0u8; 4])).await;
        assert_eq!(res.unwrap(), 0);
        // read_exact across end of stream fails cleanly.
        let (res, _) = b.read_exact(vec![0u8; 4]).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::UnexpectedEof);
        // The other direction still works.
        let (res, _) = b.write(b"z").await;
        assert_eq!(res.unwrap(), 1);
        let (res, buf) = a.read(vec![0u8; 4]).await;
        assert_eq!(&buf[..res.unwrap()], b"z");
        // Writing after the peer closed is EPIPE, not SIGPIPE.
        drop(a);
        let (res, _) = within(LIMIT, "write to closed", b.write_all(vec![1u8; 1 << 20])).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn datagram_over_paths_with_reply_to_sender() {
    run(10, || async {
        let dir = TempDir::new();
        let server_path = dir.join("server.sock");
        let client_path = dir.join("client.sock");
        let server = UnixDatagram::bind(&server_path).unwrap();
        let client = UnixDatagram::bind(&client_path).unwrap();
        assert_eq!(
            server.local_addr().unwrap().as_pathname(),
            Some(server_path.as_path())
        );

        let (res, _) = client.send_to(b"question", &server_path).await;
        assert_eq!(res.unwrap(), 8);
        let (res, buf) = within(LIMIT, "recv_from", server.recv_from(vec![0u8; 64])).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], b"question");
        assert_eq!(from.as_pathname(), Some(client_path.as_path()));

        let (res, _) = server.send_to_addr(b"answer", &from).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv", client.recv(vec![0u8; 64])).await;
        assert_eq!(&buf[..res.unwrap()], b"answer");
    });
}

#[test]
fn datagram_unbound_sender_is_unnamed_and_cannot_be_replied_to() {
    run(10, || async {
        let name = abstract_name("dgram");
        let server = UnixDatagram::bind(&name).unwrap();
        assert_eq!(
            server.local_addr().unwrap().as_abstract_name(),
            Some(&name.as_bytes()[1..])
        );
        let client = UnixDatagram::unbound().unwrap();
        assert!(client.local_addr().unwrap().is_unnamed());
        let (res, _) = client.send_to(b"anon", &name).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv_from", server.recv_from(vec![0u8; 16])).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed(), "{from:?}");
        let (res, _) = server.send_to_addr(b"x", &from).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
        // Sending to an abstract name nobody holds is refused.
        let (res, _) = client.send_to(b"x", abstract_name("nobody")).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn datagram_connect_send_recv_and_truncation() {
    run(10, || async {
        let dir = TempDir::new();
        let path = dir.join("d.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        assert_eq!(
            client.peer_addr().unwrap_err().kind(),
            ErrorKind::NotConnected
        );
        client.connect(&path).unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );

        let (res, _) = client.send(vec![9u8; 300]).await;
        assert_eq!(res.unwrap(), 300);
        let (res, buf) = within(LIMIT, "recv", server.recv(vec![0u8; 100])).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("300") && msg.contains("100-byte"), "{msg}");
        assert_eq!(buf, vec![9u8; 100]);

        let (res, _) = client.send(vec![5u8; 50]).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv_from", server.recv_from(vec![0u8; 40])).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidData);
        assert_eq!(buf, vec![5u8; 40]);

        let (res, _) = client.send(b"fits").await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv", server.recv(Vec::with_capacity(4))).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf, b"fits");
    });
}

#[test]
fn datagram_pair_and_options() {
    run(10, || async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let (res, _) = a.send(b"p").await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv_from", b.recv_from(vec![0u8; 4])).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], b"p");
        assert!(from.is_unnamed());
        a.set_send_buffer_size(32 * 1024).unwrap();
        assert!(a.send_buffer_size().unwrap() >= 32 * 1024);
        a.set_recv_buffer_size(32 * 1024).unwrap();
        assert!(a.recv_buffer_size().unwrap() >= 32 * 1024);
        b.shutdown(std::net::Shutdown::Read).unwrap();
        a.close().await.unwrap();
    });
}

#[test]
fn from_std_for_every_type() {
    run(10, || async {
        let dir = TempDir::new();
        let path = dir.join("std.sock");
        let listener =
            UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let client = UnixStream::from_std(std::os::unix::net::UnixStream::connect(&path).unwrap());
        let (server, _) = within(LIMIT, "accept", listener.accept()).await.unwrap();
        let (res, _) = client.write_all(b"std").await;
        res.unwrap();
        let (res, buf) = server.read_exact(vec![0u8; 3]).await;
        res.unwrap();
        assert_eq!(buf, b"std");

        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let (a, b) = (UnixDatagram::from_std(a), UnixDatagram::from_std(b));
        let (res, _) = a.send(b"dg").await;
        res.unwrap();
        let (res, buf) = b.recv(vec![0u8; 4]).await;
        assert_eq!(&buf[..res.unwrap()], b"dg");
        let raw = b.as_raw_fd();
        assert_eq!(OwnedFd::from(b).as_raw_fd(), raw);
    });
}

#[test]
fn scm_rights_round_trip_through_a_pipe() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut pipe_read, pipe_write) = pipe();

        let (res, buf) = a.send_with_fds(b"fd".to_vec(), &[pipe_write.as_fd()]).await;
        assert_eq!(res.unwrap(), 2);
        assert_eq!(buf, b"fd");
        drop(pipe_write); // ours is closed; the peer's copy keeps the pipe open

        let (res, buf) = within(LIMIT, "recv_with_fds", b.recv_with_fds(vec![0u8; 8], 4)).await;
        let (n, mut fds) = res.unwrap();
        assert_eq!(&buf[..n], b"fd");
        assert_eq!(fds.len(), 1);
        let received = fds.pop().unwrap();
        assert!(
            is_cloexec(&received),
            "received descriptors are close-on-exec"
        );

        let mut writer = File::from(received);
        writer.write_all(b"through the passed fd").unwrap();
        drop(writer);
        let mut got = String::new();
        pipe_read.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the passed fd");
    });
}

#[test]
fn scm_rights_several_fds_and_plain_data_between() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<(File, File)> = (0..3).map(|_| pipe()).collect();
        let ends: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        let (res, _) = a.send_with_fds(b"3", &ends).await;
        res.unwrap();
        // A message with no descriptors: recv_with_fds gives an empty list.
        let (res, _) = a.send_with_fds(b"0", &[]).await;
        res.unwrap();

        let (res, buf) = within(LIMIT, "recv 3", b.recv_with_fds(vec![0u8; 1], 8)).await;
        let (n, fds) = res.unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"3"[..], 3));
        for (fd, (read, _)) in fds.into_iter().zip(&pipes) {
            let mut w = File::from(fd);
            w.write_all(b"!").unwrap();
            let mut byte = [0u8; 1];
            (&*read).read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"!", "each descriptor arrives in order");
        }
        let (res, buf) = within(LIMIT, "recv 0", b.recv_with_fds(vec![0u8; 1], 8)).await;
        let (n, fds) = res.unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"0"[..], 0));
    });
}

#[test]
fn scm_rights_more_fds_than_room_is_an_error() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<(File, File)> = (0..3).map(|_| pipe()).collect();
        let ends: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        let (res, _) = a.send_with_fds(b"x", &ends).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv_with_fds", b.recv_with_fds(vec![0u8; 4], 1)).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("room"), "{err}");
        assert_eq!(
            buf[0], b'x',
            "the bytes that came with them are in the buffer"
        );
        // max_fds = 0 with descriptors arriving is the same error.
        let (res, _) = a.send_with_fds(b"y", &ends[..1]).await;
        res.unwrap();
        let (res, _) = b.recv_with_fds(vec![0u8; 4], 0).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidData);
    });
}

#[test]
fn scm_rights_needs_data_and_a_plain_read_drops_fds() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (_read, write) = pipe();
        let (res, _) = a.send_with_fds(Vec::new(), &[write.as_fd()]).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
        // A plain read takes the bytes; the kernel discards the descriptors.
        let (res, _) = a.send_with_fds(b"q", &[write.as_fd()]).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "read", b.read(vec![0u8; 4])).await;
        assert_eq!(&buf[..res.unwrap()], b"q");
        // A listener-accepted stream passes descriptors as well.
        let name = abstract_name("fds");
        let listener = UnixListener::bind(&name).unwrap();
        let c = UnixStream::connect(&name).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let (res, _) = c.send_with_fds(b"l", &[write.as_fd()]).await;
        res.unwrap();
        let (res, _) = within(LIMIT, "recv", s.recv_with_fds(vec![0u8; 1], 1)).await;
        assert_eq!(res.unwrap().1.len(), 1);
    });
}

#[test]
fn streams_work_through_the_io_traits() {
    run(10, || async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut b_ref = &b;
        AsyncWriteRentExt::write_all(&mut a, b"trait".to_vec())
            .await
            .0
            .unwrap();
        let (res, buf) = AsyncReadRentExt::read_exact(&mut b_ref, vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(buf, b"trait");
        let (res, _) = AsyncWriteRent::writev(&mut b_ref, vec![b"v".to_vec()]).await;
        assert_eq!(res.unwrap(), 1);
        let (res, buf) = AsyncReadRent::read(&mut a, vec![0u8; 1].slice(..)).await;
        assert_eq!(res.unwrap(), 1);
        assert_eq!(&buf.into_inner()[..], b"v");
    });
}
