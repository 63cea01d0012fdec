#[coring::test]
fn not_async() {}

fn main() {}
