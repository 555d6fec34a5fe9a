//! GitHub Actions as a control plane (seed 004): list workflows and their runs, find failed
//! runs with their failing jobs and the tail of each job's log, and disable or re-enable a
//! workflow — the "stop writers" step during database corruption, and resuming them after.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use ops_core::{Error, ErrorKind, Result};

use crate::client::{GithubClient, Repo, resource_options, segment};
use crate::model::{Job, JobsPage, Workflow, WorkflowRun, WorkflowRunsPage, WorkflowsPage};

/// The most workflows, runs or jobs one listing reads.
pub const MAX_LISTED: usize = 1000;
/// The most log lines kept per failed job.
pub const MAX_TAIL_LINES: usize = 500;
/// The bytes of a log's end held to cut the tail from.
const TAIL_BYTES: usize = 256 * 1024;

/// Which runs [`Workflows::runs`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only runs created at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only runs on this branch.
    pub branch: Option<String>,
    /// Only runs with this status or conclusion (`completed`, `failure`, `in_progress`, …).
    pub status: Option<String>,
    /// At most this many, newest first (default and limit [`MAX_LISTED`]).
    pub limit: Option<usize>,
}

/// A failed job, with why and the end of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedJob {
    /// The job.
    pub job: Job,
    /// The steps that failed.
    pub failed_steps: Vec<String>,
    /// The last lines of its log (empty when the log could not be read; `log_error` says why).
    pub log_tail: Vec<String>,
    /// Why the log could not be read, when it could not (expired, not yet uploaded, denied).
    pub log_error: Option<String>,
}

/// A run that ended without success, with its failed jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRun {
    /// The run.
    pub run: WorkflowRun,
    /// Its failed jobs (latest attempt).
    pub jobs: Vec<FailedJob>,
}

/// The workflows of one repository.
#[derive(Debug, Clone)]
pub struct Workflows {
    client: GithubClient,
    repo: Repo,
}

/// Whether a run's conclusion is a failure worth an alert (not `cancelled` or `skipped`:
/// those were asked for).
pub fn is_failure(run: &WorkflowRun) -> bool {
    run.is_completed()
        && matches!(
            run.conclusion.as_deref(),
            Some("failure" | "timed_out" | "startup_failure")
        )
}

impl Workflows {
    /// The workflows of `repo` (`owner/name`).
    pub fn new(client: GithubClient, repo: &str) -> Result<Self> {
        Ok(Self {
            client,
            repo: Repo::parse(repo)?,
        })
    }

