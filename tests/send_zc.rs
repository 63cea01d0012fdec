//! Zero-copy sends: every byte arrives, the buffer comes back after the notification, and a
//! peer that went away is an error with the buffer returned.

use std::io::Read;
use std::time::Duration;

use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;

#[test]
fn send_zc_delivers_every_byte() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
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
        let data: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 253) as u8).collect();
        let mut sent = 0;
        let mut buf = data.clone();
        while sent < data.len() {
            let (res, back) = stream.send_zc(buf).await;
            let n = res.unwrap();
            assert!(n > 0);
            sent += n;
            buf = back[n..].to_vec();
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let received = reader.join().unwrap();
        assert_eq!(received.len(), data.len());
        assert!(received == data, "bytes differ");
    });
    assert_eq!(rt.shutdown(), 0);
}

#[test]
fn send_zc_to_a_closed_peer_fails_with_the_buffer() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client); // RST
        coring::time::sleep(Duration::from_millis(20)).await;
        let mut failed = false;
        for _ in 0..10 {
            let (res, buf) = server.send_zc(vec![1u8; 1 << 16]).await;
            assert_eq!(buf.len(), 1 << 16, "the buffer comes back");
            if let Err(e) = res {
                assert!(
                    matches!(e.raw_os_error(), Some(libc::ECONNRESET) | Some(libc::EPIPE)),
                    "{e}"
                );
                failed = true;
                break;
            }
        }
        assert!(failed, "sending to a reset connection must fail");
    });
    assert_eq!(rt.shutdown(), 0);
}
