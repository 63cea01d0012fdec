//! The cost of the tokio bridge: the same Redis client loop (the `redis` crate, one
//! multiplexed connection, `--tasks` tasks each doing SET then GET in turn) on coring with
//! `Builder::tokio_bridge(true)` and on tokio's current-thread runtime.
//!
//! `redis-loop --addr 127.0.0.1:6379 [--ops 100000] [--tasks 16] [--rounds 5] [--cpu 1]`
//!
//! The client is pinned to `--cpu` (its bridge thread too: the whole process); run
//! redis-server on another CPU. Rounds alternate the order of the two; each prints
//! requests/s and the client process's CPU (utime+stime, every thread) per request, then the
//! medians and the median of the per-round CPU ratios (bridge / tokio).

use coring_bench::{cpu_time, pin_to};
use std::time::Instant;

/// The loop: `tasks` tasks share `ops` requests (SET, GET alternately) on one connection.
async fn client_loop<S>(url: &str, ops: u64, tasks: u64, spawn: S)
where
    S: Fn(
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) -> Box<dyn std::future::Future<Output = ()> + Unpin>,
{
    let client = redis::Client::open(url).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let per_task = ops / tasks;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut conn = conn.clone();
        handles.push(spawn(Box::pin(async move {
            let key = format!("loop:{t}");
            for i in 0..per_task / 2 {
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(i)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let v: u64 = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(v, i);
            }
        })));
    }
    for h in handles {
        h.await;
    }
}

fn run_bridge(url: &str, ops: u64, tasks: u64) {
    let rt = coring::runtime::Runtime::builder()
        .tokio_bridge(true)
        .build()
        .unwrap();
    rt.block_on(client_loop(url, ops, tasks, |f| {
        let h = coring::spawn(f);
        Box::new(Box::pin(async move { h.await.unwrap() }))
    }));
}

fn run_tokio(url: &str, ops: u64, tasks: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &rt,
        client_loop(url, ops, tasks, |f| {
            let h = tokio::task::spawn_local(f);
            Box::new(Box::pin(async move { h.await.unwrap() }))
        }),
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = coring_bench::Args::parse(&[]);
    let addr = args.get("addr").unwrap_or("127.0.0.1:6379").to_string();
    let ops: u64 = args.parse_or("ops", 100_000);
    let tasks: u64 = args.parse_or("tasks", 16);
    let rounds: usize = args.parse_or("rounds", 5);
    let cpu: usize = args.parse_or("cpu", 1);
    pin_to(cpu);
    let url = format!("redis://{addr}/");
    let mut results: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut cpu_per = [0.0; 2];
        for i in 0..2 {
            let which = (i + round) % 2; // 0: bridge, 1: tokio
            let (start, cpu0) = (Instant::now(), cpu_time(libc::RUSAGE_SELF));
            if which == 0 {
                run_bridge(&url, ops, tasks);
            } else {
                run_tokio(&url, ops, tasks);
            }
            let (wall, used) = (
                start.elapsed().as_secs_f64(),
                (cpu_time(libc::RUSAGE_SELF) - cpu0).as_secs_f64(),
            );
            let name = ["coring-bridge", "tokio"][which];
            println!(
                "round {round} {name:13} {:8.0} req/s {:6.2} us CPU/req",
                ops as f64 / wall,
                used * 1e6 / ops as f64
            );
            results[which].0.push(ops as f64 / wall);
            results[which].1.push(used * 1e6 / ops as f64);
            cpu_per[which] = used;
        }
        ratios.push(cpu_per[0] / cpu_per[1]);
    }
    for (name, (rps, cpu)) in ["coring-bridge", "tokio"].iter().zip(results) {
        println!(
            "median {name:13} {:8.0} req/s {:6.2} us CPU/req",
            median(rps),
            median(cpu)
        );
    }
    println!("median CPU ratio bridge/tokio {:.3}", median(ratios));
}
