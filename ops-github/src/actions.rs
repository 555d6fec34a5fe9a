//! Deploys through GitHub Actions, behind [`Deployer`].
//!
//! * deploy = dispatch a named workflow with inputs (version, environment and, when the
//!   workflow can stage a release without serving it, a promote flag), find the run the
//!   dispatch created (`return_run_details`; on servers that do not return it, the newest
//!   dispatch run since), and await its conclusion;
//! * releases = the versions deployed to the environment (Deployments API), newest first, named
//!   by the deployment payload's `version` (or the deployment's ref);
//! * current = the newest deployment whose latest status is `success`;
//! * moving all traffic to a release, and [`WorkflowDeployer::rollback`], dispatch that
//!   release's version again.
//!
//! A workflow deploy has no traffic splits, scale or stop: those are `Unsupported`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::contracts::{
    DeployAction, DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release,
    ReleaseState, ScaleSpec, ServiceState, TrafficAllocation, TrafficSplit, Validation,
    validate_locally,
};
use ops_core::poll::{Every, Polled, poll_until};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::Deserialize;

use crate::client::{GithubClient, Repo, resource_options, segment};
use crate::model::{Deployment, DeploymentStatus, WorkflowRun, WorkflowRunsPage};

/// How many recent deployments of the environment are read.
const RECENT_DEPLOYMENTS: usize = 20;

/// The names of the workflow's `workflow_dispatch` inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowInputs {
    /// The input that receives the version (default `version`).
    pub version: String,
    /// The input that receives the environment (default `environment`; `None`: not sent).
    pub environment: Option<String>,
    /// A boolean input: `false` stages the release without serving it. Without one, a deploy
    /// with no initial traffic is `Unsupported`.
    pub promote: Option<String>,
}

impl Default for WorkflowInputs {
    fn default() -> Self {
        Self {
            version: "version".into(),
            environment: Some("environment".into()),
            promote: None,
        }
    }
}

#[derive(Deserialize)]
struct DispatchReply {
    workflow_run_id: u64,
}

/// Deploys one environment of a repository through a workflow.
#[derive(Debug, Clone)]
pub struct WorkflowDeployer {
    client: GithubClient,
    repo: Repo,
    workflow: String,
    git_ref: String,
    environment: String,
    inputs: WorkflowInputs,
    poll: Duration,
    target: String,
}

fn err(operation: &'static str, kind: ErrorKind) -> Error {
    Error::new("github", operation, kind)
}

impl WorkflowDeployer {
    /// Deploys `environment` of `repo` (`owner/name`) by dispatching `workflow` (its file name,
    /// e.g. `deploy.yml`, or id) on `main`, polling every 10 s.
    pub fn new(
        client: GithubClient,
        repo: &str,
        workflow: impl Into<String>,
        environment: impl Into<String>,
    ) -> Result<Self> {
        let repo = Repo::parse(repo)?;
        let workflow = workflow.into();
        let environment = environment.into();
        for (field, v) in [("workflow", &workflow), ("environment", &environment)] {
            if v.trim().is_empty() {
                return Err(Error::invalid_input(
                    "github", "deployer", field, "is empty",
                ));
            }
        }
        Ok(Self {
            target: format!("{repo}:{environment}"),
            client,
            repo,
            workflow,
            git_ref: "main".into(),
            environment,
            inputs: WorkflowInputs::default(),
            poll: Duration::from_secs(10),
        })
    }

    /// The branch or tag the workflow runs on (default `main`).
    pub fn git_ref(mut self, git_ref: impl Into<String>) -> Self {
        self.git_ref = git_ref.into();
        self
    }

    /// The workflow's input names.
    pub fn inputs(mut self, inputs: WorkflowInputs) -> Self {
        self.inputs = inputs;
        self
    }

