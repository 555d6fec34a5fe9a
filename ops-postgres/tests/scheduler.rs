//! Scheduler replicas agreeing through a real PostgreSQL: the occurrence store suite, and
//! three replicas sharing the store and the journal while the test kills them (process death)
//! and terminates their database sessions, over a month of hourly occurrences played 28,800
//! times faster than real time: every occurrence recorded once, no change run twice. Each replica
//! runs under its own `PgRunLock` (a machine's), so a terminated session also takes the run's
//! lock away: the run stops before its next change and resumes under a new fence.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, ScaledClock};
use ops_core::engine::{
    Action, EventKind, Journal, JournalFilter, LockWait, Runbook, Runner, Step,
};
use ops_core::schedule::*;
use ops_postgres::cluster::TestCluster;
use ops_postgres::{PgJournal, PgOccurrenceStore, PgRunLock};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_passes_the_occurrence_store_suite() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_occurrences_suite").await.unwrap();
    let store = PgOccurrenceStore::new(db).await.unwrap();
    ops_core::testkit::occurrence_store(&store, "pg").await;
}

type Executions = Arc<Mutex<BTreeMap<(String, &'static str), u32>>>;

fn runbook(executions: Executions) -> Runbook {
    let e1 = executions.clone();
    Runbook::new("sync", "api")
        .step(Step::mutate("prepare", move |ctx| {
            let (e, run) = (e1.clone(), ctx.run_id().to_string());
            Ok(Action::new("prepare", serde_json::json!({}), async move {
                *e.lock().unwrap().entry((run, "prepare")).or_default() += 1;
                Ok(())
            }))
        }))
        .step(
            Step::mutate("work", move |ctx| {
                let (e, run, clock) = (
                    executions.clone(),
                    ctx.run_id().to_string(),
                    ctx.clock().clone(),
                );
                Ok(Action::new("work", serde_json::json!({}), async move {
                    clock.sleep(Duration::from_secs(5 * 60)).await;
                    *e.lock().unwrap().entry((run, "work")).or_default() += 1;
                    Ok(())
                }))
            })
            .idempotent(),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_and_cut_off_still_run_every_occurrence_once() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_scheduler").await.unwrap();
    let store = Arc::new(PgOccurrenceStore::new(db.clone()).await.unwrap());
    let journal = Arc::new(PgJournal::new(db.clone()).await.unwrap());
    let start: DateTime<Utc> = "2026-11-30T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ScaledClock::starting_at(start, 28_800.0).unwrap());
    let executions: Executions = Arc::default();
    let schedule = ScheduleConfig {
        cron: "0 * * * *".into(),
        ..ScheduleConfig::default()
    };
    let stop = CancellationToken::new();
    let lock = || async {
        Arc::new(
            PgRunLock::new(db.clone())
                .await
                .unwrap()
                .with_clock(clock.clone())
                .with_keepalive(Duration::from_secs(20 * 60)), // 42 ms of real time
        )
    };
    let launch = |name: String, lock: Arc<PgRunLock>| {
        let e = executions.clone();
        let job = Job::new(
            "sync",
            Schedule::new(schedule.clone()).unwrap(),
            move || Ok(runbook(e.clone())),
        )
        .unwrap();
        let runner = Runner::new()
            .with_clock(clock.clone())
            .with_journal(journal.clone())
            .with_lock(lock, LockWait::Wait(Duration::from_secs(4 * 3600)));
        let config = SchedulerConfig {
            lease: Duration::from_secs(4 * 3600), // 0.5 s of real time
            ..SchedulerConfig::new(&name)
        };
        let r = Scheduler::new(config, runner, store.clone(), vec![job]).unwrap();
        let handle = tokio::spawn({
            let (r, stop) = (r.clone(), stop.clone());
            async move { r.run(stop).await }
        });
        (r, handle)
    };
    let admin = cluster.database_pool("postgres").unwrap();
    let mut live = Vec::new();
    for i in 0..3 {
        live.push(launch(format!("r{i}"), lock().await));
    }
    // Fault times and kinds from one seed; which idle replica dies from another, so timing
    // differences between machines do not change the faults.
    let (mut rng, mut pick) = (fastrand::Rng::with_seed(7), fastrand::Rng::with_seed(8));
    let (mut killed, mut cut_off, mut n) = (0u32, 0u32, 3u32);
    let length = chrono::Duration::days(30);
    while clock.now() - start < length {
        // Every 8 to 24 simulated hours (1 to 3 s), a fault.
        clock
            .sleep(Duration::from_secs(rng.u64(8 * 3600..24 * 3600)))
            .await;
        if rng.bool() {
            // A replica's process dies (the one running something, if any) and restarts.
            let victim = live
                .iter()
                .position(|(r, _)| !r.in_flight().is_empty())
                .unwrap_or_else(|| pick.usize(..live.len()));
            let (dead, handle) = live.swap_remove(victim);
            dead.abort();
            handle.await.unwrap();
            live.push(launch(format!("r{n}"), lock().await));
            n += 1;
            killed += 1;
        } else {
            // Every session of the replicas is terminated (a failover, an operator), while a
            // run holds its lock if one comes within the hour.
            for _ in 0..60 {
                if live.iter().any(|(r, _)| !r.in_flight().is_empty()) {
                    break;
                }
                clock.sleep(Duration::from_secs(60)).await;
            }
            let client = admin.client().await.unwrap();
            client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = 'ops_scheduler' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            cut_off += 1;
        }
    }
    // The last runs end, dead replicas' runs are taken over.
    clock.sleep(Duration::from_secs(8 * 3600)).await;
    stop.cancel();
    for (r, h) in live {
        h.await.unwrap();
        r.drain().await;
    }
    assert!(
        killed >= 10 && cut_off >= 10,
        "{killed} killed, {cut_off} cut off"
    );

    let records = store.records("sync", start, start + length).await.unwrap();
    let expected = length.num_hours() as usize;
    assert_eq!(records.len(), expected, "every occurrence recorded once");
    let mut by_status = BTreeMap::<String, u32>::new();
    for r in &records {
        let run = run_id("sync", r.occurrence);
        let count = |step| {
            executions
                .lock()
                .unwrap()
                .get(&(run.clone(), step))
                .copied()
                .unwrap_or(0)
        };
        assert!(count("prepare") <= 1, "{run}: the change ran twice");
        match r.status {
            OccurrenceStatus::Succeeded => {
                assert_eq!((count("prepare"), count("work") >= 1), (1, true), "{r:?}")
            }
            // Skipped (a dead replica's run still held its lease when the next one came),
            // failed or missed: recorded, with the reason.
            OccurrenceStatus::Failed | OccurrenceStatus::Skipped | OccurrenceStatus::Missed => {
                eprintln!("{:?} {}: {:?}", r.status, r.occurrence, r.detail);
                assert!(r.detail.is_some(), "it says why: {r:?}")
            }
            OccurrenceStatus::Running => panic!("still running after the end: {r:?}"),
        }
        *by_status.entry(format!("{:?}", r.status)).or_default() += 1;
    }
    // Runs that lost their lock went on under a later fence, and no fence was used twice.
    let events = journal.events(&JournalFilter::default()).await.unwrap();
    let lost = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::LockLost { .. }))
        .count();
    // Each acquisition of the lock has its own fence: one run per fence.
    let mut fences = BTreeMap::<u64, std::collections::BTreeSet<&str>>::new();
    for e in &events {
        if let EventKind::StepStarted { fence: Some(f), .. } = &e.kind {
            fences.entry(*f).or_default().insert(e.run_id.as_str());
        }
    }
    let used = fences.len();
    assert!(
        fences.values().all(|runs| runs.len() == 1),
        "a fence shared by two runs: {fences:?}"
    );
    assert!(used > 0, "the steps ran under a lock");

    eprintln!("{killed} killed, {cut_off} cut off, {lost} locks lost: {by_status:?}");
    let succeeded = by_status.get("Succeeded").copied().unwrap_or(0) as usize;
    assert!(
        succeeded * 10 >= expected * 8,
        "at least 80 % succeeded: {by_status:?}"
    );
}
