//! Streams `pg_dump -Fc` of a database into an FsBackupStore directory through
//! `PgBackupStore::backup`, and prints the throughput. Usage: `pg_dump_stream URL DIR`.

use std::time::Instant;

use ops_core::adapters::FsBackupStore;
use ops_postgres::{PgBackupStore, PgConfig, PgTools, Postgres};
use std::sync::Arc;

#[tokio::main]
#[allow(clippy::disallowed_methods)] // wall time of a whole process run is the figure itself
async fn main() -> ops_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: pg_dump_stream URL DIR");
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
    let backups = PgBackupStore::new(db, PgTools::find()?, store);
    let started = Instant::now();
    let info = backups
        .backup(
            &name,
            Some(format!("bench-{}.dump", std::process::id())),
            Default::default(),
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = info.size_bytes.unwrap_or(0) as f64;
    println!(
        "dumped {bytes} bytes in {secs:.2} s = {:.1} MiB/s of dump, {}",
        bytes / secs / 1048576.0,
        info.checksum.map(|c| c.to_string()).unwrap_or_default()
    );
    Ok(())
}
