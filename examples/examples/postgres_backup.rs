//! PostgreSQL backup streamed to Cloud Storage: `pg_dump -Fc` piped straight into a resumable
//! upload (never a temporary file), read back through its CRC32C, then restored into a scratch
//! database whose every table's row count must match the source; grandfather-father-son
//! pruning after. A rehearsal runs against a throwaway PostgreSQL cluster and the Cloud Storage
//! simulator.
//!
//! ```sh
//! cargo run -p ops-examples --example postgres_backup                         # rehearsal
//! cargo run -p ops-examples --example postgres_backup -- --fault upload-cut
//! DATABASE_URL=postgres://… cargo run -p ops-examples --example postgres_backup -- --live \
//!     --project P --bucket app-backups
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::Arc;

use ops_core::contracts::{BackupStore, CreateBackup};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{BackupAndVerify, BackupSource, BackupVerifyConfig};
use ops_core::sim::Simulator;
use ops_examples::providers::{gcp_client, gcp_sim, postgres};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::storage::CloudStorage;
use ops_postgres::{PgBackupStore, PgTools};

/// stream pg_dump into Cloud Storage, verify by restoring into a scratch database
#[derive(Parser)]
#[command(name = "postgres_backup")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the bucket for backups
    #[arg(long, env = "OPS_BUCKET", default_value = "app-backups")]
    bucket: String,
    /// where backups go in the bucket
    #[arg(long, env = "OPS_BACKUP_PREFIX", default_value = "postgres/")]
    prefix: String,
    /// the runbook config, TOML (defaults when absent)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// the connection drops mid-upload: the upload asks where it stopped and resumes
    #[value(name = "upload-cut")]
    UploadCut,
}

/// Upload chunks of 256 KiB, so even the rehearsal's small dump takes several.
const CHUNK: usize = 256 * 1024;

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let (bucket, prefix) = (flags.bucket.clone(), flags.prefix.clone());
    let (db, _cluster) = postgres(&session, "shop").await?;
    let Some(name) = db.config().settings().get_dbname().map(str::to_string) else {
        return Err(Failure::usage("DATABASE_URL names no database"));
    };
    if session.rehearsal() {
        // About a megabyte of dump: customers and their orders.
        let client = db.client().await?;
        client
                .batch_execute(
                    "CREATE TABLE customers(id serial PRIMARY KEY, email text NOT NULL);
                     CREATE TABLE orders(id serial PRIMARY KEY, customer int REFERENCES customers, note text);
                     INSERT INTO customers(email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 2000) i;
                     INSERT INTO orders(customer, note)
                       SELECT 1 + i % 2000, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 30000) i;",
                )
                .await?;
    }
    let sim = gcp_sim(&session, &flags.gcp).await;
    if let Some(sim) = &sim
        && flags.fault == Some(Fault::UploadCut)
    {
        sim.cut_next_upload_after(300_000);
    }
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let gcs = CloudStorage::new(client, &bucket, &prefix)?.with_chunk_size(CHUNK)?;
    let tools = PgTools::find().map_err(Failure::usage)?;
    // One store: it takes the dump into Cloud Storage and, as the restore test, restores it
    // into a scratch database and counts the rows.
    let config = session.config::<BackupVerifyConfig>(flags.config.as_deref())?;
    // pg_dump writes its archive uncompressed and the stream is zstd-compressed on the way
    // (`compression` in the config; `{ codec = "raw" }` keeps pg_dump's own zlib).
    let pg = Arc::new(
        PgBackupStore::new(db.clone(), tools, Arc::new(gcs))
            .with_clock(session.clock())
            .with_codec(config.compression)?,
    );
    eprintln!("dumps stored as {}", config.compression.describe());
    let store: Arc<dyn BackupStore> = pg.clone();

    let source = BackupSource::Create(CreateBackup {
        source: name.clone(),
        name: None,
        labels: Default::default(),
    });
    let run = BackupAndVerify::new(&name, store, source, config).restore_test(pg);
    let runbook = run.runbook()?;
    let report = session.run(&runbook).await;
    if let Some(check) = report
        .as_ref()
        .and_then(|r| r.output::<ops_core::runbooks::ArtifactCheck>("verify-checksum"))
    {
        eprintln!(
            "stored {} bytes as {} for a {}-byte dump ({:.2}× its size), read back whole",
            check.stored_bytes,
            check.codec,
            check.plain_bytes,
            check.stored_bytes as f64 / check.plain_bytes.max(1) as f64
        );
    }

    if let (Some(sim), Some(report)) = (&sim, &report)
        && !flags.common.dry_run
    {
        session.check("the backup verified by a restore", report.is_success());
        let puts = sim
            .requests()
            .iter()
            .filter(|r| r.starts_with("PUT ") && r.contains("upload"))
            .count();
        let size = report
            .output::<ops_core::contracts::BackupInfo>("backup")
            .and_then(|b| b.size_bytes)
            .unwrap_or(0) as usize;
        let chunks = size.div_ceil(CHUNK);
        if flags.fault.is_some() {
            // The cut chunk, the offset query, and the rest from where the server stopped.
            session.check(
                &format!("the cut upload resumed ({puts} PUTs for {chunks} chunks)"),
                chunks > 1 && puts >= chunks + 2,
            );
        } else {
            session.check(
                &format!("one PUT per chunk ({puts} for {chunks})"),
                chunks > 1 && puts == chunks,
            );
        }
    }
    Ok(session.finish().await)
}
