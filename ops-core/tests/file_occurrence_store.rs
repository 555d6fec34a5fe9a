//! The file occurrence store, the embedded default: it passes the store suite; real processes
//! racing for the same occurrences get one winner each; a process killed while saving leaves a
//! file that loads; a damaged file is a typed error, never a silent reset; old final records
//! are pruned; two schedulers sharing it run each occurrence once.
//!
//! The child processes are this test binary run again with `OPS_CHILD` set (see `child`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::engine::{Action, MemoryJournal, Runbook, Runner, Step};
use ops_core::schedule::*;
use tokio_util::sync::CancellationToken;

fn at(minute: i64) -> DateTime<Utc> {
    "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
}

/// The children's work, selected by `OPS_CHILD`; a no-op in a normal test run.
#[test]
fn child() {
    let (Ok(role), Ok(dir)) = (std::env::var("OPS_CHILD"), std::env::var("OPS_CHILD_DIR")) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = FileOccurrenceStore::open(&dir).unwrap();
        match role.as_str() {
            // Claims occurrences 0..100 as replica NAME and prints the ones it won.
            "claim" => {
                let name = std::env::var("OPS_CHILD_NAME").unwrap();
                for m in 0..100 {
                    let mut r = OccurrenceRecord::new("race", at(m), OccurrenceStatus::Running);
                    r.replica = Some(name.clone());
                    if store.claim(&r).await.unwrap() {
                        println!("won {m}");
                    }
                }
            }
            // Saves forever (until killed), printing once the first save is done.
            "save-forever" => {
                for m in 0.. {
                    store.advance("busy", at(m)).await.unwrap();
                    let r = OccurrenceRecord::new("busy", at(m), OccurrenceStatus::Succeeded);
                    store.claim(&r).await.unwrap();
                    if m == 0 {
                        println!("ready");
                    }
                }
            }
            other => panic!("unknown child role {other}"),
        }
    });
}

fn child_command(role: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("OPS_CHILD", role)
        .env("OPS_CHILD_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    c
}

#[tokio::test]
async fn the_file_store_passes_the_occurrence_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileOccurrenceStore::open(dir.path()).unwrap();
    ops_core::testkit::occurrence_store(&store, "file").await;
}

#[test]
fn processes_racing_for_the_same_occurrences_get_one_winner_each() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            child_command("claim", dir.path())
                .env("OPS_CHILD_NAME", format!("p{i}"))
                .spawn()
                .unwrap()
        })
        .collect();
    let mut won = vec![0u32; 100];
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed: {out:?}");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            // libtest's own "test child ... " may share the first line.
            if let Some(i) = line.find("won ") {
                won[line[i + 4..].trim().parse::<usize>().unwrap()] += 1;
            }
        }
    }
    assert!(
        won.iter().all(|w| *w == 1),
        "winners per occurrence: {won:?}"
    );
}

#[tokio::test]
async fn a_process_killed_while_saving_leaves_a_file_that_loads() {
    use std::io::{BufRead, BufReader};
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = child_command("save-forever", dir.path()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Waits for the child's first save (libtest's own lines come first).
        assert!(
            lines.any(|l| l.unwrap().contains("ready")),
            "the child never saved"
        );
        // Saving continuously now: kill it at whatever point it has reached.
        let store = FileOccurrenceStore::open(dir.path()).unwrap();
        let seen = store.watermark("busy").await.unwrap().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let after = store.watermark("busy").await.unwrap().unwrap();
        assert!(after >= seen);
        let records = store.records("busy", at(0), after).await.unwrap();
        assert!(!records.is_empty());
    }
}

#[tokio::test]
async fn a_damaged_file_is_a_typed_error_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileOccurrenceStore::open(dir.path()).unwrap();
    store.advance("x", at(0)).await.unwrap();
    let bytes = std::fs::read(store.path()).unwrap();
    std::fs::write(store.path(), &bytes[..bytes.len() / 2]).unwrap();
    let e = store.watermark("x").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{e}");
    assert!(e.to_string().contains("move it aside"), "{e}");
    // Nothing overwrote it.
    assert_eq!(
        std::fs::read(store.path()).unwrap(),
        &bytes[..bytes.len() / 2]
    );
}

#[tokio::test]
async fn final_records_older_than_the_retention_are_pruned_running_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileOccurrenceStore::open(dir.path())
        .unwrap()
        .retention(Duration::from_secs(3600));
    let old = OccurrenceRecord::new("job", at(0), OccurrenceStatus::Succeeded);
    let mut still = OccurrenceRecord::new("job", at(1), OccurrenceStatus::Running);
    still.replica = Some("a".into());
    store.claim(&old).await.unwrap();
    store.claim(&still).await.unwrap();
    store.advance("job", at(24 * 60)).await.unwrap();
    let left = store.records("job", at(0), at(24 * 60)).await.unwrap();
    assert_eq!(left, vec![still]);
    // Pruned records stay decided: the watermark is past them.
    assert_eq!(store.watermark("job").await.unwrap(), Some(at(24 * 60)));
}

#[tokio::test(start_paused = true)]
async fn two_schedulers_sharing_the_file_run_each_occurrence_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SimulatedClock::starting_at(at(0)));
    let journal = Arc::new(MemoryJournal::new());
    let runs = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let replicas: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let runs = runs.clone();
            let job = Job::new(
                "backup",
                Schedule::cron("0 * * * *", "UTC").unwrap(),
                move || {
                    let runs = runs.clone();
                    Ok(
                        Runbook::new("backup", "db").step(Step::mutate("dump", move |ctx| {
                            let (runs, id) = (runs.clone(), ctx.run_id().to_string());
                            Ok(Action::new("dump", serde_json::json!({}), async move {
                                runs.lock().unwrap().push(id);
                                Ok(())
                            }))
                        })),
                    )
                },
            )
            .unwrap();
            let runner = Runner::new()
                .with_clock(clock.clone())
                .with_journal(journal.clone());
            let config = SchedulerConfig {
                lease: Duration::from_secs(600),
                ..SchedulerConfig::new(name)
            };
            let store = Arc::new(FileOccurrenceStore::open(dir.path()).unwrap());
            Scheduler::new(config, runner, store, vec![job]).unwrap()
        })
        .collect();
    let stop = CancellationToken::new();
    let loops: Vec<_> = replicas
        .iter()
        .map(|r| {
            let (r, stop) = (r.clone(), stop.clone());
            tokio::spawn(async move { r.run(stop).await })
        })
        .collect();
    clock.sleep(Duration::from_secs(24 * 3600 + 600)).await;
    stop.cancel();
    for l in loops {
        l.await.unwrap();
    }
    for r in &replicas {
        r.drain().await;
    }
    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    let before = runs.len();
    runs.dedup();
    assert_eq!(before, runs.len(), "an occurrence ran twice");
    assert_eq!(runs.len(), 24, "{runs:?}");
}