    /// How often runs are polled.
    pub fn with_polling(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn workflow_path(&self, rest: &str) -> String {
        self.repo.path(&format!(
            "actions/workflows/{}/{rest}",
            segment(&self.workflow)
        ))
    }

    /// Dispatches the workflow for `version` and returns the run it created.
    pub async fn dispatch(&self, version: &str, promote: bool) -> Result<WorkflowRun> {
        let mut inputs = serde_json::Map::new();
        inputs.insert(self.inputs.version.clone(), version.into());
        if let Some(e) = &self.inputs.environment {
            inputs.insert(e.clone(), self.environment.clone().into());
        }
        if let Some(p) = &self.inputs.promote {
            // Workflow inputs arrive as strings; a `boolean` input accepts "true"/"false".
            inputs.insert(p.clone(), promote.to_string().into());
        }
        let body = serde_json::json!({
            "ref": self.git_ref,
            "inputs": inputs,
            "return_run_details": true,
        });
        let url = self.client.url(&self.workflow_path("dispatches"), &[])?;
        let dispatched_at = self.client.clock().now();
        // A POST: sent once. A lost answer must not start a second deploy.
        let reply = self
            .client
            .send(
                "dispatch_workflow",
                Method::POST,
                url,
                Some(&body),
                &resource_options(&self.workflow),
            )
            .await?;
        let run_id = if reply.body.is_empty() {
            self.find_dispatched_run(dispatched_at).await?
        } else {
            reply
                .json::<DispatchReply>("github", "dispatch_workflow")?
                .workflow_run_id
        };
        tracing::info!(target = %self.target, version, run_id, "dispatched deploy workflow");
        self.run(run_id).await
    }

    /// Servers without `return_run_details` answer 204: the run is the newest dispatch run of
    /// the workflow on the ref created since the dispatch (it can take a few seconds to show).
    async fn find_dispatched_run(&self, since: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        let created = format!(
            ">={}",
            (since - chrono::Duration::seconds(2))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let limit = Duration::from_secs(60);
        let newest = || async {
            let url = self.client.url(
                &self.workflow_path("runs"),
                &[
                    ("event", "workflow_dispatch"),
                    ("branch", &self.git_ref),
                    ("created", &created),
                    ("per_page", "10"),
                ],
            )?;
            let page: WorkflowRunsPage = self
                .client
                .get("list_workflow_runs", url, &self.workflow)
                .await?;
            Ok(page
                .workflow_runs
                .iter()
                .max_by_key(|r| r.created_at)
                .map(|r| r.id))
        };
        let polled = poll_until(
            self.client.clock().as_ref(),
            limit,
            Every::fixed(self.poll.min(Duration::from_secs(5))),
            newest().await?,
            |found| Ok(*found),
            |_| newest(),
        )
        .await?;
        match polled {
            Polled::Done(id) => Ok(id),
            Polled::TimedOut(_) => Err(err(
                "dispatch_workflow",
                ErrorKind::NotFound {
                    resource: format!(
                        "the run dispatched for {} on {}",
                        self.workflow, self.git_ref
                    ),
                },
            )),
        }
    }

    /// A workflow run.
    pub async fn run(&self, run_id: u64) -> Result<WorkflowRun> {
        let url = self
            .client
            .url(&self.repo.path(&format!("actions/runs/{run_id}")), &[])?;
        self.client
            .get("get_workflow_run", url, &format!("workflow run {run_id}"))
            .await
    }

    /// Polls the run until attempt `attempt` (or a later one) has completed, or `deadline`.
    pub async fn await_run(
        &self,
        run_id: u64,
        attempt: u32,
        deadline: Duration,
    ) -> Result<WorkflowRun> {
        poll_until(
            self.client.clock().as_ref(),
            deadline,
            Every::fixed(self.poll),
            self.run(run_id).await?,
            |run| Ok((run.run_attempt >= attempt && run.is_completed()).then(|| run.clone())),
            |_| self.run(run_id),
        )
        .await?
        .or_timeout("github", "await_workflow_run", deadline)
    }

    /// Re-runs the failed jobs of `run_id` and awaits the new attempt.
    pub async fn rerun_failed_jobs(&self, run_id: u64, deadline: Duration) -> Result<WorkflowRun> {
        let before = self.run(run_id).await?;
        let url = self.client.url(
            &self
                .repo
                .path(&format!("actions/runs/{run_id}/rerun-failed-jobs")),
            &[],
        )?;
        self.client
            .send::<()>(
                "rerun_failed_jobs",
                Method::POST,
                url,
                None,
                &resource_options(&format!("workflow run {run_id}")),
            )
            .await?;
        self.await_run(run_id, before.run_attempt + 1, deadline)
            .await
    }

    /// Dispatches `version`, awaits the run, and fails unless it succeeded.
    async fn deploy_version(
        &self,
        version: &str,
        promote: bool,
        deadline: Duration,
    ) -> Result<WorkflowRun> {
        let run = self.dispatch(version, promote).await?;
        let run = self.await_run(run.id, run.run_attempt, deadline).await?;
        if !run.succeeded() {
            return Err(err(
                "deploy",
                ErrorKind::VerificationFailed {
                    check: "workflow_run".into(),
                    detail: format!(
                        "run {} of {} for {version} concluded {} ({})",
                        run.id,
                        self.workflow,
                        run.conclusion.as_deref().unwrap_or("without a conclusion"),
                        run.html_url
                    ),
                },
            ));
        }
        Ok(run)
    }

    /// The environment's recent deployments with their latest status, newest first.
    pub async fn deployments(&self) -> Result<Vec<(Deployment, Option<DeploymentStatus>)>> {
        let per_page = RECENT_DEPLOYMENTS.to_string();
        let url = self.client.url(
            &self.repo.path("deployments"),
            &[
                ("environment", self.environment.as_str()),
                ("per_page", &per_page),
            ],
        )?;
        let deployments: Vec<Deployment> = self
            .client
            .get("list_deployments", url, &self.environment)
            .await?;
        let mut out = Vec::with_capacity(deployments.len());
        for d in deployments {
            let url = self.client.url(
                &self.repo.path(&format!("deployments/{}/statuses", d.id)),
                &[("per_page", "1")],
            )?;
            let statuses: Vec<DeploymentStatus> = self
                .client
                .get(
                    "list_deployment_statuses",
                    url,
                    &format!("deployment {}", d.id),
                )
                .await?;
            out.push((d, statuses.into_iter().next()));
        }
        Ok(out)
    }

    /// Deploys the version that served before the current one, and returns it.
    pub async fn rollback(&self, deadline: Duration) -> Result<Release> {
        let state = self.current().await?;
        let current = state.primary_release().map(str::to_string);
        // Newest first: the first ready release older than the current one.
        let releases = self.releases().await?;
        let start = releases
            .iter()
            .position(|r| Some(&r.id) == current.as_ref())
            .map_or(0, |i| i + 1);
        let previous = releases
            .into_iter()
            .skip(start)
            .find(|r| r.state == ReleaseState::Ready)
            .ok_or_else(|| {
                err(
                    "rollback",
                    ErrorKind::NotFound {
                        resource: format!(
                            "a release of {} older than the current one",
                            self.target
                        ),
                    },
                )
            })?;
        self.deploy_version(&previous.version, true, deadline)
            .await?;
        self.find_release(&previous.version).await
    }

    async fn find_release(&self, version: &str) -> Result<Release> {
        self.releases()
            .await?
            .into_iter()
            .find(|r| r.version == version)
            .ok_or_else(|| {
                err(
                    "deploy",
                    ErrorKind::NotFound {
                        resource: format!(
                            "a deployment of {version} to {} (does the workflow record one?)",
                            self.environment
                        ),
                    },
                )
            })
    }
}

fn release_state(status: Option<&DeploymentStatus>) -> ReleaseState {
    match status.map(|s| s.state.as_str()) {
        Some("success" | "inactive") => ReleaseState::Ready,
        Some("failure" | "error") => ReleaseState::Failed,
        _ => ReleaseState::Pending,
    }
}

#[async_trait]
impl Deployer for WorkflowDeployer {
    fn target(&self) -> &str {
        &self.target
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: false,
            scale: false,
            stop_serving: false,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let deployments = self.deployments().await?;
        let primary = deployments
            .iter()
            .find(|(_, s)| s.as_ref().is_some_and(|s| s.state == "success"));
        let latest_ready = deployments
            .iter()
            .find(|(_, s)| release_state(s.as_ref()) == ReleaseState::Ready)
            .map(|(d, _)| d.version().to_string());
        Ok(ServiceState {
            target: self.target.clone(),
            serving: primary.is_some(),
            traffic: primary
                .iter()
                .map(|(d, _)| TrafficAllocation {
                    release: d.version().to_string(),
                    percent: 100,
                })
                .collect(),
            latest_ready,
            url: primary.and_then(|(_, s)| s.as_ref()?.environment_url.clone()),
            scale: None,
            etag: None,
        })
    }

    async fn releases(&self) -> Result<Vec<Release>> {
        let deployments = self.deployments().await?;
        let mut out: Vec<Release> = Vec::new();
        // Newest first; a version deployed again keeps its newest deployment.
        for (d, status) in &deployments {
            let version = d.version();
            if out.iter().any(|r| r.id == version) {
                continue;
            }
            let labels = BTreeMap::from([
                ("deployment_id".to_string(), d.id.to_string()),
                ("sha".to_string(), d.sha.clone()),
                (
                    "status".to_string(),
                    status.as_ref().map_or("none".into(), |s| s.state.clone()),
                ),
            ]);
            out.push(Release {
                id: version.to_string(),
                version: version.to_string(),
                state: release_state(status.as_ref()),
                created_at: Some(d.created_at),
                url: status.as_ref().and_then(|s| s.environment_url.clone()),
                labels,
            });
        }
        Ok(out)
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        let promote = match request.traffic {
            InitialTraffic::All => true,
            InitialTraffic::None if self.inputs.promote.is_some() => false,
            InitialTraffic::None => {
                return Err(err(
                    "deploy",
                    ErrorKind::Unsupported {
                        capability: "a deploy without traffic (the workflow has no promote input)"
                            .into(),
                    },
                ));
            }
        };
        let run = self
            .deploy_version(&request.version, promote, request.deadline)
            .await?;
        let mut release = self.find_release(&request.version).await?;
        release.labels.insert("run_id".into(), run.id.to_string());
        Ok(release)
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let serving: Vec<&TrafficAllocation> = split
            .allocations()
            .iter()
            .filter(|a| a.percent > 0)
            .collect();
        let [only] = serving.as_slice() else {
            return Err(err(
                "set_traffic",
                ErrorKind::Unsupported {
                    capability: "traffic splits (a workflow deploys one version)".into(),
                },
            ));
        };
        let releases = self.releases().await?;
        split.check_known(&releases)?;
        let state = self.current().await?;
        if state.primary_release() == Some(only.release.as_str()) {
            return Ok(state);
        }
        self.deploy_version(&only.release, true, Duration::from_secs(1800))
            .await?;
        self.current().await
    }

    async fn scale(&self, _: &ScaleSpec) -> Result<ServiceState> {
        Err(err(
            "scale",
            ErrorKind::Unsupported {
                capability: "scaling through a workflow".into(),
            },
        ))
    }

    async fn stop_serving(&self) -> Result<ServiceState> {
        Err(err(
            "stop_serving",
            ErrorKind::Unsupported {
                capability: "stopping through a workflow".into(),
            },
        ))
    }

    async fn validate(&self, action: &DeployAction) -> Result<Validation> {
        validate_locally(action)?;
        if let DeployAction::Deploy(r) = action
            && r.traffic == InitialTraffic::None
            && self.inputs.promote.is_none()
        {
            return Err(err(
                "validate",
                ErrorKind::Unsupported {
                    capability: "a deploy without traffic (the workflow has no promote input)"
                        .into(),
                },
            ));
        }
        Ok(Validation::CheckedLocally)
    }
}
