#[coring::main(entries = 5000000000)]
async fn main() {}
