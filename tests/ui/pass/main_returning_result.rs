//! `#[coring::main]` on a `main` that returns a `Result`.

#[coring::main]
async fn main() -> std::io::Result<()> {
    let listener = coring::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = coring::spawn(async move { coring::net::TcpStream::connect(addr).await });
    let (_stream, _peer) = listener.accept().await?;
    client.await??;
    Ok(())
}
