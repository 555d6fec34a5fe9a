//! Deployments behind [`Deployer`]: list, current production, deploy from git or redeploy,
//! await the build, promote, instant rollback, pause; build events for failure reports.
//!
//! | runbook step (CLI) | call |
//! |---|---|
//! | `vercel ls` | [`Deployer::releases`] |
//! | production deployment, `vercel alias list` | [`Deployer::current`] |
//! | `vercel deploy --prod` / redeploy | [`Deployer::deploy`] |
//! | `vercel promote D` | [`Deployer::set_traffic`] (100 % to a newer deployment) |
//! | `vercel rollback D` | [`Deployer::set_traffic`] (100 % to an earlier production deployment), [`VercelDeployer::rollback_to`] |
//! | `vercel logs D` (build output) | [`VercelDeployer::build_events`], [`crate::VercelLogs`] |
//! | pause the project | [`Deployer::stop_serving`] |
//!
//! Vercel serves one production deployment: a split across deployments is
//! [`ErrorKind::Unsupported`], never an approximation. There is no instance scale to set.

use std::time::Duration;

use async_trait::async_trait;
use ops_core::contracts::{
    DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release, ScaleSpec,
    ServiceState, TrafficAllocation, TrafficSplit,
};
use ops_core::http::SendOptions;
use ops_core::http::pages::collect_pages;
use ops_core::poll::{Every, poll_until};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde_json::json;

use crate::client::VercelClient;
use crate::model::{Deployment, DeploymentPage, Event, Project};

/// The most deployments [`Deployer::releases`] reads.
const MAX_DEPLOYMENTS: usize = 500;

/// Where deployments come from: a GitHub repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRepo {
    /// Owner (user or organisation).
    pub org: String,
    /// Repository name.
    pub repo: String,
    /// Branch used when deploying a bare commit SHA.
    pub branch: String,
}

/// A deployment id (`dpl_…`) or hostname goes into a URL path: only a plain name (letters,
/// digits, `.`, `_`, `-`), so it can never step out of its path.
pub(crate) fn check_deployment_id(operation: &'static str, id: &str) -> Result<()> {
    match ops_core::contracts::plain_name_problem(id, 255) {
        Some(reason) => Err(Error::invalid_input(
            "vercel",
            operation,
            "deployment",
            reason,
        )),
        None => Ok(()),
    }
}

/// The deployments of one Vercel project.
#[derive(Debug, Clone)]
pub struct VercelDeployer {
    client: VercelClient,
    project: String,
    git: Option<GitRepo>,
    poll: Duration,
    promote_deadline: Duration,
}

impl VercelDeployer {
    /// Deployments of `project` (id or name). Without a git repository, only redeploys of
    /// existing deployments (`version` = `dpl_…`) are possible.
    pub fn new(
        client: VercelClient,
        project: impl Into<String>,
        git: Option<GitRepo>,
    ) -> Result<Self> {
        let project = project.into();
        ops_core::contracts::validate_name("vercel", "deployer", "project", &project)?;
        Ok(Self {
            client,
            project,
            git,
            poll: Duration::from_secs(5),
            promote_deadline: Duration::from_secs(300),
        })
    }

    /// How often builds are polled and how long a promote or rollback may take.
    pub fn with_polling(mut self, every: Duration, promote_deadline: Duration) -> Self {
        self.poll = every;
        self.promote_deadline = promote_deadline;
        self
    }

    /// The client.
    pub fn client(&self) -> &VercelClient {
        &self.client
    }

    /// The client's clock.
    pub fn clock(&self) -> &ops_core::clock::SharedClock {
        self.client.clock()
    }

    /// The project.
    pub async fn project(&self) -> Result<Project> {
        let url = self.client.url(&format!("v9/projects/{}", self.project))?;
        self.client.get("get_project", url, &self.project).await
    }

