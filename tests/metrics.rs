//! `Runtime::metrics()`: every counter moves when its event happens.

use std::time::Duration;

use coring::runtime::{DriverPolicy, Runtime};

fn uring() -> coring::runtime::Builder {
    Runtime::builder().driver(DriverPolicy::IoUring)
}

#[test]
fn tasks_and_parked_time_are_counted() {
    let rt = Runtime::new().unwrap();
    let before = rt.metrics();
    rt.block_on(async {
        let handles: Vec<_> = (0..10).map(|i| coring::spawn(async move { i })).collect();
        let pending = coring::spawn(std::future::pending::<()>());
        for h in handles {
            h.await.unwrap();
        }
        coring::time::sleep(Duration::from_millis(30)).await;
        drop(pending); // detached: still alive
    });
    let after = rt.metrics();
    assert_eq!(after.tasks_spawned - before.tasks_spawned, 11);
    assert_eq!(after.tasks_alive, 1, "the pending task is still alive");
    assert!(
        after.parked >= Duration::from_millis(20),
        "parked only {:?} while sleeping 30 ms",
        after.parked
    );
    assert!(after.enters > before.enters);
}

#[test]
fn cancellations_and_overflows_are_counted() {
    let rt = uring().entries(4).cq_entries(8).build().unwrap();
    rt.block_on(async {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = coring::net::UnixStream::from_std(a);
        // A read nobody completes, dropped: one cancellation.
        let read = coring::time::timeout(Duration::from_millis(5), a.read(vec![0u8; 8])).await;
        assert!(read.is_err());
        // 200 kernel timeouts firing together into an 8-entry completion queue.
        let ops: Vec<_> = (0..200)
            .map(|_| {
                coring::op::Op::submit(coring::op::timeout::Timeout::new(Duration::from_millis(20)))
            })
            .collect();
        for op in ops {
            op.await.unwrap();
        }
    });
    let m = rt.metrics();
    assert!(m.ops_cancelled >= 1, "{m:?}");
    assert!(m.cq_overflows >= 1, "{m:?}");
    assert!(m.sqes >= 201 && m.cqes >= 201, "{m:?}");
}

#[test]
fn io_wq_workers_are_seen() {
    let rt = uring().build().unwrap();
    let dir = std::env::temp_dir().join(format!("coring-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt_ref = &rt;
    let seen = rt.block_on(async move {
        let mut files = Vec::new();
        for i in 0..8 {
            let file = coring::fs::File::create(dir.join(format!("f{i}")))
                .await
                .unwrap();
            let (res, _) = file.write_all_at(vec![7u8; 1 << 16], 0).await;
            res.unwrap();
            files.push(file);
        }
        // fsync blocks in the kernel, so io_uring punts it to io-wq worker threads.
        let syncs = async {
            let pending: Vec<_> = files.iter().map(|f| f.sync_all()).collect();
            for s in pending {
                s.await.unwrap();
            }
        };
        let watch = async {
            let mut most = 0;
            for _ in 0..50 {
                most = most.max(rt_ref.metrics().io_wq_workers);
                coring::time::sleep(Duration::from_millis(1)).await;
            }
            most
        };
        let (_, most) = join(syncs, watch).await;
        std::fs::remove_dir_all(&dir).unwrap();
        most
    });
    assert!(
        seen >= 1,
        "no iou-wrk thread seen during 8 concurrent fsyncs"
    );
}

/// Runs two futures concurrently on the current task.
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}
