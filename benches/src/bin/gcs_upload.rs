//! Streams a file into Cloud Storage through `CloudStorage::put_artifact` (resumable upload,
//! CRC32C on the way) and prints the throughput. Usage:
//! `gcs_upload BASE_URL FILE [CHUNK_MIB]`; BASE_URL is the simulator's (or a proxy's).

use std::sync::Arc;
use std::time::Instant;

use ops_core::contracts::{BackupStore, PutArtifact};
use ops_gcp::auth::TokenProvider;
use ops_gcp::{CloudStorage, Endpoints, GcpClient, GcpConfig};

#[tokio::main]
#[allow(clippy::disallowed_methods)] // wall time of a whole process run is the figure itself
async fn main() -> ops_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (base, file) = match (args.get(1), args.get(2)) {
        (Some(b), Some(f)) => (b.clone(), f.clone()),
        _ => {
            eprintln!("usage: gcs_upload BASE_URL FILE [CHUNK_MIB]");
            std::process::exit(2);
        }
    };
    let chunk_mib: usize = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(8);
    let mut config = GcpConfig::new("bench-project", "europe-west1");
    config.endpoints = Endpoints::all_at(&base)?;
    let client = GcpClient::new(config, Arc::new(TokenProvider::static_token("bench-token")))?;
    let store = CloudStorage::new(client, "bench-bucket", "bench/")?
        .with_chunk_size(chunk_mib * 1024 * 1024)?;
    let source = tokio::fs::File::open(&file)
        .await
        .map_err(|e| ops_core::error::from_io("bench", "open", e))?;
    let id = format!("upload-{}", std::process::id());
    let started = Instant::now();
    let info = store
        .put_artifact(
            &PutArtifact {
                id,
                source: None,
                labels: Default::default(),
            },
            Box::pin(source),
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = info.size_bytes.unwrap_or(0) as f64;
    println!(
        "uploaded {} bytes in {secs:.3} s = {:.1} MiB/s, {}",
        bytes,
        bytes / secs / (1024.0 * 1024.0),
        info.checksum.map(|c| c.to_string()).unwrap_or_default()
    );
    Ok(())
}
