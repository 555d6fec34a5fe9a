//! The runbook calendar as a service: the seeds' daily health check (09:00), hourly backups
//! of the SQLite database in Cloud Storage, the weekly review (Monday 10:00), the monthly
//! database maintenance held to its window (Sunday 02:00–04:00 UTC) and announced an hour, a
//! week and two weeks ahead, and the quarterly restore drill (the latest verified backup
//! restored beside the live database, never over it), run by one or more scheduler replicas
//! that run each occurrence exactly once.
//!
//! ```sh
//! cargo run -p ops-examples --example scheduler                   # a week in about a minute
//! cargo run -p ops-examples --example scheduler -- --replicas 3   # three replicas on a
//!                                                                 # throwaway PostgreSQL, one killed
//! cargo run -p ops-examples --example scheduler -- --live --project P --region R \
//!     --service api --bucket app-data      # the real calendar, until SIGTERM (run it as a service)
//! ```
//!
//! A rehearsal plays `--days` (default 7) against the simulators, 10,000 times faster than
//! real time, and checks that every occurrence of every job ran exactly once or is recorded
//! as missed. With `--replicas N` the replicas share a PostgreSQL occurrence store and
//! journal, and one of them is killed mid-run: another takes its occurrence over.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ops_core::adapters::LogNotifier;
use ops_core::clock::{ScaledClock, SharedClock, system_clock};
use ops_core::contracts::{BackupFilter, RestoreTarget, latest_verified};
use ops_core::contracts::{BackupStore, Deployer};
use ops_core::engine::{Action, AutoApprove, Journal, MemoryJournal, Runbook, Runner, Step};
use ops_core::runbooks::RunbookConfig;
use ops_core::runbooks::{
    BackupAndVerify, BackupSource, BackupVerifyConfig, HealthCheck, HealthCheckConfig, Procedure,
    WeeklyReview, WeeklyReviewConfig,
};
use ops_core::schedule::{
    ChangeCalendarConfig, ChangeControl, Job, MemoryOccurrenceStore, OccurrenceStatus,
    OccurrenceStore, OutsideWindow, SEED_LEAD_TIMES, Schedule, ScheduleConfig, Scheduler,
    SchedulerConfig,
};
use ops_examples::providers::{gcp_client, postgres};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::sim::GcpSim;
use ops_gcp::storage::CloudStorage;
use ops_gcp::{CloudLogging, CloudRun};
use ops_postgres::{MaintenanceConfig, PgJournal, PgMaintenance, PgOccurrenceStore};
use tokio_util::sync::CancellationToken;

/// run the seeds' calendar: health check, backups, weekly review, maintenance
#[derive(Parser)]
#[command(name = "scheduler")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud Run service
    #[arg(long, env = "OPS_SERVICE", default_value = "api")]
    service: String,
    /// the bucket holding the SQLite database and its backups
    #[arg(long, env = "OPS_BUCKET", default_value = "app-data")]
    bucket: String,
    /// scheduler replicas in this process (more than one: a PostgreSQL store and journal)
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u8).range(1..=9))]
    replicas: u8,
    /// days a rehearsal plays
    #[arg(long, default_value = "7", value_parser = clap::value_parser!(u16).range(1..=92))]
    days: u16,
}

/// The database object the backups copy.
const DATABASE: &str = "data/app.db";
/// How much faster than real time a rehearsal plays.
const SPEED: f64 = 10_000.0;
/// Where the restore drill puts the restored copy, beside the live database.
const DRILL_COPY: &str = "drill/app.db";

/// The seeds' change calendar: maintenance only on Sunday 02:00–04:00 UTC.
const CALENDAR: &str = r#"
[windows.sunday-maintenance]
opens = "0 2 * * SUN"
lasts = "2h"
"#;

/// The quarterly restore drill: the latest verified backup restored beside the live database
/// (never over it), its size recorded.
fn restore_drill(store: Arc<dyn BackupStore>, target: &str) -> Runbook {
    let mut rb =
        Runbook::new("restore-drill", target).with_category(ops_core::engine::Category::Restore);
    let s1 = store.clone();
    let latest = rb.add_step::<String>(Step::read("latest-verified", move |_| {
        let store = s1.clone();
        Ok(Action::new(
            "latest_verified",
            serde_json::json!({}),
            async move {
                Ok(latest_verified(store.as_ref(), &BackupFilter::default())
                    .await?
                    .id)
            },
        ))
    }));
    rb.step(
        Step::mutate("restore-beside", move |ctx| {
            let (store, id) = (store.clone(), ctx.get(&latest)?);
            Ok(Action::new(
                "BackupStore::restore",
                serde_json::json!({ "backup": id, "to": DRILL_COPY }),
                async move {
                    let out = store
                        .restore(&id, &RestoreTarget::Other(DRILL_COPY.into()))
                        .await?;
                    Ok(out.bytes)
                },
            ))
        })
        .idempotent(),
    )
}

