//! A SQLite database kept in Cloud Storage: back it up (a server-side copy), read the copy
//! back through its CRC32C, run `PRAGMA integrity_check` on it, prune by grandfather-father-son;
//! `--restore ID` puts a backup back as seed 002 does: stop the Cloud Run service's traffic,
//! save what is there now as a pre-restore copy, restore, restart the service (new revisions of
//! what served) so no instance keeps the old file, verify, resume. A rehearsal runs both: the
//! backup, then a restore drill after the live database is damaged.
//!
//! ```sh
//! cargo run -p ops-examples --example sqlite_backup                           # rehearsal
//! cargo run -p ops-examples --example sqlite_backup -- --fault corrupt-database
//! cargo run -p ops-examples --example sqlite_backup -- --live --project P --bucket app-data \
//!     --object data/app.db                                   # backup
//! cargo run -p ops-examples --example sqlite_backup -- --live --project P --bucket app-data \
//!     --object data/app.db --restore app.db-20261123-031500   # restore
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use std::sync::Arc;

use ops_core::adapters::SqliteIntegrityCheck;
use ops_core::contracts::{
    BackupFilter, BackupInfo, BackupStore, CreateBackup, Deployer, RestoreTarget, latest_verified,
};
use ops_core::engine::StepStatus;
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{
    BackupAndVerify, BackupSource, BackupVerifyConfig, Restore, RestoreConfig,
};
use ops_examples::providers::{gcp_client, gcp_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::storage::CloudStorage;

/// back up a SQLite database kept in Cloud Storage, check it, restore with a safety copy
#[derive(Parser)]
#[command(name = "sqlite_backup")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the bucket holding the database
    #[arg(long, env = "OPS_BUCKET", default_value = "app-data")]
    bucket: String,
    /// the database's object name
    #[arg(long, env = "OPS_OBJECT", default_value = "data/app.db")]
    object: String,
    /// where backups go in the bucket
    #[arg(long, env = "OPS_BACKUP_PREFIX", default_value = "backups/")]
    prefix: String,
    /// restore this backup id instead of backing up
    #[arg(long)]
    restore: Option<String>,
    /// the Cloud Run service that serves the database (stopped and restarted by a restore)
    #[arg(long, env = "OPS_SERVICE", default_value = "app")]
    service: String,
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
    /// the live database is damaged before the backup: the integrity check refuses the copy
    #[value(name = "corrupt-database")]
    CorruptDatabase,
}

/// A small real SQLite database for the rehearsal.
fn rehearsal_database() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("app.db");
    let db = rusqlite::Connection::open(&path).expect("a new database");
    db.execute_batch(
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, cents INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO orders(customer, cents) SELECT 'customer-' || i, i * 7 FROM n;",
    )
    .expect("rows");
    drop(db);
    std::fs::read(path).expect("the file")
}

