//! A repository's webhooks, outside collaborators and deploy keys as [`SecurityAuditor`]
//! findings. Read-only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::Result;
use ops_core::contracts::{AuditFinding, SecurityAuditor, Severity};
use serde::Deserialize;

use crate::client::{GithubClient, Repo};

/// The most items of each kind read.
const MAX_ITEMS: usize = 500;

/// Deploy keys older than this are worth rotating.
pub const DEPLOY_KEY_MAX_AGE_DAYS: i64 = 365;

#[derive(Deserialize)]
struct Hook {
    id: u64,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    config: HookConfig,
    #[serde(default)]
    last_response: Option<HookResponse>,
}

#[derive(Deserialize, Default)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    insecure_ssl: Option<serde_json::Value>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize)]
struct HookResponse {
    #[serde(default)]
    code: Option<u16>,
}

#[derive(Deserialize)]
struct Collaborator {
    login: String,
    #[serde(default)]
    role_name: Option<String>,
    #[serde(default)]
    permissions: Permissions,
}

#[derive(Deserialize, Default)]
struct Permissions {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    maintain: bool,
    #[serde(default)]
    push: bool,
}

#[derive(Deserialize)]
struct DeployKey {
    id: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    read_only: bool,
    created_at: DateTime<Utc>,
    #[serde(default)]
    last_used: Option<DateTime<Utc>>,
}

/// Audits one repository.
#[derive(Debug, Clone)]
pub struct RepoAudit {
    client: GithubClient,
    repo: Repo,
    name: String,
}

impl RepoAudit {
    /// An audit of `repo` (`owner/name`).
    pub fn new(client: GithubClient, repo: &str) -> Result<Self> {
        let repo = Repo::parse(repo)?;
        Ok(Self {
            name: format!("github-audit:{repo}"),
            client,
            repo,
        })
    }

    fn finding(&self, severity: Severity, what: String, issue: &str, advice: &str) -> AuditFinding {
        AuditFinding {
            severity,
            resource: format!("repo:{} {what}", self.repo),
            issue: issue.to_string(),
            advice: advice.to_string(),
        }
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>> {
        let mut q = query.to_vec();
        q.push(("per_page", "100"));
        let url = self.client.url(&self.repo.path(path), &q)?;
        let page = self
            .client
            .get_pages(operation, url, MAX_ITEMS, |p: Vec<T>| p)
            .await?;
        if page.truncated {
            tracing::warn!(repo = %self.repo, path, cap = MAX_ITEMS, "audit list truncated");
        }
        Ok(page.items)
    }

    fn hook_findings(&self, hooks: Vec<Hook>) -> Vec<AuditFinding> {
        let mut out = Vec::new();
        for h in hooks {
            let what = format!("webhook {}", h.id);
            let url = h.config.url.unwrap_or_default();
            let insecure = match &h.config.insecure_ssl {
                Some(serde_json::Value::String(s)) => s == "1",
                Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
                _ => false,
            };
            if insecure {
                out.push(self.finding(
                    Severity::Error,
                    what.clone(),
                    "TLS certificate verification is off (insecure_ssl)",
                    "set insecure_ssl to 0 and give the receiver a valid certificate",
                ));
            }
            if url.starts_with("http://") {
                out.push(self.finding(
                    Severity::Error,
                    what.clone(),
                    "delivers over plain HTTP",
                    "use an https:// URL",
                ));
            }
            // GitHub returns the secret masked ("********") when one is set.
            if h.config.secret.is_none() {
                out.push(self.finding(
                    Severity::Warning,
                    what.clone(),
                    "has no secret: deliveries cannot be verified",
                    "set a webhook secret and verify X-Hub-Signature-256",
                ));
            }
            if h.active
                && h.last_response
                    .and_then(|r| r.code)
                    .is_some_and(|c| !(200..300).contains(&c))
            {
                out.push(self.finding(
                    Severity::Info,
                    what.clone(),
                    "its last delivery failed",
                    "check the receiver, or remove the hook if unused",
                ));
            }
            if !h.active {
                out.push(self.finding(
                    Severity::Info,
                    what,
                    "is inactive",
                    "remove it if it is no longer needed",
                ));
            }
        }
        out
    }

    fn collaborator_findings(&self, outside: Vec<Collaborator>) -> Vec<AuditFinding> {
        outside
            .into_iter()
            .filter_map(|c| {
                let what = format!("outside collaborator {}", c.login);
                let role = c.role_name.unwrap_or_default();
                if c.permissions.admin || c.permissions.maintain {
                    Some(self.finding(
                        Severity::Error,
                        what,
                        &format!("outside collaborator with {role} access"),
                        "reduce to the least access needed, or remove",
                    ))
                } else if c.permissions.push {
                    Some(self.finding(
                        Severity::Warning,
                        what,
                        "outside collaborator with write access",
                        "confirm the access is still needed",
                    ))
                } else {
                    None
                }
            })
            .collect()
    }

    fn key_findings(&self, keys: Vec<DeployKey>, now: DateTime<Utc>) -> Vec<AuditFinding> {
        let mut out = Vec::new();
        for k in keys {
            let what = format!("deploy key {} ({})", k.id, k.title);
            if !k.read_only {
                out.push(self.finding(
                    Severity::Warning,
                    what.clone(),
                    "deploy key with write access",
                    "make it read-only unless it must push",
                ));
            }
            if (now - k.created_at).num_days() > DEPLOY_KEY_MAX_AGE_DAYS {
                out.push(self.finding(
                    Severity::Warning,
                    what.clone(),
                    &format!("older than {DEPLOY_KEY_MAX_AGE_DAYS} days"),
                    "rotate the key",
                ));
            }
            if k.last_used.is_none_or(|u| (now - u).num_days() > 90) {
                out.push(self.finding(
                    Severity::Info,
                    what,
                    "not used in 90 days",
                    "remove it if it is no longer needed",
                ));
            }
        }
        out
    }
}

#[async_trait]
impl SecurityAuditor for RepoAudit {
    fn name(&self) -> &str {
        &self.name
    }

    async fn audit(&self) -> Result<Vec<AuditFinding>> {
        let hooks: Vec<Hook> = self.list("list_webhooks", "hooks", &[]).await?;
        let outside: Vec<Collaborator> = self
            .list(
                "list_collaborators",
                "collaborators",
                &[("affiliation", "outside")],
            )
            .await?;
        let keys: Vec<DeployKey> = self.list("list_deploy_keys", "keys", &[]).await?;
        let now = self.client.clock().now();
        let mut findings = self.hook_findings(hooks);
        findings.extend(self.collaborator_findings(outside));
        findings.extend(self.key_findings(keys, now));
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        Ok(findings)
    }
}
