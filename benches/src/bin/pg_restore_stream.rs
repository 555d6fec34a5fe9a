//! Restores `bench.dump` from an FsBackupStore directory into a new database through
//! `PgBackupStore::restore_into` (decompressed on the way). Usage:
//! `pg_restore_stream URL DIR TARGET_DB` (URL of any database of the server; TARGET_DB exists
//! and is empty).

use std::time::Instant;

use ops_core::adapters::FsBackupStore;
use ops_postgres::{PgBackupStore, PgConfig, PgTools, Postgres};
use std::sync::Arc;

#[tokio::main]
#[allow(clippy::disallowed_methods)] // wall time of a whole process run is the figure itself
async fn main() -> ops_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(dir), Some(target)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: pg_restore_stream URL DIR TARGET_DB");
        std::process::exit(2);
    };
    let store = Arc::new(FsBackupStore::open(dir).await?);
    let db = Postgres::new(PgConfig::new(url.clone())?)?;
    let backups = PgBackupStore::new(db, PgTools::find()?, store);
    let started = Instant::now();
    let out = backups.restore_into("bench.dump", target, false).await?;
    println!(
        "{} bytes of dump restored in {:.2} s",
        out.bytes.unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
