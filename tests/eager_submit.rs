//! `Builder::eager_submit`: each op reaches the kernel when it is created (one
//! `io_uring_enter` per op), not when the worker parks; results are the same either way.

mod common;

use std::io::Write;
use std::pin::pin;

use common::{poll_once, uring, watchdog, TempDir};
use coring::net::TcpListener;

/// `io_uring_enter` calls made while one receive is created and first polled.
fn enters_for_one_op(eager: bool) -> u64 {
    let rt = uring().eager_submit(eager).build().unwrap();
    let rt_ref = &rt;
    let spent = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let before = rt_ref.metrics().enters;
        let spent = {
            let mut read = pin!(stream.read(vec![0u8; 16]));
            assert!(poll_once(read.as_mut()).is_pending(), "no data yet");
            let spent = rt_ref.metrics().enters - before;
            peer.write_all(b"late").unwrap();
            let (n, buf) = read.await;
            assert_eq!(&buf[..n.unwrap()], b"late");
            spent
        };
        spent
    });
    assert_eq!(rt.shutdown(), 0);
    spent
}

#[test]
fn an_eager_op_is_submitted_before_the_worker_parks() {
    watchdog(60, || {
        assert_eq!(
            enters_for_one_op(true),
            1,
            "eager: entered for the op at once"
        );
        assert_eq!(
            enters_for_one_op(false),
            0,
            "batched: nothing entered before the park"
        );
    });
}

#[test]
fn eager_file_io_is_byte_exact() {
    watchdog(60, || {
        let dir = TempDir::new();
        let path = dir.join("eager.dat");
        let rt = uring().eager_submit(true).build().unwrap();
        rt.block_on(async {
            let file = coring::fs::File::create(&path).await.unwrap();
            let data: Vec<u8> = (0..256 * 1024).map(|i: u32| (i % 253) as u8).collect();
            // Many ops in flight at once, each entered on its own.
            let mut writes = Vec::new();
            for (i, chunk) in data.chunks(4096).enumerate() {
                writes.push(file.write_all_at(chunk.to_vec(), (i * 4096) as u64));
            }
            for write in writes {
                write.await.0.unwrap();
            }
            file.sync_all().await.unwrap();
            let (res, back) = coring::fs::File::open(&path)
                .await
                .unwrap()
                .read_exact_at(vec![0; data.len()], 0)
                .await;
            res.unwrap();
            assert!(back == data, "read back what was written");
        });
        assert_eq!(rt.shutdown(), 0);
    });
}
