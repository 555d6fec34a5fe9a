//! Incidents as GitHub issues, behind [`Notifier`].
//!
//! A trigger opens an issue (title, Markdown body with the fields and links, labels); updates
//! and acknowledgements with the same dedup key become comments; the resolution comments and
//! closes the issue as completed. The dedup key is written into the issue body as a hidden
//! marker (`<!-- ops:dedup-key "…" -->`) and the issue carries the incident label, so the issue
//! is found again from the open incident issues after a restart: no process memory is needed.
//!
//! Issue creation and comments are `POST`s: they are never repeated after a response was lost
//! (a duplicate comment is worse than an error the caller sees).

use async_trait::async_trait;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt};
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{GithubClient, Repo};

/// The most open incident issues looked through for a dedup key.
const MAX_OPEN_INCIDENTS: usize = 1000;

/// An issue, as far as incidents need it.
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// The issue number.
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    /// The title.
    pub title: String,
    /// The Markdown body.
    #[serde(default)]
    pub body: Option<String>,
    /// The web page.
    pub html_url: String,
    /// Present on pull requests (the issues API lists those too).
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    body: &'a str,
    labels: Vec<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    assignees: &'a [String],
}

#[derive(Serialize)]
struct NewComment<'a> {
    body: &'a str,
}

#[derive(Serialize)]
struct Close {
    state: &'static str,
    state_reason: &'static str,
}

/// Opens, comments on and closes incident issues in one repository.
#[derive(Debug, Clone)]
pub struct GithubIssues {
    client: GithubClient,
    repo: Repo,
    label: String,
    severity_labels: bool,
    assignees: Vec<String>,
    name: String,
}

impl GithubIssues {
    /// Incident issues in `repo` (`owner/name`), labelled `incident`.
    pub fn new(client: GithubClient, repo: &str) -> Result<Self> {
        let repo = Repo::parse(repo)?;
        Ok(Self {
            name: format!("github-issues:{repo}"),
            client,
            repo,
            label: "incident".into(),
            severity_labels: true,
            assignees: Vec::new(),
        })
    }

    /// The label that marks incident issues (default `incident`).
    pub fn label(mut self, label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        if label.trim().is_empty() || label.contains(',') {
            return Err(Error::invalid_input(
                "github",
                "issues",
                "label",
                "must be non-empty and without commas",
            ));
        }
        self.label = label;
        Ok(self)
    }

    /// Whether new issues also get a `severity:<level>` label (default yes).
    pub fn severity_labels(mut self, on: bool) -> Self {
        self.severity_labels = on;
        self
    }

    /// Logins assigned to new incident issues.
    pub fn assignees(mut self, logins: &[&str]) -> Self {
        self.assignees = logins.iter().map(|l| l.to_string()).collect();
        self
    }

    /// The open incident issue filed under `dedup_key`, if any.
    pub async fn find(&self, dedup_key: &str) -> Result<Option<Issue>> {
        let marker = marker(dedup_key);
        let url = self.client.url(
            &self.repo.path("issues"),
            &[
                ("labels", self.label.as_str()),
                ("state", "open"),
                ("per_page", "100"),
            ],
        )?;
        let open = self
            .client
            .get_pages(
                "list_incident_issues",
                url,
                MAX_OPEN_INCIDENTS,
                |p: Vec<Issue>| p,
            )
            .await?;
        if open.truncated {
            tracing::warn!(repo = %self.repo, cap = MAX_OPEN_INCIDENTS, "more open incident issues than the cap; older ones were not searched");
        }
        Ok(open
            .items
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .find(|i| i.body.as_deref().is_some_and(|b| b.contains(&marker))))
    }

    async fn open(&self, n: &Notification) -> Result<Issue> {
        let mut labels = vec![self.label.clone()];
        if self.severity_labels {
            labels.push(format!("severity:{}", n.severity));
        }
        let body = issue_body(n);
        let url = self.client.url(&self.repo.path("issues"), &[])?;
        self.client
            .call(
                "create_issue",
                Method::POST,
                url,
                Some(&NewIssue {
                    title: &n.title,
                    body: &body,
                    labels,
                    assignees: &self.assignees,
                }),
                &SendOptions::default(),
            )
            .await
    }

    async fn comment(&self, number: u64, body: &str) -> Result<()> {
        let url = self
            .client
            .url(&self.repo.path(&format!("issues/{number}/comments")), &[])?;
        self.client
            .call::<_, serde_json::Value>(
                "create_issue_comment",
                Method::POST,
                url,
                Some(&NewComment { body }),
                &SendOptions::default(),
            )
            .await?;
        Ok(())
    }

    async fn close(&self, number: u64) -> Result<()> {
        let url = self
            .client
            .url(&self.repo.path(&format!("issues/{number}")), &[])?;
        // Setting the state is idempotent: a repeat after a lost answer changes nothing.
        let options = SendOptions {
            idempotency: Some(ops_core::retry::Idempotency::Idempotent),
            ..SendOptions::default()
        };
        self.client
            .call::<_, serde_json::Value>(
                "close_issue",
                Method::PATCH,
                url,
                Some(&Close {
                    state: "closed",
                    state_reason: "completed",
                }),
                &options,
            )
            .await?;
        Ok(())
    }

    fn receipt(&self, issue: Option<&Issue>, key: Option<&str>) -> Receipt {
        Receipt {
            notifier: self.name.clone(),
            id: issue.map(|i| i.number.to_string()),
            dedup_key: key.map(str::to_string),
        }
    }
}

