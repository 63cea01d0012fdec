//! Registered (fixed) buffers: file I/O through them is byte-exact, slices of them stay
//! fixed, they return to their pool, and the pool outlives its last buffer.

use coring::buf::{FixedBufPool, IoBuf};
use coring::fs::File;
use coring::runtime::Runtime;

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("coring-fixed-{}-{name}", std::process::id()))
}

#[test]
fn file_round_trip_through_fixed_buffers() {
    let rt = Runtime::new().unwrap();
    let path = temp_path("roundtrip");
    rt.block_on(async {
        let pool = FixedBufPool::new(4, 8192).unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        let mut out = pool.try_take().unwrap();
        out.set_len(8192);
        for (i, b) in out.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let expected = out.to_vec();
        let (res, out) = file.write_all_at(out, 4096).await;
        res.unwrap();
        drop(out);
        assert_eq!(pool.available(), 4, "the buffer went back to the pool");

        let input = pool.try_take().unwrap();
        let (res, input) = file.read_exact_at(input, 4096).await;
        res.unwrap();
        assert!(input[..] == expected[..], "read back what was written");

        // A slice of a registered buffer is read into in place.
        let mut second = pool.try_take().unwrap();
        second.set_len(0);
        let (res, slice) = file.read_at(second.slice(100..200), 4096 + 100).await;
        assert_eq!(res.unwrap(), 100);
        let second = slice.into_inner();
        assert_eq!(&second[100..200], &expected[100..200]);
        file.close().await.unwrap();
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(rt.shutdown(), 0);
}

#[test]
fn pool_exhaustion_and_lifetime() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let a = pool.try_take().unwrap();
        let b = pool.try_take().unwrap();
        assert!(pool.try_take().is_none(), "two buffers, both out");
        drop(a);
        assert_eq!(pool.available(), 1);
        // The pool handle goes first; the buffer keeps the registration alive.
        drop(pool);
        assert_eq!(b.capacity(), 4096);
        drop(b);
        // Everything released: a new pool can register again on this ring.
        let again = FixedBufPool::new(1, 4096).unwrap();
        assert_eq!(again.available(), 1);
    });
}

#[test]
fn one_registration_per_ring_is_explained() {
    let rt = Runtime::builder()
        .driver(coring::runtime::DriverPolicy::IoUring)
        .build()
        .unwrap();
    rt.block_on(async {
        let _first = FixedBufPool::new(1, 4096).unwrap();
        let err = FixedBufPool::new(1, 4096).unwrap_err();
        assert!(err.to_string().contains("one pool per thread"), "{err}");
        let err = FixedBufPool::new(0, 4096).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}
