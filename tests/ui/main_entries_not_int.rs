#[coring::main(entries = "64")]
async fn main() {}
