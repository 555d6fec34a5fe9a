//! Property tests of the parsers of outside input in `ops-core`: human durations, log
//! fingerprints, and journal files. Each returns a value or a typed error on any input, never
//! panics, and reads back what we write. Bounded case counts keep them to seconds in CI.

use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::engine::*;
use ops_core::runbooks::{MAX_AGE, fingerprint, human_duration};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn any_text_parses_to_a_bounded_duration_or_an_error(text in "\\PC{0,40}") {
        if let Ok(d) = human_duration::parse(&text) {
            prop_assert!(d <= MAX_AGE);
        }
    }

    #[test]
    fn duration_shaped_text_parses_to_a_bounded_duration_or_an_error(
        text in "([0-9]{0,25}(\\.[0-9]{0,12})?(ms|s|m|h|d|w|us|)){1,6}",
    ) {
        if let Ok(d) = human_duration::parse(&text) {
            prop_assert!(d <= MAX_AGE);
        }
    }

    #[test]
    fn every_duration_up_to_the_ceiling_reads_back_exactly(
        nanos in 0..=MAX_AGE.as_nanos() as u64,
    ) {
        let d = Duration::from_nanos(nanos);
        let text = human_duration::format(d);
        prop_assert_eq!(human_duration::parse(&text), Ok(d), "{}", text);
    }

    #[test]
    fn fingerprints_never_panic_and_are_stable(message in "\\PC{0,80}") {
        let (mut once, mut twice) = (String::new(), String::new());
        fingerprint(&message, &mut once);
        fingerprint(&once, &mut twice);
        prop_assert_eq!(&once, &twice, "a fingerprint is its own fingerprint");
    }

    #[test]
    fn fingerprints_of_log_like_lines_hide_every_number_that_is_not_part_of_a_name(
        words in proptest::collection::vec(
            prop_oneof![
                "[a-z]{1,8}",
                "[0-9]{1,12}",
                "0x[0-9a-fA-F]{1,16}",
                "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?Z",
                "é[0-9]ü",
            ],
            0..12,
        ),
    ) {
        let mut fp = String::new();
        fingerprint(&words.join(" "), &mut fp);
        prop_assert!(!fp.bytes().any(|b| b.is_ascii_digit()), "{}", fp);
    }
}

fn event(run: String, step: String, seq: u64) -> JournalEvent {
    JournalEvent {
        seq,
        run_id: run,
        runbook: "rb".into(),
        target: "svc".into(),
        at: "2026-01-01T00:00:00Z".parse().unwrap(),
        kind: EventKind::StepSkipped {
            step,
            reason: "because".into(),
        },
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn any_journal_file_opens_and_reads_or_names_its_damaged_line(
        lines in proptest::collection::vec(
            prop_oneof![
                ("\\PC{0,12}", "\\PC{0,12}", any::<u64>())
                    .prop_map(|(r, s, n)| serde_json::to_string(&event(r, s, n)).unwrap()),
                "\\PC{0,30}",
                Just(String::new()),
                Just("{\"seq\":1,\"run_id\":".to_string()),
            ],
            0..8,
        ),
        torn_tail in "\\PC{0,20}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j.jsonl");
            let mut text = lines.join("\n");
            if !lines.is_empty() {
                text.push('\n');
            }
            text.push_str(&torn_tail);
            std::fs::write(&path, &text).unwrap();
            let valid = lines
                .iter()
                .filter(|l| serde_json::from_str::<JournalEvent>(l).is_ok())
                .count();

            let journal = FileJournal::open(&path, FsyncPolicy::Never).await.unwrap();
            match journal.events(&JournalFilter::default()).await {
                Ok(events) => prop_assert!(events.len() <= valid),
                Err(e) => {
                    prop_assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{}", e);
                    prop_assert!(e.to_string().contains("line "), "{}", e);
                }
            }
            // After an append and a repair, every event that was whole is read, in order.
            journal.append(&event("new".into(), "s".into(), 0)).await.unwrap();
            FileJournal::repair(&path).await.unwrap();
            let events = FileJournal::open(&path, FsyncPolicy::Never)
                .await
                .unwrap()
                .events(&JournalFilter::default())
                .await
                .unwrap();
            prop_assert_eq!(events.len(), valid + 1);
            prop_assert_eq!(&events.last().unwrap().run_id, "new");
            Ok(())
        })?;
    }

    #[test]
    fn journal_events_read_back_as_written(
        names in proptest::collection::vec(("\\PC{0,16}", "\\PC{0,16}", any::<u64>()), 1..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let journal = FileJournal::open(dir.path().join("j.jsonl"), FsyncPolicy::Never)
                .await
                .unwrap();
            let written: Vec<JournalEvent> =
                names.into_iter().map(|(r, s, n)| event(r, s, n)).collect();
            for e in &written {
                journal.append(e).await.unwrap();
            }
            let read = journal.events(&JournalFilter::default()).await.unwrap();
            prop_assert_eq!(read, written);
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// Any lock key names one file inside the lock directory: no separator, no `..` name, not
    /// hidden, bounded, and the same key always the same file.
    #[test]
    fn every_lock_key_names_one_plain_file(key in "\\PC{1,300}") {
        let stem = lock_file_stem(&key);
        prop_assert!(!stem.is_empty() && stem.len() <= 200, "{}", stem);
        prop_assert!(!stem.contains('/') && !stem.contains('\\') && !stem.starts_with('.'), "{}", stem);
        prop_assert_eq!(stem, lock_file_stem(&key));
    }
}
