//! HttpProbe throughput (filled in with the HttpProbe adapter).
fn main() {}
