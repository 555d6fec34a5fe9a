//! A repository's open Dependabot alerts and code-scanning alerts as [`SecurityAuditor`]
//! findings (seeds 000–003: "check dependency vulnerabilities" in the weekly review and the
//! security audit): by severity, with their age and whether a fix is available. Read-only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::SharedClock;
use ops_core::contracts::{AuditFinding, SecurityAuditor, Severity};
use ops_core::{ErrorKind, Result};
use serde::Deserialize;

use crate::client::{GithubClient, Repo};

/// The most alerts of each kind read.
pub const MAX_ALERTS: usize = 1000;

#[derive(Deserialize)]
struct DependabotAlert {
    number: u64,
    #[serde(default)]
    dependency: Option<Dependency>,
    security_advisory: Advisory,
    #[serde(default)]
    security_vulnerability: Option<Vulnerability>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Dependency {
    #[serde(default)]
    package: Option<Package>,
    #[serde(default)]
    manifest_path: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct Package {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Advisory {
    #[serde(default)]
    ghsa_id: String,
    #[serde(default)]
    cve_id: Option<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    severity: String,
}

#[derive(Deserialize)]
struct Vulnerability {
    #[serde(default)]
    vulnerable_version_range: String,
    #[serde(default)]
    first_patched_version: Option<PatchedVersion>,
}

#[derive(Deserialize)]
struct PatchedVersion {
    #[serde(default)]
    identifier: String,
}

#[derive(Deserialize)]
struct CodeScanningAlert {
    number: u64,
    created_at: DateTime<Utc>,
    rule: Rule,
    #[serde(default)]
    tool: Option<Tool>,
    #[serde(default)]
    most_recent_instance: Option<Instance>,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    security_severity_level: Option<String>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct Tool {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Instance {
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    start_line: Option<u64>,
}

/// An advisory's or rule's severity word as a finding's severity; an unknown word is a
/// warning (GitHub may add levels).
fn severity_of(word: &str) -> Severity {
    match word {
        "critical" => Severity::Critical,
        "high" | "error" => Severity::Error,
        "medium" | "moderate" | "warning" => Severity::Warning,
        "low" | "note" | "none" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Open Dependabot and code-scanning alerts of one repository. A repository where a feature is
/// off (Dependabot alerts disabled, no code-scanning analysis) gives one finding saying so,
/// not an error.
#[derive(Debug, Clone)]
pub struct DependencyAlerts {
    client: GithubClient,
    repo: Repo,
    name: String,
    code_scanning: bool,
}

impl DependencyAlerts {
    /// Both kinds of alerts of `repo` (`owner/name`).
    pub fn new(client: GithubClient, repo: &str) -> Result<Self> {
        let repo = Repo::parse(repo)?;
        Ok(Self {
            name: format!("github-alerts:{repo}"),
            client,
            repo,
            code_scanning: true,
        })
    }

    /// Dependabot alerts only (for repositories without code scanning).
    pub fn without_code_scanning(mut self) -> Self {
        self.code_scanning = false;
        self
    }

    fn clock(&self) -> &SharedClock {
        self.client.clock()
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
    ) -> Result<Vec<T>> {
        let url = self.client.url(
            &self.repo.path(path),
            &[("state", "open"), ("per_page", "100")],
        )?;
        let page = self
            .client
            .get_pages(operation, url, MAX_ALERTS, |p: Vec<T>| p)
            .await?;
        if page.truncated {
            tracing::warn!(repo = %self.repo, path, cap = MAX_ALERTS, "alert list truncated");
        }
        Ok(page.items)
    }

    fn finding(
        &self,
        severity: Severity,
        what: String,
        issue: String,
        advice: String,
    ) -> AuditFinding {
        AuditFinding {
            severity,
            resource: format!("repo:{} {what}", self.repo),
            issue,
            advice,
        }
    }

    fn age_days(&self, created: DateTime<Utc>) -> i64 {
        (self.clock().now() - created).num_days().max(0)
    }

    fn dependabot_finding(&self, a: DependabotAlert) -> AuditFinding {
        let dep = a.dependency.as_ref();
        let package = dep
            .and_then(|d| d.package.as_ref())
            .map(|p| format!("{} ({})", p.name, p.ecosystem))
            .unwrap_or_else(|| "a dependency".into());
        let manifest = dep
            .and_then(|d| d.manifest_path.clone())
            .unwrap_or_default();
        let scope = dep
            .and_then(|d| d.scope.as_deref())
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        let id = a
            .security_advisory
            .cve_id
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| a.security_advisory.ghsa_id.clone());
        let range = a
            .security_vulnerability
            .as_ref()
            .map(|v| v.vulnerable_version_range.clone())
            .filter(|r| !r.is_empty())
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        let fix = a
            .security_vulnerability
            .as_ref()
            .and_then(|v| v.first_patched_version.as_ref())
            .map(|p| p.identifier.clone())
            .filter(|p| !p.is_empty());
        let advice = match &fix {
            Some(v) => format!("upgrade {package} to {v} or later in {manifest}"),
            None => format!(
                "no patched version yet: apply the advisory's workaround, or replace {package}"
            ),
        };
        self.finding(
            severity_of(&a.security_advisory.severity),
            format!("dependabot alert {} {package}", a.number),
            format!(
                "{id} {} severity: {} ({package}{range}{scope}); open {} days{}",
                a.security_advisory.severity,
                a.security_advisory.summary,
                self.age_days(a.created_at),
                if fix.is_some() {
                    ", fix available"
                } else {
                    ", no fix yet"
                }
            ),
            advice,
        )
    }

    fn code_scanning_finding(&self, a: CodeScanningAlert) -> AuditFinding {
        let level = a
            .rule
            .security_severity_level
            .clone()
            .or_else(|| a.rule.severity.clone())
            .unwrap_or_else(|| "warning".into());
        let at = a
            .most_recent_instance
            .and_then(|i| i.location)
            .and_then(|l| {
                let path = l.path?;
                Some(match l.start_line {
                    Some(n) => format!("{path}:{n}"),
                    None => path,
                })
            })
            .unwrap_or_else(|| "an unknown place".into());
        let rule = a.rule.id.clone().unwrap_or_else(|| "a rule".into());
        let tool = a
            .tool
            .and_then(|t| t.name)
            .unwrap_or_else(|| "code scanning".into());
        self.finding(
            severity_of(&level),
            format!("code-scanning alert {} {rule}", a.number),
            format!(
                "{tool}: {} ({level}) at {at}; open {} days",
                a.rule.description,
                self.age_days(a.created_at)
            ),
            format!("fix the code at {at}, or dismiss the alert with a reason"),
        )
    }

    /// A feature that is off or not set up answers 403 or 404: a finding, not a failure.
    fn switched_off(&self, e: &ops_core::Error, what: &str, advice: &str) -> Option<AuditFinding> {
        matches!(
            e.kind(),
            ErrorKind::Forbidden { .. } | ErrorKind::NotFound { .. }
        )
        .then(|| {
            self.finding(
                Severity::Warning,
                what.to_string(),
                format!("cannot be read: {e}"),
                advice.to_string(),
            )
        })
    }
}

#[async_trait]
impl SecurityAuditor for DependencyAlerts {
    fn name(&self) -> &str {
        &self.name
    }

    async fn audit(&self) -> Result<Vec<AuditFinding>> {
        let mut out = Vec::new();
        match self
            .list::<DependabotAlert>("list_dependabot_alerts", "dependabot/alerts")
            .await
        {
            Ok(alerts) => out.extend(alerts.into_iter().map(|a| self.dependabot_finding(a))),
            Err(e) => out.push(self.switched_off(&e, "dependabot alerts", "enable Dependabot alerts in the repository's security settings, and give the token the `security_events` or Dependabot alerts read permission").ok_or(e)?),
        }
        if self.code_scanning {
            match self
                .list::<CodeScanningAlert>("list_code_scanning_alerts", "code-scanning/alerts")
                .await
            {
                Ok(alerts) => {
                    out.extend(alerts.into_iter().map(|a| self.code_scanning_finding(a)))
                }
                Err(e) => out.push(self.switched_off(&e, "code scanning", "set up code scanning (CodeQL default setup), or audit with `without_code_scanning`").ok_or(e)?),
            }
        }
        // Worst first; then oldest alert number first, for a stable order.
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.resource.cmp(&b.resource))
        });
        Ok(out)
    }
}
