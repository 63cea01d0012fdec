#[coring::main(sqpoll = 1.5)]
async fn main() {}