#[async_trait]
impl Notifier for GithubIssues {
    fn name(&self) -> &str {
        &self.name
    }

    /// Trigger: a new issue, or a comment on the open one with the same key. Update and
    /// acknowledge: a comment (`NotFound` when no open issue has the key). Resolve: a comment
    /// and the issue closed; resolving an incident with no open issue is a no-op, so a repeated
    /// resolution is harmless.
    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let key = n.dedup_key.as_deref().filter(|k| !k.trim().is_empty());
        if let Some(k) = key {
            check_key(k)?;
        }
        let existing = match key {
            Some(k) => self.find(k).await?,
            None => None,
        };
        match (n.event, existing) {
            (NotificationEvent::Trigger, None) => {
                let issue = self.open(n).await?;
                Ok(self.receipt(Some(&issue), key))
            }
            (NotificationEvent::Resolve, None) => {
                tracing::info!(repo = %self.repo, dedup_key = ?key, "no open incident issue to resolve");
                Ok(self.receipt(None, key))
            }
            (NotificationEvent::Update | NotificationEvent::Acknowledge, None) => Err(Error::new(
                "github",
                "notify",
                ErrorKind::NotFound {
                    resource: format!(
                        "open issue labelled {} for dedup key {}",
                        self.label,
                        key.unwrap_or_default()
                    ),
                },
            )),
            (event, Some(issue)) => {
                self.comment(issue.number, &comment_body(n)).await?;
                if event == NotificationEvent::Resolve {
                    self.close(issue.number).await?;
                }
                Ok(self.receipt(Some(&issue), key))
            }
        }
    }
}

/// The hidden marker that ties an issue to its dedup key. The key is JSON-quoted with `<`, `>`
/// and `&` escaped, so no key can end the HTML comment early.
pub fn marker(dedup_key: &str) -> String {
    let quoted = serde_json::to_string(dedup_key)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("<!-- ops:dedup-key {quoted} -->")
}

fn check_key(key: &str) -> Result<()> {
    if key.len() > 200 || key.chars().any(char::is_control) {
        return Err(Error::invalid_input(
            "github",
            "notify",
            "dedup_key",
            "at most 200 characters, no control characters",
        ));
    }
    Ok(())
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn details(n: &Notification) -> String {
    let mut out = String::new();
    if !n.body_markdown.trim().is_empty() {
        out.push_str(n.body_markdown.trim_end());
        out.push_str("\n\n");
    }
    if !n.fields.is_empty() {
        out.push_str("| Field | Value |\n|---|---|\n");
        for (k, v) in &n.fields {
            out.push_str(&format!("| {} | {} |\n", cell(k), cell(v)));
        }
        out.push('\n');
    }
    if !n.links.is_empty() {
        let links: Vec<String> = n
            .links
            .iter()
            .map(|l| format!("[{}]({})", l.label.replace(['[', ']'], ""), l.url))
            .collect();
        out.push_str(&format!("**Links:** {}\n\n", links.join(" · ")));
    }
    out
}

/// The body of a new incident issue.
pub fn issue_body(n: &Notification) -> String {
    let mut out = format!("**Severity:** {}\n\n", n.severity);
    out.push_str(&details(n));
    if let Some(k) = &n.dedup_key {
        out.push_str(&marker(k));
        out.push('\n');
    }
    out
}

/// The comment for an update, acknowledgement, repeated trigger or resolution.
pub fn comment_body(n: &Notification) -> String {
    let what = match n.event {
        NotificationEvent::Trigger => "Triggered again",
        NotificationEvent::Update => "Update",
        NotificationEvent::Acknowledge => "Acknowledged",
        NotificationEvent::Resolve => "Resolved",
    };
    format!("**{what}** ({}): {}\n\n{}", n.severity, n.title, details(n))
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::contracts::Severity;

    #[test]
    fn markers_cannot_be_broken_out_of() {
        assert_eq!(
            marker("deploy/api"),
            r#"<!-- ops:dedup-key "deploy/api" -->"#
        );
        let m = marker("x --> <b>");
        assert_eq!(
            m.matches("-->").count(),
            1,
            "only the marker's own end: {m}"
        );
        assert_eq!(
            m.matches('<').count(),
            1,
            "only the marker's own start: {m}"
        );
        assert_ne!(marker("a"), marker("a\""), "keys stay distinct");
        // A key that is a prefix of another does not match its marker.
        assert!(!marker("inc-10").contains(&marker("inc-1")));
    }

    #[test]
    fn bodies_carry_fields_links_and_the_marker() {
        let n = Notification::new(Severity::Critical, "api down")
            .body("503s since 10:02.")
            .field("service", "api|edge")
            .link("dashboard", "https://example.com/d")
            .dedup_key("inc-1");
        let body = issue_body(&n);
        assert!(body.starts_with("**Severity:** critical\n\n503s since 10:02.\n\n"));
        assert!(body.contains("| service | api\\|edge |"), "{body}");
        assert!(body.contains("**Links:** [dashboard](https://example.com/d)"));
        assert!(body.ends_with("<!-- ops:dedup-key \"inc-1\" -->\n"));
        let c = comment_body(&n.clone().event(NotificationEvent::Resolve));
        assert!(
            c.starts_with("**Resolved** (critical): api down\n\n503s"),
            "{c}"
        );
        assert!(!c.contains("ops:dedup-key"), "comments need no marker");
    }
}