fn schedule(cron: &str, zone: &str) -> Result<Schedule, Failure> {
    Ok(Schedule::new(ScheduleConfig {
        cron: cron.into(),
        time_zone: zone.into(),
        ..ScheduleConfig::default()
    })?)
}

/// A name unique among the replicas of every machine: host, process and number.
fn replica_name(i: u8) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    format!("{host}-{}-{i}", std::process::id())
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let rehearsal = session.rehearsal();
    let dry_run = flags.common.dry_run;
    // Started first: a throwaway cluster takes seconds, which the fast clock must not play.
    let (db, _cluster) = postgres(&session, "app").await?;
    // Monday 2026-11-30 00:00 UTC, played fast; or the real clock.
    let clock: SharedClock = if rehearsal {
        let start = "2026-11-30T00:00:00Z".parse().map_err(Failure::usage)?;
        Arc::new(ScaledClock::starting_at(start, SPEED)?)
    } else {
        system_clock()
    };
    let start = clock.now();

    let sim = if rehearsal {
        let sim = GcpSim::builder().clock(clock.clone()).start().await;
        sim.create_service(&flags.service, "registry.example/api:1.0");
        sim.put_object(&flags.bucket, DATABASE, b"SQLite format 3\0 rehearsal");
        Some(sim)
    } else {
        None
    };
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let run = Arc::new(CloudRun::new(client.clone(), &flags.service)?);
    let logs = Arc::new(CloudLogging::new(client.clone(), &flags.service)?);
    let backups: Arc<dyn BackupStore> =
        Arc::new(CloudStorage::new(client, &flags.bucket, "backups/")?);
    let drill_store = backups.clone();
    // Where announcements go: the log here; a NotifyRouter with Slack and a status page live.
    let announcer = Arc::new(LogNotifier::default());

    let service = flags.service.clone();
    let health = HealthCheck::new(&service, HealthCheckConfig::default())
        .probe(Arc::new(run.health_probe()))
        .deployer(run.clone() as Arc<dyn Deployer>)
        .logs(logs.clone());
    let backup = BackupAndVerify::new(
        "app",
        backups,
        BackupSource::Create(ops_core::contracts::CreateBackup {
            source: DATABASE.into(),
            name: None,
            labels: Default::default(),
        }),
        BackupVerifyConfig::default(),
    );
    let review = WeeklyReview::new(&service, logs, WeeklyReviewConfig::default());
    let maintenance = PgMaintenance::new(db.clone(), MaintenanceConfig::default());
    let (health, backup, review, maintenance) = (
        Arc::new(health),
        Arc::new(backup),
        Arc::new(review),
        Arc::new(maintenance),
    );
    let jobs = || -> Result<Vec<Job>, Failure> {
        let (h, b, r, m, d) = (
            health.clone(),
            backup.clone(),
            review.clone(),
            maintenance.clone(),
            drill_store.clone(),
        );
        let service_name = service.clone();
        let jobs = vec![
            Job::new(
                "health-check",
                schedule("0 9 * * *", "Europe/London")?,
                move || h.runbook(),
            )?,
            Job::new("backup", schedule("0 * * * *", "UTC")?, move || b.runbook())?,
            Job::new(
                "weekly-review",
                schedule("0 10 * * MON", "Europe/London")?,
                move || r.runbook(),
            )?,
            // Monthly, first Sunday at 02:00 UTC; refused outside the window.
            Job::new(
                "maintenance",
                schedule("0 2 * * SUN#1", "UTC")?,
                move || {
                    Ok(m.runbook()?
                        .window_only("sunday-maintenance", OutsideWindow::Refuse))
                },
            )?,
            // Quarterly: the first of March, June, September and December at 03:00 UTC.
            Job::new(
                "restore-drill",
                schedule("0 3 1 3,6,9,12 *", "UTC")?,
                move || Ok(restore_drill(d.clone(), &service_name)),
            )?,
        ];
        // Maintenance announced 14 days, 7 days and an hour ahead.
        let announced = jobs[3].announcements(&SEED_LEAD_TIMES, announcer.clone())?;
        let jobs: Vec<Job> = jobs.into_iter().chain(announced).collect();
        // --dry-run: every occurrence plans its calls and changes nothing.
        Ok(jobs
            .into_iter()
            .map(|j| if dry_run { j.dry_run() } else { j })
            .collect())
    };

    // A rehearsal of one replica: the session's journal and an in-process store. Several, or
    // live (replicas on other machines): PostgreSQL.
    let shared = flags.replicas > 1 || !rehearsal;
    let (store, journal): (Arc<dyn OccurrenceStore>, Arc<dyn Journal>) = if shared {
        (
            Arc::new(PgOccurrenceStore::new(db.clone()).await?),
            Arc::new(PgJournal::new(db.clone()).await?),
        )
    } else {
        // In memory, like the store: the runs' ids are their occurrences', so a journal kept
        // from an earlier rehearsal would answer for this one's runs.
        (
            Arc::new(MemoryOccurrenceStore::new()),
            Arc::new(MemoryJournal::new()),
        )
    };
    let calendar = ChangeCalendarConfig::from_toml(CALENDAR)?;
    let change = Arc::new(ChangeControl::new(
        calendar,
        journal.clone(),
        clock.clone(),
    )?);
    let runner = Runner::new()
        .with_clock(clock.clone())
        .with_journal(journal)
        .with_change_control(change)
        .with_approver(Arc::new(AutoApprove {
            by: "scheduler".into(),
        }));
    let stop = CancellationToken::new();
    let mut replicas = Vec::new();
    for i in 0..flags.replicas {
        let config = SchedulerConfig {
            // Renewed every 40 minutes of the run's clock (240 ms of a rehearsal's real time).
            lease: Duration::from_secs(2 * 3600),
            ..SchedulerConfig::new(&replica_name(i))
        };
        let replica = Scheduler::new(config, runner.clone(), store.clone(), jobs()?)?;
        let handle = tokio::spawn({
            let (r, stop) = (replica.clone(), stop.clone());
            async move { r.run(stop).await }
        });
        replicas.push((replica, handle));
    }
    eprintln!(
        "scheduler: {} replica(s), jobs {}{}",
        flags.replicas,
        jobs()?
            .iter()
            .map(|j| j.name().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if rehearsal {
            format!(
                "; playing {} days from {start} at x{SPEED} (its own clock, not the session's)",
                flags.days
            )
        } else {
            String::new()
        }
    );

    if !rehearsal {
        // A service: run until SIGTERM or Ctrl-C, then let the runs in flight finish.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
        for (r, h) in replicas {
            let _ = h.await;
            r.drain().await;
        }
        return Ok(session.finish().await);
    }

    let length = chrono::Duration::days(i64::from(flags.days));
    let mut killed = None;
    if flags.replicas > 1 {
        // Kill the first replica caught running something, as a crash would.
        while killed.is_none() && clock.now() - start < length {
            clock.sleep(Duration::from_secs(60)).await;
            if let Some(i) = replicas.iter().position(|(r, _)| !r.in_flight().is_empty()) {
                let (victim, handle) = replicas.swap_remove(i);
                eprintln!(
                    "  killed a replica at {} while it ran {:?}",
                    clock.now(),
                    victim.in_flight()
                );
                victim.abort();
                let _ = handle.await;
                killed = Some(clock.now());
            }
        }
    }
    let left = length - (clock.now() - start);
    if let Ok(left) = left.to_std() {
        clock.sleep(left).await;
    }
    stop.cancel();
    for (r, h) in replicas {
        let _ = h.await;
        r.drain().await;
    }

    // Every occurrence in the played days: recorded once, and how it went.
    let end = start + length;
    let mut all_once = true;
    let mut failed = Vec::new();
    for job in jobs()? {
        let mut expected = Vec::new();
        let mut t = start;
        while let Some(o) = job.schedule().next_after(t)? {
            // The last hour's occurrences may still be starting when the rehearsal ends.
            if o > end - chrono::Duration::hours(1) {
                break;
            }
            expected.push(o);
            t = o;
        }
        let records = store.records(job.name(), start, end).await?;
        let recorded: Vec<_> = records
            .iter()
            .map(|r| r.occurrence)
            .filter(|o| expected.contains(o))
            .collect();
        let ok = recorded == expected && records.iter().all(|r| r.status.is_final());
        if !ok {
            let absent: Vec<_> = expected.iter().filter(|o| !recorded.contains(o)).collect();
            let open: Vec<_> = records.iter().filter(|r| !r.status.is_final()).collect();
            eprintln!(
                "  {}: not recorded {absent:?}; not final {open:?}",
                job.name()
            );
        }
        all_once &= ok;
        let count = |s: OccurrenceStatus| records.iter().filter(|r| r.status == s).count();
        eprintln!(
            "  {:<14} {:>3} occurrences: {} succeeded, {} failed, {} missed, {} skipped, {} taken over",
            job.name(),
            expected.len(),
            count(OccurrenceStatus::Succeeded),
            count(OccurrenceStatus::Failed),
            count(OccurrenceStatus::Missed),
            count(OccurrenceStatus::Skipped),
            records.iter().filter(|r| r.takeovers > 0).count()
        );
        failed.extend(
            records
                .iter()
                .filter(|r| r.status == OccurrenceStatus::Failed)
                .map(|r| {
                    format!(
                        "{} {}: {}",
                        r.schedule,
                        r.occurrence,
                        r.detail.clone().unwrap_or_default()
                    )
                }),
        );
    }
    for f in &failed {
        eprintln!("    failed: {f}");
    }
    session.check(
        "every occurrence ran exactly once or is recorded as missed",
        all_once,
    );
    session.check("every run succeeded", failed.is_empty());
    if flags.replicas > 1 {
        session.check("a replica was killed mid-run", killed.is_some());
    }
    Ok(session.finish().await)
}
