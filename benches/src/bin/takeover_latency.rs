//! Prints the scheduler's takeover latency for `benches/RESULTS.md`: the time from the death
//! of the replica running an occurrence to another replica taking it over, measured on the
//! scheduler's own (simulated) clock over many trials, each with its death at a different
//! point of the lease's renewal cycle. The occurrence store is in memory, so the figure is the
//! protocol's: lease, renewal every third of it, takeover a sixth of a lease after expiry, and
//! the survivor's tick cadence.
//!
//! `cargo run --release -p ops-benches --bin takeover_latency [TRIALS]` (default 200).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::engine::{Action, NullJournal, Runbook, Runner, Step};
use ops_core::schedule::{
    Job, MemoryOccurrenceStore, OccurrenceStore, Schedule, Scheduler, SchedulerConfig,
};
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(30);

fn runbook() -> Runbook {
    Runbook::new("long", "target").step(
        Step::mutate("work", |ctx| {
            let clock = ctx.clock().clone();
            Ok(Action::new("work", serde_json::Value::Null, async move {
                clock.sleep(Duration::from_secs(3600)).await;
                Ok(())
            }))
        })
        .idempotent(),
    )
}

/// One trial: replica a runs the 01:00 occurrence and dies `offset` into it; returns how long
/// replica b took to take it over.
async fn trial(offset: Duration) -> Duration {
    let start: DateTime<Utc> = "2026-11-30T00:59:00Z".parse().unwrap();
    let clock = Arc::new(SimulatedClock::starting_at(start));
    let store = Arc::new(MemoryOccurrenceStore::new());
    let replica = |name: &str| {
        let job = Job::new("sync", Schedule::cron("0 * * * *", "UTC").unwrap(), || {
            Ok(runbook())
        })
        .unwrap();
        let runner = Runner::new()
            .with_clock(clock.clone())
            .with_journal(Arc::new(NullJournal));
        let config = SchedulerConfig {
            lease: LEASE,
            ..SchedulerConfig::new(name)
        };
        Scheduler::new(config, runner, store.clone(), vec![job]).unwrap()
    };
    let (a, b) = (replica("a"), replica("b"));
    a.tick().await.unwrap();
    clock.sleep(Duration::from_secs(60)).await;
    assert_eq!(a.tick().await.unwrap().started.len(), 1);
    let stop = CancellationToken::new();
    let survivor = tokio::spawn({
        let (b, stop) = (b.clone(), stop.clone());
        async move { b.run(stop).await }
    });
    clock.sleep(offset).await;
    a.abort();
    let died = clock.now();
    let occurrence: DateTime<Utc> = "2026-11-30T01:00:00Z".parse().unwrap();
    let taken = loop {
        clock.sleep(Duration::from_millis(100)).await;
        let r = store.records("sync", occurrence, occurrence).await.unwrap();
        if r[0].replica.as_deref() == Some("b") {
            break clock.now();
        }
    };
    stop.cancel();
    b.abort();
    let _ = survivor.await;
    (taken - died).to_std().unwrap_or_default()
}

fn main() {
    let trials: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(22);
    let mut latencies: Vec<f64> = (0..trials)
        .map(|_| {
            // Death anywhere in the first five minutes of the run (ten renewal cycles).
            let offset = Duration::from_millis(rng.u64(1_000..300_000));
            rt.block_on(trial(offset)).as_secs_f64()
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let renewal = LEASE.as_secs_f64() / 3.0;
    println!(
        "{trials} trials; lease {} s, renewed every {renewal} s\n",
        LEASE.as_secs()
    );
    println!("| death → takeover | seconds | × lease | × renewal interval |");
    println!("|---|---|---|---|");
    for (name, q) in [("min", 0.0), ("median", 0.5), ("p95", 0.95), ("max", 1.0)] {
        let v = pick(q);
        println!(
            "| {name} | {v:.1} | {:.2} | {:.2} |",
            v / LEASE.as_secs_f64(),
            v / renewal
        );
    }
}
