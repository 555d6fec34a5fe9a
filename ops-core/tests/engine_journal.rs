//! FileJournal: durability policies, torn last lines, damaged lines, and reports rebuilt from
//! the file alone.

use std::io::Write;
use std::sync::Arc;

use ops_core::ErrorKind;
use ops_core::engine::*;
use serde_json::json;

fn event(run: &str, seq: u64, kind: EventKind) -> JournalEvent {
    JournalEvent {
        seq,
        run_id: run.into(),
        runbook: "rb".into(),
        target: "svc".into(),
        at: "2026-01-01T00:00:00Z".parse().unwrap(),
        kind,
    }
}

fn started(run: &str) -> JournalEvent {
    event(
        run,
        0,
        EventKind::RunStarted {
            mode: Mode::Execute,
            steps: vec!["a".into()],
            resumed: false,
            category: None,
        },
    )
}

#[tokio::test]
async fn appends_read_back_in_order_and_filter_by_run() {
    for policy in [FsyncPolicy::EveryEvent, FsyncPolicy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/journal.jsonl");
        let j = FileJournal::open(&path, policy).await.unwrap();
        j.append(&started("r1")).await.unwrap();
        j.append(&started("r2")).await.unwrap();
        j.append(&event(
            "r1",
            1,
            EventKind::StepSkipped {
                step: "a".into(),
                reason: "x".into(),
            },
        ))
        .await
        .unwrap();
        let r1 = j.events(&JournalFilter::run("r1")).await.unwrap();
        assert_eq!(r1.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(j.events(&JournalFilter::default()).await.unwrap().len(), 3);
        // A second handle (another process) sees the same lines.
        let other = FileJournal::open(&path, policy).await.unwrap();
        assert_eq!(
            other.events(&JournalFilter::run("r2")).await.unwrap().len(),
            1
        );
    }
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_on_read_and_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let j = FileJournal::open(&path, FsyncPolicy::EveryEvent)
        .await
        .unwrap();
    j.append(&started("r1")).await.unwrap();
    j.append(&event(
        "r1",
        1,
        EventKind::StepStarted {
            step: "a".into(),
            attempt: 1,
            kind: StepKind::Read,
            fence: None,
        },
    ))
    .await
    .unwrap();
    // The process is killed in the middle of writing the third line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"seq":2,"run_id":"r1","runbook":"rb","tar"#)
        .unwrap();
    drop(f);
    assert_eq!(
        j.events(&JournalFilter::default()).await.unwrap().len(),
        2,
        "reads skip the torn line"
    );

    let reopened = FileJournal::open(&path, FsyncPolicy::EveryEvent)
        .await
        .unwrap();
    reopened
        .append(&event(
            "r1",
            2,
            EventKind::StepSkipped {
                step: "a".into(),
                reason: "x".into(),
            },
        ))
        .await
        .unwrap();
    let events = reopened.events(&JournalFilter::default()).await.unwrap();
    assert_eq!(events.len(), 3, "the next event starts on a clean line");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "the fragment was cut off");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}

#[tokio::test]
async fn a_damaged_line_before_the_end_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let line = serde_json::to_string(&started("r1")).unwrap();
    std::fs::write(&path, format!("{line}\nnot json\n{line}\n")).unwrap();
    let j = FileJournal::open(&path, FsyncPolicy::Never).await.unwrap();
    let err = j.events(&JournalFilter::default()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }));
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(err.to_string().contains("FileJournal::repair"), "{err}");

    // The documented repair keeps every event, in order, and the damaged line in the side file.
    assert_eq!(FileJournal::repair(&path).await.unwrap(), 1);
    let j = FileJournal::open(&path, FsyncPolicy::Never).await.unwrap();
    assert_eq!(j.events(&JournalFilter::default()).await.unwrap().len(), 2);
    let side = std::fs::read_to_string(FileJournal::damaged_path(&path)).unwrap();
    assert_eq!(side, "not json\n");
    assert_eq!(
        FileJournal::repair(&path).await.unwrap(),
        0,
        "nothing left to move"
    );
}

