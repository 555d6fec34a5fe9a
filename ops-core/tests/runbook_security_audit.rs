//! Security audit: auditors and secret ages in one report, failures as findings.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{ManualClock, SimulatedClock};
use ops_core::contracts::*;
use ops_core::engine::{Mode, Runner};
use ops_core::memory::MemorySecretStore;
use ops_core::runbooks::*;
use ops_core::{Error, ErrorKind};

fn auditor(
    name: &'static str,
    result: Result<Vec<AuditFinding>, ErrorKind>,
) -> Arc<dyn SecurityAuditor> {
    let mut a = MockSecurityAuditor::new();
    a.expect_name().return_const(name.to_string());
    a.expect_audit()
        .times(1)
        .returning(move || result.clone().map_err(|k| Error::new(name, "audit", k)));
    Arc::new(a)
}

fn finding(severity: Severity, resource: &str) -> AuditFinding {
    AuditFinding {
        severity,
        resource: resource.into(),
        issue: "roles/owner granted".into(),
        advice: "use a narrower role".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn combines_auditors_and_secret_ages_worst_first() {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let store = Arc::new(MemorySecretStore::new("sm").with_clock(clock.clone()));
    store.add_version("very-old", &"a".into()).await.unwrap();
    clock.advance(Duration::from_secs(100 * 86_400));
    store.add_version("old", &"b".into()).await.unwrap();
    clock.advance(Duration::from_secs(95 * 86_400));
    store.add_version("new", &"c".into()).await.unwrap();
    let runner = Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(
        "2026-07-15T00:00:00Z".parse().unwrap(),
    )));
    let Finished {
        report,
        summary: findings,
    } = SecurityAudit::new("project-p", AgeAuditConfig::default())
        .auditor(auditor(
            "gcp-iam",
            Ok(vec![
                finding(Severity::Critical, "allUsers on bucket"),
                finding(Severity::Warning, "editor on ci@"),
            ]),
        ))
        .auditor(auditor(
            "github",
            Err(ErrorKind::Forbidden {
                detail: "no".into(),
            }),
        ))
        .secrets(store)
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let f = findings.unwrap();
    let rows: Vec<(Severity, &str)> = f
        .findings
        .iter()
        .map(|x| (x.severity, x.resource.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (Severity::Critical, "allUsers on bucket"),
            (Severity::Error, "sm:very-old"),
            (Severity::Warning, "editor on ci@"),
            (Severity::Warning, "github"),
            (Severity::Warning, "sm:old"),
        ]
    );
    assert!(
        f.findings[3].issue.contains("could not be audited")
            && f.findings[3].issue.contains("forbidden")
    );
    let md = f.to_markdown();
    assert!(
        md.contains("1 critical, 1 error, 3 warning, 0 info"),
        "{md}"
    );
}

#[tokio::test]
async fn nothing_to_audit_is_invalid() {
    let err = SecurityAudit::new("p", AgeAuditConfig::default())
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { .. }));
}
