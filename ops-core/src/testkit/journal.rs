//! The [`Journal`] suite.

use std::time::Duration;

use super::{Case, always, cases, check_cases, expect_ok};
use crate::engine::{EventKind, Journal, JournalEvent, JournalFilter, Mode};

fn event(run: &str, runbook: &str, seq: u64, at_secs: i64) -> JournalEvent {
    JournalEvent {
        seq,
        run_id: run.to_string(),
        runbook: runbook.to_string(),
        target: format!("{runbook}-target"),
        at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + at_secs),
        kind: if seq == 0 {
            EventKind::RunStarted {
                mode: Mode::Execute,
                steps: vec!["a".into(), "b".into()],
                resumed: false,
                category: Some(crate::engine::Category::Deploy),
            }
        } else {
            EventKind::StepSucceeded {
                step: format!("step-{seq}"),
                attempts: 1,
                duration: Duration::from_millis(seq * 10),
                output: serde_json::json!({ "n": seq, "nested": { "list": [1, 2, 3] } }),
            }
        },
    }
}

/// The journal suite's cases; the fixture is the prefix that makes run ids unique.
pub fn journal_cases() -> Vec<Case<dyn Journal, String>> {
    cases![dyn Journal, String;
        a_runs_events_come_back_whole_and_in_order unless always,
        filters_select_by_runbook_target_time_and_run unless always,
        concurrent_appends_are_each_kept_once unless always,
    ]
}

/// Checks append order, filters, and that concurrent appends are all kept whole. `prefix`
/// makes the suite's run ids unique when the journal is shared.
pub async fn journal(journal: &(dyn Journal + 'static), prefix: &str) {
    check_cases("journal", journal, &prefix.to_string(), &journal_cases()).await;
}

/// Appends five events of two runs (`…-run-a` of runbook alpha, `…-run-b` of beta).
async fn append_two_runs(
    journal: &dyn Journal,
    prefix: &str,
) -> (String, String, Vec<JournalEvent>) {
    let (a, b) = (format!("{prefix}-run-a"), format!("{prefix}-run-b"));
    let written = vec![
        event(&a, "alpha", 0, 0),
        event(&b, "beta", 0, 1),
        event(&a, "alpha", 1, 2),
        event(&a, "alpha", 2, 3),
        event(&b, "beta", 1, 4),
    ];
    for e in &written {
        expect_ok("append", journal.append(e).await);
    }
    (a, b, written)
}

async fn a_runs_events_come_back_whole_and_in_order(journal: &dyn Journal, prefix: &String) {
    let (a, _, written) = append_two_runs(journal, &format!("{prefix}-order")).await;
    let got = expect_ok(
        "events of run a",
        journal.events(&JournalFilter::run(&a)).await,
    );
    let want: Vec<&JournalEvent> = written.iter().filter(|e| e.run_id == a).collect();
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        want,
        "a run's events come back whole and in order"
    );
}

async fn filters_select_by_runbook_target_time_and_run(journal: &dyn Journal, prefix: &String) {
    let (a, b, written) = append_two_runs(journal, &format!("{prefix}-filter")).await;
    let beta = expect_ok(
        "events of runbook beta",
        journal
            .events(&JournalFilter {
                runbook: Some("beta".into()),
                ..Default::default()
            })
            .await,
    );
    assert!(
        beta.iter().all(|e| e.runbook == "beta")
            && beta.iter().filter(|e| e.run_id == b).count() == 2,
        "filter by runbook"
    );
    let target = expect_ok(
        "events of a target",
        journal
            .events(&JournalFilter {
                target: Some("alpha-target".into()),
                run_id: Some(a.clone()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(target.len(), 3, "filter by target");
    let since = written[3].at;
    let late = expect_ok(
        "events since",
        journal
            .events(&JournalFilter {
                since: Some(since),
                run_id: Some(a.clone()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(late.len(), 1, "filter by time");
    let none = expect_ok(
        "events of an unknown run",
        journal
            .events(&JournalFilter::run(format!("{prefix}-nope")))
            .await,
    );
    assert!(none.is_empty());
}

async fn concurrent_appends_are_each_kept_once(journal: &dyn Journal, prefix: &String) {
    // Every event kept exactly once, none torn.
    let c = format!("{prefix}-run-c");
    let appends = (0..64u64).map(|seq| {
        let e = event(&c, "gamma", seq, seq as i64);
        async move { journal.append(&e).await }
    });
    for r in futures_util::future::join_all(appends).await {
        expect_ok("concurrent append", r);
    }
    let mut seqs: Vec<u64> = expect_ok(
        "events of run c",
        journal.events(&JournalFilter::run(&c)).await,
    )
    .iter()
    .map(|e| e.seq)
    .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..64).collect::<Vec<_>>(),
        "every concurrent append is kept exactly once"
    );
}