/// The database with a page overwritten: the header survives, the b-tree does not.
fn damaged(mut bytes: Vec<u8>) -> Vec<u8> {
    let page = 4096 * 2;
    if bytes.len() > page + 4096 {
        bytes[page..page + 4096].fill(0xA5);
    }
    bytes
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let (bucket, object, prefix) = (
        flags.bucket.clone(),
        flags.object.clone(),
        flags.prefix.clone(),
    );
    let restore_id = flags.restore.clone();
    let sim = gcp_sim(&session, &flags.gcp).await;
    let good = rehearsal_database();
    if let Some(sim) = &sim {
        let live = if flags.fault == Some(Fault::CorruptDatabase) {
            damaged(good.clone())
        } else {
            good.clone()
        };
        sim.put_object(&bucket, &object, &live);
        sim.create_service(&flags.service, "registry.example/app:1.0");
    }
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(ops_gcp::CloudRun::new(client.clone(), &flags.service)?);
    let store: Arc<dyn BackupStore> = Arc::new(CloudStorage::new(client, &bucket, &prefix)?);
    let current = CreateBackup {
        source: object.clone(),
        name: None,
        labels: Default::default(),
    };

    let mut backup: Option<BackupInfo> = None;
    if restore_id.is_none() {
        let stem = object.rsplit('/').next().unwrap_or(&object).to_string();
        let run = BackupAndVerify::new(
            &stem,
            store.clone(),
            BackupSource::Create(CreateBackup {
                name: None,
                ..current.clone()
            }),
            session.config::<BackupVerifyConfig>(flags.config.as_deref())?,
        )
        .restore_test(Arc::new(SqliteIntegrityCheck::new()));
        let runbook = run.runbook()?;
        let report = session.run(&runbook).await;
        backup = report.as_ref().and_then(|r| r.output("backup"));
        // Cloud Storage copies the database server-side: no byte passes through here, so it
        // is stored as it is (compression applies to streamed artifacts).
        if let Some(check) = report
            .as_ref()
            .and_then(|r| r.output::<ops_core::runbooks::ArtifactCheck>("verify-checksum"))
        {
            eprintln!(
                "stored {} bytes as {} (a server-side copy in Cloud Storage), read back whole",
                check.stored_bytes, check.codec
            );
        }
        if session.rehearsal() && flags.fault.is_some() && !flags.common.dry_run {
            let step = |name: &str| {
                report
                    .as_ref()
                    .and_then(|r| r.steps.iter().find(|s| s.name == name))
                    .map(|s| s.status)
            };
            session.check(
                "the integrity check refused the copy and nothing was pruned",
                step("restore-test") == Some(StepStatus::Failed)
                    && step("prune") == Some(StepStatus::NotReached),
            );
            let refused = match &backup {
                Some(b) => store.describe(&b.id).await.ok(),
                None => None,
            };
            session.check(
                "the refused copy lists as failed, never as a good backup",
                refused.is_some_and(|b| b.verification.is_failed()),
            );
        }
    }

    // A rehearsal goes on to a restore drill: the live database is damaged, then restored.
    let restore_id = match (restore_id, &sim, &backup) {
        (Some(id), _, _) => Some(id),
        (None, Some(sim), Some(b)) if flags.fault.is_none() && !flags.common.dry_run => {
            sim.put_object(&bucket, &object, &damaged(good.clone()));
            // Restore "the latest": the newest backup that passed its checks, never one that
            // is unverified or failed.
            let stem = object.rsplit('/').next().unwrap_or(&object);
            let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
            let filter = BackupFilter {
                prefix: Some(format!("{stem}-")),
                ..Default::default()
            };
            let latest = latest_verified(store.as_ref(), &filter).await?;
            session.check(
                "the latest verified backup is the one just taken",
                latest.id == b.id,
            );
            Some(latest.id)
        }
        _ => None,
    };
    if let Some(id) = restore_id {
        let mut config = session.config::<RestoreConfig>(flags.config.as_deref())?;
        if flags.config.is_none() {
            // Seed 002's order: stop traffic, copy, restore, restart, resume.
            config.stop_traffic = true;
            config.restart = true;
        }
        let before = run.current().await?;
        let restore = Restore::new(store.clone(), &id, RestoreTarget::Original, current, config)
            .deployer(run.clone());
        let runbook = restore.runbook()?;
        let report = session.run(&runbook).await;
        if let (Some(sim), Some(_)) = (&sim, report)
            && !flags.common.dry_run
        {
            session.check(
                "the live database is the backup again",
                sim.object_data(&bucket, &object).as_deref() == Some(good.as_slice()),
            );
            let saved = sim
                .object_names(&bucket)
                .into_iter()
                .filter(|n| n.contains("pre-restore"))
                .filter_map(|n| sim.object_data(&bucket, &n))
                .any(|d| d == damaged(good.clone()));
            session.check("the damaged database was kept as a pre-restore copy", saved);
            let after = run.current().await?;
            session.check(
                "the service serves again, from a new revision that loaded the restored file",
                after.serving && after.primary_release() != before.primary_release(),
            );
        }
    }
    Ok(session.finish().await)
}
