//! Security audit: provider auditors plus the secret age audit, in one report.
//!
//! Replaces the seeds' monthly review: `gcloud projects get-iam-policy` for owner/editor and
//! public bindings, `gcloud iam service-accounts keys list` for old keys, the GitHub webhook,
//! collaborator and deploy-key lists, and "secrets older than 90 days".

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::rotate::{AgeAuditConfig, secret_age_audit};
use crate::Result;
use crate::contracts::{AuditFinding, SecretStore, SecurityAuditor, Severity};
use crate::engine::{Action, Output, RunReport, Runbook, Step};

/// The combined findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityReport {
    /// Every finding, worst first.
    pub findings: Vec<AuditFinding>,
}

impl SecurityReport {
    /// How many findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// A Markdown table for people.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "# Security audit\n\n{} critical, {} error, {} warning, {} info\n\n| Severity | Resource | Issue | Advice |\n|---|---|---|---|\n",
            self.count(Severity::Critical),
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        );
        for f in &self.findings {
            let cell = |s: &str| s.replace('|', "\\|");
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                f.severity,
                cell(&f.resource),
                cell(&f.issue),
                cell(&f.advice)
            ));
        }
        md
    }
}

/// Runs every auditor and the secret age audit.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemorySecretStore;
/// use ops_core::contracts::SecretStore;
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{AgeAuditConfig, SecurityAudit, Procedure};
/// let secrets = Arc::new(MemorySecretStore::new("sm"));
/// secrets.add_version("fresh", &"x".into()).await?;
/// let ops_core::runbooks::Finished { summary: found, .. } = SecurityAudit::new("project", AgeAuditConfig::default()).secrets(secrets).run(&Runner::new(), Mode::Execute).await?;
/// assert!(found.unwrap().findings.is_empty(), "a fresh secret is not a finding");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SecurityAudit {
    target: String,
    auditors: Vec<Arc<dyn SecurityAuditor>>,
    secrets: Vec<Arc<dyn SecretStore>>,
    age: AgeAuditConfig,
}

impl SecurityAudit {
    /// An audit of `target` (a project, an organisation).
    pub fn new(target: impl Into<String>, age: AgeAuditConfig) -> Self {
        Self {
            target: target.into(),
            auditors: Vec::new(),
            secrets: Vec::new(),
            age,
        }
    }

    /// Adds a provider auditor.
    pub fn auditor(mut self, auditor: Arc<dyn SecurityAuditor>) -> Self {
        self.auditors.push(auditor);
        self
    }

    /// Adds a secret store to age-audit.
    pub fn secrets(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.secrets.push(store);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.age.validate()?;
        let mut steps = Vec::new();
        for (i, a) in self.auditors.iter().enumerate() {
            let a = a.clone();
            steps.push(Step::read(format!("audit-{i}-{}", a.name()), move |_| {
                let a = a.clone();
                Ok(Action::new(
                    "SecurityAuditor::audit",
                    json!({ "auditor": a.name() }),
                    async move {
                        Ok(a.audit()
                            .await
                            .unwrap_or_else(|e| vec![could_not(a.name(), &e)]))
                    },
                ))
            }));
        }
        for (i, s) in self.secrets.iter().enumerate() {
            let (s, age) = (s.clone(), self.age.clone());
            steps.push(Step::read(format!("secret-age-{i}-{}", s.name()), move |ctx| {
                let (s, age, now) = (s.clone(), age.clone(), ctx.clock().now());
                Ok(Action::new("SecretStore::list_secrets", json!({ "store": s.name(), "max_age_days": age.max_age.as_secs() / 86_400 }), async move {
                    Ok(match secret_age_audit(s.as_ref(), now, &age).await {
                        Err(e) => vec![could_not(s.name(), &e)],
                        Ok(aged) => aged
                            .into_iter()
                            .map(|a| AuditFinding {
                                severity: if a.age_days.is_some_and(|d| d as u64 > 2 * age.max_age.as_secs() / 86_400) { Severity::Error } else { Severity::Warning },
                                resource: format!("{}:{}", s.name(), a.name),
                                issue: a.age_days.map_or("age unknown".into(), |d| format!("not rotated for {d} days")),
                                advice: "rotate it (rotate-secret runbook)".into(),
                            })
                            .collect(),
                    })
                }))
            }));
        }
        if steps.is_empty() {
            return Err(super::config::invalid(
                "security_audit",
                "nothing to audit: add an auditor or a secret store",
            ));
        }
        // The audits run side by side; each produces its findings.
        let audits: Vec<Output<Vec<AuditFinding>>> =
            steps.iter().map(|s| Output::of(s.name())).collect();
        Ok(Runbook::new("security-audit", &self.target)
            .with_category(crate::engine::Category::Check)
            .parallel(steps)
            .step(Step::read("report", move |ctx| {
                let mut findings: Vec<AuditFinding> = audits
                    .iter()
                    .flat_map(|a| ctx.get(a).unwrap_or_default())
                    .collect();
                findings.sort_by(|a, b| {
                    b.severity
                        .cmp(&a.severity)
                        .then_with(|| a.resource.cmp(&b.resource))
                });
                Ok(Action::new("combine", json!({}), async move {
                    Ok(SecurityReport { findings })
                }))
            })))
    }
}

impl super::Procedure for SecurityAudit {
    type Summary = SecurityReport;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<SecurityReport> {
        report.output("report")
    }
}

fn could_not(source: &str, e: &crate::Error) -> AuditFinding {
    AuditFinding {
        severity: Severity::Warning,
        resource: source.to_string(),
        issue: format!("could not be audited: {e}"),
        advice: "fix access for the auditor and run the audit again".into(),
    }
}
