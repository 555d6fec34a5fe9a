//! The shapes of GitHub's answers that more than one module reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The run id.
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The run's title (commit message, dispatch title).
    #[serde(default)]
    pub display_title: Option<String>,
    /// `queued`, `in_progress`, `completed`, `waiting`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Once completed: `success`, `failure`, `cancelled`, `timed_out`, …
    #[serde(default)]
    pub conclusion: Option<String>,
    /// The event that started it (`push`, `workflow_dispatch`, …).
    #[serde(default)]
    pub event: String,
    /// The branch it ran on.
    #[serde(default)]
    pub head_branch: Option<String>,
    /// The commit it ran on.
    #[serde(default)]
    pub head_sha: String,
    /// The web page.
    #[serde(default)]
    pub html_url: String,
    /// The workflow's file, as GitHub reports it (`.github/workflows/deploy.yml`, with
    /// `@ref` on some runs).
    #[serde(default)]
    pub path: Option<String>,
    /// Which attempt this is (re-runs count up).
    #[serde(default = "one")]
    pub run_attempt: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

fn one() -> u32 {
    1
}

impl WorkflowRun {
    /// The workflow's file name (`deploy.yml`), from [`WorkflowRun::path`].
    pub fn workflow_file(&self) -> Option<&str> {
        let path = self.path.as_deref()?;
        let path = path.split('@').next().unwrap_or(path);
        path.rsplit('/').next().filter(|f| !f.is_empty())
    }

    /// Whether it has finished.
    pub fn is_completed(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }

    /// Whether it finished successfully.
    pub fn succeeded(&self) -> bool {
        self.is_completed() && self.conclusion.as_deref() == Some("success")
    }
}

/// `{"total_count":…,"workflow_runs":[…]}`.
#[derive(Debug, Deserialize)]
pub struct WorkflowRunsPage {
    /// The runs on this page.
    pub workflow_runs: Vec<WorkflowRun>,
}

/// A deployment (Deployments API).
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    /// The deployment id.
    pub id: u64,
    /// The commit deployed.
    #[serde(default)]
    pub sha: String,
    /// The ref deployed.
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// Extra data; a `version` string here names what was deployed.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// The environment.
    #[serde(default)]
    pub environment: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Deployment {
    /// What was deployed: the payload's `version` if the workflow recorded one, else the ref.
    pub fn version(&self) -> &str {
        self.payload
            .get("version")
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or(&self.git_ref)
    }
}

/// A deployment's status.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    /// `success`, `inactive`, `failure`, `error`, `in_progress`, `queued`, `pending`.
    pub state: String,
    /// Where the deployment can be reached (the API's default `""` reads as none).
    #[serde(default, deserialize_with = "non_empty")]
    pub environment_url: Option<String>,
    /// When it was set.
    pub created_at: DateTime<Utc>,
}

/// An optional string where the API writes `""` for "none".
fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.filter(|s| !s.trim().is_empty()))
}

/// A workflow of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// Its id.
    pub id: u64,
    /// Its name (`Deploy`).
    pub name: String,
    /// Its file (`.github/workflows/deploy.yml`).
    pub path: String,
    /// `active`, `disabled_manually`, `disabled_inactivity`, `disabled_fork`, `deleted`, or a
    /// state added later.
    pub state: String,
    /// The web page.
    #[serde(default)]
    pub html_url: String,
}

impl Workflow {
    /// Whether it runs on its triggers.
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }

    /// The file name (`deploy.yml`), which the API accepts in place of the id.
    pub fn file(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// `{"total_count":…,"workflows":[…]}`.
#[derive(Debug, Deserialize)]
pub struct WorkflowsPage {
    /// The workflows on this page.
    pub workflows: Vec<Workflow>,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStep {
    /// Its name (`Run tests`).
    pub name: String,
    /// `queued`, `in_progress`, `completed`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Once completed: `success`, `failure`, `skipped`, …
    #[serde(default)]
    pub conclusion: Option<String>,
    /// Its position in the job.
    #[serde(default)]
    pub number: u64,
}

/// A job of a workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id (for its log).
    pub id: u64,
    /// The run it belongs to.
    pub run_id: u64,
    /// Its name (`test`, `deploy (production)`).
    pub name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Once completed: `success`, `failure`, `cancelled`, `timed_out`, …
    #[serde(default)]
    pub conclusion: Option<String>,
    /// The web page.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Its steps, where reported.
    #[serde(default)]
    pub steps: Option<Vec<JobStep>>,
}

impl Job {
    /// Whether it ended without success (failure, timeout, startup failure).
    pub fn failed(&self) -> bool {
        matches!(
            self.conclusion.as_deref(),
            Some("failure" | "timed_out" | "startup_failure")
        )
    }

    /// The names of the steps that failed.
    pub fn failed_steps(&self) -> Vec<String> {
        self.steps
            .iter()
            .flatten()
            .filter(|s| s.conclusion.as_deref() == Some("failure"))
            .map(|s| s.name.clone())
            .collect()
    }
}

/// `{"total_count":…,"jobs":[…]}`.
#[derive(Debug, Deserialize)]
pub struct JobsPage {
    /// The jobs on this page.
    pub jobs: Vec<Job>,
}
