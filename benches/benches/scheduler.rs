//! The scheduler's overhead per occurrence with 1,000 schedules registered.
//!
//! - `scheduler_1000_due`: 1,000 jobs, each with one occurrence due, on one replica with the
//!   in-memory occurrence store: one tick (each occurrence decided, claimed and started in the
//!   background with its heartbeat) and the drain until every run has finished and been
//!   recorded. The reference: the same 1,000 one-step runbooks run one after another by
//!   `Runner::run_with`, with their run ids, and nothing else. Overhead per occurrence =
//!   (scheduler − reference) / 1,000. Target: ≤ 1 ms of CPU.
//! - `scheduler_1000_idle_tick`: a tick when none of the 1,000 is due (what every replica pays
//!   every few seconds).
//!
//! Both run on a current-thread runtime with tokio's clock paused (the scheduler's clock is
//! simulated, so no timer waits): wall time is CPU time of that one thread.
//!
//! Run: `cargo bench -p ops-benches --bench scheduler`. Figures go in `benches/RESULTS.md`.
#![allow(missing_docs)] // criterion_group! generates an undocumented `benches` function

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ops_core::clock::{SharedClock, SimulatedClock};
use ops_core::engine::{Action, Mode, NullJournal, RunControl, Runbook, Runner, Step};
use ops_core::schedule::{Job, MemoryOccurrenceStore, Schedule, Scheduler, SchedulerConfig};

const JOBS: usize = 1_000;

fn runbook() -> Runbook {
    Runbook::new("noop", "target").step(Step::mutate("noop", |_| {
        Ok(Action::new("noop", serde_json::Value::Null, async {
            Ok(())
        }))
    }))
}

fn start() -> DateTime<Utc> {
    "2026-11-30T00:00:30Z".parse().unwrap()
}

fn runner(clock: SharedClock) -> Runner {
    Runner::new()
        .with_clock(clock)
        .with_journal(Arc::new(NullJournal))
}

/// A replica with 1,000 every-minute jobs, ticked once (watermarks set) and moved to the next
/// minute, so the next tick finds every job due.
async fn primed() -> Scheduler {
    let clock: SharedClock = Arc::new(SimulatedClock::starting_at(start()));
    let schedule = Schedule::cron("* * * * *", "UTC").unwrap();
    let jobs = (0..JOBS)
        .map(|i| Job::new(&format!("job-{i}"), schedule.clone(), || Ok(runbook())).unwrap())
        .collect();
    let s = Scheduler::new(
        SchedulerConfig::new("bench"),
        runner(clock.clone()),
        Arc::new(MemoryOccurrenceStore::new()),
        jobs,
    )
    .unwrap();
    s.tick().await.unwrap();
    clock.sleep(Duration::from_secs(31)).await;
    s
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("scheduler_1000_due");
    group.throughput(Throughput::Elements(JOBS as u64));
    group.sample_size(20);
    group.bench_function("reference_1000_runs_by_the_runner", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let clock: SharedClock = Arc::new(SimulatedClock::starting_at(start()));
                runner(clock)
            },
            |r| async move {
                let rb = runbook();
                for i in 0..JOBS {
                    let id = format!("job-{i}-20261130T000100Z");
                    r.run_with(&rb, Mode::Execute, &RunControl::new(), Some(id))
                        .await
                        .unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("scheduler_tick_and_drain", |b| {
        // Priming a replica is setup, not timed: time each tick and drain by itself.
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = primed().await;
                #[allow(clippy::disallowed_methods)] // the bench's own stopwatch, real time
                let t = std::time::Instant::now();
                let tick = s.tick().await.unwrap();
                assert_eq!(tick.started.len(), JOBS);
                s.drain().await;
                total += t.elapsed();
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group("scheduler_1000_idle_tick");
    group.sample_size(20);
    let idle = rt.block_on(async {
        let s = primed().await;
        s.tick().await.unwrap();
        s.drain().await;
        s
    });
    group.bench_function("tick_none_due", |b| {
        b.to_async(&rt).iter(|| async {
            let tick = idle.tick().await.unwrap();
            assert!(tick.started.is_empty());
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
