//! Streams `pg_dump -Fc` of a database into an FsBackupStore directory through
//! `PgBackupStore::backup`, and prints the sizes and throughput. Usage:
//! `pg_dump_stream URL DIR [CODEC]`, CODEC `zstd-N` (default `zstd-3`) or `raw` (pg_dump's own
//! zlib 6, as before zstd).

use std::time::Instant;

use ops_core::adapters::FsBackupStore;
use ops_core::codec::Codec;
use ops_postgres::{PgBackupStore, PgConfig, PgTools, Postgres};
use std::sync::Arc;

/// `zstd-N` or `raw`.
fn parse_codec(text: &str) -> Option<Codec> {
    match text {
        "raw" => Some(Codec::Raw),
        _ => text
            .strip_prefix("zstd-")?
            .parse()
            .ok()
            .map(|level| Codec::Zstd { level }),
    }
}

#[tokio::main]
#[allow(clippy::disallowed_methods)] // wall time of a whole process run is the figure itself
async fn main() -> ops_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: pg_dump_stream URL DIR [zstd-N|raw]");
        std::process::exit(2);
    };
    let Some(codec) = parse_codec(args.get(3).map_or("zstd-3", String::as_str)) else {
        eprintln!("codec: zstd-N or raw");
        std::process::exit(2);
    };
    let store = Arc::new(FsBackupStore::open(dir).await?);
    let db = Postgres::new(PgConfig::new(url.clone())?)?;
    let name = db
        .config()
        .settings()
        .get_dbname()
        .unwrap_or("postgres")
        .to_string();
    let backups = PgBackupStore::new(db, PgTools::find()?, store).with_codec(codec)?;
    let started = Instant::now();
    let info = backups
        .backup(&name, Some("bench.dump".to_string()), Default::default())
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = info.size_bytes.unwrap_or(0);
    println!(
        "{bytes} bytes stored as {} in {secs:.2} s",
        info.labels
            .get("codec")
            .map(|c| format!(
                "{c}{}",
                info.labels
                    .get("codec_level")
                    .map(|l| format!("-{l}"))
                    .unwrap_or_default()
            ))
            .unwrap_or_default()
    );
    Ok(())
}
