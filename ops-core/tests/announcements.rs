//! Maintenance announced ahead of time: each lead time sent once per occurrence by two
//! replicas, naming the time it announces; not held by a stopped line; planned, not sent, for a
//! dry-run job; bad lead times refused. Simulated time (a paused tokio runtime).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::engine::{Action, MemoryJournal, Runbook, Runner, Step};
use ops_core::memory::MemoryNotifier;
use ops_core::schedule::*;
use tokio_util::sync::CancellationToken;

fn start() -> DateTime<Utc> {
    "2026-11-30T00:00:00Z".parse().unwrap()
}

/// Database maintenance on the first Sunday of each month at 02:00 UTC.
fn maintenance(ran: Arc<Mutex<u32>>) -> Job {
    Job::new(
        "db-maintenance",
        Schedule::cron("0 2 * * SUN#1", "UTC").unwrap(),
        move || {
            let ran = ran.clone();
            Ok(
                Runbook::new("vacuum", "db").step(Step::mutate("vacuum", move |_| {
                    let ran = ran.clone();
                    Ok(Action::new("vacuum", serde_json::json!({}), async move {
                        *ran.lock().unwrap() += 1;
                        Ok(())
                    }))
                })),
            )
        },
    )
    .unwrap()
}

async fn play(replicas: &[Scheduler], clock: &SimulatedClock, length: Duration) {
    let stop = CancellationToken::new();
    let loops: Vec<_> = replicas
        .iter()
        .map(|r| {
            let (r, stop) = (r.clone(), stop.clone());
            tokio::spawn(async move { r.run(stop).await })
        })
        .collect();
    clock.sleep(length).await;
    stop.cancel();
    for l in loops {
        l.await.unwrap();
    }
    for r in replicas {
        r.drain().await;
    }
}

#[tokio::test(start_paused = true)]
async fn each_lead_time_is_announced_once_by_two_replicas_and_a_stopped_line_does_not_hold_it() {
    let clock = Arc::new(SimulatedClock::starting_at(start()));
    let (store, journal) = (
        Arc::new(MemoryOccurrenceStore::new()),
        Arc::new(MemoryJournal::new()),
    );
    let recorder = Arc::new(MemoryNotifier::new("announcements"));
    let ran = Arc::new(Mutex::new(0));
    let control = Arc::new(
        ChangeControl::new(
            ChangeCalendarConfig::default(),
            journal.clone(),
            clock.clone(),
        )
        .unwrap(),
    );
    // The line is stopped throughout: maintenance is refused, announcements still go out.
    control
        .stop_the_line("alice", "quarter close")
        .await
        .unwrap();
    let replicas: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let job = maintenance(ran.clone());
            let mut jobs = job
                .announcements(&SEED_LEAD_TIMES, recorder.clone())
                .unwrap();
            jobs.push(job);
            let runner = Runner::new()
                .with_clock(clock.clone())
                .with_journal(journal.clone())
                .with_change_control(control.clone());
            // A long lease: few idle ticks over 40 simulated days.
            let config = SchedulerConfig {
                lease: Duration::from_secs(3600),
                ..SchedulerConfig::new(name)
            };
            Scheduler::new(config, runner, store.clone(), jobs).unwrap()
        })
        .collect();
    play(&replicas, &clock, Duration::from_secs(40 * 86_400)).await;

    let mut sent: Vec<_> = recorder.sent().iter().map(|n| n.title.clone()).collect();
    sent.sort();
    // 6 December: only the hour-ahead one comes after the start; 3 January: all three.
    assert_eq!(
        sent,
        vec![
            "Scheduled maintenance: db-maintenance on Sunday 2026-12-06 02:00 UTC (in 1h)",
            "Scheduled maintenance: db-maintenance on Sunday 2027-01-03 02:00 UTC (in 14d)",
            "Scheduled maintenance: db-maintenance on Sunday 2027-01-03 02:00 UTC (in 1h)",
            "Scheduled maintenance: db-maintenance on Sunday 2027-01-03 02:00 UTC (in 7d)",
        ]
    );
    assert_eq!(
        *ran.lock().unwrap(),
        0,
        "the stopped line held the maintenance"
    );
    let records = store
        .records("db-maintenance", start(), clock.now())
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.status == OccurrenceStatus::Failed
        && r.detail.as_deref().unwrap_or("").contains("line stopped")));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_jobs_announcements_are_planned_not_sent() {
    let clock = Arc::new(SimulatedClock::starting_at(start()));
    let recorder = Arc::new(MemoryNotifier::new("announcements"));
    let job = maintenance(Arc::default()).dry_run();
    let jobs = job
        .announcements(&[Duration::from_secs(3600)], recorder.clone())
        .unwrap();
    assert_eq!(jobs[0].name(), "db-maintenance.announce-1h");
    let runner = Runner::new().with_clock(clock.clone());
    let store = Arc::new(MemoryOccurrenceStore::new());
    let config = SchedulerConfig {
        lease: Duration::from_secs(3600),
        ..SchedulerConfig::new("a")
    };
    let s = Scheduler::new(config, runner, store.clone(), jobs).unwrap();
    play(&[s], &clock, Duration::from_secs(8 * 86_400)).await;
    assert!(recorder.sent().is_empty());
    let records = store
        .records("db-maintenance.announce-1h", start(), clock.now())
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, OccurrenceStatus::Succeeded);
}

#[test]
fn lead_times_are_checked() {
    let job = maintenance(Arc::default());
    for lead in [Duration::ZERO, Duration::from_secs(367 * 86_400)] {
        let e = job
            .announcement(lead, Arc::new(MemoryNotifier::new("announcements")))
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidInput { field, .. } if field == "lead"));
    }
    // The moved schedule's occurrences are exactly the lead before the job's.
    let s = job
        .schedule()
        .earlier_by(Duration::from_secs(7 * 86_400))
        .unwrap();
    let t = start();
    let ahead = s.next_after(t).unwrap().unwrap();
    assert_eq!(
        ahead,
        "2027-01-03T02:00:00Z".parse::<DateTime<Utc>>().unwrap() - chrono::Duration::days(7)
    );
    assert_eq!(s.lead(), Duration::from_secs(7 * 86_400));
}