    /// One deployment.
    pub async fn deployment(&self, id: &str) -> Result<Deployment> {
        check_deployment_id("get_deployment", id)?;
        let url = self.client.url(&format!("v13/deployments/{id}"))?;
        self.client.get("get_deployment", url, id).await
    }

    /// The project's id or name, as configured.
    pub fn project_name(&self) -> &str {
        &self.project
    }

    /// The last `limit` build events of a deployment, oldest first (for failure reports).
    pub async fn build_events(&self, id: &str, limit: u32) -> Result<Vec<Event>> {
        self.events(
            id,
            &[
                ("direction", "backward".into()),
                ("limit", limit.to_string()),
            ],
        )
        .await
    }

    /// Every build event of a deployment from `since` (inclusive) to `until`, oldest first.
    pub async fn events_between(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Event>> {
        let (since, until) = (since.timestamp_millis(), until.timestamp_millis());
        let mut events = self
            .events(
                id,
                &[
                    ("direction", "forward".into()),
                    ("follow", "0".into()),
                    ("limit", "-1".into()),
                    ("since", since.to_string()),
                    ("until", until.to_string()),
                ],
            )
            .await?;
        // The bounds as this crate means them, whatever the server's inclusivity.
        events.retain(|e| e.at().is_some_and(|t| since <= t && t < until));
        Ok(events)
    }

    async fn events(&self, id: &str, query: &[(&str, String)]) -> Result<Vec<Event>> {
        check_deployment_id("get_deployment_events", id)?;
        let mut url = self.client.url(&format!("v3/deployments/{id}/events"))?;
        for (k, v) in query {
            url.query_pairs_mut().append_pair(k, v);
        }
        // The SDK's reply type allows an array (whose `null` items are skipped) or one event.
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Events {
            Many(Vec<Option<Event>>),
            One(Box<Event>),
        }
        let events = match self.client.get("get_deployment_events", url, id).await? {
            Events::Many(events) => events,
            Events::One(event) => vec![Some(*event)],
        };
        let mut events: Vec<Event> = events.into_iter().flatten().collect();
        events.sort_by_key(Event::at);
        Ok(events)
    }

    async fn list(&self) -> Result<Vec<Deployment>> {
        self.list_in(&self.project().await?).await
    }

    async fn list_in(&self, project: &Project) -> Result<Vec<Deployment>> {
        let listed = collect_pages(
            "vercel",
            "list_deployments",
            MAX_DEPLOYMENTS,
            |until: Option<i64>| async move {
                let mut url = self.client.url("v7/deployments")?;
                url.query_pairs_mut()
                    .append_pair("projectId", &project.id)
                    .append_pair("limit", "100");
                if let Some(u) = until {
                    url.query_pairs_mut().append_pair("until", &u.to_string());
                }
                let page: DeploymentPage = self
                    .client
                    .get("list_deployments", url, &self.project)
                    .await?;
                Ok((page.deployments, page.pagination.next))
            },
        )
        .await?;
        Ok(listed.items)
    }

    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let url = self.client.url(path)?;
        let options = SendOptions {
            resource: Some(self.project.clone()),
            ..SendOptions::default()
        };
        self.client
            .call(operation, Method::POST, url, body.as_ref(), &options)
            .await
    }

    /// Waits until the deployment is ready; a failed build is an error carrying its last
    /// error lines.
    async fn await_ready(&self, d: Deployment, deadline: Duration) -> Result<Deployment> {
        let d = poll_until(
            self.client.clock().as_ref(),
            deadline,
            Every::fixed(self.poll),
            d,
            |d| Ok(d.is_final().then(|| d.clone())),
            |d| async move { self.deployment(&d.id).await },
        )
        .await?
        .or_timeout("vercel", "deploy", deadline)?;
        if d.ready_state == "READY" {
            return Ok(d);
        }
        self.build_failed(&d).await
    }

