//! The [`SecurityAuditor`] suite.

use super::{Case, always, cases, check_cases, expect_ok};
use crate::contracts::{AuditFinding, SecurityAuditor, Severity};

/// What the audited configuration is known to hold: findings the audit must report, and
/// secrets that must never appear in one.
#[derive(Debug, Clone, Default)]
pub struct AuditFixture {
    /// `(severity, text)`: a finding of this severity whose resource or issue contains `text`.
    pub expected: Vec<(Severity, String)>,
    /// Values (tokens, webhook secrets, key material) no finding may contain.
    pub secrets: Vec<String>,
}

impl AuditFixture {
    /// A fixture expecting nothing in particular.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expects a finding of `severity` whose resource or issue contains `text`.
    pub fn expect(mut self, severity: Severity, text: impl Into<String>) -> Self {
        self.expected.push((severity, text.into()));
        self
    }

    /// A secret the findings must not show.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        self.secrets.push(value.into());
        self
    }
}

/// The audit suite's cases.
pub fn security_auditor_cases() -> Vec<Case<dyn SecurityAuditor, AuditFixture>> {
    cases![dyn SecurityAuditor, AuditFixture;
        findings_come_worst_first_and_complete unless always,
        the_expected_findings_are_found unless always,
        no_finding_shows_a_secret unless always,
        an_audit_is_read_only unless always,
    ]
}

/// Checks that findings come worst first; every finding names its resource, its issue and
/// advice; the expected findings are there at their severity; no secret of the fixture appears
/// in any finding; and the audit is read-only (a second gives the same findings).
pub async fn security_auditor(auditor: &(dyn SecurityAuditor + 'static), fixture: &AuditFixture) {
    check_cases(
        "security_auditor",
        auditor,
        fixture,
        &security_auditor_cases(),
    )
    .await;
}

async fn findings_come_worst_first_and_complete(auditor: &dyn SecurityAuditor, _: &AuditFixture) {
    assert!(!auditor.name().trim().is_empty(), "the auditor has a name");
    let found = expect_ok("audit", auditor.audit().await);
    assert!(
        found.windows(2).all(|w| w[0].severity >= w[1].severity),
        "findings come worst first: {:?}",
        found.iter().map(|f| f.severity).collect::<Vec<_>>()
    );
    for f in &found {
        for (field, text) in [
            ("resource", &f.resource),
            ("issue", &f.issue),
            ("advice", &f.advice),
        ] {
            assert!(!text.trim().is_empty(), "a finding without {field}: {f:?}");
        }
    }
}

async fn the_expected_findings_are_found(auditor: &dyn SecurityAuditor, fixture: &AuditFixture) {
    let found = expect_ok("audit", auditor.audit().await);
    for (severity, text) in &fixture.expected {
        assert!(
            found.iter().any(|f| f.severity == *severity
                && (f.resource.contains(text.as_str()) || f.issue.contains(text.as_str()))),
            "no {severity} finding about {text:?} among {found:#?}"
        );
    }
}

async fn no_finding_shows_a_secret(auditor: &dyn SecurityAuditor, fixture: &AuditFixture) {
    for f in &expect_ok("audit", auditor.audit().await) {
        let shown = shown(f);
        for secret in &fixture.secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "a finding shows a secret: {f:?}"
            );
        }
    }
}

async fn an_audit_is_read_only(auditor: &dyn SecurityAuditor, _: &AuditFixture) {
    let first = expect_ok("audit", auditor.audit().await);
    let second = expect_ok("audit again", auditor.audit().await);
    assert_eq!(
        first, second,
        "an audit is read-only: the same configuration gives the same findings"
    );
}

/// Everything a finding shows, in every form it is printed or stored.
fn shown(f: &AuditFinding) -> String {
    format!(
        "{f:?} {} {} {}",
        f.resource,
        f.issue,
        serde_json::to_string(f).unwrap_or_default()
    )
}
