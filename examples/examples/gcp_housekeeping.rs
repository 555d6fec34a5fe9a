//! The monthly Google Cloud chores of seeds 000 and 002: review and prune old Cloud Run
//! revisions (keeping what serves, what is tagged, the rollback target, the newest few and the
//! young), rotate a service-account key (the new key file into Secret Manager, the service
//! redeployed, the old key disabled and deleted after the grace period), report storage usage,
//! clean up old logs and checkpoints once the bucket holds more than a threshold, and
//! right-size the Cloud SQL instance (a smaller tier for an idle database, after an approval,
//! inside the Sunday maintenance window). `--dry-run` lists what would go and how many bytes.
//!
//! ```sh
//! cargo run -p ops-examples --example gcp_housekeeping                          # rehearsal
//! cargo run -p ops-examples --example gcp_housekeeping -- --dry-run
//! cargo run -p ops-examples --example gcp_housekeeping -- --fault revision-deleted-meanwhile
//! cargo run -p ops-examples --example gcp_housekeeping -- --fault key-quota
//! cargo run -p ops-examples --example gcp_housekeeping -- --live --project P --region R \
//!     --service api --bucket app-data --clean logs/,checkpoints/ \
//!     --service-account deployer@P.iam.gserviceaccount.com --key-secret deployer-key
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic};
use ops_core::runbooks::Procedure;
use ops_core::sim::{Fault as SimFault, Simulator};
use ops_examples::providers::{gcp_client, gcp_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::keys::ServiceAccountKeys;
use ops_gcp::keys::rotate::{KeyRotationConfig, RotateServiceAccountKey};
use ops_gcp::run::prune::{PruneConfig, PruneRevisions};
use ops_gcp::sim::Behaviour;
use ops_gcp::sql::sizing::{RightSizeSql, SqlSizingConfig};
use ops_gcp::storage::cleanup::{CleanupConfig, CleanupObjects};
use ops_gcp::{CloudRun, CloudStorage, SecretManager};
use std::sync::Arc;

/// prune old Cloud Run revisions, report storage usage, clean up old logs and checkpoints
#[derive(Parser)]
#[command(name = "gcp_housekeeping")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service whose revisions are pruned
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// the bucket to report and clean
    #[arg(long, env = "OPS_BUCKET", default_value = "app-data")]
    bucket: String,
    /// the prefixes to clean, comma-separated [default: logs/,checkpoints/]
    #[arg(long)]
    clean: Option<String>,
    /// objects older than this are cleaned [default: 30d]
    #[arg(long, value_parser = ops_examples::args::duration)]
    older_than: Option<Duration>,
    /// clean only when the prefixes hold more than this many bytes [default: 100 GB; 1 MB in
    /// a rehearsal]
    #[arg(long)]
    above_bytes: Option<u64>,
    /// the service account whose key is rotated
    #[arg(long, default_value = "deployer@sim-project.iam.gserviceaccount.com")]
    service_account: String,
    /// the Secret Manager secret holding its key file
    #[arg(long, default_value = "deployer-key")]
    key_secret: String,
    /// the Cloud SQL instance to right-size (left alone when not given; rehearsal: main-db)
    #[arg(long, env = "OPS_SQL_INSTANCE")]
    sql_instance: Option<String>,
    /// revisions kept whatever they are [default: 5]
    #[arg(long)]
    keep_revisions: Option<usize>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// another job deletes a revision after the plan: it counts as gone, the rest are pruned
    #[value(name = "revision-deleted-meanwhile")]
    RevisionDeletedMeanwhile,
    /// the key-creation quota is spent: the rotation fails and changes nothing, the old key
    /// keeps working
    #[value(name = "key-quota")]
    KeyQuota,
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let prefixes: Vec<String> = flags
        .clean
        .as_deref()
        .unwrap_or("logs/,checkpoints/")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let sim = gcp_sim(&session, &flags.gcp).await;
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = CloudRun::new(client.clone(), &flags.service)?;
    if let Some(sim) = &sim {
        // Three months of releases, one a week; a day of logs and checkpoints every week.
        sim.create_service(&flags.service, "registry.example/api:1.0");
        for week in 1..=12u32 {
            let image = format!("registry.example/api:1.{week}");
            sim.set_behaviour(&image, Behaviour::failing(0.0));
            for (kind, size) in [("logs", 300 * 1024usize), ("checkpoints", 200 * 1024)] {
                let name = format!("{kind}/week-{week:02}.bin");
                sim.put_object(&flags.bucket, &name, &vec![0u8; size]);
            }
            session.clock().sleep(7 * DAY).await;
            run.deploy(&DeployRequest {
                traffic: InitialTraffic::All,
                ..DeployRequest::new(&image)
            })
            .await?;
        }
        sim.put_object(&flags.bucket, "data/app.db", &[1u8; 4096]);
        if flags.fault == Some(Fault::RevisionDeletedMeanwhile) {
            let oldest = run.releases().await?.last().map(|r| r.id.clone());
            if let Some(rev) = oldest {
                sim.inject(
                    Some("DELETE"),
                    &format!("/revisions/{rev}"),
                    1,
                    SimFault::Status {
                        status: 404,
                        retry_after: None,
                    },
                );
            }
        }
    }

    // Revisions.
    let prune = PruneRevisions::new(
        run.clone(),
        PruneConfig {
            keep_newest: flags.keep_revisions.unwrap_or(5),
            ..PruneConfig::default()
        },
    );
    let pruned = session.run(&prune.runbook()?).await;
    let pruned = pruned.as_ref().and_then(|r| prune.summary(r));
    if let Some((plan, outcome)) = &pruned {
        eprintln!("\nrevisions kept:");
        for k in &plan.keep {
            eprintln!("  {:<24} {}", k.revision, k.reasons.join(", "));
        }
        eprintln!("revisions to delete: {}", plan.delete.len());
        if let Some(o) = outcome {
            eprintln!(
                "  deleted {}, already gone {}, skipped {}",
                o.deleted.len(),
                o.already_gone.len(),
                o.skipped.len()
            );
        }
    }

    // The service account's key.
    let old_key = sim
        .as_ref()
        .map(|s| s.create_service_account(&flags.service_account, 95 * DAY));
    if let Some(sim) = &sim
        && flags.fault == Some(Fault::KeyQuota)
    {
        sim.exhaust_key_quota(true);
    }
    let rotation = RotateServiceAccountKey::new(
        ServiceAccountKeys::new(client.clone(), &flags.service_account)?,
        Arc::new(SecretManager::new(client.clone())),
        &flags.key_secret,
        KeyRotationConfig::default(),
    )
    .consumer(Arc::new(run.clone()));
    let rotated = session.run(&rotation.runbook()?).await;
    if let Some(made) = rotated.as_ref().and_then(|r| rotation.summary(r)) {
        eprintln!(
            "\nkey rotated: {} (secret version {})",
            made.key, made.stored_version
        );
    }

    // Storage.
    let store = CloudStorage::new(client, &flags.bucket, "")?;
    let total = store.usage("").await?;
    eprintln!(
        "\nstorage: {} objects, {} bytes in gs://{}",
        total.objects, total.bytes, flags.bucket
    );
    let threshold = flags.above_bytes.unwrap_or(if session.rehearsal() {
        1 << 20
    } else {
        100_000_000_000
    });
    let cleanup = CleanupObjects::new(
        store.clone(),
        CleanupConfig {
            prefixes,
            older_than: flags.older_than.unwrap_or(30 * DAY),
            only_above_bytes: Some(threshold),
        },
    );
    let cleaned = session.run(&cleanup.runbook()?).await;
    let cleaned = cleaned.as_ref().and_then(|r| cleanup.summary(r));
    if let Some((plan, outcome)) = &cleaned {
        for u in &plan.usage {
            eprintln!(
                "  {:<32} {} objects, {} bytes",
                u.location, u.objects, u.bytes
            );
        }
        eprintln!(
            "old objects: {} ({} bytes){}",
            plan.expired.len(),
            plan.bytes,
            plan.note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        );
        if let Some(o) = outcome {
            eprintln!("  deleted {} ({} bytes)", o.deleted, o.bytes);
        }
    }

    if let Some(sim) = &sim
        && !flags.common.dry_run
    {
        let releases = run.releases().await?;
        session.check(
            "old revisions are gone and the serving one stays",
            releases.len() < 13 && run.current().await?.serving,
        );
        let keys = sim.service_account_keys(&flags.service_account);
        if flags.fault == Some(Fault::KeyQuota) {
            session.check(
                "the old key still works and no new key was left behind",
                old_key.is_some_and(|old| keys == [(old, false)]),
            );
        } else {
            session.check(
                "one key is left, and it is the new one",
                keys.len() == 1 && old_key.is_some_and(|old| keys[0].0 != old),
            );
        }
        if flags.fault == Some(Fault::RevisionDeletedMeanwhile) {
            session.check(
                "the revision deleted meanwhile counts as gone",
                pruned
                    .as_ref()
                    .and_then(|(_, o)| o.as_ref())
                    .is_some_and(|o| o.already_gone.len() == 1),
            );
        }
        let names = sim.object_names(&flags.bucket);
        session.check(
            "old logs and checkpoints are gone, the rest stays",
            names.contains(&"data/app.db".to_string())
                && names.iter().filter(|n| n.starts_with("logs/")).count() == 4
                && names
                    .iter()
                    .filter(|n| n.starts_with("checkpoints/"))
                    .count()
                    == 4,
        );
    }
    // The database's tier, in the maintenance window the seed keeps for it.
    let sql_instance = match (&sim, &flags.sql_instance) {
        (Some(_), None) => Some("main-db".to_string()),
        (_, given) => given.clone(),
    };
    if let Some(instance) = &sql_instance {
        if let Some(sim) = &sim {
            sim.create_sql_instance(instance, 1);
            sim.set_sql_usage(instance, 0.12, 0.25);
            // The window opens on Sunday at 02:00: the rehearsal waits for it.
            let now = session.clock().now();
            let window = sunday_window()?;
            if let Some(at) = window.next_open(now)? {
                session
                    .clock()
                    .sleep((at - now).to_std().unwrap_or_default())
                    .await;
            }
        }
        let sql = ops_gcp::CloudSql::new(
            gcp_client(&session, &flags.gcp, sim.as_ref()).await?,
            instance,
        )?;
        let sizing = RightSizeSql::new(sql, SqlSizingConfig::default(), vec![sunday_window()?]);
        let report = session.run(&sizing.runbook()?).await;
        if let Some(s) = report.as_ref().and_then(|r| sizing.summary(r)) {
            eprintln!(
                "\ndatabase {instance}: {} → {} ({})",
                s.current,
                s.suggested.as_deref().unwrap_or("unchanged"),
                s.reason
            );
        }
        if let Some(sim) = &sim
            && !flags.common.dry_run
        {
            session.check(
                "the idle database runs on the smaller tier",
                sim.sql_tier(instance)
                    == Some(("db-custom-1-3840".to_string(), "RUNNABLE".to_string())),
            );
        }
    }
    Ok(session.finish().await)
}

/// Seed 001's database maintenance window: Sundays 02:00–04:00 UTC.
fn sunday_window() -> Result<ops_core::calendar::Window, Failure> {
    Ok(ops_core::calendar::Window::new(
        "database-maintenance",
        "0 2 * * SUN",
        "UTC",
        Duration::from_secs(2 * 3600),
    )?)
}