    /// The error for a deployment whose build failed or was cancelled, with its last error lines.
    async fn build_failed(&self, d: &Deployment) -> Result<Deployment> {
        // The build failed either way; output that cannot be read is said so in
        // the report, never silently left out.
        let tail = match self.build_events(&d.id, 40).await {
            Ok(events) => {
                let lines: Vec<&str> = events
                    .iter()
                    .filter(|e| {
                        e.kind == "stderr"
                            || e.kind == "fatal"
                            || e.level.as_deref() == Some("error")
                    })
                    .filter_map(Event::line)
                    .collect();
                lines[lines.len().saturating_sub(5)..].join(" | ")
            }
            Err(e) => {
                tracing::warn!(error = %e, deployment = %d.id, "build events unreadable");
                format!("(build output unreadable: {e})")
            }
        };
        Err(Error::new(
            "vercel",
            "deploy",
            ErrorKind::VerificationFailed {
                check: "vercel_build".into(),
                detail: ops_core::redact::redact_text(&format!(
                    "{} {} {}: {}{}",
                    d.id,
                    d.ready_state,
                    d.error_code.as_deref().unwrap_or(""),
                    d.error_message.as_deref().unwrap_or("no message"),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; build output: {tail}")
                    }
                )),
            },
        ))
    }

    async fn await_production(&self, id: &str) -> Result<Project> {
        let first = self.project().await?;
        poll_until(
            self.client.clock().as_ref(),
            self.promote_deadline,
            Every::fixed(self.poll),
            first,
            |p| {
                Ok(p.production()
                    .is_some_and(|d| d.id == id)
                    .then(|| p.clone()))
            },
            |_| self.project(),
        )
        .await?
        .or_timeout("vercel", "set_traffic", self.promote_deadline)
    }

    /// Instant rollback to an earlier production deployment.
    pub async fn rollback_to(&self, id: &str) -> Result<ServiceState> {
        let project = self.project().await?;
        self.post(
            "rollback",
            &format!("v1/projects/{}/rollback/{id}", project.id),
            None,
        )
        .await?;
        let p = self.await_production(id).await?;
        tracing::warn!(project = %self.project, deployment = id, "instant rollback");
        self.state_of(&p).await
    }

    /// Promotes a deployment to production (no rebuild).
    pub async fn promote(&self, id: &str) -> Result<ServiceState> {
        let project = self.project().await?;
        self.post(
            "promote",
            &format!("v10/projects/{}/promote/{id}", project.id),
            None,
        )
        .await?;
        let p = self.await_production(id).await?;
        tracing::info!(project = %self.project, deployment = id, "promoted");
        self.state_of(&p).await
    }

    async fn state_of(&self, p: &Project) -> Result<ServiceState> {
        let prod = p.production();
        let latest_ready = self
            .list_in(p)
            .await?
            .into_iter()
            .filter(|d| d.ready_state == "READY")
            .max_by_key(|d| d.created_at)
            .map(|d| d.id);
        Ok(ServiceState {
            target: self.project.clone(),
            serving: !p.paused && prod.is_some(),
            traffic: match prod {
                Some(d) if !p.paused => vec![TrafficAllocation {
                    release: d.id.clone(),
                    percent: 100,
                }],
                _ => Vec::new(),
            },
            latest_ready,
            url: prod.map(|d| format!("https://{}", d.alias.first().unwrap_or(&d.url))),
            scale: None,
            etag: None,
        })
    }

    fn deploy_body(&self, project: &Project, request: &DeployRequest) -> Result<serde_json::Value> {
        let mut body = json!({ "name": project.name, "project": project.id });
        if request.traffic == InitialTraffic::All {
            body["target"] = json!("production");
        }
        // The version asked for travels with the deployment, so listings show it back.
        let mut meta = request.labels.clone();
        meta.insert(crate::model::VERSION_META.into(), request.version.clone());
        body["meta"] = json!(meta);
        if request.version.starts_with("dpl_") {
            body["deploymentId"] = json!(request.version);
            return Ok(body);
        }
        let git = self.git.as_ref().ok_or_else(|| {
            Error::invalid_input(
                "vercel",
                "deploy",
                "version",
                "deploying a git ref needs the deployer's GitRepo; or give a dpl_ id to redeploy",
            )
        })?;
        let is_sha =
            request.version.len() == 40 && request.version.chars().all(|c| c.is_ascii_hexdigit());
        body["gitSource"] = if is_sha {
            json!({"type": "github", "org": git.org, "repo": git.repo, "ref": git.branch, "sha": request.version})
        } else {
            json!({"type": "github", "org": git.org, "repo": git.repo, "ref": request.version})
        };
        Ok(body)
    }
}

