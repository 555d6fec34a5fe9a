//! FileRunLock: contention, waiting in line, stale-lock recovery, and the runner holding it.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::engine::*;
use serde_json::json;

fn holder(run: &str) -> LockHolder {
    LockHolder::this_process(run, "canary", "2026-01-01T10:00:00Z".parse().unwrap())
}

async fn locks(dir: &std::path::Path) -> FileRunLock {
    FileRunLock::open(dir)
        .await
        .unwrap()
        .poll_every(Duration::from_millis(10))
}

#[tokio::test]
async fn a_taken_lock_fails_at_once_naming_the_holder_and_since() {
    let dir = tempfile::tempdir().unwrap();
    let l = locks(dir.path()).await;
    let lease = l
        .acquire("api", &holder("run-1"), LockWait::Fail)
        .await
        .unwrap();
    assert_eq!(lease.recovered_from, None);
    let err = l
        .acquire("api", &holder("run-2"), LockWait::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }));
    let text = err.to_string();
    assert!(
        text.contains("run run-1")
            && text.contains("runbook canary")
            && text.contains("since 2026-01-01T10:00:00"),
        "{text}"
    );
    // Other keys are independent.
    let other = l
        .acquire("web", &holder("run-3"), LockWait::Fail)
        .await
        .unwrap();
    l.release(&other).await.unwrap();
    l.release(&lease).await.unwrap();
    let again = l
        .acquire("api", &holder("run-2"), LockWait::Fail)
        .await
        .unwrap();
    assert_eq!(
        again.recovered_from, None,
        "a released lock is not a stale one"
    );
    l.release(&again).await.unwrap();
    assert!(matches!(
        l.release(&again).await.unwrap_err().kind(),
        ErrorKind::NotFound { .. }
    ));
}

#[tokio::test]
async fn waiters_queue_in_order_and_give_up_at_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let l = locks(dir.path()).await;
    let first = l
        .acquire("api", &holder("run-1"), LockWait::Fail)
        .await
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 2..=4 {
        let (l, order) = (l.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let lease = l
                .acquire(
                    "api",
                    &holder(&format!("run-{i}")),
                    LockWait::Wait(Duration::from_secs(10)),
                )
                .await
                .unwrap();
            order.lock().unwrap().push(i);
            l.release(&lease).await.unwrap();
        }));
        // On this single-threaded test runtime one yield runs the waiter up to its place in line.
        tokio::task::yield_now().await;
    }
    let impatient = l
        .acquire(
            "api",
            &holder("run-9"),
            LockWait::Wait(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(impatient.to_string().contains("waited"), "{impatient}");
    l.release(&first).await.unwrap();
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        vec![2, 3, 4],
        "first come, first served"
    );
}

#[tokio::test]
async fn a_lock_left_by_a_dead_process_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    // What a killed holder leaves: its record in the file, but no OS lock (the OS dropped it).
    let dead = LockHolder {
        pid: 999_999,
        ..holder("run-dead")
    };
    std::fs::write(
        dir.path().join("api.lock"),
        serde_json::to_vec(&dead).unwrap(),
    )
    .unwrap();
    let l = locks(dir.path()).await;
    let lease = l
        .acquire("api", &holder("run-new"), LockWait::Fail)
        .await
        .unwrap();
    assert_eq!(lease.recovered_from, Some(dead));
    let record: LockHolder =
        serde_json::from_slice(&std::fs::read(dir.path().join("api.lock")).unwrap()).unwrap();
    assert_eq!(
        record.run_id, "run-new",
        "the file now names the new holder"
    );
}

