//! Repository activity for the weekly review and incident evidence: commits since a time, pull
//! requests merged in a window, workflow runs with their conclusions, and releases (created
//! with GitHub's generated notes). Every list stops at the caller's cap and says whether it did.

use chrono::{DateTime, SecondsFormat, Utc};
use ops_core::http::SendOptions;
use ops_core::{Error, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{GithubClient, Paged, Repo};
use crate::model::{WorkflowRun, WorkflowRunsPage};

/// A commit, as reviews need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The SHA.
    pub sha: String,
    /// The first line of the message.
    pub title: String,
    /// The author's login, or their git name when the email is not tied to an account.
    pub author: String,
    /// When it was authored.
    pub authored_at: Option<DateTime<Utc>>,
    /// The web page.
    pub html_url: String,
}

/// A merged pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedPull {
    /// The number.
    pub number: u64,
    /// The title.
    pub title: String,
    /// Who opened it.
    pub author: String,
    /// When it was merged.
    pub merged_at: DateTime<Utc>,
    /// The branch it was merged into.
    pub base: String,
    /// The web page.
    pub html_url: String,
}

/// A release to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRelease {
    /// The tag (created from `target_commitish` if it does not exist).
    pub tag_name: String,
    /// Branch or SHA the tag is created from (default: the default branch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_commitish: Option<String>,
    /// The title (default: generated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unpublished.
    pub draft: bool,
    /// Marked as a pre-release.
    pub prerelease: bool,
    /// Let GitHub write the notes from the merged pull requests.
    pub generate_release_notes: bool,
}

impl NewRelease {
    /// A published release of `tag` with generated notes.
    pub fn tag(tag: impl Into<String>) -> Self {
        Self {
            tag_name: tag.into(),
            target_commitish: None,
            name: None,
            draft: false,
            prerelease: false,
            generate_release_notes: true,
        }
    }
}

/// A release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubRelease {
    /// The release id.
    pub id: u64,
    /// The tag.
    pub tag_name: String,
    /// The title.
    #[serde(default)]
    pub name: Option<String>,
    /// The notes.
    #[serde(default)]
    pub body: Option<String>,
    /// The web page.
    pub html_url: String,
    /// Unpublished.
    #[serde(default)]
    pub draft: bool,
}

#[derive(Deserialize)]
struct RawCommit {
    sha: String,
    html_url: String,
    commit: RawCommitDetail,
    #[serde(default)]
    author: Option<Login>,
}

#[derive(Deserialize)]
struct RawCommitDetail {
    message: String,
    #[serde(default)]
    author: Option<GitAuthor>,
}

#[derive(Deserialize)]
struct GitAuthor {
    #[serde(default)]
    name: String,
    #[serde(default)]
    date: Option<DateTime<Utc>>,
}

/// A commit's GitHub account: `null` when the email is tied to no account, and `{}` in some
/// real replies (both in the official description); only then is the git name used.
#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    login: Option<String>,
}

#[derive(Deserialize)]
struct RawPull {
    number: u64,
    title: String,
    html_url: String,
    #[serde(default)]
    user: Option<Login>,
    merged_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    base: BaseRef,
}

#[derive(Deserialize)]
struct BaseRef {
    #[serde(rename = "ref")]
    name: String,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads one repository's activity.
#[derive(Debug, Clone)]
pub struct RepoActivity {
    client: GithubClient,
    repo: Repo,
}

impl RepoActivity {
    /// Activity of `repo` (`owner/name`).
    pub fn new(client: GithubClient, repo: &str) -> Result<Self> {
        Ok(Self {
            client,
            repo: Repo::parse(repo)?,
        })
    }

    /// Commits on `branch` (default branch when `None`) since `since`, newest first.
    pub async fn commits_since(
        &self,
        since: DateTime<Utc>,
        branch: Option<&str>,
        cap: usize,
    ) -> Result<Paged<Commit>> {
        let since = iso(since);
        let mut query = vec![("since", since.as_str()), ("per_page", "100")];
        if let Some(b) = branch {
            query.push(("sha", b));
        }
        let url = self.client.url(&self.repo.path("commits"), &query)?;
        self.client
            .get_pages("list_commits", url, cap, |page: Vec<RawCommit>| {
                page.into_iter()
                    .map(|c| Commit {
                        title: c
                            .commit
                            .message
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                        author: c.author.and_then(|a| a.login).unwrap_or_else(|| {
                            c.commit
                                .author
                                .as_ref()
                                .map(|a| a.name.clone())
                                .unwrap_or_default()
                        }),
                        authored_at: c.commit.author.and_then(|a| a.date),
                        sha: c.sha,
                        html_url: c.html_url,
                    })
                    .collect()
            })
            .await
    }

    /// Pull requests merged in `[from, to)`, newest update first. Closed pull requests are read
    /// by last update, newest first, until one was last updated before `from` (a merge updates
    /// the pull request, so none merged in the window lies beyond).
    pub async fn merged_pulls(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cap: usize,
    ) -> Result<Paged<MergedPull>> {
        if from >= to {
            return Err(Error::invalid_input(
                "github",
                "activity",
                "window",
                "from must be before to",
            ));
        }
        let mut url = Some(self.client.url(
            &self.repo.path("pulls"),
            &[
                ("state", "closed"),
                ("sort", "updated"),
                ("direction", "desc"),
                ("per_page", "100"),
            ],
        )?);
        let mut items = Vec::new();
        while let Some(u) = url.take() {
            let reply = self
                .client
                .send::<()>("list_pulls", Method::GET, u, None, &SendOptions::default())
                .await?;
            let page: Vec<RawPull> = reply.json("github", "list_pulls")?;
            let reached_start = page.iter().any(|p| p.updated_at < from);
            for p in page {
                let Some(merged_at) = p.merged_at.filter(|m| *m >= from && *m < to) else {
                    continue;
                };
                if items.len() == cap {
                    return Ok(Paged {
                        items,
                        truncated: true,
                    });
                }
                items.push(MergedPull {
                    number: p.number,
                    title: p.title,
                    author: p.user.and_then(|u| u.login).unwrap_or_default(),
                    merged_at,
                    base: p.base.name,
                    html_url: p.html_url,
                });
            }
            if !reached_start {
                url = crate::client::next_link(&reply.headers)?;
            }
        }
        Ok(Paged {
            items,
            truncated: false,
        })
    }

    /// Workflow runs created since `since`, newest first.
    pub async fn workflow_runs(
        &self,
        since: DateTime<Utc>,
        cap: usize,
    ) -> Result<Paged<WorkflowRun>> {
        let created = format!(">={}", iso(since));
        let url = self.client.url(
            &self.repo.path("actions/runs"),
            &[("created", created.as_str()), ("per_page", "100")],
        )?;
        self.client
            .get_pages("list_workflow_runs", url, cap, |p: WorkflowRunsPage| {
                p.workflow_runs
            })
            .await
    }

    /// Creates a release; `AlreadyExists` when the tag has one.
    pub async fn create_release(&self, release: &NewRelease) -> Result<GithubRelease> {
        if release.tag_name.trim().is_empty() {
            return Err(Error::invalid_input(
                "github", "release", "tag_name", "is empty",
            ));
        }
        let url = self.client.url(&self.repo.path("releases"), &[])?;
        self.client
            .call(
                "create_release",
                Method::POST,
                url,
                Some(release),
                &SendOptions::default(),
            )
            .await
    }
}
