//! A read-only security audit of a project behind [`SecurityAuditor`]:
//!
//! - IAM bindings (Resource Manager v3 `projects.getIamPolicy`) granting `roles/owner` or
//!   `roles/editor` (the broad basic roles), and anything granted to `allUsers` or
//!   `allAuthenticatedUsers` (public);
//! - user-managed service-account keys (IAM v1) older than a limit (90 days by default).
//!
//! It only reads. Findings name the resource and what to do; they never contain key material.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use ops_core::Result;
use ops_core::contracts::{AuditFinding, SecurityAuditor, Severity};
use ops_core::http::SendOptions;
use ops_core::retry::Idempotency;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::{GcpClient, collect_pages};

/// The audit of the client's project.
#[derive(Debug, Clone)]
pub struct ProjectAudit {
    client: GcpClient,
    max_key_age: Duration,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct Policy {
    #[serde(default)]
    bindings: Vec<Binding>,
}

#[derive(Debug, Default, Deserialize)]
struct Binding {
    role: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    condition: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountPage {
    #[serde(default)]
    accounts: Vec<Account>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Account {
    email: String,
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<Key>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Key {
    name: String,
    #[serde(default)]
    valid_after_time: Option<DateTime<Utc>>,
    #[serde(default)]
    disabled: bool,
}

impl ProjectAudit {
    /// Audits the client's project; keys older than 90 days are findings.
    pub fn new(client: GcpClient) -> Self {
        let name = format!("gcp-audit:{}", client.config().project);
        Self {
            client,
            max_key_age: Duration::from_secs(90 * 24 * 3600),
            name,
        }
    }

    /// The key age above which a key is a finding.
    pub fn with_max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    async fn iam_findings(&self) -> Result<Vec<AuditFinding>> {
        let project = &self.client.config().project;
        let root = &self.client.config().endpoints.resource_manager;
        let url = self
            .client
            .url(root, &format!("v3/projects/{project}:getIamPolicy"))?;
        // A read, though a POST.
        let options = SendOptions {
            idempotency: Some(Idempotency::Idempotent),
            resource: Some(format!("projects/{project}")),
            ..SendOptions::default()
        };
        let body = json!({ "options": { "requestedPolicyVersion": 3 } });
        let policy: Policy = self
            .client
            .call("get_iam_policy", Method::POST, url, Some(&body), &options)
            .await?;
        let resource = format!("projects/{project}");
        let mut out = Vec::new();
        for b in &policy.bindings {
            let conditional = if b.condition.is_some() {
                " (with a condition)"
            } else {
                ""
            };
            for m in &b.members {
                if m == "allUsers" || m == "allAuthenticatedUsers" {
                    out.push(AuditFinding {
                        severity: Severity::Critical,
                        resource: resource.clone(),
                        issue: format!(
                            "{} is granted to {m}{conditional}: anyone can use it",
                            b.role
                        ),
                        advice: format!("remove {m} from {}; grant named principals only", b.role),
                    });
                } else if b.role == "roles/owner" || b.role == "roles/editor" {
                    out.push(AuditFinding {
                        severity: Severity::Warning,
                        resource: resource.clone(),
                        issue: format!("{m} has the basic role {}{conditional}", b.role),
                        advice: "replace the basic role with predefined roles for the work done"
                            .into(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn key_findings(&self) -> Result<Vec<AuditFinding>> {
        let project = self.client.config().project.clone();
        let root = self.client.config().endpoints.iam.clone();
        let accounts = collect_pages(10_000, |token| {
            let (project, root) = (project.clone(), root.clone());
            async move {
                let mut url = self
                    .client
                    .url(&root, &format!("v1/projects/{project}/serviceAccounts"))?;
                url.query_pairs_mut().append_pair("pageSize", "100");
                if let Some(t) = &token {
                    url.query_pairs_mut().append_pair("pageToken", t);
                }
                let page: AccountPage = self
                    .client
                    .get("list_service_accounts", url, &project)
                    .await?;
                Ok((page.accounts, page.next_page_token))
            }
        })
        .await?;
        let now = self.client.clock().now();
        let limit = chrono::Duration::from_std(self.max_key_age).unwrap_or(chrono::Duration::MAX);
        let per_account: Vec<Vec<AuditFinding>> = futures_util::stream::iter(accounts)
            .map(|a| {
                let (project, root) = (project.clone(), root.clone());
                async move {
                    let mut url = self
                        .client
                        .url(&root, &format!("v1/projects/{project}/serviceAccounts/{}/keys", a.email))?;
                    url.query_pairs_mut().append_pair("keyTypes", "USER_MANAGED");
                    let keys: Keys = self.client.get("list_service_account_keys", url, &a.email).await?;
                    Ok::<_, ops_core::Error>(
                        keys.keys
                            .into_iter()
                            .filter(|k| !k.disabled)
                            .filter_map(|k| {
                                let created = k.valid_after_time?;
                                let age = now - created;
                                (age > limit).then(|| AuditFinding {
                                    severity: Severity::Warning,
                                    resource: a.email.clone(),
                                    issue: format!(
                                        "user-managed key {} is {} days old{}",
                                        k.name.rsplit('/').next().unwrap_or(&k.name),
                                        age.num_days(),
                                        if a.disabled { " (account disabled)" } else { "" }
                                    ),
                                    advice: format!(
                                        "rotate or delete keys older than {} days; prefer workload identity to keys",
                                        limit.num_days()
                                    ),
                                })
                            })
                            .collect(),
                    )
                }
            })
            .buffered(4)
            .try_collect()
            .await?;
        Ok(per_account.into_iter().flatten().collect())
    }
}

#[async_trait]
impl SecurityAuditor for ProjectAudit {
    fn name(&self) -> &str {
        &self.name
    }

    async fn audit(&self) -> Result<Vec<AuditFinding>> {
        let mut findings = self.iam_findings().await?;
        findings.extend(self.key_findings().await?);
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.resource.cmp(&b.resource))
        });
        Ok(findings)
    }
}
