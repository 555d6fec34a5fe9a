//! Starts a throwaway PostgreSQL cluster (ops_postgres::cluster::TestCluster), prints its URL,
//! and keeps it until stdin closes; then stops and removes it.

use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let cluster = match ops_postgres::cluster::TestCluster::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("{}", cluster.url());
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    drop(cluster);
}
