//! The [`SecurityAuditor`] suite.

use super::expect_ok;
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

/// Audits twice and checks: findings come worst first; every finding names its resource, its
/// issue and advice; the expected findings are there at their severity; no secret of the
/// fixture appears in any finding; and the audit is read-only (the second gives the same
/// findings as the first).
pub async fn security_auditor(auditor: &dyn SecurityAuditor, fixture: &AuditFixture) {
    assert!(!auditor.name().trim().is_empty(), "the auditor has a name");
    let first = expect_ok("audit", auditor.audit().await);
    assert!(
        first.windows(2).all(|w| w[0].severity >= w[1].severity),
        "findings come worst first: {:?}",
        first.iter().map(|f| f.severity).collect::<Vec<_>>()
    );
    for f in &first {
        for (field, text) in [
            ("resource", &f.resource),
            ("issue", &f.issue),
            ("advice", &f.advice),
        ] {
            assert!(!text.trim().is_empty(), "a finding without {field}: {f:?}");
        }
    }
    for (severity, text) in &fixture.expected {
        assert!(
            first.iter().any(|f| f.severity == *severity
                && (f.resource.contains(text.as_str()) || f.issue.contains(text.as_str()))),
            "no {severity} finding about {text:?} among {first:#?}"
        );
    }
    for f in &first {
        let shown = shown(f);
        for secret in &fixture.secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "a finding shows a secret: {f:?}"
            );
        }
    }
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
