//! A PostgreSQL run lock that vanishes under a live holder: the run stops before its next
//! mutation, says why, and the next runner takes over with a higher fencing token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::clock::{Clock, SystemClock};
use ops_core::engine::{
    Action, EventKind, Journal, JournalEvent, JournalFilter, LockWait, MemoryJournal, Mode,
    RunOutcome, Runbook, Runner, Step,
};
use ops_postgres::PgRunLock;
use ops_postgres::cluster::TestCluster;
use serde_json::json;

fn mutation(name: &'static str, log: Arc<Mutex<Vec<&'static str>>>) -> Step {
    Step::mutate(name, move |_| {
        let log = log.clone();
        Ok(Action::new("change", json!({}), async move {
            log.lock().unwrap().push(name);
            Ok(())
        }))
    })
}

fn fences(events: &[JournalEvent]) -> Vec<Option<u64>> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepStarted { fence, .. } => Some(*fence),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_lock_session_stops_the_run_before_its_next_mutation() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_lock_loss").await.unwrap();
    let keepalive = Duration::from_secs(1);
    let lock = Arc::new(
        PgRunLock::new(db.clone())
            .await
            .unwrap()
            .with_keepalive(keepalive),
    );
    let journal = Arc::new(MemoryJournal::new());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered = Arc::new(Mutex::new(Some(entered_tx)));
    let hold_log = log.clone();
    let rb = Runbook::new("rollout", "api")
        .step(mutation("first", log.clone()))
        .step(Step::mutate("hold", move |_| {
            let (entered, log) = (entered.lock().unwrap().take(), hold_log.clone());
            Ok(Action::new("hold", json!({}), async move {
                log.lock().unwrap().push("hold");
                if let Some(tx) = entered {
                    let _ = tx.send(());
                }
                // A long mutation in progress (a bake, a migration).
                std::future::pending::<()>().await;
                Ok(())
            }))
        }))
        .step(mutation("after", log.clone()));
    let runner = Runner::new()
        .with_journal(journal.clone())
        .with_lock(lock.clone(), LockWait::Fail);
    let run = tokio::spawn({
        let (runner, rb) = (runner.clone(), rb.clone());
        async move { runner.run(&rb, Mode::Execute).await }
    });
    entered_rx.await.unwrap();

    // An operator (or a failover, or idle_session_timeout) ends the lock's session.
    let admin = cluster.database_pool("postgres").unwrap();
    let t0 = SystemClock.instant();
    let terminated: i64 = admin
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(l.pid) FROM pg_locks l
               JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND d.datname = 'ops_lock_loss') t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(terminated, 1, "one lock session to end");
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run stops by itself")
        .unwrap()
        .unwrap();
    let to_cancel = SystemClock.instant().saturating_duration_since(t0);
    // The target: within one keepalive interval (the session's end is seen at once).
    assert!(
        to_cancel <= keepalive,
        "from session loss to cancellation: {to_cancel:?}"
    );
    eprintln!("lock session lost → run cancelled in {to_cancel:?}");

    assert_eq!(report.outcome, Some(RunOutcome::Cancelled));
    let error = report.error.as_ref().unwrap();
    assert_eq!(error.kind, "conflict");
    assert!(
        error.message.contains("run lock on api was lost"),
        "{}",
        error.message
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["first", "hold"],
        "nothing after the loss ran"
    );
    let events = journal
        .events(&JournalFilter::run(report.run_id.clone()))
        .await
        .unwrap();
    let first_fence = fences(&events)[0].expect("mutations carry the fencing token");
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::LockLost { key, fence, reason }
            if key == "api" && *fence == Some(first_fence) && reason.contains("session"))));
    assert!(
        report.evidence.iter().any(|e| e.key == "lock lost"),
        "the report shows the loss"
    );

    // The next runner takes the lock over, with the next fencing token.
    let second = Runner::new().with_journal(journal.clone()).with_lock(
        Arc::new(PgRunLock::new(db.clone()).await.unwrap()),
        LockWait::Wait(Duration::from_secs(10)),
    );
    let other_log = Arc::new(Mutex::new(Vec::new()));
    let rb2 = Runbook::new("rollout", "api").step(mutation("takeover", other_log.clone()));
    let report2 = second.run(&rb2, Mode::Execute).await.unwrap();
    assert_eq!(report2.outcome, Some(RunOutcome::Succeeded));
    let events2 = journal
        .events(&JournalFilter::run(report2.run_id.clone()))
        .await
        .unwrap();
    assert_eq!(
        fences(&events2),
        [Some(first_fence + 1)],
        "the late writer and the new one are told apart"
    );
}
