//! A scheduled run whose run lock vanishes mid-run (its session terminated, a failover) stops
//! before its next change and is resumed by its scheduler under a new lock and a later fence:
//! the occurrence succeeds, no change runs twice, and the journal shows the loss.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::engine::*;
use ops_core::schedule::*;

/// A lock that hands out growing fences and whose current lease a test can take away.
#[derive(Default)]
struct VanishingLock {
    fence: Mutex<u64>,
    current: Mutex<Option<LockLease>>,
}

impl VanishingLock {
    fn take_away(&self) {
        if let Some(l) = self.current.lock().unwrap().as_ref() {
            l.lost.signal("the lock's session was terminated");
        }
    }
}

#[async_trait]
impl RunLock for VanishingLock {
    async fn acquire(
        &self,
        key: &str,
        holder: &LockHolder,
        _: LockWait,
    ) -> ops_core::Result<LockLease> {
        let mut fence = self.fence.lock().unwrap();
        *fence += 1;
        let mut lease = LockLease::new(key, holder.clone());
        lease.fence = Some(*fence);
        *self.current.lock().unwrap() = Some(lease.clone());
        Ok(lease)
    }
    async fn release(&self, _: &LockLease) -> ops_core::Result<()> {
        *self.current.lock().unwrap() = None;
        Ok(())
    }
}

fn start() -> DateTime<Utc> {
    "2026-11-30T00:00:00Z".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_run_that_loses_its_lock_is_resumed_under_a_later_fence() {
    let clock = Arc::new(SimulatedClock::starting_at(start()));
    let lock = Arc::new(VanishingLock::default());
    let journal = Arc::new(MemoryJournal::new());
    let counts = Arc::new(Mutex::new(BTreeMap::<&'static str, u32>::new()));
    let count = |c: &Arc<Mutex<BTreeMap<&'static str, u32>>>, step| {
        *c.lock().unwrap().entry(step).or_default() += 1;
    };
    let (c1, c2, c3, l) = (counts.clone(), counts.clone(), counts.clone(), lock.clone());
    let job = Job::new(
        "nightly",
        Schedule::cron("0 3 * * *", "UTC").unwrap(),
        move || {
            let (c1, c2, c3, l) = (c1.clone(), c2.clone(), c3.clone(), l.clone());
            Ok(Runbook::new("nightly", "db")
                .step(Step::mutate("prepare", move |_| {
                    let c = c1.clone();
                    Ok(Action::new("prepare", serde_json::json!({}), async move {
                        count(&c, "prepare");
                        Ok(())
                    }))
                }))
                .step(
                    Step::mutate("work", move |ctx| {
                        let (c, l, clock) = (c2.clone(), l.clone(), ctx.clock().clone());
                        Ok(Action::new("work", serde_json::json!({}), async move {
                            count(&c, "work");
                            // The first time, the lock goes away while this step works.
                            if c.lock().unwrap()["work"] == 1 {
                                l.take_away();
                            }
                            clock.sleep(Duration::from_secs(60)).await;
                            Ok(())
                        }))
                    })
                    .idempotent(),
                )
                .step(Step::mutate("finish", move |_| {
                    let c = c3.clone();
                    Ok(Action::new("finish", serde_json::json!({}), async move {
                        count(&c, "finish");
                        Ok(())
                    }))
                })))
        },
    )
    .unwrap();
    let runner = Runner::new()
        .with_clock(clock.clone())
        .with_journal(journal.clone())
        .with_lock(lock.clone(), LockWait::Fail);
    let store = Arc::new(MemoryOccurrenceStore::new());
    let s = Scheduler::new(SchedulerConfig::new("a"), runner, store.clone(), vec![job]).unwrap();
    s.tick().await.unwrap();
    clock.sleep(Duration::from_secs(3 * 3600 + 1)).await;
    assert_eq!(s.tick().await.unwrap().started.len(), 1);
    s.drain().await;

    let occurrence: DateTime<Utc> = "2026-11-30T03:00:00Z".parse().unwrap();
    let records = store
        .records("nightly", occurrence, occurrence)
        .await
        .unwrap();
    assert_eq!(
        records[0].status,
        OccurrenceStatus::Succeeded,
        "{records:?}"
    );
    let counts = counts.lock().unwrap().clone();
    assert_eq!(
        counts["prepare"], 1,
        "a change before the loss is not repeated"
    );
    assert_eq!(
        counts["work"], 2,
        "the idempotent step in flight runs again"
    );
    assert_eq!(counts["finish"], 1);
    let events = journal
        .events(&JournalFilter::run(run_id("nightly", occurrence)))
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::LockLost { fence: Some(1), .. }))
    );
    let finish_fence = events.iter().find_map(|e| match &e.kind {
        EventKind::StepStarted { step, fence, .. } if step == "finish" => *fence,
        _ => None,
    });
    assert_eq!(
        finish_fence,
        Some(2),
        "the rest ran under the new lock's fence"
    );
}
