//! The scheduler: replicas sharing one occurrence store and one journal run each occurrence
//! exactly once; a replica killed mid-run is taken over after its lease and its run resumed;
//! missed, skipped and cancelled occurrences are recorded. Simulated time (a paused tokio
//! runtime): days play out in moments.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::engine::{Action, Journal, MemoryJournal, Runbook, Runner, Step};
use ops_core::schedule::*;
use tokio_util::sync::CancellationToken;

fn start() -> DateTime<Utc> {
    "2026-11-30T00:00:00Z".parse().unwrap()
}

/// How many times each run executed each step.
type Executions = Arc<Mutex<BTreeMap<(String, String), u32>>>;

/// A runbook of two steps: `prepare` (a non-idempotent change, counted), then `work`, which
/// takes `work` of the run's clock and is safe to repeat.
fn runbook(executions: Executions, work: Duration) -> Runbook {
    let e1 = executions.clone();
    Runbook::new("nightly", "api")
        .step(Step::mutate("prepare", move |ctx| {
            let (e, run) = (e1.clone(), ctx.run_id().to_string());
            Ok(Action::new("prepare", serde_json::json!({}), async move {
                *e.lock()
                    .unwrap()
                    .entry((run, "prepare".into()))
                    .or_default() += 1;
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
                    *e.lock()
                        .unwrap()
                        .entry((run.clone(), "work-started".into()))
                        .or_default() += 1;
                    clock.sleep(work).await;
                    *e.lock().unwrap().entry((run, "work".into())).or_default() += 1;
                    Ok(())
                }))
            })
            .idempotent(),
        )
}

struct Replicas {
    clock: Arc<SimulatedClock>,
    store: Arc<MemoryOccurrenceStore>,
    journal: Arc<MemoryJournal>,
    executions: Executions,
}

impl Replicas {
    fn new() -> Self {
        Self {
            clock: Arc::new(SimulatedClock::starting_at(start())),
            store: Arc::new(MemoryOccurrenceStore::new()),
            journal: Arc::new(MemoryJournal::new()),
            executions: Arc::default(),
        }
    }

    fn replica(&self, name: &str, jobs: Vec<Job>, lease: Duration) -> Scheduler {
        let runner = Runner::new()
            .with_clock(self.clock.clone())
            .with_journal(self.journal.clone());
        let config = SchedulerConfig {
            lease,
            ..SchedulerConfig::new(name)
        };
        Scheduler::new(config, runner, self.store.clone(), jobs).unwrap()
    }

    fn job(&self, name: &str, schedule: ScheduleConfig, work: Duration) -> Job {
        let e = self.executions.clone();
        Job::new(name, Schedule::new(schedule).unwrap(), move || {
            Ok(runbook(e.clone(), work))
        })
        .unwrap()
    }

