//! `coring::io::copy` and `splice`: file to socket and socket to file, byte-exact, inside the
//! kernel.

use std::io::{Read, Write};
use std::time::Duration;

use coring::fs::File;
use coring::net::TcpListener;
use coring::runtime::Runtime;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

#[test]
fn copy_file_to_socket_and_socket_to_file() {
    let rt = Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("coring-splice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    let data = pattern(3 << 20);
    std::fs::write(&src, &data).unwrap();
    rt.block_on(async {
        // File -> socket.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let (stream, _) = listener.accept().await.unwrap();
        let file = File::open(&src).await.unwrap();
        let sent = coring::io::copy(&file, &stream).await.unwrap();
        assert_eq!(sent, data.len() as u64);
        // Closed (not dropped) to check the close's result before blocking on the reader.
        stream.close().await.unwrap();
        assert!(
            reader.join().unwrap() == data,
            "socket received other bytes"
        );

        // Socket -> file.
        let writer = std::thread::spawn({
            let data = data.clone();
            move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(&data).unwrap();
            }
        });
        let (stream, _) = listener.accept().await.unwrap();
        let out = File::create(&dst).await.unwrap();
        let received = coring::io::copy(&stream, &out).await.unwrap();
        writer.join().unwrap();
        assert_eq!(received, data.len() as u64);
        out.close().await.unwrap();
    });
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "file received other bytes"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(rt.shutdown(), 0);
}

#[test]
fn splice_without_a_pipe_is_an_error() {
    let rt = Runtime::new().unwrap();
    let path = std::env::temp_dir().join(format!("coring-splice-np-{}", std::process::id()));
    std::fs::write(&path, b"abc").unwrap();
    rt.block_on(async {
        let a = File::open(&path).await.unwrap();
        let b = File::options().write(true).open(&path).await.unwrap();
        let err = coring::io::splice(&a, Some(0), &b, Some(0), 3)
            .await
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    });
    std::fs::remove_file(&path).unwrap();
}
