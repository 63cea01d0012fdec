//! `#[coring::main]` with options builds and runs.

#[coring::main(entries = 16)]
async fn main() {
    let handle = coring::spawn(async { 21 * 2 });
    assert_eq!(handle.await.unwrap(), 42);
    coring::time::sleep(std::time::Duration::from_millis(1)).await;
}
