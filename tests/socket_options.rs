//! Socket options on `TcpStream` (keepalive, linger, buffer sizes, TTL) read back what was set,
//! and refuse what the kernel refuses.

mod common;

use std::time::Duration;

use common::{tcp_pair, watchdog};
use coring::runtime::Runtime;

#[test]
fn tcp_options_round_trip() {
    watchdog(10, || {
        Runtime::new().unwrap().block_on(async {
            let (stream, _client) = tcp_pair().await.unwrap();

            assert_eq!(stream.keepalive().unwrap(), None, "off by default");
            stream.set_keepalive(Some(Duration::from_secs(75))).unwrap();
            assert_eq!(stream.keepalive().unwrap(), Some(Duration::from_secs(75)));
            stream.set_keepalive(None).unwrap();
            assert_eq!(stream.keepalive().unwrap(), None);
            assert!(
                stream.set_keepalive(Some(Duration::ZERO)).is_err(),
                "TCP_KEEPIDLE must be at least a second"
            );

            assert_eq!(stream.linger().unwrap(), None);
            stream.set_linger(Some(Duration::from_secs(3))).unwrap();
            assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(3)));
            stream.set_linger(None).unwrap();
            assert_eq!(stream.linger().unwrap(), None);

            stream.set_send_buffer_size(128 * 1024).unwrap();
            assert!(stream.send_buffer_size().unwrap() >= 128 * 1024);
            stream.set_recv_buffer_size(128 * 1024).unwrap();
            assert!(stream.recv_buffer_size().unwrap() >= 128 * 1024);

            stream.set_ttl(17).unwrap();
            assert_eq!(stream.ttl().unwrap(), 17);
            assert!(stream.set_ttl(0).is_err(), "a TTL of 0 is refused");

            // The stream still works after all that.
            let (res, _) = stream.write_all(b"ok").await;
            res.unwrap();
        })
    })
}

#[test]
fn linger_zero_resets_the_connection_on_close() {
    use std::io::Read;
    watchdog(10, || {
        Runtime::new().unwrap().block_on(async {
            let (stream, mut client) = tcp_pair().await.unwrap();
            stream.set_linger(Some(Duration::ZERO)).unwrap();
            stream.close().await.unwrap();
            let mut buf = [0u8; 4];
            let err = client.read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        })
    })
}
