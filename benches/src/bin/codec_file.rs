//! Stores a file into an FsBackupStore directory as one artifact, through the codec stage
//! (`ops_core::codec::encode`, which stores an incompressible stream raw), and prints what it
//! chose and the sizes. Usage: `codec_file FILE DIR [zstd-N|raw]`.

use std::time::Instant;

use ops_core::adapters::FsBackupStore;
use ops_core::codec::{Codec, default_threads, encode};
use ops_core::contracts::{BackupStore, PutArtifact};

#[tokio::main]
#[allow(clippy::disallowed_methods)] // wall time of a whole process run is the figure itself
async fn main() -> ops_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: codec_file FILE DIR [zstd-N|raw]");
        std::process::exit(2);
    };
    let codec = match args.get(3).map_or("zstd-3", String::as_str) {
        "raw" => Codec::Raw,
        other => match other.strip_prefix("zstd-").and_then(|l| l.parse().ok()) {
            Some(level) => Codec::Zstd { level },
            None => {
                eprintln!("codec: zstd-N or raw");
                std::process::exit(2);
            }
        },
    };
    let store = FsBackupStore::open(dir).await?;
    let started = Instant::now();
    let input = tokio::fs::File::open(file)
        .await
        .map_err(|e| ops_core::error::from_io("bench", "open", e))?;
    let encoded = encode(Box::pin(input), codec, default_threads()).await?;
    let request = PutArtifact {
        id: "bench.bin".into(),
        source: Some(file.clone()),
        labels: encoded.codec.labels(),
    };
    let info = store.put_artifact(&request, encoded.reader).await?;
    println!(
        "{} bytes stored as {} for {} in {:.2} s",
        info.size_bytes.unwrap_or(0),
        encoded.codec.describe(),
        encoded.counts.plain(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