#[async_trait]
impl Deployer for VercelDeployer {
    fn target(&self) -> &str {
        &self.project
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: false,
            scale: false,
            stop_serving: true,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        let p = self.project().await?;
        self.state_of(&p).await
    }

    async fn releases(&self) -> Result<Vec<Release>> {
        let mut all: Vec<Release> = self.list().await?.iter().map(Deployment::release).collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    /// Creates a deployment (production when `traffic` is `All`, else a preview) and waits
    /// for its build.
    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        let project = self.project().await?;
        let body = self.deploy_body(&project, request)?;
        let created: Deployment = serde_json::from_value(
            self.post("create_deployment", "v13/deployments", Some(body))
                .await?,
        )
        .map_err(|e| {
            Error::new(
                "vercel",
                "create_deployment",
                ErrorKind::Decode {
                    detail: e.to_string(),
                },
            )
        })?;
        tracing::info!(project = %self.project, deployment = %created.id, "deployment created");
        let ready = self.await_ready(created, request.deadline).await?;
        Ok(ready.release())
    }

    /// All traffic to one deployment: instant rollback if it served production before, a
    /// promote otherwise. Reopens a paused project.
    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let [only] = split.allocations() else {
            return Err(Error::unsupported(
                "vercel",
                "set_traffic",
                "traffic splitting (Vercel serves one production deployment)",
            ));
        };
        if only.percent != 100 {
            return Err(Error::unsupported(
                "vercel",
                "set_traffic",
                "traffic splitting (Vercel serves one production deployment)",
            ));
        }
        let target = self
            .list()
            .await?
            .into_iter()
            .find(|d| d.id == only.release)
            .ok_or_else(|| {
                Error::invalid_input(
                    "vercel",
                    "set_traffic",
                    "release",
                    format!("{} is not a deployment of {}", only.release, self.project),
                )
            })?;
        if target.ready_state != "READY" {
            return Err(Error::invalid_input(
                "vercel",
                "set_traffic",
                "release",
                format!("{} is {}, not READY", target.id, target.ready_state),
            ));
        }
        let mut project = self.project().await?;
        if project.paused {
            self.post(
                "unpause",
                &format!("v1/projects/{}/unpause", project.id),
                None,
            )
            .await?;
            project = self.project().await?;
        }
        let current = project.production().cloned();
        match current {
            Some(c) if c.id == target.id => self.state_of(&project).await,
            Some(c)
                if target.target.as_deref() == Some("production")
                    && target.created_at < c.created_at =>
            {
                self.rollback_to(&target.id).await
            }
            _ => self.promote(&target.id).await,
        }
    }

    async fn scale(&self, _: &ScaleSpec) -> Result<ServiceState> {
        Err(Error::unsupported(
            "vercel",
            "scale",
            "instance scaling (Vercel scales functions itself)",
        ))
    }

    /// Pauses the project: Vercel then serves nothing for it. `set_traffic` unpauses.
    async fn stop_serving(&self) -> Result<ServiceState> {
        let project = self.project().await?;
        if !project.paused {
            self.post("pause", &format!("v1/projects/{}/pause", project.id), None)
                .await?;
            tracing::warn!(project = %self.project, "paused: serving nothing");
        }
        self.current().await
    }
}