    fn count(&self, run: &str, step: &str) -> u32 {
        self.executions
            .lock()
            .unwrap()
            .get(&(run.to_string(), step.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

fn hourly() -> ScheduleConfig {
    ScheduleConfig {
        cron: "0 * * * *".into(),
        ..ScheduleConfig::default()
    }
}

async fn play(replicas: &[Scheduler], clock: &SimulatedClock, length: Duration) {
    let stop = CancellationToken::new();
    let loops: Vec<_> = replicas
        .iter()
        .map(|r| {
            tokio::spawn({
                let (r, stop) = (r.clone(), stop.clone());
                async move { r.run(stop).await }
            })
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
async fn three_replicas_run_every_occurrence_exactly_once() {
    let w = Replicas::new();
    let work = Duration::from_secs(10 * 60);
    let replicas: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            w.replica(
                n,
                vec![w.job("backup", hourly(), work)],
                Duration::from_secs(60),
            )
        })
        .collect();
    play(
        &replicas,
        &w.clock,
        Duration::from_secs(3 * 24 * 3600 + 1800),
    )
    .await;

    let records = w
        .store
        .records("backup", start(), w.clock.now())
        .await
        .unwrap();
    // 01:00 on day one through 00:00 on day four: 72 hours.
    assert_eq!(records.len(), 72, "{records:#?}");
    for r in &records {
        assert_eq!(r.status, OccurrenceStatus::Succeeded, "{r:?}");
        let run = run_id("backup", r.occurrence);
        assert_eq!(r.run_id.as_deref(), Some(run.as_str()));
        assert_eq!(
            (w.count(&run, "prepare"), w.count(&run, "work")),
            (1, 1),
            "{run}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_replica_killed_mid_run_is_taken_over_and_its_run_resumed() {
    let w = Replicas::new();
    let lease = Duration::from_secs(60);
    let work = Duration::from_secs(20 * 60);
    let a = w.replica("a", vec![w.job("backup", hourly(), work)], lease);
    let b = w.replica("b", vec![w.job("backup", hourly(), work)], lease);
    // Only a ticks until 01:05: it runs the 01:00 occurrence, 5 minutes into its work.
    a.tick().await.unwrap();
    w.clock.sleep(Duration::from_secs(3600)).await;
    let tick = a.tick().await.unwrap();
    assert_eq!(tick.started.len(), 1);
    let occurrence: DateTime<Utc> = "2026-11-30T01:00:00Z".parse().unwrap();
    let run = run_id("backup", occurrence);
    let heartbeat = {
        let a = a.clone();
        tokio::spawn(async move {
            // a renews its lease meanwhile.
            a.drain().await;
        })
    };
    w.clock.sleep(Duration::from_secs(5 * 60)).await;
    assert_eq!(
        (w.count(&run, "prepare"), w.count(&run, "work-started")),
        (1, 1)
    );
    // a dies mid-step.
    a.abort();
    heartbeat.await.unwrap();
    let died = w.clock.now();

    // b ticks from now on, as a replica's loop does.
    let stop = CancellationToken::new();
    let b_loop = tokio::spawn({
        let (b, stop) = (b.clone(), stop.clone());
        async move { b.run(stop).await }
    });
    // Wait (in simulated time) until b has taken over.
    let taken = loop {
        let r = &w
            .store
            .records("backup", occurrence, occurrence)
            .await
            .unwrap()[0];
        if r.replica.as_deref() == Some("b") {
            break w.clock.now();
        }
        w.clock.sleep(Duration::from_secs(1)).await;
    };
    assert!(
        taken - died <= chrono::Duration::seconds(60 + 10 + 20 + 2),
        "taken over {}s after the death: lease 60 s, margin 10 s, ticks every 20 s",
        (taken - died).num_seconds()
    );
    w.clock.sleep(Duration::from_secs(30 * 60)).await;
    stop.cancel();
    b_loop.await.unwrap();
    b.drain().await;

    let r = &w
        .store
        .records("backup", occurrence, occurrence)
        .await
        .unwrap()[0];
    assert_eq!(
        (r.status, r.takeovers),
        (OccurrenceStatus::Succeeded, 1),
        "{r:?}"
    );
    // The journal's run resumed: the change before the death was not repeated, the
    // interrupted idempotent step ran again and finished.
    assert_eq!(w.count(&run, "prepare"), 1);
    assert_eq!(
        (w.count(&run, "work-started"), w.count(&run, "work")),
        (2, 1)
    );
    let events = w
        .journal
        .events(&ops_core::engine::JournalFilter::run(&run))
        .await
        .unwrap();
    assert!(!events.is_empty());
}

#[tokio::test(start_paused = true)]
async fn takeover_fail_records_the_dead_replicas_run_as_failed() {
    let w = Replicas::new();
    let lease = Duration::from_secs(60);
    let job = |w: &Replicas| {
        w.job("restore-drill", hourly(), Duration::from_secs(3600))
            .on_takeover(Takeover::Fail)
    };
    let a = w.replica("a", vec![job(&w)], lease);
    let b = w.replica("b", vec![job(&w)], lease);
    a.tick().await.unwrap();
    w.clock.sleep(Duration::from_secs(3600)).await;
    assert_eq!(a.tick().await.unwrap().started.len(), 1);
    a.abort();
    // The lease (60 s) and the takeover margin (10 s) after the last renewal.
    w.clock.sleep(Duration::from_secs(71)).await;
    let tick = b.tick().await.unwrap();
    assert_eq!(tick.taken_over.len(), 1);
    let r = &w
        .store
        .records("restore-drill", start(), w.clock.now())
        .await
        .unwrap()[0];
    assert_eq!(r.status, OccurrenceStatus::Failed);
    assert!(
        r.detail.as_deref().unwrap().contains("replica a stopped"),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn occurrences_missed_while_nothing_ran_are_recorded_and_the_latest_caught_up() {
    let w = Replicas::new();
    let config = ScheduleConfig {
        deadline: Some(Duration::from_secs(600)),
        ..hourly()
    };
    let a = w.replica(
        "a",
        vec![w.job("check", config, Duration::from_secs(60))],
        Duration::from_secs(60),
    );
    a.tick().await.unwrap(); // first seen at 00:00
    // Nothing runs from 00:00 to 05:30.
    w.clock.sleep(Duration::from_secs(5 * 3600 + 1800)).await;
    let tick = a.tick().await.unwrap();
    assert_eq!(tick.missed.len(), 4, "01:00 to 04:00: {tick:?}");
    assert_eq!(tick.started.len(), 1, "05:00 caught up once");
    a.drain().await;
    let records = w
        .store
        .records("check", start(), w.clock.now())
        .await
        .unwrap();
    let statuses: Vec<_> = records.iter().map(|r| r.status).collect();
    use OccurrenceStatus::*;
    assert_eq!(statuses, [Missed, Missed, Missed, Missed, Succeeded]);
    assert!(
        records[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("deadline passed")
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_still_going_makes_the_next_occurrence_skip_wait_or_cancel_it() {
    for (overlap, expected) in [
        (Overlap::Skip, "skipped"),
        (Overlap::Queue, "queued"),
        (Overlap::CancelRunning, "cancelled"),
    ] {
        let w = Replicas::new();
        let config = ScheduleConfig {
            cron: "*/10 * * * *".into(),
            overlap,
            ..ScheduleConfig::default()
        };
        // Each run takes 25 minutes; occurrences come every 10.
        let a = w.replica(
            "a",
            vec![w.job("sync", config, Duration::from_secs(25 * 60))],
            Duration::from_secs(60),
        );
        play(
            std::slice::from_ref(&a),
            &w.clock,
            Duration::from_secs(45 * 60),
        )
        .await;
        let records = w
            .store
            .records("sync", start(), w.clock.now())
            .await
            .unwrap();
        let at = |m: u32| start() + chrono::Duration::minutes(m.into());
        let status = |m: u32| {
            records
                .iter()
                .find(|r| r.occurrence == at(m))
                .map(|r| r.status)
        };
        use OccurrenceStatus::*;
        match expected {
            "skipped" => {
                assert_eq!(status(10), Some(Succeeded), "{records:#?}");
                assert_eq!((status(20), status(30)), (Some(Skipped), Some(Skipped)));
                assert_eq!(status(40), Some(Succeeded));
            }
            "queued" => {
                // 00:20 waited for 00:10 (which ended at 00:35); by then its deadline (the
                // next occurrence) had passed and 00:30 was due on time: 00:20 is missed and
                // 00:30 runs. 00:40 still waits for it when the test ends.
                assert_eq!(status(10), Some(Succeeded), "{records:#?}");
                assert_eq!(status(20), Some(Missed));
                assert_eq!(status(30), Some(Succeeded));
                assert_eq!(status(40), None);
            }
            _ => {
                // Each run was cancelled by the next occurrence, until 00:40's had time to end.
                for m in [10, 20, 30] {
                    assert_eq!(status(m), Some(Failed), "{records:#?}");
                }
                assert_eq!(status(40), Some(Succeeded));
                assert!(
                    records
                        .iter()
                        .find(|r| r.occurrence == at(10))
                        .unwrap()
                        .detail
                        .as_deref()
                        .unwrap()
                        .contains("cancel"),
                    "{records:#?}"
                );
            }
        }
    }
}

#[test]
fn replicas_and_jobs_are_checked_by_field() {
    let w = Replicas::new();
    let runner = Runner::new();
    let twice = vec![
        w.job("x", hourly(), Duration::ZERO),
        w.job("x", hourly(), Duration::ZERO),
    ];
    let err = Scheduler::new(
        SchedulerConfig::new("a"),
        runner.clone(),
        w.store.clone(),
        twice,
    )
    .unwrap_err();
    assert!(err.to_string().contains("two jobs are named x"), "{err}");
    let err = Scheduler::new(
        SchedulerConfig::new("a b"),
        runner.clone(),
        w.store.clone(),
        vec![],
    )
    .unwrap_err();
    assert!(err.to_string().contains("replica"), "{err}");
    let err = Job::new(
        "../etc",
        Schedule::cron("@daily", "UTC").unwrap(),
        || unreachable!(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("name"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_month_of_killed_replicas_runs_every_occurrence_once_and_misses_none() {
    let w = Replicas::new();
    let lease = Duration::from_secs(300);
    let job = |w: &Replicas| w.job("backup", hourly(), Duration::from_secs(15 * 60));
    let stop = CancellationToken::new();
    let launch = |name: String| {
        let r = w.replica(&name, vec![job(&w)], lease);
        let handle = tokio::spawn({
            let (r, stop) = (r.clone(), stop.clone());
            async move { r.run(stop).await }
        });
        (r, handle)
    };
    let mut live: Vec<_> = (0..3).map(|i| launch(format!("r{i}"))).collect();
    let mut rng = fastrand::Rng::with_seed(22);
    let (mut kills, mut mid_run) = (0u32, 0u32);
    let month = chrono::Duration::days(30);
    while w.clock.now() - start() < month {
        w.clock
            .sleep(Duration::from_secs(rng.u64(20 * 60..100 * 60)))
            .await;
        // Kill the replica running something if there is one (else any), and start a new
        // process in its place.
        let victim = live
            .iter()
            .position(|(r, _)| !r.in_flight().is_empty())
            .unwrap_or_else(|| rng.usize(..live.len()));
        mid_run += u32::from(!live[victim].0.in_flight().is_empty());
        let (dead, handle) = live.swap_remove(victim);
        dead.abort();
        handle.await.unwrap();
        kills += 1;
        live.push(launch(format!("r{}", kills + 2)));
    }
    // Let the last runs finish.
    w.clock.sleep(Duration::from_secs(3600)).await;
    stop.cancel();
    for (r, h) in live {
        h.await.unwrap();
        r.drain().await;
    }
    assert!(
        kills > 400 && mid_run > 100,
        "{kills} kills, {mid_run} mid-run"
    );

    let records = w
        .store
        .records("backup", start(), start() + month)
        .await
        .unwrap();
    // Every hour of the month has its record: none missed silently.
    assert_eq!(records.len(), 30 * 24, "one record per occurrence");
    let mut resumed = 0;
    for r in &records {
        let run = run_id("backup", r.occurrence);
        // The non-idempotent step never ran twice, whoever died when.
        assert!(w.count(&run, "prepare") <= 1, "{run} prepared twice");
        match r.status {
            OccurrenceStatus::Succeeded => {
                assert_eq!(w.count(&run, "prepare"), 1, "{r:?}");
                assert!(w.count(&run, "work") >= 1, "{r:?}");
            }
            // Killed between the change and its journal entry: the engine will not repeat a
            // change it cannot know finished, and the approver (deny by default) said no.
            OccurrenceStatus::Failed => {
                assert!(
                    r.detail.as_deref().unwrap_or("").contains("prepare"),
                    "{r:?}"
                )
            }
            other => panic!("{other:?}: {r:?}"),
        }
        resumed += u32::from(r.takeovers > 0);
    }
    let failed = records
        .iter()
        .filter(|r| r.status == OccurrenceStatus::Failed)
        .count();
    eprintln!("{kills} kills ({mid_run} mid-run), {resumed} taken over, {failed} failed");
    assert!(resumed > 50, "{resumed} occurrences were taken over");
}

#[tokio::test]
async fn the_memory_store_passes_the_occurrence_store_suite() {
    ops_core::testkit::occurrence_store(&MemoryOccurrenceStore::new(), "memory").await;
}

/// A store that is down: every call fails, and calls are counted.
#[derive(Default)]
struct DownStore {
    calls: std::sync::atomic::AtomicU32,
}

impl DownStore {
    fn fail<T>(&self) -> ops_core::Result<T> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(ops_core::Error::new(
            "test",
            "store",
            ops_core::ErrorKind::Unavailable { retry_after: None },
        ))
    }
}

#[async_trait::async_trait]
impl OccurrenceStore for DownStore {
    async fn claim(&self, _: &OccurrenceRecord) -> ops_core::Result<bool> {
        self.fail()
    }
    async fn renew(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: &str,
        _: DateTime<Utc>,
    ) -> ops_core::Result<Option<OccurrenceRecord>> {
        self.fail()
    }
    async fn started(&self, _: &str, _: DateTime<Utc>, _: &str, _: &str) -> ops_core::Result<bool> {
        self.fail()
    }
    async fn finish(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: &str,
        _: OccurrenceStatus,
        _: Option<String>,
    ) -> ops_core::Result<bool> {
        self.fail()
    }
    async fn expired(&self, _: DateTime<Utc>) -> ops_core::Result<Vec<OccurrenceRecord>> {
        self.fail()
    }
    async fn take_over(
        &self,
        _: &OccurrenceRecord,
        _: &str,
        _: DateTime<Utc>,
    ) -> ops_core::Result<bool> {
        self.fail()
    }
    async fn request_cancel(&self, _: &str, _: DateTime<Utc>) -> ops_core::Result<bool> {
        self.fail()
    }
    async fn running(&self, _: &str) -> ops_core::Result<Vec<OccurrenceRecord>> {
        self.fail()
    }
    async fn watermark(&self, _: &str) -> ops_core::Result<Option<DateTime<Utc>>> {
        self.fail()
    }
    async fn advance(&self, _: &str, _: DateTime<Utc>) -> ops_core::Result<()> {
        self.fail()
    }
    async fn records(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> ops_core::Result<Vec<OccurrenceRecord>> {
        self.fail()
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_is_down_is_retried_at_the_tick_not_in_a_tight_loop() {
    let w = Replicas::new();
    let store = Arc::new(DownStore::default());
    let runner = Runner::new().with_clock(w.clock.clone());
    let config = SchedulerConfig {
        lease: Duration::from_secs(60),
        ..SchedulerConfig::new("a")
    };
    let a = Scheduler::new(
        config,
        runner,
        store.clone(),
        vec![w.job("backup", hourly(), Duration::ZERO)],
    )
    .unwrap();
    play(
        std::slice::from_ref(&a),
        &w.clock,
        Duration::from_secs(10 * 60),
    )
    .await;
    // Ten minutes at a tick every 20 s: about 30 ticks of a couple of calls each.
    let calls = store.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (20..=100).contains(&calls),
        "{calls} calls to a store that is down"
    );
}
