//! `#[coring::main]` and `#[coring::test]`: misuse is a compile error with a clear message
//! (trybuild cases in `tests/ui/`), and the options work.

mod common;

use std::time::Duration;

use common::within;

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

#[coring::test(entries = 64)]
async fn test_macro_with_entries() {
    // More ops at once than the 64-entry ring holds.
    let handles: Vec<_> = (0..200)
        .map(|i| {
            coring::spawn(async move {
                let (server, client) = common::tcp_pair().await.unwrap();
                drop(client);
                let (res, _) = server.read(vec![0u8; 8]).await;
                assert_eq!(res.unwrap(), 0);
                i
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(within(Duration::from_secs(10), "task", h).await.unwrap(), i);
    }
}

#[coring::test]
async fn test_macro_returning_result() -> std::io::Result<()> {
    let listener = coring::net::TcpListener::bind("127.0.0.1:0").await?;
    assert!(listener.local_addr()?.port() != 0);
    Ok(())
}

#[coring::test]
#[should_panic(expected = "panics propagate out of coring::test")]
async fn test_macro_propagates_panics() {
    coring::task::yield_now().await;
    panic!("panics propagate out of coring::test");
}

#[coring::test(entries = 8, sqpoll = 20)]
async fn test_macro_with_several_options() {
    let h = coring::spawn(async {
        coring::time::sleep(Duration::from_millis(2)).await;
        5
    });
    assert_eq!(h.await.unwrap(), 5);
}

#[coring::test(driver = "epoll")]
async fn test_macro_picks_the_epoll_driver() {
    assert_eq!(
        coring::runtime::driver_kind(),
        Some(coring::runtime::DriverKind::Epoll)
    );
    let (tx, rx) = coring::sync::oneshot::channel();
    coring::spawn(async move { tx.send(3).unwrap() });
    assert_eq!(rx.await.unwrap(), 3);
    coring::time::sleep(std::time::Duration::from_millis(2)).await;
}

#[coring::test(driver = "io_uring", entries = 32)]
async fn test_macro_picks_the_io_uring_driver() {
    assert_eq!(
        coring::runtime::driver_kind(),
        Some(coring::runtime::DriverKind::IoUring)
    );
    coring::task::yield_now().await;
}
