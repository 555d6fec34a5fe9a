//! The testkit's case runner: every broken behaviour is reported, not only the first; cases
//! that do not apply are skipped with their reason; one case runs by name.

#![cfg(feature = "testkit")]

use ops_core::adapters::FsBackupStore;
use ops_core::contracts::BackupStore;
use ops_core::testkit::{
    BackupFixture, Case, CaseFuture, backup_store_cases, check_case, check_cases,
    cost_source_cases, deployer_cases, health_report_cases, log_source_cases, metrics_source_cases,
    notifier_cases, secret_store_cases, security_auditor_cases,
};

fn holds(_: &str, _: &()) -> CaseFuture<'static> {
    Box::pin(async {})
}

fn breaks_first<'a>(s: &'a str, _: &'a ()) -> CaseFuture<'a> {
    Box::pin(async move { panic!("first broke on {s}") })
}

fn breaks_second<'a>(_: &'a str, _: &'a ()) -> CaseFuture<'a> {
    Box::pin(async { assert_eq!(1 + 1, 3, "second broke") })
}

fn never(_: &str) -> Option<&'static str> {
    None
}

fn not_here(_: &str) -> Option<&'static str> {
    Some("the subject does not declare it")
}

fn cases() -> Vec<Case<str, ()>> {
    vec![
        Case {
            name: "first",
            skip: never,
            check: breaks_first,
        },
        Case {
            name: "fine",
            skip: never,
            check: holds,
        },
        Case {
            name: "second",
            skip: never,
            check: breaks_second,
        },
        Case {
            name: "skipped",
            skip: not_here,
            check: breaks_first,
        },
    ]
}

#[tokio::test]
async fn every_broken_case_is_reported_and_skipped_ones_do_not_run() {
    let run = tokio::spawn(async { check_cases("demo", "subject", &(), &cases()).await });
    let panic = run.await.unwrap_err().into_panic();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("2 of 4 behaviours broken"), "{message}");
    assert!(
        message.contains("demo::first: first broke on subject"),
        "{message}"
    );
    assert!(
        message.contains("demo::second:") && message.contains("second broke"),
        "{message}"
    );
    assert!(
        !message.contains("demo::fine") && !message.contains("demo::skipped"),
        "{message}"
    );
}

#[tokio::test]
async fn one_case_runs_by_name_and_a_case_that_does_not_apply_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBackupStore::open(dir.path()).await.unwrap();
    let store: &(dyn BackupStore + 'static) = &store;
    let fixture = BackupFixture::new("by-name");
    let all = backup_store_cases();
    check_case("an_existing_id_is_never_overwritten", store, &fixture, &all).await;
    let names: Vec<&str> = all.iter().map(|c| c.name).collect();
    assert!(names.len() >= 10, "{names:?}");
    let run = tokio::spawn(async { check_case("skipped", "subject", &(), &cases()).await });
    let panic = run.await.unwrap_err().into_panic();
    assert!(
        panic
            .downcast_ref::<String>()
            .unwrap()
            .contains("does not apply"),
        "a test written for a case that does not apply fails"
    );
}

/// The case names a contract's source mentions in backticks (case names are sentences in
/// snake case, at least four words).
fn case_names_in(file: &str) -> std::collections::BTreeSet<String> {
    let source =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap();
    let mut named = std::collections::BTreeSet::new();
    for piece in source.split('`').skip(1).step_by(2) {
        let snake = piece.contains('_')
            && piece
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit());
        if snake && piece.split('_').count() >= 4 {
            named.insert(piece.to_string());
        }
    }
    named
}

/// Every name in `file`'s docs is one of `cases`, and every case is named there.
fn assert_docs_name_exactly(file: &str, cases: &[&'static str]) {
    let named = case_names_in(file);
    for name in &named {
        assert!(
            cases.contains(&name.as_str()),
            "{file}: the docs name {name}, which is no case"
        );
    }
    for case in cases {
        assert!(
            named.contains(*case),
            "{file}: case {case} is named in no # Behavior section"
        );
    }
}

/// The `# Behavior` sections of a contract name the suite's cases: every name there is a
/// case, and every case is named there, so the documented behaviour is the checked one.
#[test]
fn the_contracts_behavior_docs_name_exactly_the_suites_cases() {
    let backup: Vec<&str> = backup_store_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/backup.rs", &backup);
    let deployer: Vec<&str> = deployer_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/deploy.rs", &deployer);
    let secrets: Vec<&str> = secret_store_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/secret.rs", &secrets);
    let notifier: Vec<&str> = notifier_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/notify.rs", &notifier);
    let logs: Vec<&str> = log_source_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/logs.rs", &logs);
    let metrics: Vec<&str> = metrics_source_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/metrics.rs", &metrics);
    let audit: Vec<&str> = security_auditor_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/audit.rs", &audit);
    let costs: Vec<&str> = cost_source_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/cost.rs", &costs);
    let health: Vec<&str> = health_report_cases().iter().map(|c| c.name).collect();
    assert_docs_name_exactly("src/contracts/health.rs", &health);
}
