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

use std::process::ExitCode;
use std::sync::Arc;

use ops_core::contracts::{BackupStore, CreateBackup};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{BackupAndVerify, BackupSource, BackupVerifyConfig};
use ops_core::sim::Simulator;
use ops_examples::providers::{PROJECT, REGION, gcp_client, gcp_sim, postgres};
use ops_examples::{Opt, Session, Spec};
use ops_gcp::storage::CloudStorage;
use ops_postgres::{PgBackupStore, PgTools};

const SPEC: Spec = Spec {
    name: "postgres_backup",
    about: "stream pg_dump into Cloud Storage, verify by restoring into a scratch database",
    options: &[
        PROJECT,
        REGION,
        Opt::value(
            "bucket",
            "OPS_BUCKET",
            "the bucket for backups",
            "app-backups",
        ),
        Opt::value(
            "prefix",
            "OPS_BACKUP_PREFIX",
            "where backups go in the bucket",
            "postgres/",
        ),
        Opt::config(),
    ],
    faults: &[(
        "upload-cut",
        "the connection drops mid-upload: the upload asks where it stopped and resumes",
    )],
};

/// Upload chunks of 256 KiB, so even the rehearsal's small dump takes several.
const CHUNK: usize = 256 * 1024;

#[tokio::main]
async fn main() -> ExitCode {
    let mut session = Session::start(SPEC).await;
    let (bucket, prefix) = (session.value("bucket"), session.value("prefix"));
    let (db, _cluster) = postgres(&session, "shop").await;
    let Some(name) = db.config().settings().get_dbname().map(str::to_string) else {
        session.usage_error("DATABASE_URL names no database");
    };
    if session.rehearsal() {
        // About a megabyte of dump: customers and their orders.
        let client = session.or_exit(db.client().await);
        session.or_exit(
            client
                .batch_execute(
                    "CREATE TABLE customers(id serial PRIMARY KEY, email text NOT NULL);
                     CREATE TABLE orders(id serial PRIMARY KEY, customer int REFERENCES customers, note text);
                     INSERT INTO customers(email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 2000) i;
                     INSERT INTO orders(customer, note)
                       SELECT 1 + i % 2000, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 30000) i;",
                )
                .await,
        );
    }
    let sim = gcp_sim(&session).await;
    if let Some(sim) = &sim
        && session.cli.fault_is("upload-cut")
    {
        sim.cut_next_upload_after(300_000);
    }
    let client = gcp_client(&session, sim.as_ref()).await;
    let gcs = session.or_exit(
        CloudStorage::new(client, &bucket, &prefix).and_then(|s| s.with_chunk_size(CHUNK)),
    );
    let tools = PgTools::find().unwrap_or_else(|e| session.usage_error(e));
    // One store: it takes the dump into Cloud Storage and, as the restore test, restores it
    // into a scratch database and counts the rows.
    let pg =
        Arc::new(PgBackupStore::new(db.clone(), tools, Arc::new(gcs)).with_clock(session.clock()));
    let store: Arc<dyn BackupStore> = pg.clone();

    let source = BackupSource::Create(CreateBackup {
        source: name.clone(),
        name: None,
        labels: Default::default(),
    });
    let run = BackupAndVerify::new(&name, store, source, session.config::<BackupVerifyConfig>())
        .restore_test(pg);
    let runbook = session.or_exit(run.runbook());
    let report = session.run(&runbook).await;

    if let (Some(sim), Some(report)) = (&sim, &report)
        && !session.cli.dry_run
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
        if session.cli.fault.is_some() {
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
    session.finish().await
}
