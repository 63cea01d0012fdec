#[coring::main(entries)]
async fn main() {}
