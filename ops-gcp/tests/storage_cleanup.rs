//! Storage usage and the cleanup of old objects: against fake-gcs-server (an emulator we did
//! not write) for the listing, the sizes and the generation-guarded deletes, and against the
//! simulator for objects of different ages, the size threshold and objects replaced meanwhile.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{Clock, ManualClock, SystemClock};
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::runbooks::Procedure;
use ops_core::sim::{Fault, Simulator};
use ops_gcp::CloudStorage;
use ops_gcp::sim::GcpSim;
use ops_gcp::storage::cleanup::{CleanupConfig, CleanupObjects};
use support::fake_gcs::FakeGcs;

const BUCKET: &str = "acme-data";
const DAY: Duration = Duration::from_secs(86_400);

fn config(prefixes: &[&str], older_than: Duration) -> CleanupConfig {
    CleanupConfig {
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        older_than,
        only_above_bytes: None,
    }
}

#[tokio::test]
async fn old_logs_and_checkpoints_go_and_nothing_else_on_fake_gcs() {
    let gcs = FakeGcs::start(&[BUCKET]).await;
    for (name, len) in [
        ("logs/2026-10-01.log", 1000),
        ("logs/2026-10-02.log", 2000),
        ("checkpoints/step-100.ckpt", 5000),
        ("data/app.db", 7000),
        ("logsbook/keep.txt", 300),
    ] {
        gcs.put_object(BUCKET, name, &vec![7u8; len]).await;
    }
    let store = CloudStorage::new(gcs.client(), BUCKET, "").unwrap();
    let usage = store.usage("logs/").await.unwrap();
    assert_eq!((usage.objects, usage.bytes), (2, 3000));
    assert_eq!(usage.location, "gs://acme-data/logs/");

    // Sixty days on: everything the emulator stored today is old.
    let later = SystemClock.now() + chrono::Duration::days(60);
    let runner = Runner::new().with_clock(Arc::new(ManualClock::starting_at(later)));
    let cleanup = CleanupObjects::new(store.clone(), config(&["logs/", "checkpoints/"], 30 * DAY));
    let planned = cleanup.run(&runner, Mode::DryRun).await.unwrap();
    let (plan, outcome) = planned.summary.unwrap();
    assert!(outcome.is_none());
    assert_eq!(
        (plan.expired.len(), plan.bytes),
        (3, 8000),
        "the dry run counts and sizes"
    );
    assert_eq!(
        store.usage("logs/").await.unwrap().objects,
        2,
        "and deletes nothing"
    );

    let done = cleanup.run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let outcome = done.summary.unwrap().1.unwrap();
    assert_eq!((outcome.deleted, outcome.bytes), (3, 8000));
    assert_eq!(store.usage("logs/").await.unwrap().objects, 0);
    assert_eq!(store.usage("checkpoints/").await.unwrap().objects, 0);
    assert_eq!(
        store.usage("data/").await.unwrap().objects,
        1,
        "outside the prefixes: kept"
    );
    assert_eq!(
        store.usage("logsbook/").await.unwrap().objects,
        1,
        "a neighbour name: kept"
    );
}

#[tokio::test]
async fn young_objects_stay_the_threshold_holds_and_replaced_objects_are_left() {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-01T00:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.put_object(BUCKET, "logs/old-1.log", &[1u8; 400]);
    sim.put_object(BUCKET, "logs/old-2.log", &[1u8; 600]);
    clock.advance(40 * DAY);
    sim.put_object(BUCKET, "logs/new.log", &[1u8; 100]);
    let store = CloudStorage::new(sim.client().unwrap(), BUCKET, "").unwrap();
    let runner = Runner::new().with_clock(clock.clone());

    // Under the size threshold: nothing to clean.
    let mut small = config(&["logs/"], 30 * DAY);
    small.only_above_bytes = Some(10_000);
    let done = CleanupObjects::new(store.clone(), small)
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    let (plan, outcome) = done.summary.unwrap();
    assert!(plan.expired.is_empty() && plan.note.is_some(), "{plan:?}");
    assert_eq!(outcome.unwrap().deleted, 0);

    // One old object is replaced by a new upload between the plan and its delete.
    sim.inject(
        Some("DELETE"),
        "old-2.log",
        1,
        Fault::Status {
            status: 412,
            retry_after: None,
        },
    );
    let done = CleanupObjects::new(store.clone(), config(&["logs/"], 30 * DAY))
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let outcome = done.summary.unwrap().1.unwrap();
    assert_eq!(outcome.deleted, 1);
    assert_eq!(outcome.replaced, ["logs/old-2.log"]);
    let left: Vec<String> = sim.object_names(BUCKET);
    assert_eq!(left, ["logs/new.log", "logs/old-2.log"]);
}

#[test]
fn a_whole_bucket_or_an_escaping_prefix_is_refused() {
    use ops_core::config::RunbookConfig;
    for prefixes in [
        vec![],
        vec![""],
        vec!["  "],
        vec!["/abs"],
        vec!["logs/../data"],
    ] {
        assert!(config(&prefixes, DAY).validate().is_err(), "{prefixes:?}");
    }
    assert!(config(&["logs/"], Duration::ZERO).validate().is_err());
}
