//! Serves the Cloud Storage simulator on loopback in its own process, so an uploader's memory is
//! measured alone. Prints the base URL, then serves until stdin closes.

use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let sim = ops_gcp::sim::GcpSim::start().await;
    println!("{}", sim.uri());
    let mut sink = Vec::new();
    // The script keeps stdin open while it needs the server.
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    drop(sim);
}