#[tokio::test]
async fn a_lock_held_by_another_process_blocks_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // Another process: its own open file with the OS lock held and its record written.
    let mut other = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("api.lock"))
        .unwrap();
    other.lock().unwrap();
    other
        .write_all(
            &serde_json::to_vec(&LockHolder {
                pid: 4242,
                host: "db-host".into(),
                ..holder("run-elsewhere")
            })
            .unwrap(),
        )
        .unwrap();
    let l = locks(dir.path()).await;
    let err = l
        .acquire(
            "api",
            &holder("run-here"),
            LockWait::Wait(Duration::from_millis(60)),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("run-elsewhere")
            && text.contains("db-host")
            && text.contains("pid 4242")
            && text.contains("waited"),
        "{text}"
    );
    other.unlock().unwrap();
    let lease = l
        .acquire(
            "api",
            &holder("run-here"),
            LockWait::Wait(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    l.release(&lease).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_wait_lasts_the_full_limit_not_the_last_whole_poll() {
    let dir = tempfile::tempdir().unwrap();
    let other = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("api.lock"))
        .unwrap();
    other.lock().unwrap();
    let clock = Arc::new(ops_core::clock::SimulatedClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let start = ops_core::clock::Clock::instant(clock.as_ref());
    // Polls of 300 ms within a limit of 1 s: the old loop gave up at 900 ms.
    let l = FileRunLock::open(dir.path())
        .await
        .unwrap()
        .poll_every(Duration::from_millis(300))
        .with_clock(clock.clone());
    let err = l
        .acquire(
            "api",
            &holder("run-here"),
            LockWait::Wait(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        ops_core::clock::Clock::instant(clock.as_ref()) - start,
        Duration::from_secs(1)
    );
    assert!(err.to_string().contains("waited 1s"), "{err}");
    other.unlock().unwrap();
}

#[tokio::test]
async fn bad_keys_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let l = locks(dir.path()).await;
    for key in ["", "a\nb", "\0"] {
        let err = l
            .acquire(key, &holder("r"), LockWait::Fail)
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn every_valid_target_can_be_locked_and_none_escapes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let locks_dir = dir.path().join("locks");
    let l = locks(&locks_dir).await;
    let keys = [
        "postgres:victim",
        "../x",
        "a/b",
        ".hidden",
        "gs://bucket/backup/app.db",
        "ünïcode target",
    ];
    let mut leases = Vec::new();
    for key in keys {
        leases.push(l.acquire(key, &holder("r"), LockWait::Fail).await.unwrap());
        // Held: a second runner is refused, so the key really names one lock.
        let other = locks(&locks_dir).await;
        assert!(
            other
                .acquire(key, &holder("r2"), LockWait::Fail)
                .await
                .is_err(),
            "{key}"
        );
    }
    let files: Vec<_> = std::fs::read_dir(&locks_dir).unwrap().collect();
    assert_eq!(
        files.len(),
        keys.len(),
        "one file each, all inside the lock directory"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written beside it"
    );
    for lease in &leases {
        l.release(lease).await.unwrap();
    }
}

#[tokio::test]
async fn two_runs_on_one_target_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let l: Arc<dyn RunLock> = Arc::new(locks(dir.path()).await);
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let gate = Arc::new(Mutex::new(Some((entered_tx, go_rx))));
    let rb = Runbook::new("rollout", "api").step(Step::mutate("hold", move |_| {
        let pair = gate.lock().unwrap().take();
        Ok(Action::new("hold", json!({}), async move {
            if let Some((entered, go)) = pair {
                let _ = entered.send(());
                let _ = go.await;
            }
            Ok(())
        }))
    }));
    let runner = Runner::new().with_lock(l.clone(), LockWait::Fail);
    let first = tokio::spawn({
        let (runner, rb) = (runner.clone(), rb.clone());
        async move { runner.run(&rb, Mode::Execute).await }
    });
    entered_rx.await.unwrap();
    let err = runner.run(&rb, Mode::Execute).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("runbook rollout"));
    // A dry run only reads and plans: it does not need the lock.
    assert_eq!(
        runner.run(&rb, Mode::DryRun).await.unwrap().outcome,
        Some(RunOutcome::Planned)
    );
    go_tx.send(()).unwrap();
    assert_eq!(
        first.await.unwrap().unwrap().outcome,
        Some(RunOutcome::Succeeded)
    );
    runner
        .run(&rb, Mode::Execute)
        .await
        .unwrap()
        .into_result()
        .unwrap();
}

#[tokio::test]
async fn the_file_lock_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    ops_core::testkit::run_lock(&locks(dir.path()).await, "suite-key").await;
}