    /// The repository.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    fn workflow_path(&self, workflow: &str, rest: &str) -> Result<String> {
        if workflow.trim().is_empty() {
            return Err(Error::invalid_input(
                "github",
                "workflow",
                "workflow",
                "must name a workflow file (deploy.yml) or id",
            ));
        }
        let base = format!("actions/workflows/{}", segment(workflow));
        Ok(self.repo.path(&if rest.is_empty() {
            base
        } else {
            format!("{base}/{rest}")
        }))
    }

    /// Every workflow of the repository.
    pub async fn list(&self) -> Result<Vec<Workflow>> {
        let url = self
            .client
            .url(&self.repo.path("actions/workflows"), &[("per_page", "100")])?;
        Ok(self
            .client
            .get_pages("list_workflows", url, MAX_LISTED, |p: WorkflowsPage| {
                p.workflows
            })
            .await?
            .items)
    }

    /// One workflow, by file name (`deploy.yml`) or id.
    pub async fn get(&self, workflow: &str) -> Result<Workflow> {
        let url = self.client.url(&self.workflow_path(workflow, "")?, &[])?;
        self.client
            .get("get_workflow", url, &format!("workflow {workflow}"))
            .await
    }

    /// Disables a workflow: it no longer starts on its triggers (schedules included); runs
    /// in progress go on. Disabling a disabled workflow changes nothing.
    pub async fn disable(&self, workflow: &str) -> Result<()> {
        self.switch("disable_workflow", workflow, "disable").await
    }

    /// Enables a workflow again.
    pub async fn enable(&self, workflow: &str) -> Result<()> {
        self.switch("enable_workflow", workflow, "enable").await
    }

    async fn switch(&self, operation: &'static str, workflow: &str, verb: &str) -> Result<()> {
        let url = self.client.url(&self.workflow_path(workflow, verb)?, &[])?;
        // A PUT: the same state whether sent once or twice, so retries are safe.
        self.client
            .send::<()>(
                operation,
                Method::PUT,
                url,
                None,
                &resource_options(&format!("workflow {workflow}")),
            )
            .await?;
        tracing::info!(owner = %self.repo.owner, repo = %self.repo.name, workflow, verb, "switched workflow");
        Ok(())
    }

    /// The runs of `workflow` (every workflow when `None`), newest first.
    pub async fn runs(
        &self,
        workflow: Option<&str>,
        filter: &RunFilter,
    ) -> Result<Vec<WorkflowRun>> {
        let path = match workflow {
            Some(w) => self.workflow_path(w, "runs")?,
            None => self.repo.path("actions/runs"),
        };
        let limit = filter.limit.unwrap_or(MAX_LISTED).min(MAX_LISTED);
        let created = filter
            .since
            .map(|s| format!(">={}", s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
        let per_page = limit.clamp(1, 100).to_string();
        let mut query: Vec<(&str, &str)> = vec![("per_page", &per_page)];
        if let Some(c) = &created {
            query.push(("created", c));
        }
        if let Some(b) = &filter.branch {
            query.push(("branch", b));
        }
        if let Some(s) = &filter.status {
            query.push(("status", s));
        }
        let url = self.client.url(&path, &query)?;
        let mut runs = self
            .client
            .get_pages("list_workflow_runs", url, limit, |p: WorkflowRunsPage| {
                p.workflow_runs
            })
            .await?
            .items;
        runs.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        runs.truncate(limit);
        Ok(runs)
    }

    /// The jobs of a run's latest attempt.
    pub async fn jobs(&self, run_id: u64) -> Result<Vec<Job>> {
        let url = self.client.url(
            &self.repo.path(&format!("actions/runs/{run_id}/jobs")),
            &[("filter", "latest"), ("per_page", "100")],
        )?;
        Ok(self
            .client
            .get_pages(
                "list_jobs_for_workflow_run",
                url,
                MAX_LISTED,
                |p: JobsPage| p.jobs,
            )
            .await?
            .items)
    }

    /// The last `lines` lines (at most [`MAX_TAIL_LINES`]) of a job's log. GitHub answers with a
    /// redirect to a short-lived signed URL on its log storage, fetched without the token.
    pub async fn job_log_tail(&self, job_id: u64, lines: usize) -> Result<Vec<String>> {
        let url = self
            .client
            .url(&self.repo.path(&format!("actions/jobs/{job_id}/logs")), &[])?;
        let at = self
            .client
            .download_location(
                "download_job_logs_for_workflow_run",
                url,
                &format!("the log of job {job_id}"),
            )
            .await?;
        self.client
            .download_tail(
                "download_job_log",
                at,
                lines.min(MAX_TAIL_LINES),
                TAIL_BYTES,
            )
            .await
    }

    /// The runs of `workflow` (all when `None`) created since `since` that failed, each with
    /// its failed jobs and the last `tail_lines` of their logs. A log that cannot be read is
    /// noted on its job rather than failing the whole answer.
    pub async fn failures(
        &self,
        workflow: Option<&str>,
        since: DateTime<Utc>,
        tail_lines: usize,
    ) -> Result<Vec<FailedRun>> {
        let runs = self
            .runs(
                workflow,
                &RunFilter {
                    since: Some(since),
                    status: Some("completed".into()),
                    ..RunFilter::default()
                },
            )
            .await?;
        let mut out = Vec::new();
        for run in runs.into_iter().filter(is_failure) {
            let mut jobs = Vec::new();
            for job in self.jobs(run.id).await?.into_iter().filter(Job::failed) {
                let (log_tail, log_error) = if tail_lines == 0 {
                    (Vec::new(), None)
                } else {
                    match self.job_log_tail(job.id, tail_lines).await {
                        Ok(t) => (t, None),
                        Err(e) if is_log_gone(&e) => (Vec::new(), Some(e.to_string())),
                        Err(e) => return Err(e),
                    }
                };
                jobs.push(FailedJob {
                    failed_steps: job.failed_steps(),
                    job,
                    log_tail,
                    log_error,
                });
            }
            out.push(FailedRun { run, jobs });
        }
        Ok(out)
    }
}

/// Logs expire (after the retention period) or are not uploaded yet: a note, not a failure.
fn is_log_gone(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound { .. } | ErrorKind::Forbidden { .. } | ErrorKind::Provider { .. }
    )
}
