//! [`SecurityAuditor`]: provider checks that turn configuration into security findings.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::contracts::Severity;

/// One thing an audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFinding {
    /// How bad.
    pub severity: Severity,
    /// What it is about (`projects/p/serviceAccounts/deployer@…`, `repo:org/app webhook 7`).
    pub resource: String,
    /// What is wrong.
    pub issue: String,
    /// What to do.
    pub advice: String,
}

/// Audits one provider's configuration (IAM bindings and key ages, repository webhooks,
/// collaborators and deploy keys, …). Read-only.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SecurityAuditor: Send + Sync {
    /// The auditor's name, for reports.
    fn name(&self) -> &str;
    /// Every finding, worst first.
    ///
    /// # Behavior
    /// Cases of `testkit::security_auditor_cases`:
    /// - worst first, each finding with a resource, an issue and advice
    ///   (`findings_come_worst_first_and_complete`);
    /// - the findings arranged in the fixture are found (`the_expected_findings_are_found`);
    /// - no finding shows a secret value (`no_finding_shows_a_secret`);
    /// - it is read-only: auditing again finds the same (`an_audit_is_read_only`).
    async fn audit(&self) -> Result<Vec<AuditFinding>>;
}