#[tokio::test]
async fn a_damaged_complete_last_line_is_cut_on_open_and_kept_aside() {
    // `echo 'NOT JSON AT ALL' >> journal.jsonl`: without the cut, the next append buries the
    // line in the middle and every later read of the whole file fails.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let j = FileJournal::open(&path, FsyncPolicy::EveryEvent)
        .await
        .unwrap();
    j.append(&started("r1")).await.unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"NOT JSON AT ALL\n").unwrap();
    drop(f);
    assert_eq!(
        j.events(&JournalFilter::default()).await.unwrap().len(),
        1,
        "a read skips it"
    );

    let reopened = FileJournal::open(&path, FsyncPolicy::EveryEvent)
        .await
        .unwrap();
    reopened.append(&started("r2")).await.unwrap();
    let events = reopened.events(&JournalFilter::default()).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.run_id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"],
        "the whole history still reads"
    );
    let side = std::fs::read_to_string(FileJournal::damaged_path(&path)).unwrap();
    assert_eq!(
        side, "NOT JSON AT ALL\n",
        "the cut bytes are kept, not lost"
    );
}

#[tokio::test]
async fn a_journal_of_only_damage_opens_empty_and_keeps_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    std::fs::write(&path, "garbage\n{\"half\":\n").unwrap();
    let j = FileJournal::open(&path, FsyncPolicy::Never).await.unwrap();
    assert!(
        j.events(&JournalFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(std::fs::read(&path).unwrap().len(), 0);
    let side = std::fs::read_to_string(FileJournal::damaged_path(&path)).unwrap();
    assert!(side.contains("garbage") && side.contains("half"), "{side}");
}

#[tokio::test]
async fn a_run_is_reconstructed_into_its_report_from_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.jsonl");
    let journal = Arc::new(
        FileJournal::open(&path, FsyncPolicy::EveryEvent)
            .await
            .unwrap(),
    );
    let rb = Runbook::new("rb", "svc")
        .step(Step::read("look", |ctx| {
            ctx.evidence("state", json!({"serving": true}));
            Ok(Action::new("look", json!({}), async { Ok(1) }))
        }))
        .step(Step::mutate("change", |_| {
            Ok(Action::new("change", json!({"to": 2}), async { Ok(2) }))
        }));
    let report = Runner::new()
        .with_journal(journal)
        .run(&rb, Mode::Execute)
        .await
        .unwrap();
    // A new process with only the file.
    let reader = Arc::new(FileJournal::open(&path, FsyncPolicy::Never).await.unwrap());
    let rebuilt = Runner::new()
        .with_journal(reader)
        .report(&report.run_id)
        .await
        .unwrap();
    assert_eq!(rebuilt, report);
    assert_eq!(rebuilt.evidence.len(), 1);
}

#[tokio::test]
async fn a_journal_path_that_is_a_directory_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = FileJournal::open(&path, FsyncPolicy::EveryEvent)
        .await
        .unwrap();
    drop(journal);
    // A directory where the file should be: opening fails with a typed error naming the path.
    let bad = dir.path().join("dir.jsonl");
    std::fs::create_dir(&bad).unwrap();
    let err = FileJournal::open(&bad, FsyncPolicy::EveryEvent)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }));
    assert!(err.to_string().contains("dir.jsonl"), "{err}");
}

#[tokio::test]
async fn memory_and_file_journals_pass_the_suite() {
    ops_core::testkit::journal(&MemoryJournal::new(), "mem").await;
    let dir = tempfile::tempdir().unwrap();
    for (name, policy) in [
        ("every", FsyncPolicy::EveryEvent),
        ("never", FsyncPolicy::Never),
    ] {
        let j = FileJournal::open(dir.path().join(format!("{name}.jsonl")), policy)
            .await
            .unwrap();
        ops_core::testkit::journal(&j, name).await;
    }
}
